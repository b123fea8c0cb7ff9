"""The Tensor and reverse-mode automatic differentiation.

A ``Tensor`` wraps a backend array (``.data``) and remembers how it was made: the tensors it came from
(its *parents*) and a *backward function* that turns the gradient of the loss with respect to this tensor into
gradients with respect to each parent (the chain rule, one op at a time). ``loss.backward()`` visits the graph in
reverse topological order, so each node's gradient is complete before it is passed on.

    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()          # y = x0^2 + x1^2
    y.backward()               # dy/dx = 2x
    x.grad                     # array([2., 4.], dtype=float32)

Design choices, each for a reason:
- Every op lives in ``ops.py`` (or ``nn_ops.py`` for fused layers) and builds its output with ``Tensor.from_op``,
  which records parents and backward only when a gradient is needed, so inference under ``no_grad()`` keeps no graph.
- The walk is iterative (an explicit stack), so a graph thousands of ops deep never hits Python's recursion limit.
- After ``backward`` every interior node forgets its parents and backward closure: the buffers the closures held
  are freed at once, and memory does not grow from one training step to the next. A second ``backward`` through
  the freed graph raises instead of silently giving wrong gradients (pass ``retain_graph=True`` to keep it).
- Only leaves (tensors created by the user) receive ``.grad``; it is always a fresh, writable array of the leaf's
  shape and dtype, so optimizers may update it in place.

The contract for a backward function ``fn(g)``: return one array (or None) per parent, shaped like that parent;
never write into ``g`` (it may be a read-only broadcast view, or shared with another parent).
"""
from __future__ import annotations

import contextlib

import numpy

from .. import backend


class _GradMode:
    enabled = True  # one process-wide switch (not per thread): no_grad() turns it off for a block


@contextlib.contextmanager
def no_grad():
    """Context (or decorator: ``@no_grad()``) in which ops record no graph: inference, optimizer updates, EMA."""
    previous = _GradMode.enabled
    _GradMode.enabled = False
    try:
        yield
    finally:
        _GradMode.enabled = previous


def is_grad_enabled() -> bool:
    return _GradMode.enabled


def needs_grad(*tensors) -> bool:
    """True when an op on these tensors (None allowed) will be recorded: grad mode is on and one of them requires a
    gradient. A fused op asks this to skip keeping buffers that only its backward would read."""
    return _GradMode.enabled and any(t is not None and t.requires_grad for t in tensors)


def _to_array(data, dtype=None):
    """Backend array from a Tensor, array, or Python data. Arrays keep their dtype; Python floats become float32."""
    if isinstance(data, Tensor):
        data = data.data
    if hasattr(data, "__array__") or hasattr(data, "__cuda_array_interface__"):  # NumPy/CuPy arrays and scalars
        return backend.to_device(data, dtype)
    arr = backend.xp().asarray(data)
    if dtype is None and arr.dtype.kind == "f":
        dtype = backend.DEFAULT_DTYPE  # Python floats would otherwise become float64
    return arr.astype(dtype, copy=False) if dtype is not None else arr


def _check_differentiable(dtype, where: str) -> None:
    if dtype.kind != "f":
        raise TypeError(f"{where}: only floating-point tensors can require gradients, got dtype {dtype}")


def _graph_freed(g):
    """Stands in for the backward function of a node whose graph an earlier ``backward()`` has freed."""
    raise RuntimeError("backward: trying to backpropagate through a graph that an earlier backward() already "
                       "freed; call the first backward(retain_graph=True) if you need to go through it twice")


