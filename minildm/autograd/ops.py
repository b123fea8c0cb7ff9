"""Primitive differentiable ops: arithmetic, elementwise math, reductions, matmul.

Each op computes its forward value with the backend array module and gives a backward function that maps the
output gradient ``g`` to one gradient per input — the local chain rule, written next to the forward it inverts.

Broadcasting: when ``a`` of shape (3, 1) meets ``b`` of shape (4,), the output is (3, 4) and each input's gradient
must be summed back over the axes it was broadcast along (``unbroadcast``).
"""
from __future__ import annotations

import numpy

from .. import backend
from .tensor import Tensor, _to_array


# -- helpers ------------------------------------------------------------------------------------------------------
def as_tensor(x, like: Tensor | None = None) -> Tensor:
    """Wrap a non-Tensor operand. A Python scalar takes the dtype of ``like`` (no silent float64 promotion)."""
    if isinstance(x, Tensor):
        return x
    if like is not None and isinstance(x, (int, float, bool, numpy.number)) and like.data.dtype.kind == "f":
        return Tensor(backend.xp().asarray(x, dtype=like.data.dtype))
    return Tensor(_to_array(x))


def unbroadcast(grad, shape: tuple):
    """Sum ``grad`` down to ``shape``: the adjoint of broadcasting ``shape`` up to ``grad.shape``."""
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad


def _broadcast_shape(op: str, a: Tensor, b: Tensor) -> tuple:
    try:
        return tuple(numpy.broadcast_shapes(a.shape, b.shape))
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} are not broadcastable") from None


def _binary(op: str, a, b):
    """Convert both operands to Tensors (scalars take the other's dtype) and check broadcasting."""
    if not isinstance(a, Tensor):
        a = as_tensor(a, like=b)
    if not isinstance(b, Tensor):
        b = as_tensor(b, like=a)
    _broadcast_shape(op, a, b)
    return a, b


# -- arithmetic -----------------------------------------------------------------------------------------------------
def add(a, b) -> Tensor:
    a, b = _binary("add", a, b)
    return Tensor.from_op(a.data + b.data, (a, b),
                          lambda g: (unbroadcast(g, a.shape), unbroadcast(g, b.shape)), "add")


def sub(a, b) -> Tensor:
    a, b = _binary("sub", a, b)
    return Tensor.from_op(a.data - b.data, (a, b),
                          lambda g: (unbroadcast(g, a.shape), unbroadcast(-g, b.shape)), "sub")


def mul(a, b) -> Tensor:
    a, b = _binary("mul", a, b)
    return Tensor.from_op(a.data * b.data, (a, b),
                          lambda g: (unbroadcast(g * b.data, a.shape) if a.requires_grad else None,
                                     unbroadcast(g * a.data, b.shape) if b.requires_grad else None), "mul")


def div(a, b) -> Tensor:
    a, b = _binary("div", a, b)

    def backward(g):  # d(a/b)/da = 1/b ;  d(a/b)/db = -a/b^2
        ga = unbroadcast(g / b.data, a.shape) if a.requires_grad else None
        gb = unbroadcast(-g * a.data / (b.data * b.data), b.shape) if b.requires_grad else None
        return ga, gb
    return Tensor.from_op(a.data / b.data, (a, b), backward, "div")


def neg(a: Tensor) -> Tensor:
    return Tensor.from_op(-a.data, (a,), lambda g: (-g,), "neg")


def pow(a, exponent) -> Tensor:  # noqa: A001 (mirrors the operator name)
    """a ** exponent. A scalar exponent is the common case; a Tensor exponent is differentiable too."""
    if not isinstance(exponent, Tensor):
        a = as_tensor(a)
        p = exponent
        out = a.data ** p
        return Tensor.from_op(out, (a,), lambda g: (g * p * a.data ** (p - 1),), "pow")
    a, b = _binary("pow", a, exponent)
    xp = backend.get_array_module(a.data)
    out = a.data ** b.data

    def backward(g):  # d(a^b)/da = b a^(b-1) ;  d(a^b)/db = a^b log a
        ga = unbroadcast(g * b.data * a.data ** (b.data - 1), a.shape) if a.requires_grad else None
        gb = unbroadcast(g * out * xp.log(a.data), b.shape) if b.requires_grad else None
        return ga, gb
    return Tensor.from_op(out, (a, b), backward, "pow")


