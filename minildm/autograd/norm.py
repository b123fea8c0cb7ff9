"""Fused normalisation layers: ``group_norm`` (Wu & He 2018) and ``layer_norm`` (Ba et al. 2016).

Both normalise rows of numbers to zero mean and unit variance, then apply a learned per-channel scale and shift:

    x_hat = (x - mean) / sqrt(var + eps)          (biased variance, over each row)
    y     = w * x_hat + b

They differ only in what a row is: for layer norm, the last axis of one token; for group norm, all positions of
C/G consecutive channels of one image (GroupNorm eq. 1-3, with S_i = the group of i). So the forward of both is one
kernel, ``_center_rows``, on a (rows, M) reshape.

The backward of the normalisation, for one row of M numbers with g_hat = dL/dx_hat = w * dL/dy (the classic
batch-norm derivation, Ioffe & Szegedy 2015, applied to a row):

    dL/dx = (g_hat - mean(g_hat) - x_hat * mean(g_hat * x_hat)) / sqrt(var + eps)

The two means remove the parts of g_hat that a shift or a rescaling of the row would absorb. Group norm evaluates
the same formula without forming g_hat (see ``_group_norm_backward``): every full-size temporary costs time.
"""
from __future__ import annotations

from .. import backend
from .ops import as_tensor
from .tensor import Tensor, needs_grad


def _center_rows(rows, eps: float):
    """rows: (R, M) -> (centered = rows - mean, a new (R, M) array; rstd = 1/sqrt(var + eps): (R, 1)).

    Both means are matrix-vector products with a column of 1/M: BLAS instead of NumPy's reduction loop, which is
    slow on short rows (layer norm's 48-wide tokens: measured 35% faster for the whole norm). The variance is taken
    of the centered rows (two passes), so it has no cancellation when the mean is large.
    """
    xp = backend.get_array_module(rows)
    average = xp.full((rows.shape[1], 1), 1.0 / rows.shape[1], dtype=rows.dtype)
    centered = rows - rows @ average
    var = (centered * centered) @ average
    return centered, 1 / xp.sqrt(var + eps)


def _check_affine(op: str, name: str, param, size: int, x_shape: tuple):
    if param is not None and param.shape != (size,):
        raise ValueError(f"{op}: {name} has shape {param.shape}, expected ({size},) for input of shape {x_shape}")


def _affine_node(out, x, weight, bias, backward, op: str) -> Tensor:
    """The graph node for a norm whose weight and bias are optional: only the tensors given become parents."""
    present = [t is not None for t in (x, weight, bias)]
    parents = tuple(t for t, keep in zip((x, weight, bias), present) if keep)
    return Tensor.from_op(out, parents, lambda g: tuple(gr for gr, keep in zip(backward(g), present) if keep), op)


# -- group norm -------------------------------------------------------------------------------------------------------
def _group_norm_backward(g4, x_hat4, rstd, w):
    """All gradients of group norm. g4, x_hat4: (N, G, C/G, M); rstd: (N, G, 1, 1); w: (C,).

    Sums over the positions of each (image, channel) give the parameter gradients directly,
        dL/db_c = sum_{n,m} g,      dL/dw_c = sum_{n,m} g x_hat,
    and, weighted by w_c and pooled over a group's channels, the two means of the row formula (g_hat = g w_c):
        mean(g_hat)         = sum_{c in group} w_c sum_m g / count,
        mean(g_hat x_hat)   = sum_{c in group} w_c sum_m g x_hat / count.
    Then dL/dx = g (rstd w_c) - x_hat (rstd mean(g_hat x_hat)) - rstd mean(g_hat): one multiply-add per element.
    """
    xp = backend.get_array_module(g4)
    n, groups, per_group, m = g4.shape
    w3 = w.reshape(groups, per_group)
    sum_g = g4.sum(axis=3)                                   # (N, G, C/G)
    sum_gx = xp.einsum("ngcm,ngcm->ngc", g4, x_hat4)         # (N, G, C/G), no full-size temporary
    count = per_group * m
    mean_g = (sum_g * w3).sum(axis=2)[:, :, None, None] / count    # (N, G, 1, 1)
    mean_gx = (sum_gx * w3).sum(axis=2)[:, :, None, None] / count
    gx = g4 * (rstd * w3[:, :, None])
    gx -= x_hat4 * (rstd * mean_gx)
    gx -= rstd * mean_g
    return gx, sum_gx.sum(axis=0).reshape(-1), sum_g.sum(axis=0).reshape(-1)


