"""clip_grad_norm_: global L2 norm, coefficient min(1, max_norm / (norm + eps)), grads None ignored."""
import numpy as np
import pytest
from helpers import assert_close, host, to_backend

import minildm
from minildm.optim import clip_grad_norm_


def make(grads):
    params = []
    for g in grads:
        p = minildm.Tensor(to_backend(np.zeros(np.shape(g), np.float32)), requires_grad=True)
        p.grad = None if g is None else to_backend(np.asarray(g, np.float32))
        params.append(p)
    return params


def test_clips_to_max_norm_and_returns_the_norm_before():
    params = make([[3.0, 0.0], [[0.0], [4.0]], None])  # global norm sqrt(9 + 16) = 5
    norm = clip_grad_norm_(params, max_norm=1.0)
    assert isinstance(norm, float) and norm == pytest.approx(5.0, rel=1e-7)
    coef = 1.0 / (5.0 + 1e-6)
    assert_close(params[0].grad, [3 * coef, 0.0], rtol=1e-7)
    assert_close(params[1].grad, [[0.0], [4 * coef]], rtol=1e-7)
    assert params[2].grad is None
    total = np.sqrt(sum((host(p.grad).astype(np.float64) ** 2).sum() for p in params[:2]))
    assert total == pytest.approx(1.0, rel=1e-5)


def test_small_gradients_are_left_alone():
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((3, 4)) * 0.01, rng.standard_normal(5) * 0.01]
    params = make(grads)
    norm = clip_grad_norm_(params, max_norm=10.0)
    expected = np.sqrt(sum((g.astype(np.float32).astype(np.float64) ** 2).sum() for g in grads))
    assert norm == pytest.approx(expected, rel=1e-6)
    for p, g in zip(params, grads):  # coefficient clamped to exactly 1
        assert np.array_equal(host(p.grad), g.astype(np.float32))


def test_shared_gradient_arrays_are_scaled_once():
    """Autograd may hand the same array to two leaves; clipping must not scale it twice."""
    a, b = make([[1.0], [1.0]])
    b.grad = a.grad = to_backend(np.array([6.0], np.float32))
    clip_grad_norm_([a, b], max_norm=1.0)
    expected = 6.0 / (np.sqrt(72.0) + 1e-6)
    assert_close(a.grad, [expected], rtol=1e-6)
    assert_close(b.grad, [expected], rtol=1e-6)


def test_no_gradients_and_nonfinite():
    assert clip_grad_norm_(make([None]), 1.0) == 0.0
    params = make([[np.inf, 1.0]])
    with np.errstate(invalid="ignore"):
        assert clip_grad_norm_(params, 1.0) == np.inf  # reported, not hidden (as in PyTorch)
