"""gradcheck must pass true gradients and, just as important, catch wrong ones and say where."""
import numpy as np
import pytest
from helpers import host, to_backend

from minildm import Tensor
from minildm.autograd import GradcheckError, gradcheck


def leaf(values, dtype=np.float64):
    return Tensor(to_backend(values, dtype), requires_grad=True)


def square_with_wrong_backward(x, bad_element):
    """x**2 whose backward is 2x everywhere except at ``bad_element``, where it is off by one."""
    xp_bump = np.zeros(x.shape)
    xp_bump[bad_element] = 1.0
    bump = to_backend(xp_bump)
    return Tensor.from_op(x.data * x.data, (x,), lambda g: (g * (2 * x.data + bump),), "bad_square")


def test_passes_a_correct_gradient():
    assert gradcheck(lambda a, b: (a * b).tanh(), [leaf(np.ones((2, 3))), leaf(np.full(3, 0.5))])


def test_catches_a_wrong_backward_and_names_input_and_element():
    good = leaf(np.random.default_rng(0).standard_normal((2, 3)))
    bad = leaf(np.random.default_rng(1).standard_normal((3, 2)))
    with pytest.raises(GradcheckError, match=r"input 1 \(shape \(3, 2\)\).* at element \(1, 0\)") as info:
        gradcheck(lambda a, b: a.sum() + square_with_wrong_backward(b, (1, 0)), [good, bad])
    assert "1 of 6 elements wrong" in str(info.value) and "analytic" in str(info.value)
    assert not gradcheck(lambda b: square_with_wrong_backward(b, (2, 1)), [bad], raise_exception=False)


def test_catches_nan_gradients():
    x = leaf(np.ones(3))
    nan_op = lambda x: Tensor.from_op(x.data * 2, (x,), lambda g: (g * np.nan,), "nan_op")  # noqa: E731
    with pytest.raises(GradcheckError, match="analytic nan"):
        gradcheck(nan_op, [x])


def test_catches_a_missing_gradient():
    x = leaf(np.ones(2))
    cut = lambda x: Tensor(x.data * 3)  # noqa: E731  (leaves the graph: backward gives no gradient)
    with pytest.raises(GradcheckError, match=r"analytic -?0 vs numeric"):
        gradcheck(lambda x: cut(x) + x * 0, [x])


def test_handles_non_contiguous_inputs_and_restores_them():
    x = Tensor(to_backend(np.arange(6.0).reshape(2, 3)).T, requires_grad=True)  # a view: reshape(-1) would copy
    assert not x.data.flags.c_contiguous
    before = host(x).copy()
    assert gradcheck(lambda x: (x * x * x).sum(), [x])
    np.testing.assert_array_equal(host(x), before)


def test_scalar_input_and_passthrough_arguments():
    assert gradcheck(lambda x, k: x ** k, [leaf(1.3), 3])


def test_refuses_float32_and_nothing_to_check():
    with pytest.raises(ValueError, match="input 0 has dtype float32"):
        gradcheck(lambda x: x * 2, [leaf([1.0], np.float32)])
    with pytest.raises(ValueError, match="no input has requires_grad=True"):
        gradcheck(lambda x: x * 2, [Tensor(to_backend([1.0], np.float64))])
