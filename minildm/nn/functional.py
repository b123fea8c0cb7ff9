"""The functional op library, imported as ``F`` (``from minildm.nn import functional as F``), PyTorch-style.

Everything here is a differentiable function of Tensors. The heavy ops are fused — one graph node each, with a
hand-derived backward over BLAS matrix products — and live in ``minildm.autograd`` by family:

    linear.py       linear
    conv.py         conv2d (im2row; winograd.py: Winograd's fast 3x3; layout.py: NCHW <-> NHWC)
    resample.py     pad, interpolate
    norm.py         group_norm, layer_norm
    attention.py    softmax, log_softmax, scaled_dot_product_attention
    activations.py  silu, gelu, quick_gelu, dropout
    losses.py       mse_loss, cross_entropy

Their step-by-step twins, built from primitive ops, are in ``minildm.autograd.teaching``.
"""
from ..autograd.activations import dropout, gelu, quick_gelu, silu
from ..autograd.attention import log_softmax, scaled_dot_product_attention, softmax
from ..autograd.conv import conv2d
from ..autograd.linear import linear
from ..autograd.losses import cross_entropy, mse_loss
from ..autograd.norm import group_norm, layer_norm
from ..autograd.ops import relu, sigmoid, tanh
from ..autograd.resample import interpolate, pad

__all__ = ["linear", "conv2d", "pad", "interpolate", "group_norm", "layer_norm", "silu", "gelu", "quick_gelu",
           "relu", "sigmoid", "tanh", "softmax", "log_softmax", "scaled_dot_product_attention", "dropout",
           "mse_loss", "cross_entropy"]
