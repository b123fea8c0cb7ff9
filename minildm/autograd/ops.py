"""Primitive differentiable ops: arithmetic, elementwise math, reductions, matmul.

Each op computes its forward value with the backend array module and gives a backward function that maps the
output gradient ``g`` to one gradient per input — the local chain rule, written next to the forward it inverts.
A backward skips (returns None for) inputs that need no gradient, and never writes into ``g``.

Broadcasting: when ``a`` of shape (3, 1) meets ``b`` of shape (4,), the output is (3, 4) and each input's gradient
must be summed back over the axes it was broadcast along (``unbroadcast``).
"""
from __future__ import annotations

import numbers

import numpy

from .. import backend
from .tensor import Tensor, _to_array


# -- helpers ------------------------------------------------------------------------------------------------------
def as_tensor(x, like: Tensor | None = None) -> Tensor:
    """Wrap a non-Tensor operand. A Python/NumPy scalar takes the dtype of a floating ``like`` (no silent float64)."""
    if isinstance(x, Tensor):
        return x
    if like is not None and isinstance(x, (numbers.Number, numpy.number)) and like.data.dtype.kind == "f":
        xp = backend.get_array_module(like.data)
        return Tensor(xp.asarray(x, dtype=like.data.dtype))
    return Tensor(_to_array(x))


def unbroadcast(grad, shape: tuple):
    """Sum ``grad`` down to ``shape``: the adjoint of broadcasting ``shape`` up to ``grad.shape``.

    Broadcasting (a) prepends axes and (b) stretches size-1 axes, so the adjoint (a) sums the leading extra axes
    away and (b) sums the stretched axes keeping them as size 1. Returns ``grad`` itself when nothing was broadcast.
    """
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad


