"""Property tests: random broadcastable shapes, random axes, random index arrays (hypothesis draws them)."""
import numpy as np
from helpers import host, to_backend
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import minildm
from minildm import Tensor
from minildm.autograd import gradcheck

FAST = settings(max_examples=25, deadline=None)
PAIRS = mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=3)

BINARY = {  # name: (op, NumPy reference, range the inputs are drawn from)
    "add": (lambda a, b: a + b, np.add, (-2.0, 2.0)),
    "sub": (lambda a, b: a - b, np.subtract, (-2.0, 2.0)),
    "mul": (lambda a, b: a * b, np.multiply, (-2.0, 2.0)),
    "div": (lambda a, b: a / b, np.divide, (0.5, 2.0)),
    "pow": (lambda a, b: a ** b, np.power, (0.5, 2.0)),
    "maximum": (minildm.autograd.maximum, np.maximum, (-2.0, 2.0)),
}


def leaf(values):
    return Tensor(to_backend(values, np.float64), requires_grad=True)


@FAST
@given(name=st.sampled_from(sorted(BINARY)), shapes=PAIRS, seed=st.integers(0, 2**16))
def test_binary_ops_on_random_broadcastable_shapes(name, shapes, seed):
    fn, reference, (low, high) = BINARY[name]
    rng = np.random.default_rng(seed)
    a_np, b_np = (rng.uniform(low, high, size=s) for s in shapes.input_shapes)
    a, b = leaf(a_np), leaf(b_np)
    out = fn(a, b)
    assert out.shape == shapes.result_shape
    np.testing.assert_allclose(host(out), reference(a_np, b_np), rtol=1e-12)
    assert gradcheck(fn, [a, b], atol=1e-5, rtol=1e-5)


@FAST
@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=4), data=st.data())
def test_reductions_on_random_axes(shape, data):
    ndim = len(shape)
    axes = data.draw(st.lists(st.integers(-ndim, ndim - 1), unique_by=lambda a: a % ndim, max_size=ndim))
    axis = data.draw(st.sampled_from([None, tuple(axes)] + ([axes[0]] if axes else [])))
    keepdims = data.draw(st.booleans())
    name = data.draw(st.sampled_from(["sum", "mean", "max", "var"]))
    values = np.random.default_rng(data.draw(st.integers(0, 2**16))).standard_normal(shape)
    x = leaf(values)
    out = getattr(x, name)(axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(host(out), getattr(np, name)(values, axis=axis, keepdims=keepdims), rtol=1e-12)
    assert gradcheck(lambda x: getattr(x, name)(axis=axis, keepdims=keepdims), [x], atol=1e-5, rtol=1e-5)


@FAST
@given(n=st.integers(1, 6), index=st.lists(st.integers(0, 5), min_size=1, max_size=8), seed=st.integers(0, 2**16))
def test_fancy_index_gradient_counts_every_use(n, index, seed):
    index = np.array([i % n for i in index])
    weights = np.random.default_rng(seed).standard_normal(len(index))
    x = leaf(np.zeros(n))
    (x[to_backend(index)] * Tensor(to_backend(weights))).sum().backward()
    expected = np.zeros(n)
    np.add.at(expected, index, weights)  # an independent computation of the scatter-add
    np.testing.assert_allclose(host(x.grad), expected, rtol=1e-12, atol=1e-15)
