"""Reductions: ``sum``, ``mean``, ``max``, ``var`` over any axes, with ``keepdims``.

A reduction maps many inputs to one output, so its backward spreads the output gradient back over every input it
read: evenly for ``sum``/``mean``, to the winners for ``max``, in proportion to (x - mean) for ``var``.
"""
from __future__ import annotations

import numbers

from .. import backend
from .tensor import Tensor
from .ops import as_tensor


def _norm_axes(op: str, axis, ndim: int) -> tuple:
    """``axis`` (None, int or tuple of ints, negatives allowed) as a sorted tuple of distinct non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    for ax in axes:
        if not -ndim <= ax < ndim:
            raise ValueError(f"{op}: axis {ax} is out of range for a tensor with {ndim} dims")
    normalized = tuple(sorted(int(ax) % ndim for ax in axes))
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{op}: repeated axis in {axis}")
    return normalized


def _count(shape, axes) -> int:
    """How many elements are reduced into each output element."""
    n = 1
    for ax in axes:
        n *= shape[ax]
    return n


def _expand_reduced(g, shape, axes, keepdims):
    """Reshape a reduced gradient so it broadcasts against the input again (put the reduced axes back as 1)."""
    if not keepdims:
        g = g.reshape([1 if i in axes else n for i, n in enumerate(shape)])
    return g


def sum(a, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over ``axis``; each input element receives the gradient of the sum it went into."""
    a = as_tensor(a)
    axes = _norm_axes("sum", axis, a.ndim)
    xp = backend.get_array_module(a.data)
    out = a.data.sum(axis=axes, keepdims=keepdims)
    # broadcast_to is a read-only view, not a copy: the engine never writes into gradients it is given.
    return Tensor.from_op(out, (a,),
                          lambda g: (xp.broadcast_to(_expand_reduced(g, a.shape, axes, keepdims), a.shape),), "sum")


def mean(a, axis=None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis``: the sum's gradient divided by the count N of reduced elements."""
    a = as_tensor(a)
    axes = _norm_axes("mean", axis, a.ndim)
    count = _count(a.shape, axes)
    if count == 0:
        raise ValueError(f"mean: no elements to average over axis {axis} of shape {a.shape}")
    xp = backend.get_array_module(a.data)
    out = a.data.mean(axis=axes, keepdims=keepdims)

    def backward(g):  # scale the small reduced gradient first, then broadcast (a view)
        return (xp.broadcast_to(_expand_reduced(g, a.shape, axes, keepdims) * g.dtype.type(1 / count), a.shape),)
    return Tensor.from_op(out, (a,), backward, "mean")


def max(a, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Maximum over ``axis``; the gradient goes to the maximal elements, split evenly among ties."""
    a = as_tensor(a)
    axes = _norm_axes("max", axis, a.ndim)
    if _count(a.shape, axes) == 0:
        raise ValueError(f"max: no elements to take the maximum of over axis {axis} of shape {a.shape}")
    out_k = a.data.max(axis=axes, keepdims=True)

    def backward(g):
        winners = (a.data == out_k).astype(g.dtype)
        share = winners / winners.sum(axis=axes, keepdims=True)  # 1/(number of ties) at each maximum
        return (share * _expand_reduced(g, a.shape, axes, keepdims),)
    out = out_k if keepdims else out_k.reshape([n for i, n in enumerate(a.shape) if i not in axes])
    return Tensor.from_op(out, (a,), backward, "max")


def var(a, axis=None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Variance ``sum((a - mean)^2) / (N - ddof)`` (NumPy's default ``ddof=0``; ``ddof=1`` is the unbiased one)."""
    a = as_tensor(a)
    axes = _norm_axes("var", axis, a.ndim)
    count = _count(a.shape, axes)
    if count - ddof <= 0:
        raise ValueError(f"var: {count} element(s) over axis {axis} of shape {a.shape} is too few for ddof={ddof}")
    centered = a.data - a.data.mean(axis=axes, keepdims=True)
    out = (centered * centered).sum(axis=axes, keepdims=keepdims) / (count - ddof)

    def backward(g):
        # d var / d a_i = 2 (a_i - mean) / (N - ddof); the mean's own dependence on a_i contributes
        # -2/(N (N - ddof)) * sum_j (a_j - mean) = 0, because centered values sum to zero.
        scale = g.dtype.type(2 / (count - ddof))
        return (_expand_reduced(g, a.shape, axes, keepdims) * centered * scale,)
    return Tensor.from_op(out, (a,), backward, "var")
