"""Two speeds, one truth: each teaching twin (primitive ops) equals its fused op, values and gradients, in float64."""
import numpy as np
import pytest
from helpers import assert_close, host, to_backend

from minildm.autograd import Tensor, teaching
from minildm.nn import functional as F

RTOL = 1e-10


def _inputs(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [Tensor(to_backend(1.5 + 2.0 * rng.standard_normal(s), np.float64), requires_grad=True) for s in shapes]


def _assert_twins(fused, twin, shapes, seed=0):
    """Run both on the same inputs with the same upstream gradient; compare the outputs and every input gradient."""
    a, b = _inputs(shapes, seed), _inputs(shapes, seed)
    out_a, out_b = fused(*a), twin(*b)
    upstream = np.random.default_rng(seed + 1).standard_normal(out_a.shape)
    out_a.backward(to_backend(upstream, np.float64))
    out_b.backward(to_backend(upstream, np.float64))
    assert_close(out_a, host(out_b), RTOL, what="value")
    for i, (ta, tb) in enumerate(zip(a, b)):
        assert_close(ta.grad, host(tb.grad), RTOL, what=f"gradient of input {i}")


@pytest.mark.parametrize("shape, axis", [((3, 7), -1), ((2, 3, 4), 1), ((5, 1), -1)])
def test_softmax(shape, axis):
    _assert_twins(lambda x: F.softmax(x, axis), lambda x: teaching.softmax(x, axis), [shape])


@pytest.mark.parametrize("shape", [(4, 8), (2, 3, 5)])
def test_layer_norm(shape):
    d = shape[-1]
    _assert_twins(F.layer_norm, teaching.layer_norm, [shape, (d,), (d,)])
    _assert_twins(F.layer_norm, teaching.layer_norm, [shape])


@pytest.mark.parametrize("shape, groups", [((2, 6, 3, 4), 3), ((2, 4, 5), 1), ((1, 4, 2, 2), 4)])
def test_group_norm(shape, groups):
    c = shape[1]
    _assert_twins(lambda x, w, b: F.group_norm(x, groups, w, b),
                  lambda x, w, b: teaching.group_norm(x, groups, w, b), [shape, (c,), (c,)])


@pytest.mark.parametrize("mask_kind", [None, "bool", "additive"])
def test_attention(mask_kind):
    mask = None
    rng = np.random.default_rng(5)
    if mask_kind == "bool":
        mask = rng.random((2, 1, 4, 6)) > 0.4
        mask[..., 0] = True  # the twin gives NaN for a fully masked query, so every query keeps one key
        mask = to_backend(mask)
    elif mask_kind == "additive":
        mask = to_backend(np.triu(np.full((4, 6), -np.inf), k=3) + rng.standard_normal((4, 6)), np.float64)
    _assert_twins(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, mask=mask),
                  lambda q, k, v: teaching.scaled_dot_product_attention(q, k, v, mask=mask),
                  [(2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 2)])
