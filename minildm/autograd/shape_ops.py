"""Shape ops: they move elements around without changing them, so each backward moves the gradient back.

``reshape`` ↔ reshape back; ``transpose`` ↔ inverse permutation; ``expand`` ↔ sum over the broadcast axes;
``__getitem__`` ↔ scatter-add into zeros (repeated indices accumulate); ``cat``/``stack`` ↔ slice apart.
"""
from __future__ import annotations

import builtins
import numbers

import numpy

from .. import backend
from .ops import as_tensor, unbroadcast
from .tensor import Tensor


def _axis(op: str, axis, ndim: int) -> int:
    """A single axis (negatives count from the end) as a non-negative int, or a ValueError naming the op."""
    if not isinstance(axis, numbers.Integral) or not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis!r} is out of range for a tensor with {ndim} dims")
    return int(axis) % ndim


def _shape_arg(shape) -> tuple:
    """Accept both ``f(x, 2, 3)`` and ``f(x, (2, 3))``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def reshape(a: Tensor, *shape) -> Tensor:
    """Same elements in a new shape (one entry may be -1: inferred)."""
    shape = _shape_arg(shape)
    try:
        out = a.data.reshape(shape)
    except ValueError:
        raise ValueError(f"reshape: cannot reshape tensor of shape {a.shape} ({a.size} elements) "
                         f"into {shape}") from None
    return Tensor.from_op(out, (a,), lambda g: (g.reshape(a.shape),), "reshape")


def permute(a: Tensor, *dims) -> Tensor:
    """Reorder axes: output axis i is input axis ``dims[i]``. Backward applies the inverse permutation."""
    dims = _shape_arg(dims)
    if len(dims) != a.ndim or sorted(_axis("permute", d, a.ndim) for d in dims) != list(range(a.ndim)):
        raise ValueError(f"permute: {dims} is not a permutation of the {a.ndim} axes of shape {a.shape}")
    dims = tuple(int(d) % a.ndim for d in dims)
    inverse = tuple(int(i) for i in numpy.argsort(dims))  # axis dims[i] of the input went to position i
    xp = backend.get_array_module(a.data)
    return Tensor.from_op(xp.transpose(a.data, dims), (a,), lambda g: (xp.transpose(g, inverse),), "permute")


def transpose(a: Tensor, *axes) -> Tensor:
    """NumPy semantics: no axes reverses them; otherwise the same as ``permute``."""
    if not axes or (len(axes) == 1 and axes[0] is None):
        axes = tuple(reversed(range(a.ndim)))
    return permute(a, *axes)


def swapaxes(a: Tensor, axis1: int, axis2: int) -> Tensor:
    """Exchange two axes."""
    dims = list(range(a.ndim))
    i, j = _axis("swapaxes", axis1, a.ndim), _axis("swapaxes", axis2, a.ndim)
    dims[i], dims[j] = dims[j], dims[i]
    return permute(a, *dims)


def expand(a: Tensor, *shape) -> Tensor:
    """Broadcast to ``shape`` (a read-only view, no copy); the backward sums over the broadcast axes."""
    shape = _shape_arg(shape)
    xp = backend.get_array_module(a.data)
    try:
        out = xp.broadcast_to(a.data, shape)
    except ValueError:
        raise ValueError(f"expand: cannot broadcast shape {a.shape} to {shape}") from None
    return Tensor.from_op(out, (a,), lambda g: (unbroadcast(g, a.shape),), "expand")


broadcast_to = expand


# -- indexing ---------------------------------------------------------------------------------------------------
def _is_basic(item) -> bool:
    """Ints, slices, None and Ellipsis select each element at most once (NumPy "basic" indexing)."""
    return item is None or item is Ellipsis or isinstance(item, (numbers.Integral, slice))


def _prepare_index(index, xp):
    """Tensors and lists inside an index become arrays of the data's backend (so CuPy data gets CuPy indices)."""
    def convert(item):
        if isinstance(item, Tensor):
            item = item.data
        if _is_basic(item) or isinstance(item, bool):
            return item
        return xp.asarray(item)
    if isinstance(index, tuple):
        return tuple(convert(i) for i in index)
    return convert(index)


def _may_repeat(index) -> bool:
    """Can one element be selected twice? Only integer index arrays can repeat (boolean masks cannot)."""
    items = index if isinstance(index, tuple) else (index,)
    return builtins.any(not _is_basic(i) and getattr(i, "dtype", None) is not None and i.dtype.kind in "iu"
                        for i in items)


