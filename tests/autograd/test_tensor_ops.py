"""Every primitive op: forward against NumPy, backward against finite differences (float64 gradcheck)."""
import numpy as np
import pytest
from helpers import host, to_backend

import minildm
from minildm import Tensor
from minildm.autograd import gradcheck, ops


def leaf(values, dtype=np.float64):
    return Tensor(to_backend(values, dtype), requires_grad=True)


def rand(shape, seed=0, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape)


def away_from(values, points, gap=0.1):
    """Nudge values that sit within ``gap`` of a kink (0 for abs/relu, clip bounds) so differences are clean."""
    values = np.array(values, dtype=np.float64)
    for p in points:
        near = np.abs(values - p) < gap
        values[near] = p + np.where(values[near] >= p, gap, -gap)
    return values


# Broadcasting pairs: equal, trailing, both-way stretch, scalars (0-d) on either side, size-1 axes, rank mismatch.
SHAPE_PAIRS = [((3,), (3,)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((), (2, 3)), ((2, 3), ()), ((1,), (4, 1)),
               ((2, 1, 3), (4, 1)), ((1, 1), (1, 1))]

BINARY = {
    "add": (lambda a, b: a + b, np.add, (-2, 2)),
    "sub": (lambda a, b: a - b, np.subtract, (-2, 2)),
    "mul": (lambda a, b: a * b, np.multiply, (-2, 2)),
    "div": (lambda a, b: a / b, np.divide, (0.5, 2)),        # denominator kept away from zero
    "pow": (lambda a, b: a ** b, np.power, (0.5, 2)),        # positive base: a^b log a is real
    "maximum": (minildm.autograd.maximum, np.maximum, (-2, 2)),
}


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("shapes", SHAPE_PAIRS, ids=str)
def test_binary_ops_broadcast_both_ways(name, shapes):
    fn, reference, (low, high) = BINARY[name]
    a_np, b_np = rand(shapes[0], 1, low, high), rand(shapes[1], 2, low, high)
    a, b = leaf(a_np), leaf(b_np)
    out = fn(a, b)
    np.testing.assert_allclose(host(out), reference(a_np, b_np), rtol=1e-12)
    assert gradcheck(fn, [a, b])


@pytest.mark.parametrize("name", BINARY)
def test_binary_ops_with_a_constant_operand(name):
    fn, _, (low, high) = BINARY[name]
    const = to_backend(rand((2, 3), 3, low, high), np.float64)
    assert gradcheck(lambda a: fn(a, Tensor(const)), [leaf(rand((2, 3), 4, low, high))])
    assert gradcheck(lambda b: fn(Tensor(const), b), [leaf(rand((3,), 5, low, high))])


@pytest.mark.parametrize("expr", [
    lambda x: 2.0 - x, lambda x: 3.0 / x, lambda x: 2.0 ** x, lambda x: x ** 3, lambda x: x ** -0.5,
    lambda x: x ** 2, lambda x: 1.5 * x + 1, lambda x: -x, lambda x: x ** np.float64(1.5),
], ids=["rsub", "rdiv", "rpow", "cube", "inv_sqrt", "square", "affine", "neg", "pow_np_scalar"])
def test_scalar_operands_on_either_side(expr):
    assert gradcheck(expr, [leaf(rand((2, 3), 6, 0.5, 2.0))])


def test_ndarray_on_the_left():
    arr = to_backend(rand((2, 3), 7, 0.5, 2.0), np.float64)
    for expr in (lambda x: arr + x, lambda x: arr - x, lambda x: arr * x, lambda x: arr / x, lambda x: arr ** x):
        assert gradcheck(expr, [leaf(rand((3,), 8, 0.5, 2.0))])


def test_pow_with_zero_exponent_has_zero_gradient_even_at_zero():
    x = leaf([0.0, 2.0])
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(host(x.grad), [0.0, 0.0])


MATMUL_SHAPES = [((2, 3), (3, 4)), ((3,), (3, 4)), ((2, 3), (3,)), ((3,), (3,)), ((2, 1, 3, 4), (5, 4, 2)),
                 ((4,), (2, 4, 3)), ((2, 3, 4), (4,)), ((1, 2, 3), (3, 2)), ((1, 1), (1, 1))]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul_1d_and_batch_broadcasting(shapes):
    a_np, b_np = rand(shapes[0], 9), rand(shapes[1], 10)
    a, b = leaf(a_np), leaf(b_np)
    out = a @ b
    np.testing.assert_allclose(host(out), a_np @ b_np, rtol=1e-12)
    assert out.shape == (a_np @ b_np).shape
    assert gradcheck(lambda a, b: a @ b, [a, b])
    assert gradcheck(lambda a: a @ Tensor(to_backend(b_np)), [leaf(a_np)])  # one side constant


UNARY = {
    "exp": (lambda x: x.exp(), np.exp, rand((2, 3), 11)),
    "log": (lambda x: x.log(), np.log, rand((2, 3), 12, 0.2, 3.0)),
    "sqrt": (lambda x: x.sqrt(), np.sqrt, rand((2, 3), 13, 0.2, 3.0)),
    "tanh": (lambda x: x.tanh(), np.tanh, rand((2, 3), 14)),
    "sigmoid": (lambda x: x.sigmoid(), lambda v: 1 / (1 + np.exp(-v)), rand((2, 3), 15, -6, 6)),
    "abs": (lambda x: abs(x), np.abs, away_from(rand((2, 3), 16), [0.0])),
    "relu": (lambda x: x.relu(), lambda v: np.maximum(v, 0), away_from(rand((2, 3), 17), [0.0])),
    "neg": (lambda x: -x, np.negative, rand((2, 3), 18)),
    "clip": (lambda x: x.clip(-0.5, 0.7), lambda v: np.clip(v, -0.5, 0.7), away_from(rand((3, 4), 19), [-0.5, 0.7])),
    "clip_min": (lambda x: x.clip(min=0.3), lambda v: np.maximum(v, 0.3), away_from(rand((3, 4), 20), [0.3])),
    "clip_max": (lambda x: x.clip(max=0.3), lambda v: np.minimum(v, 0.3), away_from(rand((3, 4), 21), [0.3])),
}


@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("shape", [None, (), (1,)], ids=["2d", "0d", "size1"])
def test_unary_ops(name, shape):
    fn, reference, values = UNARY[name]
    if shape is not None:
        values = values.reshape(-1)[:1].reshape(shape)
    x = leaf(values)
    np.testing.assert_allclose(host(fn(x)), reference(values), rtol=1e-12)
    assert gradcheck(fn, [x])


def test_sigmoid_is_accurate_far_out_in_float32():
    v = np.array([-80.0, -30.0, -5.0, 0.0, 5.0, 30.0, 1000.0])  # sigmoid(-80) ~ 1.8e-35 is still a normal float32
    out = host(Tensor(to_backend(v, np.float32)).sigmoid())
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-v)), rtol=1e-6)  # no 1 + tanh cancellation, no overflow


