"""The attribute checker reads dataset images back exactly, stays right under noise and blur, and fails wrong
captions on exactly the attribute that is wrong."""
import numpy as np
import pytest
from helpers import to_backend

from minildm.data import ShapeObject, ShapesDataset, attribute_accuracy, check_image, render_scene, score
from minildm.data.checker import label_components
from minildm.data.plotting import to_uint8


def blur(images, sigma):
    """Separable Gaussian blur of (N, 3, H, W) images (edges repeated), written independently of the checker's."""
    offsets = np.arange(-3, 4)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    out = images
    for axis in (2, 3):
        pad = [(0, 0)] * 4
        pad[axis] = (3, 3)
        padded = np.pad(out, pad, mode="edge")
        out = sum(k * np.take(padded, np.arange(out.shape[axis]) + 3 + o, axis=axis) for k, o in zip(kernel, offsets))
    return out.astype(np.float32)


def noisy(images, sigma, seed):
    noise = np.random.default_rng(seed).standard_normal(images.shape).astype(np.float32)
    return np.clip(images + sigma * noise, -1, 1)


@pytest.fixture(scope="module")
def datasets():
    # Half two-object scenes, so both kinds are well represented; 1000 images per split.
    return {split: ShapesDataset(1000, seed=11, split=split, two_object_fraction=0.5)
            for split in ("train", "eval", "heldout")}


@pytest.mark.parametrize("split", ["train", "eval", "heldout"])
def test_clean_images_read_back_exactly(datasets, split):
    ds = datasets[split]
    scores = [score(image, caption) for image, caption in zip(ds.images, ds.captions)]
    assert np.mean([s["all"] for s in scores]) >= 0.99
    two = [s["all"] for s, scene in zip(scores, ds.scenes) if len(scene) == 2]
    assert len(two) > 400 and np.mean(two) >= 0.99
    # Beyond the caption: every detected object matches its scene object, including the size the caption omits.
    for image, scene in zip(ds.images[:200], ds.scenes[:200]):
        found = check_image(image)
        assert sorted(f.attributes() for f in found) == sorted(s.attributes() for s in scene)


@pytest.mark.parametrize("what, degrade, bound", [
    ("noise 0.05", lambda x: noisy(x, 0.05, 0), 0.99),
    ("noise 0.1", lambda x: noisy(x, 0.1, 1), 0.99),
    ("blur 0.7", lambda x: blur(x, 0.7), 0.99),
    ("blur 1.0 + noise 0.05", lambda x: noisy(blur(x, 1.0), 0.05, 2), 0.97),
])
def test_robust_to_noise_and_blur(datasets, what, degrade, bound):
    ds = datasets["train"]
    rates = attribute_accuracy(degrade(ds.images), ds.captions)
    assert rates["all"] >= bound, (what, rates)


def scene_image(*objects):
    return render_scene(tuple(ShapeObject(*o) for o in objects))


def test_wrong_captions_fail_on_the_wrong_attribute():
    image = scene_image(("red", "circle", "large", "top left", 0.25, 0.25, 6 / 32))
    assert score(image, "a large red circle at the top left")["all"]
    assert score(image, "a red circle at the top left")["all"]  # size left open
    cases = {"a large blue circle at the top left": "colour", "a large red square at the top left": "shape",
             "a large red triangle at the top left": "shape", "a small red circle at the top left": "size",
             "a large red circle at the top right": "position", "a large red circle in the center": "position"}
    for caption, wrong in cases.items():
        result = score(image, caption)
        assert not result[wrong] and not result["all"], caption
        assert all(result[a] for a in ("colour", "shape", "size", "position", "count") if a != wrong), caption


def test_two_objects_are_judged_object_by_object():
    image = scene_image(("blue", "square", "small", "left", 0.25, 0.5, 3.5 / 32),
                        ("yellow", "triangle", "large", "right", 0.75, 0.5, 6 / 32))
    assert score(image, "a blue square on the left and a yellow triangle on the right")["all"]
    assert score(image, "a yellow triangle on the right and a small blue square on the left")["all"]
    swapped = score(image, "a blue square on the right and a yellow triangle on the left")
    assert not swapped["position"] and swapped["colour"] and swapped["shape"]
    colours = score(image, "a yellow square on the left and a blue triangle on the right")
    assert not colours["colour"] and colours["shape"] and colours["position"]
    shapes = score(image, "a blue triangle on the left and a yellow square on the right")
    assert not shapes["shape"] and shapes["colour"] and shapes["position"]


def test_missing_and_extra_objects_fail_count():
    one = scene_image(("green", "circle", "large", "top", 0.5, 0.25, 6 / 32))
    two = score(one, "a green circle at the top and a red square at the bottom")
    assert not two["count"] and not two["all"] and not two["colour"]  # the red square has no partner
    pair = scene_image(("green", "circle", "large", "top", 0.5, 0.25, 6 / 32),
                       ("red", "square", "large", "bottom", 0.5, 0.75, 6 / 32))
    extra = score(pair, "a green circle at the top")
    assert extra["colour"] and extra["position"] and not extra["count"] and not extra["all"]
    assert check_image(np.full((3, 32, 32), -1, np.float32)) == ()


def test_input_layouts_and_backends_agree():
    ds = ShapesDataset(20, seed=3, two_object_fraction=0.5)
    for image in ds.images:
        expected = check_image(image)
        assert [o.attributes() for o in check_image(to_uint8(image)[0])] == [o.attributes() for o in expected]
        assert check_image(to_backend(image)) == expected
    rates = attribute_accuracy(to_backend(ds.images), ds.captions)
    assert rates["all"] == 1.0
    with pytest.raises(ValueError, match="expected one image"):
        check_image(ds.images)


def test_label_components_matches_scipy():
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(0)
    for density in (0.3, 0.5, 0.6):
        mask = rng.random((32, 32)) < density
        ours = label_components(mask)
        theirs, count = ndimage.label(mask)  # 4-connectivity, labels 1..K in raster order of first pixel
        assert ours.max() + 1 == count
        np.testing.assert_array_equal(ours, theirs - 1)
