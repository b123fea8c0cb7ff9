"""The CLIP recipe's loss: multi-positive targets and the symmetric contrastive loss, on hand-made batches."""
import math

import numpy as np
import pytest
from helpers import host, to_backend

from minildm.autograd import Tensor
from minildm.data import vocabulary
from minildm.train.clip import (CLIPDualEncoder, build_clip, build_tokenizer, clip_loss, load_clip,
                                multi_positive_targets, save_clip)
from minildm.train.presets import TINY
from minildm.train.recipe_common import make_dataset


def test_multi_positive_targets_spread_each_row_over_identical_captions():
    captions = ["a red circle", "a blue square", "a red circle", "a green triangle", "a red circle"]
    third = 1 / 3
    expected = np.array([[third, 0, third, 0, third],
                         [0, 1, 0, 0, 0],
                         [third, 0, third, 0, third],
                         [0, 0, 0, 1, 0],
                         [third, 0, third, 0, third]])
    targets = host(multi_positive_targets(captions))
    np.testing.assert_allclose(targets, expected, rtol=1e-6)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)  # each row is a distribution
    np.testing.assert_array_equal(targets, targets.T)                # one matrix serves both directions


def _soft_cross_entropy(logits, targets):
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -(targets * log_p).sum(axis=1).mean()


def test_clip_loss_is_the_mean_of_both_directions():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, 5)) * 3
    captions = ["a", "b", "a", "c", "a"]
    targets = host(multi_positive_targets(captions)).astype(np.float64)
    expected = 0.5 * (_soft_cross_entropy(logits, targets) + _soft_cross_entropy(logits.T, targets))
    loss = clip_loss(Tensor(to_backend(logits, np.float32), requires_grad=True), multi_positive_targets(captions))
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    # With all captions distinct it is CLIP's loss: cross-entropy with the diagonal as the right answer.
    distinct = host(multi_positive_targets(list("abcde")))
    np.testing.assert_array_equal(distinct, np.eye(5))


def test_a_perfect_batch_with_twins_has_a_lower_loss_than_one_that_separates_the_twins():
    # Two identical captions: an image matching both equally is right; the one-hot loss would punish it.
    captions = ["x", "x", "y"]
    targets = multi_positive_targets(captions)
    both = np.array([[5.0, 5.0, -5.0], [5.0, 5.0, -5.0], [-5.0, -5.0, 5.0]])
    only_own = np.array([[5.0, -5.0, -5.0], [-5.0, 5.0, -5.0], [-5.0, -5.0, 5.0]])
    loss_both = clip_loss(Tensor(to_backend(both, np.float32)), targets).item()
    loss_own = clip_loss(Tensor(to_backend(only_own, np.float32)), targets).item()
    assert loss_both < loss_own
    # The floor of a soft-target cross-entropy is the targets' entropy: log 2 for the twins' rows, 0 for the third.
    assert loss_both == pytest.approx(2 / 3 * math.log(2), abs=1e-3)


def test_temperature_is_clamped_at_100_and_the_model_round_trips(tmp_path):
    data = make_dataset(TINY.data)
    tokenizer = build_tokenizer(data.captions, TINY.clip.max_length)
    assert tokenizer.unknown_words(" ".join(vocabulary())) == []
    model = build_clip(TINY.clip, tokenizer, seed=0)
    assert isinstance(model, CLIPDualEncoder)
    assert model.scale().item() == pytest.approx(1 / 0.07, rel=1e-5)
    model.logit_scale.data[...] = 10.0  # exp(10) ~ 22 000
    assert model.scale().item() == pytest.approx(100.0, rel=1e-5)

    save_clip(tmp_path, model, tokenizer)
    loaded, loaded_tokenizer = load_clip(tmp_path)
    ids = to_backend(loaded_tokenizer(data.captions[:4]).input_ids)
    images = to_backend(data.images[:4])
    np.testing.assert_allclose(host(loaded(images, ids)), host(model(images, ids)), rtol=1e-5, atol=1e-5)