def _scatter_add(target, index, values) -> None:
    """target[index] += values, where repeated indices add up (plain ``+=`` would keep only the last one)."""
    xp = backend.get_array_module(target)
    if hasattr(xp.add, "at"):  # NumPy, and CuPy from version 13
        xp.add.at(target, index, values)
    else:
        import cupyx

        cupyx.scatter_add(target, index, values)


def getitem(a: Tensor, index) -> Tensor:
    """``a[index]`` with NumPy semantics: ints, slices (any step), None, Ellipsis, integer arrays, boolean masks."""
    xp = backend.get_array_module(a.data)
    index = _prepare_index(index, xp)
    try:
        out = a.data[index]
    except IndexError as e:
        raise IndexError(f"getitem: index {index!r} is invalid for a tensor of shape {a.shape}: {e}") from None
    repeats = _may_repeat(index)

    def backward(g):
        grad = xp.zeros(a.shape, dtype=g.dtype)
        if repeats:
            _scatter_add(grad, index, g)  # x[[0, 0]] uses x[0] twice, so its gradient is the sum of both
        else:
            grad[index] = g  # each element chosen at most once: assignment is enough (and faster)
        return (grad,)
    return Tensor.from_op(out, (a,), backward, "getitem")


# -- joining and splitting -------------------------------------------------------------------------------------
def cat(tensors, axis: int = 0) -> Tensor:
    """Concatenate along an existing axis; the backward cuts the gradient back into the pieces."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("cat: needs at least one tensor")
    ref = tensors[0]
    if ref.ndim == 0:
        raise ValueError("cat: zero-dimensional tensors cannot be concatenated (use stack)")
    ax = _axis("cat", axis, ref.ndim)
    for t in tensors[1:]:
        if t.ndim != ref.ndim or builtins.any(t.shape[i] != ref.shape[i] for i in range(ref.ndim) if i != ax):
            raise ValueError(f"cat: shapes {[t.shape for t in tensors]} differ outside axis {axis}")
    xp = backend.get_array_module(ref.data)
    out = xp.concatenate([t.data for t in tensors], axis=ax)
    bounds = numpy.cumsum([t.shape[ax] for t in tensors])[:-1].tolist()  # where each piece ends
    return Tensor.from_op(out, tuple(tensors), lambda g: tuple(xp.split(g, bounds, axis=ax)), "cat")


def stack(tensors, axis: int = 0) -> Tensor:
    """Stack equal-shaped tensors along a new axis; the backward takes slice i of the gradient for tensor i."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    if len({t.shape for t in tensors}) != 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {[t.shape for t in tensors]}")
    ax = _axis("stack", axis, tensors[0].ndim + 1)
    xp = backend.get_array_module(tensors[0].data)
    out = xp.stack([t.data for t in tensors], axis=ax)

    def backward(g):
        lead = (slice(None),) * ax
        return tuple(g[lead + (i,)] for i in range(len(tensors)))  # views, no copies
    return Tensor.from_op(out, tuple(tensors), backward, "stack")


def split(a: Tensor, split_size_or_sections, axis: int = 0) -> list:
    """PyTorch semantics: an int is the size of each piece (the last may be smaller); a list gives the sizes.

    Each piece is a slice of ``a``, so its backward places the piece's gradient back into a zero tensor of
    ``a``'s shape. Simple and exact; it costs one full-size buffer per piece that receives a gradient.
    """
    ax = _axis("split", axis, a.ndim)
    n = a.shape[ax]
    if isinstance(split_size_or_sections, numbers.Integral):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ValueError(f"split: split size must be positive, got {size}")
        sizes = [size] * (n // size) + ([n % size] if n % size else [])
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if builtins.sum(sizes) != n or builtins.any(s < 0 for s in sizes):
            raise ValueError(f"split: sizes {sizes} do not add up to {n} along axis {axis} of shape {a.shape}")
    pieces, start = [], 0
    lead = (slice(None),) * ax
    for s in sizes:
        pieces.append(getitem(a, lead + (slice(start, start + s),)))
        start += s
    return pieces


def chunk(a: Tensor, chunks: int, axis: int = 0) -> list:
    """Split into ``chunks`` pieces of equal size (the last may be smaller, or fewer pieces), as ``torch.chunk``."""
    if not isinstance(chunks, numbers.Integral) or chunks <= 0:
        raise ValueError(f"chunk: number of chunks must be a positive int, got {chunks!r}")
    n = a.shape[_axis("chunk", axis, a.ndim)]
    size = builtins.max(-(-n // chunks), 1)  # ceil(n / chunks); at least 1 so an empty axis still works
    return split(a, size, axis)
