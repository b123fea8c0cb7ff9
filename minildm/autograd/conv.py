"""The weight layers as fused ops, ``linear`` and ``conv2d``, and the resampling around them: ``pad``, ``interpolate``.

Each is one graph node with an analytic backward made of matrix products, so the heavy lifting is done by BLAS.

Convolution as a matrix product ("im2col", Chellapilla et al. 2006). For x: (N, C, H, W) and a weight
w: (O, C, kH, kW), every output pixel is a dot product between w[o] and the C*kH*kW input values under the kernel:

    out[n, o, i, j] = sum_{c, a, b} w[o, c, a, b] * x_pad[n, c, i*sH + a, j*sW + b]

Gathering those values for all L = Ho*Wo output pixels gives a matrix cols[n]: (C*kH*kW, L), and then
``out[n] = W @ cols[n]`` with W = w reshaped to (O, C*kH*kW). The gather is a strided *view* of x_pad (no Python
loop): window (i, j) starts i*sH rows and j*sW columns further on, which is just another pair of strides.

The backward, for the output gradient dout (viewed as (N, O, L)):
    dW      = sum_n dout[n] @ cols[n]^T         the im2col buffer of the forward, reused
    dx_pad  = col2im(W^T @ dout[n])             the adjoint of the gather: scatter-add the column gradients of each
                                                kernel offset (a, b) back onto x_pad (kH*kW strided adds)
With stride 1 (nearly every convolution in a U-Net or VAE), dx is a convolution too: the output gradient, padded
by k-1-p, correlated with the kernel flipped in space and with in/out channels swapped (the "transposed
convolution", Dumoulin & Visin 2016, sec. 4). That costs one more im2col and GEMM, which is faster than col2im's
scattered adds, so conv2d uses it whenever it applies.
"""
from __future__ import annotations

import numpy

from .. import backend
from .ops import as_tensor
from .tensor import Tensor


def _pair(value, name: str, op: str) -> tuple:
    """An int or a pair of ints -> (int, int)."""
    pair = (value, value) if isinstance(value, (int, numpy.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, numpy.integer)) for v in pair):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    return int(pair[0]), int(pair[1])


# -- linear ---------------------------------------------------------------------------------------------------------
def linear(x, weight, bias=None) -> Tensor:
    """y = x W^T + b, as ``torch.nn.functional.linear``.

    x: (..., in_features); weight: (out_features, in_features); bias: (out_features,) or None -> (..., out_features)
    """
    x, weight = as_tensor(x), as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {x.shape} does not match weight of shape {weight.shape} "
                         f"(expected x: (..., {weight.shape[-1]}) and weight: (out_features, in_features))")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias has shape {bias.shape}, expected ({weight.shape[0]},)")
    out_features, in_features = weight.shape
    x2 = x.data.reshape(-1, in_features)  # all leading axes in one GEMM: (M, in) @ (in, out)
    out = x2 @ weight.data.T
    if bias is not None:
        out += bias.data
    out = out.reshape(x.shape[:-1] + (out_features,))

    def backward(g):
        g2 = g.reshape(-1, out_features)
        gx = (g2 @ weight.data).reshape(x.shape) if x.requires_grad else None  # dx = dy W
        gw = g2.T @ x2 if weight.requires_grad else None                      # dW = dy^T x, summed over rows
        gb = g2.sum(axis=0) if bias is not None and bias.requires_grad else None
        return gx, gw, gb
    parents = (x, weight) if bias is None else (x, weight, bias)
    return Tensor.from_op(out, parents, backward, "linear")


# -- conv2d ---------------------------------------------------------------------------------------------------------
def _im2col(x_pad, kh: int, kw: int, sh: int, sw: int):
    """x_pad: (N, C, Hp, Wp) -> cols: (N, C*kh*kw, Ho*Wo), a contiguous copy of every kernel window; and (Ho, Wo)."""
    xp = backend.get_array_module(x_pad)
    n, c, hp, wp = x_pad.shape
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    s_n, s_c, s_h, s_w = x_pad.strides
    # windows[n, c, a, b, i, j] = x_pad[n, c, i*sh + a, j*sw + b]: moving one output pixel moves sh rows/sw columns
    windows = xp.lib.stride_tricks.as_strided(
        x_pad, shape=(n, c, kh, kw, ho, wo), strides=(s_n, s_c, s_h, s_w, s_h * sh, s_w * sw))
    cols = xp.ascontiguousarray(windows).reshape(n, c * kh * kw, ho * wo)  # the one copy: windows overlap
    return cols, (ho, wo)


