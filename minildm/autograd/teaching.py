"""Teaching twins: softmax, layer norm, group norm and attention written with primitive Tensor ops only.

Each twin is the formula, line by line; autograd derives the backward by itself (one graph node per primitive op).
The fused versions in ``attention.py`` and ``norm.py`` compute the same numbers in one node each, with a
hand-derived backward. ``tests/autograd/test_fused_teaching.py`` proves the two agree, values and gradients, to
1e-10 in float64. Notebooks show these; models use the fused ones.
"""
from __future__ import annotations

import math

from .ops import as_tensor, where
from .tensor import Tensor


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """softmax(x)_i = exp(x_i - m) / sum_j exp(x_j - m)."""
    # Subtracting the row maximum m prevents overflow and changes nothing: softmax(x - m) = softmax(x). So m can be
    # a constant (a plain Tensor, outside the graph).
    m = Tensor(x.data.max(axis=axis, keepdims=True))
    e = (x - m).exp()
    return e / e.sum(axis=axis, keepdims=True)


def layer_norm(x: Tensor, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalise the last axis: y = (x - mean) / sqrt(var + eps) * weight + bias (Ba et al. 2016, eq. 4).

    x: (..., D); weight, bias: (D,) or None.
    """
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)  # biased (divide by D), as in the paper and PyTorch
    y = (x - mean) / (var + eps).sqrt()
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def group_norm(x: Tensor, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Split the channels into groups; normalise each group of each image (Wu & He 2018, eq. 1-3).

    x: (N, C, *); weight, bias: (C,) or None.
    """
    n, c = x.shape[:2]
    groups = x.reshape(n, num_groups, -1)  # (N, G, C/G * spatial): one row per group
    mean = groups.mean(axis=-1, keepdims=True)
    var = groups.var(axis=-1, keepdims=True)
    y = ((groups - mean) / (var + eps).sqrt()).reshape(x.shape)
    per_channel = (c,) + (1,) * (x.ndim - 2)  # (C, 1, 1): a channel's scale broadcasts over its pixels
    if weight is not None:
        y = y * weight.reshape(per_channel)
    if bias is not None:
        y = y + bias.reshape(per_channel)
    return y


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, mask=None, scale=None) -> Tensor:
    """Attention(Q, K, V) = softmax(Q K^T / sqrt(d) + mask) V (Vaswani et al. 2017, eq. 1).

    q: (B, H, T, d); k: (B, H, S, d); v: (B, H, S, dv); mask as in the fused version (True = attend).
    Unlike the fused version, a query with every key masked gets NaN here (softmax of a row of -inf).
    """
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.swapaxes(-1, -2)) * scale  # (B, H, T, S): how well query t matches key s
    if mask is not None:
        mask = as_tensor(mask)
        if mask.dtype == bool:
            scores = where(mask, scores, float("-inf"))  # a blocked key gets probability exp(-inf) = 0
        else:
            scores = scores + mask
    return softmax(scores, axis=-1) @ v  # each output is a probability-weighted average of the values