def test_where_broadcasts_condition_and_branches():
    cond = to_backend(np.array([[True], [False]]))
    a, b = leaf(rand((2, 3), 22)), leaf(rand((3,), 23))
    out = minildm.where(cond, a, b)
    np.testing.assert_allclose(host(out), np.where(host(cond), host(a), host(b)))
    assert gradcheck(lambda a, b: minildm.where(cond, a, b), [a, b])
    assert gradcheck(lambda a: minildm.where(a > 0, a, 0.0), [leaf(away_from(rand((4,), 24), [0.0]))])
    with pytest.raises(ValueError, match=r"where: shapes \(3,\) and \(2, 4\)"):
        minildm.where(to_backend(np.ones(3, bool)), leaf(np.ones((2, 4))), 0.0)


# -- reductions -----------------------------------------------------------------------------------------------------
AXES = [None, 0, -1, 1, (0, 2), (-1, 0), (), (0, 1, 2)]
REDUCTIONS = {
    "sum": (lambda x, axis, k: x.sum(axis=axis, keepdims=k), np.sum),
    "mean": (lambda x, axis, k: x.mean(axis=axis, keepdims=k), np.mean),
    "max": (lambda x, axis, k: x.max(axis=axis, keepdims=k), np.max),
    "var": (lambda x, axis, k: x.var(axis=axis, keepdims=k), np.var),
}


@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_over_any_axes(name, axis, keepdims):
    fn, reference = REDUCTIONS[name]
    values = rand((2, 3, 4), 25)  # continuous random values: no ties in max
    x = leaf(values)
    out = fn(x, axis, keepdims)
    np.testing.assert_allclose(host(out), reference(values, axis=axis, keepdims=keepdims), rtol=1e-12)
    assert gradcheck(lambda x: fn(x, axis, keepdims), [x])


