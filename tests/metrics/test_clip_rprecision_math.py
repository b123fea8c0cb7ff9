"""CLIP score and R-precision on hand-made embeddings: the formulas, and distractors that are really false."""
import numpy as np
import pytest

from minildm.data import ShapesDataset
from minildm.metrics import clip_score, clip_scores, draw_distractors, r_precision, same_scene, scene_key


def test_clip_score_is_100_times_clipped_cosine():
    image = np.array([[1.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    text = np.array([[3.0, 0.0], [-1.0, 0.0], [1.0, 1.0]])   # cos 1, −1 (clipped to 0), 1/√2
    np.testing.assert_allclose(clip_scores(image, text), [100.0, 0.0, 100 / np.sqrt(2)])
    assert clip_score(image, text) == pytest.approx((100 + 100 / np.sqrt(2)) / 3)


def test_same_scene_ignores_order_and_missing_sizes():
    a = scene_key("a large red circle on the left and a blue square on the right")
    assert same_scene(a, scene_key("a blue square on the right and a red circle on the left"))
    assert same_scene(scene_key("a red circle at the top"), scene_key("a small red circle at the top"))
    assert not same_scene(a, scene_key("a small red circle on the left and a blue square on the right"))
    assert not same_scene(scene_key("a red circle at the top"), scene_key("a red square at the top"))
    assert not same_scene(scene_key("a red circle at the top"), scene_key("a red circle at the bottom"))


def test_distractors_are_false_and_r_precision_counts_wins():
    captions = ShapesDataset(120, seed=3, split="eval").captions
    rows = draw_distractors(captions, k=31, seed=0)
    assert rows.shape == (120, 31)
    for i, chosen in enumerate(rows):
        assert len(set(chosen)) == 31 and i not in chosen
        assert not any(same_scene(scene_key(captions[i]), scene_key(captions[j])) for j in chosen)
    # embeddings: one direction per distinct scene; images that match their caption exactly always win
    keys = sorted({str(sorted(scene_key(c).items())) for c in captions})
    basis = np.eye(len(keys))
    text = np.stack([basis[keys.index(str(sorted(scene_key(c).items())))] for c in captions])
    assert r_precision(text, text, captions) == 1.0
    assert r_precision(np.ones_like(text), text, captions) == 0.0   # every caption ties: a tie is a miss
    with pytest.raises(ValueError, match="need 31"):
        draw_distractors(captions[:10], k=31)