def _broadcast_shape(op: str, *shapes) -> tuple:
    try:
        return tuple(numpy.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError(f"{op}: shapes {' and '.join(str(tuple(s)) for s in shapes)} "
                         "are not broadcastable") from None


def _binary(op: str, a, b):
    """Convert both operands to Tensors (a scalar takes the other's dtype) and check that they broadcast."""
    if not isinstance(a, Tensor):
        a = as_tensor(a, like=b if isinstance(b, Tensor) else None)
    if not isinstance(b, Tensor):
        b = as_tensor(b, like=a)
    if a.data.shape != b.data.shape and a.data.ndim and b.data.ndim:  # skip the check in the common easy cases
        _broadcast_shape(op, a.data.shape, b.data.shape)
    return a, b


# -- arithmetic -----------------------------------------------------------------------------------------------------
def add(a, b) -> Tensor:
    a, b = _binary("add", a, b)

    def backward(g):  # d(a+b)/da = d(a+b)/db = 1
        return (unbroadcast(g, a.shape) if a.requires_grad else None,
                unbroadcast(g, b.shape) if b.requires_grad else None)
    return Tensor.from_op(a.data + b.data, (a, b), backward, "add")


def sub(a, b) -> Tensor:
    a, b = _binary("sub", a, b)

    def backward(g):  # d(a-b)/da = 1 ;  d(a-b)/db = -1
        return (unbroadcast(g, a.shape) if a.requires_grad else None,
                -unbroadcast(g, b.shape) if b.requires_grad else None)  # negate after summing: fewer elements
    return Tensor.from_op(a.data - b.data, (a, b), backward, "sub")


def mul(a, b) -> Tensor:
    a, b = _binary("mul", a, b)

    def backward(g):  # d(ab)/da = b ;  d(ab)/db = a
        return (unbroadcast(g * b.data, a.shape) if a.requires_grad else None,
                unbroadcast(g * a.data, b.shape) if b.requires_grad else None)
    return Tensor.from_op(a.data * b.data, (a, b), backward, "mul")


def div(a, b) -> Tensor:
    a, b = _binary("div", a, b)
    out = a.data / b.data

    def backward(g):  # d(a/b)/da = 1/b ;  d(a/b)/db = -a/b^2 = -(a/b)/b
        ga = unbroadcast(g / b.data, a.shape) if a.requires_grad else None
        gb = unbroadcast(-g * out / b.data, b.shape) if b.requires_grad else None
        return ga, gb
    return Tensor.from_op(out, (a, b), backward, "div")


def neg(a) -> Tensor:
    a = as_tensor(a)
    return Tensor.from_op(-a.data, (a,), lambda g: (-g,), "neg")


def pow(a, exponent) -> Tensor:  # noqa: A001 (mirrors the operator name)
    """``a ** exponent``. A constant (Python or NumPy scalar) exponent is the common case; a Tensor exponent is
    differentiable too (then the base must be positive for d/d(exponent) = a^b log a to be real)."""
    if isinstance(exponent, (numbers.Number, numpy.number)):
        a = as_tensor(a)
        # A NumPy float64 scalar would promote a float32 tensor under NumPy 2; a Python number never does.
        p = exponent.item() if isinstance(exponent, numpy.number) else exponent

        def backward(g):  # d(a^p)/da = p a^(p-1); p = 0 is special-cased so that 0 * 0^(-1) gives 0, not nan
            return (g * p * a.data ** (p - 1) if p != 0 else g * 0,)
        return Tensor.from_op(a.data ** p, (a,), backward, "pow")

    a, b = _binary("pow", a, exponent)
    xp = backend.get_array_module(a.data)
    out = a.data ** b.data

    def backward(g):  # d(a^b)/da = b a^(b-1) ;  d(a^b)/db = a^b log a
        ga = unbroadcast(g * b.data * a.data ** (b.data - 1), a.shape) if a.requires_grad else None
        gb = unbroadcast(g * out * xp.log(a.data), b.shape) if b.requires_grad else None
        return ga, gb
    return Tensor.from_op(out, (a, b), backward, "pow")


def matmul(a, b) -> Tensor:
    """Matrix product with NumPy's rules: (..., n, k) @ (..., k, m) -> (..., n, m), batch dims broadcast.

    A 1-D left operand (k,) acts as a row (1, k) and a 1-D right operand (k,) as a column (k, 1); that axis is
    dropped from the result, so (k,) @ (k,) is a scalar.
    """
    a, b = as_tensor(a), as_tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must be at least 1-D, got shapes {a.shape} and {b.shape}")
    k_a = a.shape[-1]
    k_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if k_a != k_b:
        raise ValueError(f"matmul: cannot multiply shapes {a.shape} and {b.shape} (inner sizes {k_a} != {k_b})")
    try:
        batch = numpy.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dims of shapes {a.shape} and {b.shape} are not broadcastable") from None
    xp = backend.get_array_module(a.data)
    # Both operands as (at least) matrices, and the output shape before 1-D axes are dropped.
    a_shape = (1,) + a.shape if a.ndim == 1 else a.shape
    b_shape = b.shape + (1,) if b.ndim == 1 else b.shape
    full_out_shape = tuple(batch) + (a_shape[-2], b_shape[-1])

    def backward(g):
        # C = A B  =>  dA = G B^T  and  dB = A^T G, each summed over the batch dims it was broadcast along.
        G = g.reshape(full_out_shape)
        ga = gb = None
        if a.requires_grad:
            B = b.data.reshape(b_shape)
            ga = unbroadcast(G @ xp.swapaxes(B, -1, -2), a_shape).reshape(a.shape)
        if b.requires_grad:
            A = a.data.reshape(a_shape)
            gb = unbroadcast(xp.swapaxes(A, -1, -2) @ G, b_shape).reshape(b.shape)
        return ga, gb
    return Tensor.from_op(a.data @ b.data, (a, b), backward, "matmul")


# -- elementwise math -----------------------------------------------------------------------------------------------
def exp(a) -> Tensor:
    a = as_tensor(a)
    out = backend.get_array_module(a.data).exp(a.data)
    return Tensor.from_op(out, (a,), lambda g: (g * out,), "exp")  # d e^a = e^a


def log(a) -> Tensor:
    a = as_tensor(a)
    xp = backend.get_array_module(a.data)
    return Tensor.from_op(xp.log(a.data), (a,), lambda g: (g / a.data,), "log")  # d log a = 1/a


def sqrt(a) -> Tensor:
    a = as_tensor(a)
    out = backend.get_array_module(a.data).sqrt(a.data)
    return Tensor.from_op(out, (a,), lambda g: (g / (2 * out),), "sqrt")  # d sqrt(a) = 1 / (2 sqrt(a))


def tanh(a) -> Tensor:
    a = as_tensor(a)
    out = backend.get_array_module(a.data).tanh(a.data)
    return Tensor.from_op(out, (a,), lambda g: (g * (1 - out * out),), "tanh")  # d tanh = 1 - tanh^2


def sigmoid(a) -> Tensor:
    """1 / (1 + e^-a), computed without overflow and without cancellation for large |a|."""
    a = as_tensor(a)
    xp = backend.get_array_module(a.data)
    e = xp.exp(-xp.abs(a.data))  # in (0, 1]: never overflows
    out = xp.where(a.data >= 0, 1 / (1 + e), e / (1 + e))  # the second form is sigmoid(a) = e^a / (1 + e^a), a < 0
    return Tensor.from_op(out, (a,), lambda g: (g * out * (1 - out),), "sigmoid")  # d s = s (1 - s)


def abs(a) -> Tensor:  # noqa: A001
    a = as_tensor(a)
    xp = backend.get_array_module(a.data)
    return Tensor.from_op(xp.abs(a.data), (a,), lambda g: (g * xp.sign(a.data),), "abs")  # 0 at 0, as PyTorch


def relu(a) -> Tensor:
    a = as_tensor(a)
    positive = a.data > 0
    return Tensor.from_op(a.data * positive, (a,), lambda g: (g * positive,), "relu")


def where(condition, a, b) -> Tensor:
    """Elementwise ``a if condition else b`` (all three broadcast together); the condition gets no gradient."""
    cond = condition.data if isinstance(condition, Tensor) else _to_array(condition)
    a, b = _binary("where", a, b)
    _broadcast_shape("where", cond.shape, a.shape, b.shape)
    xp = backend.get_array_module(a.data)
    out = xp.where(cond, a.data, b.data)

    def backward(g):
        zero = xp.zeros((), dtype=g.dtype)
        return (unbroadcast(xp.where(cond, g, zero), a.shape) if a.requires_grad else None,
                unbroadcast(xp.where(cond, zero, g), b.shape) if b.requires_grad else None)
    return Tensor.from_op(out, (a, b), backward, "where")


def clip(a, min=None, max=None) -> Tensor:  # noqa: A002
    """Clamp to [min, max] (scalars; either may be None). The gradient passes where min <= a <= max, as PyTorch."""
    a = as_tensor(a)
    xp = backend.get_array_module(a.data)
    out = xp.clip(a.data, min, max)

    def backward(g):
        inside = xp.ones(a.shape, dtype=bool)
        if min is not None:
            inside &= a.data >= min
        if max is not None:
            inside &= a.data <= max
        return (g * inside,)
    return Tensor.from_op(out, (a,), backward, "clip")


def maximum(a, b) -> Tensor:
    """Elementwise maximum; where a == b the gradient is split evenly between them (as PyTorch does)."""
    a, b = _binary("maximum", a, b)
    xp = backend.get_array_module(a.data)
    out = xp.maximum(a.data, b.data)

    def backward(g):
        # Share of the gradient that goes to a: 1 where a wins, 1/2 on ties, 0 where b wins (in g's dtype).
        share_a = (a.data > b.data).astype(g.dtype) + (a.data == b.data).astype(g.dtype) * g.dtype.type(0.5)
        return (unbroadcast(g * share_a, a.shape) if a.requires_grad else None,
                unbroadcast(g * (1 - share_a), b.shape) if b.requires_grad else None)
    return Tensor.from_op(out, (a, b), backward, "maximum")