def group_norm(x, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Group normalisation, as ``torch.nn.functional.group_norm``.

    Args:
        x: (N, C, *) — images (N, C, H, W) or any number of trailing axes.
        num_groups: G; C must be divisible by G. G = 1 is layer norm over (C, *), G = C is instance norm.
        weight, bias: per-channel (C,) scale and shift, or None.
    Returns:
        Tensor of the shape of x.
    """
    x = as_tensor(x)
    weight = None if weight is None else as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    if x.ndim < 2:
        raise ValueError(f"group_norm: input must have shape (N, C, *), got {x.shape}")
    n, c = x.shape[:2]
    if num_groups < 1 or c % num_groups:
        raise ValueError(f"group_norm: C={c} channels (input shape {x.shape}) are not divisible by "
                         f"num_groups={num_groups}")
    _check_affine("group_norm", "weight", weight, c, x.shape)
    _check_affine("group_norm", "bias", bias, c, x.shape)
    xp = backend.get_array_module(x.data)

    centered, rstd = _center_rows(x.data.reshape(n * num_groups, -1), eps)  # one row per (image, group)
    w = weight.data if weight is not None else xp.ones(c, dtype=x.dtype)
    # y = x_hat w + b = centered (rstd w) + b: the factor rstd w, one number per (image, channel), is formed first,
    # so the full-size array sees one multiply and one add.
    scale = (rstd.reshape(n, num_groups, 1) * w.reshape(num_groups, -1)).reshape(n, c, 1)
    if needs_grad(x, weight, bias):
        out = centered.reshape(n, c, -1) * scale
        centered *= rstd  # x_hat, kept for the backward
    else:  # inference: nothing is kept, so the centered rows become the output in place
        out = centered.reshape(n, c, -1)
        out *= scale
    if bias is not None:
        out += bias.data[:, None]

    def backward(g):
        as_groups = (n, num_groups, c // num_groups, -1)
        gx, gw, gb = _group_norm_backward(g.reshape(as_groups), centered.reshape(as_groups),
                                          rstd.reshape(n, num_groups, 1, 1), w)
        return gx.reshape(x.shape), gw, gb
    return _affine_node(out.reshape(x.shape), x, weight, bias, backward, "group_norm")


# -- layer norm -------------------------------------------------------------------------------------------------------
def layer_norm(x, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Layer normalisation over the last axis, as ``torch.nn.functional.layer_norm(x, (D,), ...)``.

    Args:
        x: (..., D), e.g. token features (B, T, D).
        weight, bias: (D,) scale and shift, or None.
    """
    x = as_tensor(x)
    weight = None if weight is None else as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    if x.ndim < 1:
        raise ValueError(f"layer_norm: input must have at least one axis, got shape {x.shape}")
    d = x.shape[-1]
    _check_affine("layer_norm", "weight", weight, d, x.shape)
    _check_affine("layer_norm", "bias", bias, d, x.shape)

    x_hat, rstd = _center_rows(x.data.reshape(-1, d), eps)  # one row per token
    x_hat *= rstd
    affine = weight is not None or bias is not None
    out = x_hat.copy() if affine and needs_grad(x, weight, bias) else x_hat  # the backward keeps x_hat
    if weight is not None:
        out *= weight.data
    if bias is not None:
        out += bias.data

    def backward(g):
        g2 = g.reshape(-1, d)
        gx = gw = gb = None
        if x.requires_grad:
            g_hat = g2 * weight.data if weight is not None else g2
            mean_g = g_hat.mean(axis=1, keepdims=True)
            mean_gx = (g_hat * x_hat).mean(axis=1, keepdims=True)
            gx = ((g_hat - mean_g - x_hat * mean_gx) * rstd).reshape(x.shape)  # the row formula
        if weight is not None and weight.requires_grad:
            gw = (g2 * x_hat).sum(axis=0)
        if bias is not None and bias.requires_grad:
            gb = g2.sum(axis=0)
        return gx, gw, gb
    return _affine_node(out.reshape(x.shape), x, weight, bias, backward, "layer_norm")
