"""Shape ops: they move elements around without changing them, so each backward moves the gradient back.

``reshape`` ↔ reshape back; ``transpose`` ↔ inverse permutation; ``expand`` ↔ sum over the broadcast axes;
``__getitem__`` ↔ scatter-add into zeros (repeated indices accumulate); ``cat``/``stack`` ↔ slice apart.
"""
from __future__ import annotations

import builtins

import numpy

from .. import backend
from .ops import as_tensor, unbroadcast
from .tensor import Tensor


def reshape(a: Tensor, *shape) -> Tensor:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    try:
        out = a.data.reshape(shape)
    except ValueError:
        raise ValueError(f"reshape: cannot reshape tensor of shape {a.shape} ({a.size} elements) "
                         f"into {tuple(shape)}") from None
    return Tensor.from_op(out, (a,), lambda g: (g.reshape(a.shape),), "reshape")


def permute(a: Tensor, *dims) -> Tensor:
    """Reorder axes: output axis i is input axis ``dims[i]``."""
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    if sorted(d % a.ndim for d in dims) != list(range(a.ndim)):
        raise ValueError(f"permute: {tuple(dims)} is not a permutation of the {a.ndim} axes of shape {a.shape}")
    dims = tuple(d % a.ndim for d in dims)
    inverse = tuple(numpy.argsort(dims))
    xp = backend.get_array_module(a.data)
    return Tensor.from_op(xp.transpose(a.data, dims), (a,), lambda g: (xp.transpose(g, inverse),), "permute")


def transpose(a: Tensor, *axes) -> Tensor:
    """NumPy semantics: no axes reverses them; otherwise the same as ``permute``."""
    if not axes or (len(axes) == 1 and axes[0] is None):
        axes = tuple(reversed(range(a.ndim)))
    return permute(a, *axes)


def swapaxes(a: Tensor, axis1: int, axis2: int) -> Tensor:
    dims = list(range(a.ndim))
    dims[axis1], dims[axis2] = dims[axis2], dims[axis1]
    return permute(a, *dims)


def expand(a: Tensor, *shape) -> Tensor:
    """Broadcast to ``shape`` (a view); the backward sums over the broadcast axes."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    xp = backend.get_array_module(a.data)
    try:
        out = xp.broadcast_to(a.data, shape)
    except ValueError:
        raise ValueError(f"expand: cannot broadcast shape {a.shape} to {tuple(shape)}") from None
    return Tensor.from_op(out, (a,), lambda g: (unbroadcast(g, a.shape),), "expand")


broadcast_to = expand


def _is_advanced(index) -> bool:
    """Does the index contain arrays/lists (NumPy "advanced" indexing), which may repeat elements?"""
    items = index if isinstance(index, tuple) else (index,)
    return builtins.any(not isinstance(i, (int, slice, type(None), type(Ellipsis))) for i in items)


def _unwrap_index(index):
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def _scatter_add(target, index, values) -> None:
    """target[index] += values, accumulating repeated indices (on NumPy and on CuPy)."""
    if backend.is_device_array(target):
        import cupyx

        cupyx.scatter_add(target, index, values)
    else:
        numpy.add.at(target, index, values)


def getitem(a: Tensor, index) -> Tensor:
    index = _unwrap_index(index)
    if isinstance(index, list):
        index = backend.xp().asarray(index)
    if isinstance(index, tuple):
        index = tuple(backend.xp().asarray(i) if isinstance(i, list) else i for i in index)
    try:
        out = a.data[index]
    except IndexError as e:
        raise IndexError(f"getitem: index {index!r} invalid for tensor of shape {a.shape}: {e}") from None
    advanced = _is_advanced(index)
    xp = backend.get_array_module(a.data)

    def backward(g):
        grad = xp.zeros(a.shape, dtype=g.dtype)
        if advanced:
            _scatter_add(grad, index, g)  # repeated indices must add up, not overwrite
        else:
            grad[index] = g  # plain slices never repeat an element: assignment is enough (and faster)
        return (grad,)
    return Tensor.from_op(out, (a,), backward, "getitem")


def cat(tensors, axis: int = 0) -> Tensor:
    """Concatenate along an existing axis."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("cat: needs at least one tensor")
    ref = tensors[0]
    ax = axis % ref.ndim
    for t in tensors[1:]:
        if t.ndim != ref.ndim or builtins.any(t.shape[i] != ref.shape[i] for i in range(ref.ndim) if i != ax):
            raise ValueError(f"cat: shapes {[t.shape for t in tensors]} differ outside axis {axis}")
    xp = backend.get_array_module(ref.data)
    out = xp.concatenate([t.data for t in tensors], axis=ax)
    bounds = numpy.cumsum([t.shape[ax] for t in tensors])[:-1].tolist()
    return Tensor.from_op(out, tuple(tensors), lambda g: tuple(xp.split(g, bounds, axis=ax)), "cat")


def stack(tensors, axis: int = 0) -> Tensor:
    """Stack equal-shaped tensors along a new axis."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {[t.shape for t in tensors]}")
    xp = backend.get_array_module(tensors[0].data)
    out = xp.stack([t.data for t in tensors], axis=axis)
    ax = axis % out.ndim
    return Tensor.from_op(out, tuple(tensors),
                          lambda g: tuple(xp.take(g, i, axis=ax) for i in range(len(tensors))), "stack")


def split(a: Tensor, split_size_or_sections, axis: int = 0) -> list:
    """PyTorch semantics: an int is the size of each piece (the last may be smaller); a list gives the sizes."""
    n = a.shape[axis]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size <= 0:
            raise ValueError(f"split: split size must be positive, got {size}")
        sizes = [size] * (n // size) + ([n % size] if n % size else [])
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} do not add up to {n} along axis {axis} of shape {a.shape}")
    pieces, start = [], 0
    for s in sizes:
        idx = [slice(None)] * a.ndim
        idx[axis] = slice(start, start + s)
        pieces.append(getitem(a, tuple(idx)))
        start += s
    return pieces


def chunk(a: Tensor, chunks: int, axis: int = 0) -> list:
    """Split into ``chunks`` pieces of equal size (the last may be smaller), as ``torch.chunk``."""
    n = a.shape[axis]
    size = -(-n // chunks)
    return split(a, size, axis)