def _checked_grad(pg, parent: "Tensor", node: "Tensor"):
    """A parent's gradient as the engine promises it: an array of the parent's exact shape and dtype."""
    if isinstance(pg, numpy.generic):  # NumPy reductions return scalars; keep everything an ndarray
        pg = numpy.asarray(pg)
    if pg.shape != parent.data.shape:  # a bug in an op's backward: stop here, not after silent broadcasting
        raise RuntimeError(f"backward of {node._op or 'an op'}: returned a gradient of shape {pg.shape} "
                           f"for an input of shape {parent.data.shape}")
    if pg.dtype != parent.data.dtype:  # e.g. a float32 input mixed with a float64 one
        pg = pg.astype(parent.data.dtype)
    return pg


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    Args:
        data: array-like (NumPy/CuPy array, Python scalar or nested list). Arrays keep their dtype; Python data
            with floats becomes float32 (ints stay int64, bools bool).
        requires_grad: if True, ``backward`` accumulates d(loss)/d(this) into ``.grad`` (floating dtypes only).
        dtype: optional dtype to cast to.
    """

    __slots__ = ("data", "grad", "requires_grad", "_parents", "_backward", "_op", "__weakref__")
    # `ndarray + Tensor` must call Tensor.__radd__ rather than let NumPy (or CuPy) loop over the Tensor as an object:
    # `__array_ufunc__ = None` makes NumPy's operators return NotImplemented; CuPy looks at the priority.
    __array_ufunc__ = None
    __array_priority__ = 1000

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _to_array(data, dtype)
        if requires_grad:
            _check_differentiable(self.data.dtype, "Tensor")
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._parents = ()
        self._backward = None
        self._op = ""

    # -- graph construction -------------------------------------------------------------------------------------
    @classmethod
    def from_op(cls, data, parents, backward_fn, op: str = ""):
        """Output of an op. ``backward_fn(grad_out)`` returns one gradient array (or None) per parent.

        The graph is only recorded when grad mode is on and some parent needs a gradient. It runs once per op,
        so it stays cheap: no copies and no checks beyond one look at each parent.
        """
        out = cls.__new__(cls)
        out.data = numpy.asarray(data) if isinstance(data, numpy.generic) else data  # scalar -> 0-d array
        out.grad = None
        out._op = op
        if _GradMode.enabled and any(p.requires_grad for p in parents):
            out.requires_grad = True
            out._parents = tuple(parents)
            out._backward = backward_fn
        else:  # nothing to differentiate: keep no references, so the inputs can be freed
            out.requires_grad = False
            out._parents = ()
            out._backward = None
        return out

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user (and outputs of ops that needed no gradient)."""
        return self._backward is None

    # -- backward -------------------------------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires a gradient.

        Args:
            grad: gradient of the final objective w.r.t. this tensor, same shape; may be omitted only for a
                single-element tensor (then it is 1).
            retain_graph: keep the graph so backward can run through it again (by default it is freed).
        """
        if not self.requires_grad:
            raise ValueError("backward: this tensor does not require grad (no input had requires_grad=True, "
                             "or it was computed under no_grad())")
        if grad is None:
            if self.data.size != 1:
                raise ValueError(f"backward: called on a non-scalar tensor of shape {self.shape} without a "
                                 "gradient; pass grad= of the same shape or reduce to a scalar first")
            grad = backend.get_array_module(self.data).ones_like(self.data)
        else:
            grad = _to_array(grad, self.data.dtype)
            if grad.shape != self.data.shape:
                raise ValueError(f"backward: grad has shape {grad.shape}, expected {self.shape}")

        order = self._topological_order()
        grads = {id(self): grad}  # id -> gradient summed so far; every key's node is alive in `order`
        while order:
            node = order.pop()  # popping (not iterating) lets each finished node, and its data, be freed at once
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._backward is None:  # a leaf: accumulate, as PyTorch does
                # A copy, because `g` may be a read-only broadcast view or the very array another leaf receives.
                node.grad = g.copy() if node.grad is None else node.grad + g
                continue
            for parent, pg in zip(node._parents, node._backward(g)):
                if pg is None or not parent.requires_grad:
                    continue
                pg = _checked_grad(pg, parent, node)
                key = id(parent)
                grads[key] = pg if key not in grads else grads[key] + pg  # out of place: never write into pg
            if not retain_graph:  # drop the closure and the buffers it holds
                node._parents, node._backward = (), _graph_freed

    def _topological_order(self) -> list:
        """Every node that needs a gradient, each after all of its parents (iterative depth-first search)."""
        order, visited, stack = [], set(), [(self, False)]
        while stack:
            node, parents_done = stack.pop()
            if parents_done:  # all parents were emitted while this entry waited on the stack
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            for parent in node._parents:
                if parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
        return order

    # -- conveniences ---------------------------------------------------------------------------------------------
    def detach(self) -> "Tensor":
        """Same data (shared memory), no history, no gradient."""
        return Tensor(self.data)

    def numpy(self) -> numpy.ndarray:
        """A host NumPy array (copied from the GPU when needed; shares memory on the CPU)."""
        return backend.to_host(self.data)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item: tensor of shape {self.shape} has {self.data.size} elements, expected 1")
        return self.data.reshape(()).item()

    def zero_grad(self) -> None:
        self.grad = None

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        """Turn gradient tracking on (or off) for this tensor, in place; returns the tensor."""
        if flag:
            _check_differentiable(self.data.dtype, "requires_grad_")
        self.requires_grad = bool(flag)
        return self

    def astype(self, dtype) -> "Tensor":
        """Cast. Differentiable between floating dtypes (the gradient is cast back); other casts cut the graph."""
        src, out = self.data.dtype, self.data.astype(dtype)
        if out.dtype.kind != "f":
            return Tensor(out)
        return Tensor.from_op(out, (self,), lambda g: (g.astype(src),), "astype")

    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __bool__(self) -> bool:
        return bool(self.data)  # one element: its truth; more: NumPy's "ambiguous" error, as for arrays

    def __repr__(self) -> str:
        body = numpy.array2string(backend.to_host(self.data), separator=", ", prefix="Tensor(")
        extra = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({body}, dtype={self.dtype}{extra})"

    __hash__ = object.__hash__  # comparisons return tensors, so identity hashing must be explicit
