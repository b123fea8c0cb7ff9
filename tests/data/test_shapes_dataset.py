"""The shapes dataset: determinism, split separation, the caption grammar, image format and geometry."""
import numpy as np
import pytest

from minildm.data import (HELDOUT_PAIRS, SEEN_PAIRS, ShapeObject, ShapesDataset, all_captions, caption_for,
                          parse_caption, render_scene, sample_scene, vocabulary)
from minildm.data.attributes import RADIUS_RANGE, position_of, size_of
from minildm.data.shapes import coverage


@pytest.fixture(scope="module")
def train():
    return ShapesDataset(20_000, seed=0, split="train")


def pairs(scene):
    return {(obj.colour, obj.shape) for obj in scene}


def test_images_shape_dtype_range(train):
    assert train.images.shape == (20_000, 3, 32, 32) and train.images.dtype == np.float32
    assert train.images.min() == -1.0 and train.images.max() <= 1.0
    assert len(train) == len(train.captions) == len(train.scenes) == 20_000
    image, caption = train[3]
    assert image.shape == (3, 32, 32) and caption == train.captions[3]


def test_same_seed_same_data_and_prefix_stable():
    a, b = ShapesDataset(300, seed=7), ShapesDataset(300, seed=7)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.captions == b.captions and a.scenes == b.scenes
    short = ShapesDataset(100, seed=7)  # the first k examples do not depend on n
    np.testing.assert_array_equal(short.images, a.images[:100])
    assert ShapesDataset(300, seed=8).captions != a.captions


def test_splits_use_independent_streams():
    train, evaluation = ShapesDataset(200, seed=0, split="train"), ShapesDataset(200, seed=0, split="eval")
    assert train.captions != evaluation.captions
    assert not any(np.array_equal(x, y) for x, y in zip(train.images, evaluation.images))


def test_train_and_eval_never_show_heldout_pairs(train):
    for ds in (train, ShapesDataset(5000, seed=1, split="eval")):
        seen = set().union(*(pairs(scene) for scene in ds.scenes))
        assert seen == set(SEEN_PAIRS)  # every seen pair appears, no held-out pair ever does
        assert not any(f"{colour} {shape}" in caption for caption in ds.captions for colour, shape in HELDOUT_PAIRS)
    assert sum(len(s) == 2 for s in train.scenes) / len(train) == pytest.approx(0.3, abs=0.02)


def test_heldout_scenes_all_contain_a_heldout_pair():
    ds = ShapesDataset(3000, seed=0, split="heldout")
    assert all(pairs(scene) & set(HELDOUT_PAIRS) for scene in ds.scenes)
    singles = set().union(*(pairs(s) for s in ds.scenes if len(s) == 1))
    assert singles == set(HELDOUT_PAIRS)
    assert any(len(s) == 2 for s in ds.scenes)
    assert all(len(s) == 1 for s in ShapesDataset(300, split="heldout", max_objects=1).scenes)


def test_scene_geometry_matches_its_attributes(train):
    for scene in train.scenes[:3000]:
        for obj in scene:
            low, high = RADIUS_RANGE[obj.size]
            assert low <= obj.radius <= high and size_of(obj.radius) == obj.size
            assert position_of(obj.x, obj.y) == obj.position
            assert obj.radius <= obj.x <= 1 - obj.radius and obj.radius <= obj.y <= 1 - obj.radius  # inside
        if len(scene) == 2:  # two objects never touch: their boxes are at least 2 px apart
            a, b = scene
            gap = max(abs(a.x - b.x), abs(a.y - b.y)) - a.radius - b.radius
            assert gap >= 2 / 32 - 1e-9


@pytest.mark.parametrize("shape, area_per_r2", [("circle", np.pi), ("square", 4.0), ("triangle", 2.0)])
def test_rendered_area_matches_the_geometry(shape, area_per_r2):
    rng = np.random.default_rng(0)
    x, y, r = rng.uniform(0.4, 0.6, 50), rng.uniform(0.4, 0.6, 50), rng.uniform(3 / 32, 6.5 / 32, 50)
    area = coverage([shape] * 50, x, y, r, 32).sum(axis=(1, 2))
    # Anti-aliasing keeps the area; only the corners gain a little (at most about 1.5 px² per object).
    np.testing.assert_allclose(area, area_per_r2 * (r * 32) ** 2, rtol=0.01, atol=1.5)


def test_render_scene_colours_and_resolution():
    obj = ShapeObject("red", "square", "large", "center", 0.5, 0.5, 6 / 32)
    image = render_scene((obj,))
    np.testing.assert_allclose(image[:, 16, 16], np.array([0.95, 0.15, 0.15]) * 2 - 1, atol=1e-6)
    assert (image[:, 0, 0] == -1).all()
    big = render_scene((obj,), resolution=64)
    assert big.shape == (3, 64, 64) and (big[0] > 0).sum() == pytest.approx(4 * (image[0] > 0).sum(), rel=0.05)
    with pytest.raises(ValueError, match="no geometry"):
        render_scene(parse_caption("a red circle at the top"))


def test_caption_round_trip(train):
    for scene, caption in zip(train.scenes, train.captions):
        parsed = parse_caption(caption)
        assert [p.attributes()[:2] + p.attributes()[3:] for p in parsed] == \
            [s.attributes()[:2] + s.attributes()[3:] for s in scene]
        assert all(p.size in (None, s.size) for p, s in zip(parsed, scene))
        assert [p.attributes() for p in parse_caption(caption_for(scene))] == [s.attributes() for s in scene]
    omitted = sum(not any(size in c for size in ("small", "large")) for c in train.captions) / len(train)
    assert omitted == pytest.approx(0.25, abs=0.02)


def test_grammar_examples_and_every_caption():
    (obj,) = parse_caption("A large red circle at the top left.")
    assert obj.attributes() == ("red", "circle", "large", "top left")
    a, b = parse_caption("a blue square on the left and a yellow triangle on the right")
    assert a.attributes() == ("blue", "square", None, "left")
    assert b.attributes() == ("yellow", "triangle", None, "right")
    captions = all_captions()
    assert len(captions) == len(set(captions)) == 486 + 11_664
    assert all(caption_for(parse_caption(c)) == c for c in captions)
    assert set(" ".join(captions).split()) == set(vocabulary())
    assert len(all_captions(max_objects=1)) == 486


@pytest.mark.parametrize("caption, message", [
    ("a orange circle at the top", "unknown colour 'orange'"),
    ("a red hexagon at the top", "unknown shape 'hexagon'"),
    ("a red circle in the corner", "unknown position 'in the corner'"),
    ("the red circle at the top", "starts with 'a'"),
    ("a red circle", "expected 'a \\[size\\] colour shape position'"),
    ("a red circle at the top left and a blue square at the bottom right", "two objects stand"),
    ("a red circle on the left and a blue square on the right and a red square at the top", "at most two"),
])
def test_parse_caption_rejects_captions_outside_the_grammar(caption, message):
    with pytest.raises(ValueError, match=message):
        parse_caption(caption)


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="unknown split 'test'"):
        ShapesDataset(10, split="test")
    with pytest.raises(ValueError, match="max_objects"):
        ShapesDataset(10, max_objects=3)
    with pytest.raises(ValueError, match="n_objects"):
        sample_scene(np.random.default_rng(0), "train", 3)