def matmul(a, b) -> Tensor:
    """Matrix product with NumPy's batch broadcasting: (..., n, k) @ (..., k, m) -> (..., n, m)."""
    a, b = as_tensor(a), as_tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must be at least 1-D, got {a.shape} and {b.shape}")
    k_a = a.shape[-1]
    k_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if k_a != k_b:
        raise ValueError(f"matmul: cannot multiply {a.shape} and {b.shape} (inner sizes {k_a} != {k_b})")
    try:
        numpy.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dims of {a.shape} and {b.shape} are not broadcastable") from None
    xp = backend.get_array_module(a.data)

    def backward(g):
        # Promote 1-D operands to matrices so one formula covers every case: dA = G B^T, dB = A^T G.
        A = a.data[None, :] if a.ndim == 1 else a.data
        B = b.data[:, None] if b.ndim == 1 else b.data
        G = g
        if a.ndim == 1:
            G = xp.expand_dims(G, -2)
        if b.ndim == 1:
            G = xp.expand_dims(G, -1)
        ga = gb = None
        if a.requires_grad:
            ga = unbroadcast(G @ xp.swapaxes(B, -1, -2), A.shape).reshape(a.shape)
        if b.requires_grad:
            gb = unbroadcast(xp.swapaxes(A, -1, -2) @ G, B.shape).reshape(b.shape)
        return ga, gb
    return Tensor.from_op(a.data @ b.data, (a, b), backward, "matmul")


# -- elementwise math -----------------------------------------------------------------------------------------------
def exp(a: Tensor) -> Tensor:
    out = backend.get_array_module(a.data).exp(a.data)
    return Tensor.from_op(out, (a,), lambda g: (g * out,), "exp")


def log(a: Tensor) -> Tensor:
    xp = backend.get_array_module(a.data)
    return Tensor.from_op(xp.log(a.data), (a,), lambda g: (g / a.data,), "log")


def sqrt(a: Tensor) -> Tensor:
    out = backend.get_array_module(a.data).sqrt(a.data)
    return Tensor.from_op(out, (a,), lambda g: (g / (2 * out),), "sqrt")


def tanh(a: Tensor) -> Tensor:
    out = backend.get_array_module(a.data).tanh(a.data)
    return Tensor.from_op(out, (a,), lambda g: (g * (1 - out * out),), "tanh")


def sigmoid(a: Tensor) -> Tensor:
    xp = backend.get_array_module(a.data)
    # 1 / (1 + e^-x) written via tanh, which never overflows: sigmoid(x) = (1 + tanh(x/2)) / 2
    out = 0.5 * (1 + xp.tanh(0.5 * a.data))
    return Tensor.from_op(out, (a,), lambda g: (g * out * (1 - out),), "sigmoid")


def abs(a: Tensor) -> Tensor:  # noqa: A001
    xp = backend.get_array_module(a.data)
    return Tensor.from_op(xp.abs(a.data), (a,), lambda g: (g * xp.sign(a.data),), "abs")


def where(condition, a, b) -> Tensor:
    """Elementwise ``a if condition else b``; the condition gets no gradient."""
    cond = condition.data if isinstance(condition, Tensor) else _to_array(condition)
    if not isinstance(a, Tensor) and isinstance(b, Tensor):
        a = as_tensor(a, like=b)
    a = as_tensor(a)
    b = as_tensor(b, like=a)
    xp = backend.get_array_module(a.data)
    out = xp.where(cond, a.data, b.data)
    zero = xp.zeros((), dtype=out.dtype)
    return Tensor.from_op(out, (a, b), lambda g: (unbroadcast(xp.where(cond, g, zero), a.shape),
                                                  unbroadcast(xp.where(cond, zero, g), b.shape)), "where")