def _col2im(dcols, padded_shape: tuple, kh: int, kw: int, sh: int, sw: int, ho: int, wo: int):
    """The adjoint of ``_im2col``: dcols: (N, C*kh*kw, Ho*Wo) -> dx_pad: (N, C, Hp, Wp), overlaps summed."""
    xp = backend.get_array_module(dcols)
    n, c = padded_shape[:2]
    dcols = dcols.reshape(n, c, kh, kw, ho, wo)
    dx_pad = xp.zeros(padded_shape, dtype=dcols.dtype)
    for a in range(kh):  # one strided add per kernel offset; each covers every image, channel and pixel at once
        for b in range(kw):
            dx_pad[:, :, a:a + sh * (ho - 1) + 1:sh, b:b + sw * (wo - 1) + 1:sw] += dcols[:, :, a, b]
    return dx_pad


def _pad_hw(x, ph: int, pw: int):
    """Zero-pad the two spatial axes of (N, C, H, W) (no copy when there is nothing to pad)."""
    if ph == 0 and pw == 0:
        return x
    return backend.get_array_module(x).pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def conv2d(x, weight, bias=None, stride=1, padding=0) -> Tensor:
    """2-D cross-correlation, as ``torch.nn.functional.conv2d`` (zero padding, no dilation or groups).

    Args:
        x: (N, C, H, W).
        weight: (O, C, kH, kW).
        bias: (O,) or None.
        stride, padding: int or (height, width) pair.
    Returns:
        (N, O, Ho, Wo) with Ho = (H + 2 pad_h - kH) // stride_h + 1, and likewise Wo.
    """
    x, weight = as_tensor(x), as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    if x.ndim != 4:
        raise ValueError(f"conv2d: input must be 4-D (N, C, H, W), got shape {x.shape}")
    if weight.ndim != 4:
        raise ValueError(f"conv2d: weight must be 4-D (O, C, kH, kW), got shape {weight.shape}")
    n, c, h, w = x.shape
    o, c_w, kh, kw = weight.shape
    if c != c_w:
        raise ValueError(f"conv2d: input has C={c} channels (shape {x.shape}) but weight expects {c_w} "
                         f"(weight shape {weight.shape})")
    if bias is not None and bias.shape != (o,):
        raise ValueError(f"conv2d: bias has shape {bias.shape}, expected ({o},)")
    sh, sw = _pair(stride, "stride", "conv2d")
    ph, pw = _pair(padding, "padding", "conv2d")
    if sh < 1 or sw < 1 or ph < 0 or pw < 0:
        raise ValueError(f"conv2d: stride must be >= 1 and padding >= 0, got stride={stride}, padding={padding}")
    if h + 2 * ph < kh or w + 2 * pw < kw:
        raise ValueError(f"conv2d: kernel {kh}x{kw} is larger than the padded input {h + 2 * ph}x{w + 2 * pw} "
                         f"(input shape {x.shape}, padding {padding})")

    x_pad = _pad_hw(x.data, ph, pw)
    cols, (ho, wo) = _im2col(x_pad, kh, kw, sh, sw)  # (N, K, L) with K = C*kh*kw, L = Ho*Wo
    w2 = weight.data.reshape(o, c * kh * kw)
    out = w2 @ cols  # (O, K) @ (N, K, L) -> (N, O, L): one GEMM per image, already in NCHW order
    if bias is not None:
        out += bias.data[:, None]
    out = out.reshape(n, o, ho, wo)

    def input_grad(g):
        if (sh, sw) == (1, 1) and ph < kh and pw < kw:
            # With stride 1, dx is itself a convolution ("transposed convolution", Dumoulin & Visin 2016):
            #   dx[n, c, y, x] = sum_{o, a, b} g_pad[n, o, y + a, x + b] * w[o, c, kH-1-a, kW-1-b],
            # g padded by k-1-p on each side, the kernel flipped in space with in/out channels swapped. One more
            # im2col + GEMM is cheaper than col2im's kH*kW scattered adds, and this is the common case.
            w_flip = weight.data[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).reshape(c, o * kh * kw)
            g_cols, _ = _im2col(_pad_hw(g, kh - 1 - ph, kw - 1 - pw), kh, kw, 1, 1)
            return (w_flip @ g_cols).reshape(x.shape)
        # Otherwise scatter the column gradients back onto the padded input and crop the padding away.
        dcols = w2.T @ g.reshape(n, o, ho * wo)  # (K, O) @ (N, O, L) -> (N, K, L)
        return _col2im(dcols, x_pad.shape, kh, kw, sh, sw, ho, wo)[:, :, ph:ph + h, pw:pw + w]

    def backward(g):
        g3 = g.reshape(n, o, ho * wo)
        gx = input_grad(g) if x.requires_grad else None
        # dW[o, k] = sum over images n and pixels l of g[n, o, l] cols[n, k, l]: one batched GEMM, summed over n
        gw = (g3 @ cols.transpose(0, 2, 1)).sum(axis=0).reshape(weight.shape) if weight.requires_grad else None
        gb = g3.sum(axis=(0, 2)) if bias is not None and bias.requires_grad else None
        return gx, gw, gb
    parents = (x, weight) if bias is None else (x, weight, bias)
    return Tensor.from_op(out, parents, backward, "conv2d")


