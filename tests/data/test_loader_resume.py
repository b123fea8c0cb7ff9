"""DataLoader: every example once per epoch, seeded order, batches on the active backend, exact resume."""
import numpy as np
import pytest
from helpers import host

from minildm import backend
from minildm.data import DataLoader, ShapesDataset


@pytest.fixture(scope="module")
def ds():
    return ShapesDataset(103, seed=4)


def index_of(ds, captions_and_images):
    # Recover dataset indices from the images (all distinct thanks to the jitter).
    flat = ds.images.reshape(len(ds), -1)
    images = host(captions_and_images).reshape(len(captions_and_images), -1)
    return [int(np.flatnonzero((flat == row).all(axis=1))[0]) for row in images]


def test_batches_on_backend_with_captions(ds):
    images, captions = next(iter(DataLoader(ds, batch_size=8, seed=0)))
    assert type(images) is type(backend.xp().zeros(1)) and images.dtype == np.float32
    assert images.shape == (8, 3, 32, 32) and len(captions) == 8
    for image, caption in zip(host(images), captions):
        assert ds.captions[index_of(ds, image[None])[0]] == caption


@pytest.mark.parametrize("drop_last", [True, False])
def test_each_epoch_covers_the_dataset_once(ds, drop_last):
    loader = DataLoader(ds, batch_size=10, seed=1, drop_last=drop_last)
    assert len(loader) == (10 if drop_last else 11)
    epochs = []
    for _ in range(2):
        seen = [i for images, _ in loader for i in index_of(ds, images)]
        assert len(seen) == len(set(seen)) == (100 if drop_last else 103)
        epochs.append(seen)
    assert epochs[0] != epochs[1]  # a new order every epoch
    assert loader.state_dict() == {"epoch": 2, "position": 0, "seed": 1}
    assert [i for images, _ in DataLoader(ds, 10, shuffle=False, drop_last=False) for i in index_of(ds, images)] \
        == list(range(103))


def test_same_seed_same_order(ds):
    a, b = DataLoader(ds, 16, seed=5), DataLoader(ds, 16, seed=5)
    assert [c for _, c in a] == [c for _, c in b]
    assert [c for _, c in DataLoader(ds, 16, seed=6)] != [c for _, c in DataLoader(ds, 16, seed=5)]


def test_resume_from_state_dict_gives_the_same_batches(ds):
    reference = DataLoader(ds, batch_size=12, seed=3)
    stream = reference.forever()
    full = [next(stream)[1] for _ in range(30)]  # 30 batches: more than three epochs of 8

    interrupted = DataLoader(ds, batch_size=12, seed=3)
    stream = interrupted.forever()
    for _ in range(13):  # stop in the middle of the second epoch ...
        next(stream)
    state = dict(interrupted.state_dict())
    assert state == {"epoch": 1, "position": 60, "seed": 3}

    resumed = DataLoader(ds, batch_size=12, seed=0)  # ... and carry on in a fresh process, from the checkpoint
    resumed.load_state_dict(state)
    stream = resumed.forever()
    assert [next(stream)[1] for _ in range(17)] == full[13:]


def test_break_keeps_the_place_and_epoch_end_rolls_over(ds):
    loader = DataLoader(ds, batch_size=25, seed=0)
    for step, _ in enumerate(loader):
        if step == 1:
            break
    assert loader.state_dict()["position"] == 50
    assert len(list(loader)) == 2  # the rest of the epoch
    assert loader.state_dict() == {"epoch": 1, "position": 0, "seed": 0}


def test_bad_arguments_are_explained(ds):
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(ds, batch_size=0)
    with pytest.raises(ValueError, match="no batches"):
        DataLoader(ds, batch_size=200)
    with pytest.raises(ValueError, match="position 100"):
        DataLoader(ds, batch_size=10).load_state_dict({"epoch": 0, "position": 100, "seed": 0})