def clip(a: Tensor, min=None, max=None) -> Tensor:  # noqa: A002
    """Clamp to [min, max]; the gradient passes only where the value was inside the range."""
    xp = backend.get_array_module(a.data)
    out = xp.clip(a.data, min, max)
    inside = xp.ones(a.shape, dtype=bool)
    if min is not None:
        inside &= a.data >= min
    if max is not None:
        inside &= a.data <= max
    return Tensor.from_op(out, (a,), lambda g: (g * inside,), "clip")


def maximum(a, b) -> Tensor:
    """Elementwise maximum; on ties the gradient is split evenly (as PyTorch does)."""
    a, b = _binary("maximum", a, b)
    xp = backend.get_array_module(a.data)
    out = xp.maximum(a.data, b.data)

    def backward(g):
        wa = (a.data > b.data) + 0.5 * (a.data == b.data)
        return unbroadcast(g * wa, a.shape), unbroadcast(g * (1 - wa), b.shape)
    return Tensor.from_op(out, (a, b), backward, "maximum")


def relu(a: Tensor) -> Tensor:
    return Tensor.from_op(a.data * (a.data > 0), (a,), lambda g: (g * (a.data > 0),), "relu")


# -- reductions -------------------------------------------------------------------------------------------------------
def _norm_axis(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(ax % ndim for ax in axes) if ndim else ()


def _expand_reduced(g, shape, axes, keepdims):
    """Reshape a reduced gradient so it broadcasts against the input again."""
    if not keepdims:
        g = g.reshape([1 if i in axes else n for i, n in enumerate(shape)])
    return g


def sum(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    axes = _norm_axis(axis, a.ndim)
    xp = backend.get_array_module(a.data)
    out = a.data.sum(axis=axes, keepdims=keepdims)
    return Tensor.from_op(out, (a,),
                          lambda g: (xp.broadcast_to(_expand_reduced(g, a.shape, axes, keepdims), a.shape),), "sum")


def mean(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    axes = _norm_axis(axis, a.ndim)
    count = 1
    for ax in axes:
        count *= a.shape[ax]
    xp = backend.get_array_module(a.data)
    out = a.data.mean(axis=axes, keepdims=keepdims)
    scale = a.data.dtype.type(1.0 / count)
    return Tensor.from_op(out, (a,), lambda g: (
        xp.broadcast_to(_expand_reduced(g, a.shape, axes, keepdims) * scale, a.shape),), "mean")


def max(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Maximum over axes; the gradient goes to the maximal elements (split evenly among ties)."""
    axes = _norm_axis(axis, a.ndim)
    out_k = a.data.max(axis=axes, keepdims=True)

    def backward(g):
        mask = (a.data == out_k).astype(a.data.dtype)
        mask /= mask.sum(axis=axes, keepdims=True)
        return (mask * _expand_reduced(g, a.shape, axes, keepdims),)
    out = out_k if keepdims else out_k.reshape([n for i, n in enumerate(a.shape) if i not in axes])
    return Tensor.from_op(out, (a,), backward, "max")


def var(a: Tensor, axis=None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Variance (NumPy's default ``ddof=0``; pass ``ddof=1`` for the unbiased estimate)."""
    axes = _norm_axis(axis, a.ndim)
    count = 1
    for ax in axes:
        count *= a.shape[ax]
    centered = a.data - a.data.mean(axis=axes, keepdims=True)
    out = (centered * centered).sum(axis=axes, keepdims=keepdims) / (count - ddof)
    # d var / d x_i = 2 (x_i - mean) / (N - ddof); the mean's own dependence on x_i sums to zero
    scale = a.data.dtype.type(2.0 / (count - ddof))
    return Tensor.from_op(out, (a,), lambda g: (_expand_reduced(g, a.shape, axes, keepdims) * centered * scale,),
                          "var")
