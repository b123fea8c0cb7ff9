"""Fused softmax, log-softmax and scaled dot-product attention (Vaswani et al. 2017, eq. 1).

    softmax(x)_i     = exp(x_i - m) / sum_j exp(x_j - m)       m = max_j x_j (shift invariance: no overflow)
    log_softmax(x)_i = x_i - m - log sum_j exp(x_j - m)

Their backwards, for an upstream gradient g and p = softmax(x):

    softmax:      dx = p * (g - sum_j g_j p_j)
    log_softmax:  dx = g - p * sum_j g_j

Attention(Q, K, V) = softmax(Q K^T * scale + mask) V, as one graph node. Its backward, with S the scores and
P the probabilities, for an upstream gradient dO:

    dV = P^T dO           dP = dO V^T           dS = P * (dP - rowsum(dP * P))        (softmax backward)
    dQ = dS K * scale     dK = dS^T Q * scale

rowsum(dP * P) equals rowsum(dO * O) (since O = P V), which needs a (T, d) product instead of a (T, S) one — the
same identity FlashAttention (Dao et al. 2022) uses.
"""
from __future__ import annotations

import math

import numpy

from .. import backend
from .ops import as_tensor, unbroadcast
from .tensor import Tensor, needs_grad


# -- softmax and log-softmax --------------------------------------------------------------------------------------
def softmax(x, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis``. x: any shape. A row that is all -inf gives NaN, as in PyTorch."""
    x = as_tensor(x)
    xp = backend.get_array_module(x.data)
    e = xp.exp(x.data - x.data.max(axis=axis, keepdims=True))
    p = e / e.sum(axis=axis, keepdims=True)

    def backward(g):  # dx = p * (g - sum_j g_j p_j)
        dx = g - (g * p).sum(axis=axis, keepdims=True)
        dx *= p  # in place in the fresh buffer (never in g)
        return (dx,)
    return Tensor.from_op(p, (x,), backward, "softmax")


def log_softmax(x, axis: int = -1) -> Tensor:
    """log(softmax(x)) along ``axis``, computed without forming softmax (stable for very negative logits)."""
    x = as_tensor(x)
    xp = backend.get_array_module(x.data)
    shifted = x.data - x.data.max(axis=axis, keepdims=True)
    out = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
    return Tensor.from_op(out, (x,), lambda g: (g - xp.exp(out) * g.sum(axis=axis, keepdims=True),),
                          "log_softmax")


def _masked_softmax_parts(scores, xp, axis: int = -1):
    """Softmax along ``axis`` in two parts: (exp(scores - max), in place in ``scores``; the sums along ``axis``).

    Their quotient is the softmax. A slice that is entirely -inf (fully masked) gives zeros, as in PyTorch's
    scaled_dot_product_attention: zeros rather than NaN keep the output and every gradient finite; such a query
    attends to nothing, contributes nothing, and receives no gradient.
    """
    top = scores.max(axis=axis, keepdims=True)
    top = xp.where(top == -xp.inf, 0, top)  # fully masked: exp(-inf - 0) = 0, not NaN
    scores -= top
    xp.exp(scores, out=scores)
    total = scores.sum(axis=axis, keepdims=True)
    return scores, xp.where(total == 0, 1, total)  # 0 / 1 = 0 for the fully masked ones


def _check_attention(q, k, v, mask):
    """Shapes: q (..., T, d), k (..., S, d), v (..., S, dv); mask broadcastable to (..., T, S)."""
    if q.ndim < 2 or k.ndim != q.ndim or v.ndim != q.ndim:
        raise ValueError(f"scaled_dot_product_attention: q, k, v must have the same number of axes (>= 2), got "
                         f"q {q.shape}, k {k.shape}, v {v.shape}")
    if q.shape[:-2] != k.shape[:-2] or k.shape[:-2] != v.shape[:-2]:
        raise ValueError(f"scaled_dot_product_attention: batch axes differ: q {q.shape}, k {k.shape}, v {v.shape} "
                         "(expected (B, H, T, d), (B, H, S, d), (B, H, S, dv))")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"scaled_dot_product_attention: q has d={q.shape[-1]} but k has d={k.shape[-1]} "
                         f"(q {q.shape}, k {k.shape})")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: k has S={k.shape[-2]} keys but v has {v.shape[-2]} values "
                         f"(k {k.shape}, v {v.shape})")
    scores_shape = q.shape[:-1] + (k.shape[-2],)
    if mask is not None:
        if mask.dtype != bool and mask.dtype.kind != "f":
            raise ValueError(f"scaled_dot_product_attention: mask must be boolean (True = attend) or floating "
                             f"(added to the scores), got dtype {mask.dtype}")
        try:
            ok = numpy.broadcast_shapes(mask.shape, scores_shape) == scores_shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"scaled_dot_product_attention: mask of shape {mask.shape} does not broadcast to the "
                             f"attention scores (..., T, S) = {scores_shape}")


def scaled_dot_product_attention(q, k, v, mask=None, scale=None) -> Tensor:
    """softmax(q k^T * scale + mask) v, as ``torch.nn.functional.scaled_dot_product_attention``.

    Args:
        q: (B, H, T, d) queries — any leading axes work, as long as q, k and v share them.
        k: (B, H, S, d) keys; S may differ from T (cross-attention).
        v: (B, H, S, dv) values.
        mask: broadcastable to (B, H, T, S). Boolean: True = may attend (PyTorch's convention). Float: added to the
            scores (-inf to block); a float mask Tensor with requires_grad receives a gradient (a learned bias).
        scale: defaults to 1 / sqrt(d).
    Returns:
        (B, H, T, dv). A query whose every key is masked gets an output of zeros and zero gradients.
    """
    q, k, v = as_tensor(q), as_tensor(k), as_tensor(v)
    if mask is not None and not isinstance(mask, Tensor):
        mask = Tensor(mask)
    _check_attention(q, k, v, mask)
    xp = backend.get_array_module(q.data)
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale

    # The scores are built transposed, keys by queries: (..., S, T). The softmax over the keys then reduces along
    # axis -2, which NumPy vectorises across all T queries at once; along the last axis it would loop over short
    # rows (S = 16 to 77 in a U-Net), measured 1.2-2.2x slower for the whole op. P = swapaxes(p_t) is only a view.
    q_scaled = q.data * q.dtype.type(scale)  # scaling (T, d) costs less than scaling the (T, S) scores
    scores_t = k.data @ xp.swapaxes(q_scaled, -1, -2)  # (..., S, T): scores_t[s, t] = k_s . q_t * scale
    if mask is not None:
        mask_t = xp.swapaxes(mask.data, -1, -2)
        if mask.dtype == bool:
            scores_t = xp.where(mask_t, scores_t, -xp.inf)
        else:
            scores_t += mask_t
    weights_t, total = _masked_softmax_parts(scores_t, xp, axis=-2)  # P^T = weights_t / total, total: (..., 1, T)
    out = xp.swapaxes(weights_t, -1, -2) @ v.data  # O = P V: (..., T, dv), normalised after the product, where
    out /= xp.swapaxes(total, -1, -2)              # it costs dv numbers per query instead of S
    p_t = None
    if needs_grad(q, k, v, mask):  # only the backward needs P^T itself
        weights_t /= total
        p_t = weights_t

    def backward(g):  # every (T, S) quantity below is held transposed, as (S, T), like p_t
        dv = p_t @ g if v.requires_grad else None                            # dV = P^T dO
        ds_t = v.data @ xp.swapaxes(g, -1, -2)                               # dP^T = V dO^T, then in the same
        ds_t -= xp.swapaxes((g * out).sum(axis=-1, keepdims=True), -1, -2)  # (S, T) buffer
        ds_t *= p_t                                                          # dS = P (dP - rowsum(dO * O))
        dq = (xp.swapaxes(ds_t, -1, -2) @ k.data) * q.dtype.type(scale) if q.requires_grad else None  # dS K scale
        dk = ds_t @ q_scaled if k.requires_grad else None                    # dK = dS^T (Q * scale)
        if mask is None:
            return dq, dk, dv
        # d(scores)/d(additive mask) = 1
        dmask = unbroadcast(xp.swapaxes(ds_t, -1, -2), mask.shape) if mask.requires_grad else None
        return dq, dk, dv, dmask
    parents = (q, k, v) if mask is None else (q, k, v, mask)
    return Tensor.from_op(out, parents, backward, "attention")