# -- resampling -----------------------------------------------------------------------------------------------------
def pad(x, pad, value: float = 0.0) -> Tensor:  # noqa: A002 (torch's name)
    """Constant padding with torch's convention: ``pad`` lists (before, after) pairs starting from the LAST axis.

    ``pad(x, (0, 1, 0, 1))`` on (N, C, H, W) adds one column on the right and one row at the bottom.
    """
    x = as_tensor(x)
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim or any(p < 0 for p in pad):
        raise ValueError(f"pad: padding {pad} must be non-negative (before, after) pairs for at most {x.ndim} axes "
                         f"of shape {x.shape}")
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    xp = backend.get_array_module(x.data)
    out = xp.pad(x.data, widths, constant_values=value)
    inside = tuple(slice(before, before + size) for (before, _), size in zip(widths, x.shape))
    return Tensor.from_op(out, (x,), lambda g: (g[inside],), "pad")


def interpolate(x, scale_factor=2, mode: str = "nearest") -> Tensor:
    """Nearest-neighbour upsampling by an integer factor: each pixel becomes an sH x sW block.

    x: (N, C, H, W) -> (N, C, H*sH, W*sW). The backward sums each block's gradient back onto its pixel.
    """
    x = as_tensor(x)
    if mode != "nearest":
        raise ValueError(f"interpolate: only mode='nearest' is implemented, got {mode!r}")
    if x.ndim != 4:
        raise ValueError(f"interpolate: input must be 4-D (N, C, H, W), got shape {x.shape}")
    factors = (scale_factor, scale_factor) if numpy.ndim(scale_factor) == 0 else tuple(scale_factor)
    if len(factors) != 2 or any(f != int(f) or f < 1 for f in factors):
        raise ValueError(f"interpolate: scale_factor must be a positive integer (or a pair), got {scale_factor!r}")
    sh, sw = int(factors[0]), int(factors[1])
    n, c, h, w = x.shape
    xp = backend.get_array_module(x.data)
    # (N, C, H, 1, W, 1) broadcast to (N, C, H, sH, W, sW): row i*sH + a, column j*sW + b copies pixel (i, j)
    blocks = xp.broadcast_to(x.data[:, :, :, None, :, None], (n, c, h, sh, w, sw))
    out = blocks.reshape(n, c, h * sh, w * sw)
    return Tensor.from_op(out, (x,), lambda g: (g.reshape(n, c, h, sh, w, sw).sum(axis=(3, 5)),), "interpolate")
