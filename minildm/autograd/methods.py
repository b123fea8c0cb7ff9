"""Give ``Tensor`` its operators and methods (``a + b``, ``a @ b``, ``x.sum(axis=1)``, ``x[0]``…).

The ops themselves are plain functions in ``ops.py`` and ``shape_ops.py``; binding them here keeps ``tensor.py``
about the graph alone (the same split DeZero makes between ``Variable`` and its functions).
"""
import numbers

from .. import backend
from . import ops, reductions, shape_ops
from .tensor import Tensor


def _comparison(name):
    symbol = {"__lt__": "<", "__le__": "<=", "__gt__": ">", "__ge__": ">=", "__eq__": "==", "__ne__": "!="}[name]

    def compare(self, other):
        """Elementwise comparison: a boolean tensor, outside the graph (comparisons have no gradient)."""
        if isinstance(other, Tensor):
            other = other.data
        elif not isinstance(other, numbers.Number):  # arrays and lists move to the active backend (a CuPy tensor
            other = backend.to_device(other)          # cannot meet a NumPy array); Python numbers stay weakly typed
        ops._broadcast_shape(f"comparison {symbol}", self.shape, other.shape if hasattr(other, "shape") else ())
        return Tensor(getattr(self.data, name)(other))
    return compare


Tensor.__add__ = lambda a, b: ops.add(a, b)
Tensor.__radd__ = lambda a, b: ops.add(b, a)
Tensor.__sub__ = lambda a, b: ops.sub(a, b)
Tensor.__rsub__ = lambda a, b: ops.sub(b, a)
Tensor.__mul__ = lambda a, b: ops.mul(a, b)
Tensor.__rmul__ = lambda a, b: ops.mul(b, a)
Tensor.__truediv__ = lambda a, b: ops.div(a, b)
Tensor.__rtruediv__ = lambda a, b: ops.div(b, a)
Tensor.__pow__ = lambda a, p: ops.pow(a, p)
Tensor.__rpow__ = lambda a, b: ops.pow(ops.as_tensor(b, like=a), a)
Tensor.__matmul__ = lambda a, b: ops.matmul(a, b)
Tensor.__rmatmul__ = lambda a, b: ops.matmul(b, a)
Tensor.__neg__ = ops.neg
Tensor.__abs__ = ops.abs
Tensor.__getitem__ = shape_ops.getitem
for _name in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"):
    setattr(Tensor, _name, _comparison(_name))

Tensor.exp, Tensor.log, Tensor.sqrt = ops.exp, ops.log, ops.sqrt
Tensor.tanh, Tensor.sigmoid, Tensor.abs, Tensor.relu = ops.tanh, ops.sigmoid, ops.abs, ops.relu
Tensor.clip = ops.clip
Tensor.sum, Tensor.mean = reductions.sum, reductions.mean
Tensor.max, Tensor.var = reductions.max, reductions.var
Tensor.reshape, Tensor.permute, Tensor.transpose = shape_ops.reshape, shape_ops.permute, shape_ops.transpose
Tensor.swapaxes, Tensor.expand, Tensor.broadcast_to = shape_ops.swapaxes, shape_ops.expand, shape_ops.expand
Tensor.split, Tensor.chunk = shape_ops.split, shape_ops.chunk
Tensor.T = property(lambda self: shape_ops.transpose(self))
Tensor.flatten = lambda self, start_axis=0: shape_ops.reshape(self, self.shape[:start_axis] + (-1,))