@pytest.mark.parametrize("name", REDUCTIONS)
def test_reductions_on_scalars_and_size_one_axes(name):
    fn, reference = REDUCTIONS[name]
    if name != "var":  # a single element has zero variance and a zero gradient; checked below
        assert gradcheck(lambda x: fn(x, None, False), [leaf(1.5)])
    values = rand((1, 3, 1), 26)
    for axis in (0, 2, (0, 2), None):
        x = leaf(values)
        np.testing.assert_allclose(host(fn(x, axis, False)), reference(values, axis=axis), rtol=1e-12)
        assert gradcheck(lambda x: fn(x, axis, False), [x])


def test_var_with_ddof_and_its_error():
    values = rand((3, 4), 27)
    x = leaf(values)
    np.testing.assert_allclose(host(x.var(axis=1, ddof=1)), np.var(values, axis=1, ddof=1), rtol=1e-12)
    assert gradcheck(lambda x: x.var(axis=1, ddof=1), [x])
    with pytest.raises(ValueError, match=r"var: 1 element\(s\).*ddof=1"):
        leaf([1.0]).var(ddof=1)


def test_reduction_axis_errors_name_the_op():
    x = leaf(np.ones((2, 3)))
    with pytest.raises(ValueError, match="sum: axis 2 is out of range for a tensor with 2 dims"):
        x.sum(axis=2)
    with pytest.raises(ValueError, match="mean: axis -3 is out of range"):
        x.mean(axis=-3)
    with pytest.raises(ValueError, match="max: repeated axis"):
        x.max(axis=(0, -2))


# -- ties: the gradient is a convention, so check it by value --------------------------------------------------------
def test_max_splits_the_gradient_among_ties():
    x = leaf([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]])
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(host(x.grad), [[0, 0.5, 0.5], [1, 0, 0]])
    y = leaf([2.0, 2.0, 2.0, 1.0])
    y.max().backward()
    np.testing.assert_allclose(host(y.grad), [1 / 3, 1 / 3, 1 / 3, 0])


def test_maximum_splits_ties_evenly_and_kinks_pass_by_convention():
    a, b = leaf([1.0, 2.0, 3.0], np.float32), leaf([1.0, 5.0, 0.0], np.float32)
    minildm.autograd.maximum(a, b).sum().backward()
    np.testing.assert_allclose(host(a.grad), [0.5, 0.0, 1.0])
    np.testing.assert_allclose(host(b.grad), [0.5, 1.0, 0.0])
    assert a.grad.dtype == np.float32
    x = leaf([0.0, -0.0])
    (x.relu() + abs(x)).sum().backward()           # relu and abs: zero gradient at exactly 0, as PyTorch
    np.testing.assert_array_equal(host(x.grad), [0.0, 0.0])
    c = leaf([-1.0, 1.0, 0.0, 2.0])
    c.clip(-1.0, 1.0).sum().backward()              # clip: the boundary counts as inside, as PyTorch
    np.testing.assert_array_equal(host(c.grad), [1.0, 1.0, 1.0, 0.0])


# -- errors speak the user's language ----------------------------------------------------------------------------------
def test_binary_and_matmul_errors_name_op_and_shapes():
    with pytest.raises(ValueError, match=r"matmul: cannot multiply shapes \(2, 3\) and \(4, 5\)"):
        leaf(np.ones((2, 3))) @ leaf(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"matmul: batch dims of shapes \(2, 3, 4\) and \(5, 4, 2\)"):
        leaf(np.ones((2, 3, 4))) @ leaf(np.ones((5, 4, 2)))
    with pytest.raises(ValueError, match=r"matmul: operands must be at least 1-D"):
        ops.matmul(leaf(1.0), leaf(np.ones(2)))
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\) are not broadcastable"):
        leaf(np.ones((2, 3))) + leaf(np.ones(4))
    with pytest.raises(ValueError, match=r"mul: shapes \(2,\) and \(3,\)"):
        leaf(np.ones(2)) * to_backend(np.ones(3))
    with pytest.raises(ValueError, match=r"maximum: shapes"):
        minildm.autograd.maximum(leaf(np.ones(2)), leaf(np.ones(3)))
