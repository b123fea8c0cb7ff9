"""Reverse-mode automatic differentiation on backend arrays."""
from . import methods  # noqa: F401  (binds operators onto Tensor)
from .gradcheck import GradcheckError, gradcheck
from .ops import abs, add, clip, div, exp, log, matmul, maximum, mul, neg, pow, relu, sigmoid, sqrt, sub
from .ops import tanh, where
from .reductions import max, mean, sum, var
from .shape_ops import broadcast_to, cat, chunk, expand, getitem, permute, reshape, split, stack, swapaxes, transpose
from .tensor import Tensor, is_grad_enabled, no_grad

__all__ = ["Tensor", "no_grad", "is_grad_enabled", "gradcheck", "GradcheckError", "add", "sub", "mul", "div",
           "neg", "pow", "matmul", "exp", "log", "sqrt", "tanh", "sigmoid", "abs", "relu", "where", "clip",
           "maximum", "sum", "mean", "max", "var", "reshape", "permute", "transpose", "swapaxes", "expand",
           "broadcast_to", "getitem", "cat", "stack", "split", "chunk"]

# Fused ops (one graph node each, analytic backward) and their teaching twins; the public namespace for them is
# minildm.nn.functional (F).
from . import activations, attention, conv, linear, losses, norm, resample, teaching  # noqa: E402,F401
