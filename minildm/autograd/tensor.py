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
  are freed at once, and memory does not grow from one training step to the next.
"""
from __future__ import annotations

import contextlib

import numpy

from .. import backend


class _GradMode:
    enabled = True


@contextlib.contextmanager
def no_grad():
    """Context in which ops record no graph (inference, optimizer updates, EMA)."""
    previous = _GradMode.enabled
    _GradMode.enabled = False
    try:
        yield
    finally:
        _GradMode.enabled = previous


def is_grad_enabled() -> bool:
    return _GradMode.enabled


def _to_array(data, dtype=None):
    """Backend array from a Tensor, array, or Python data. Python floats/lists become float32 (our default)."""
    if isinstance(data, Tensor):
        data = data.data
    if hasattr(data, "__array__") or hasattr(data, "__cuda_array_interface__"):
        arr = backend.to_device(data)
        if dtype is not None:
            arr = arr.astype(dtype, copy=False)
        return arr
    arr = backend.xp().asarray(data)
    if dtype is None and arr.dtype.kind in "fc":
        dtype = backend.DEFAULT_DTYPE  # Python floats would otherwise become float64
    return arr.astype(dtype, copy=False) if dtype is not None else arr


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    Args:
        data: array-like (NumPy/CuPy array, Python scalar or nested list). Arrays keep their dtype; Python data
            becomes float32.
        requires_grad: if True, ``backward`` accumulates d(loss)/d(this) into ``.grad``.
        dtype: optional dtype to cast to.
    """

    __slots__ = ("data", "grad", "requires_grad", "_parents", "_backward", "_op", "__weakref__")
    __array_priority__ = 1000  # make `ndarray * Tensor` call Tensor.__rmul__ instead of NumPy broadcasting

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _to_array(data, dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"Tensor: only floating-point tensors can require gradients, got dtype {self.data.dtype}")
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._parents = ()
        self._backward = None
        self._op = ""

    # -- graph construction -------------------------------------------------------------------------------------
    @classmethod
    def from_op(cls, data, parents, backward_fn, op: str = ""):
        """Output of an op. ``backward_fn(grad_out)`` returns one gradient array (or None) per parent.

        The graph is only recorded when grad mode is on and some parent needs a gradient.
        """
        out = cls.__new__(cls)
        out.data = data
        out.grad = None
        out._op = op
        if _GradMode.enabled and any(p.requires_grad for p in parents):
            out.requires_grad = True
            out._parents = tuple(parents)
            out._backward = backward_fn
        else:
            out.requires_grad = False
            out._parents = ()
            out._backward = None
        return out

    @property
    def is_leaf(self) -> bool:
        return self._backward is None

    # -- backward -------------------------------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires a gradient.

        Args:
            grad: gradient of the final objective w.r.t. this tensor; may be omitted only for a single-element
                tensor (then it is 1).
            retain_graph: keep the graph so backward can run again (default frees it).
        """
        if not self.requires_grad:
            raise ValueError("backward: this tensor does not require grad (no input had requires_grad=True, "
                             "or it was computed under no_grad())")
        xp = backend.get_array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise ValueError(f"backward: called on a non-scalar tensor of shape {self.shape} without a "
                                 "gradient; pass grad= of the same shape or reduce to a scalar first")
            grad = xp.ones_like(self.data)
        else:
            grad = _to_array(grad, self.data.dtype)
            if grad.shape != self.data.shape:
                raise ValueError(f"backward: grad has shape {grad.shape}, expected {self.shape}")

        # Reverse topological order without recursion: a node is emitted after all of its parents.
        order, visited, stack = [], set(), [(self, False)]
        while stack:
            node, parents_done = stack.pop()
            if parents_done:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            for parent in node._parents:
                if parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))

        grads = {id(self): grad}
        for node in reversed(order):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._backward is None:  # a leaf: accumulate, as PyTorch does
                node.grad = g if node.grad is None else node.grad + g
                continue
            parent_grads = node._backward(g)
            for parent, pg in zip(node._parents, parent_grads):
                if pg is None or not parent.requires_grad:
                    continue
                key = id(parent)
                grads[key] = pg if key not in grads else grads[key] + pg
            if not retain_graph:  # free the closure and the buffers it holds
                node._parents, node._backward = (), None

    # -- conveniences ---------------------------------------------------------------------------------------------
    def detach(self) -> "Tensor":
        """Same data, no history (shares memory)."""
        return Tensor(self.data)

    def numpy(self) -> numpy.ndarray:
        """A host NumPy array (copied from the GPU when needed)."""
        return backend.to_host(self.data)

    def item(self) -> float:
        if self.data.size != 1:
            raise ValueError(f"item: tensor has {self.data.size} elements, expected 1")
        return self.data.reshape(()).item()

    def zero_grad(self) -> None:
        self.grad = None

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        self.requires_grad = flag
        return self

    def astype(self, dtype) -> "Tensor":
        """Cast (differentiable: the gradient is cast back)."""
        src = self.data.dtype
        return Tensor.from_op(self.data.astype(dtype), (self,), lambda g: (g.astype(src),), "astype")

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
        return self.data.shape[0]

    def __repr__(self) -> str:
        body = repr(backend.to_host(self.data)).replace("array(", "").rstrip(")")
        extra = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({body}{extra})"

    __hash__ = object.__hash__  # comparisons return tensors, so identity hashing must be explicit
