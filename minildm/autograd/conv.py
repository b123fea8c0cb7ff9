"""The weight layers as fused ops, ``linear`` and ``conv2d``, and the resampling around them: ``pad``, ``interpolate``.

Each is one graph node with an analytic backward made of matrix products, so the heavy lifting is done by BLAS.

Convolution as a matrix product ("im2col", Chellapilla et al. 2006). For x: (N, C, H, W) and a weight
w: (O, C, kH, kW), every output pixel is a dot product between w[o] and the C*kH*kW input values under the kernel:

    out[n, o, i, j] = sum_{c, a, b} w[o, c, a, b] * x_pad[n, c, i*sH + a, j*sW + b]

Gathering those values for all L = Ho*Wo output pixels gives a matrix cols[n]: (C*kH*kW, L), and then
``out[n] = W @ cols[n]`` with W = w reshaped to (O, C*kH*kW). The gather is a strided *view* of x_pad (no Python
loop): window (i, j) starts i*sH rows and j*sW columns further on, which is just another pair of strides.

The backward has two forms (see ``_col2im_backward`` and ``_stride1_backward``):
  - in general, from the forward's im2col buffer: dW = sum_n dout[n] @ cols[n]^T, and dx = col2im(W^T @ dout),
    col2im being the adjoint of the gather (scatter-add each kernel offset's columns back: kH*kW strided adds);
  - with stride 1 (nearly every convolution in a U-Net or VAE), from the im2col of the padded output gradient:
    dx is a convolution of dout with the flipped kernel, and dW a product of x with the same columns. It is faster
    (no scattered adds) and keeps nothing from the forward but x, where the general form keeps cols, 9x the input.
"""
from __future__ import annotations

import threading

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
class _Workspace(threading.local):
    """Scratch memory for the im2col matrices that live only during one call (stride-1 forward and backward).

    A fresh matrix of 9x the input would cost about as much to allocate as to fill: the OS hands out new memory
    one page fault at a time. So each thread keeps one flat buffer, grown to the largest request so far, and every
    call views it as the matrix it needs. (The buffer stays allocated; its size is that of the largest such matrix.)
    """

    def __init__(self):
        self.buffer = None

    def get(self, shape: tuple, dtype, xp):
        nbytes = int(numpy.prod(shape)) * numpy.dtype(dtype).itemsize
        if self.buffer is None or self.buffer.nbytes < nbytes or backend.get_array_module(self.buffer) is not xp:
            self.buffer = None  # release the old one before allocating its replacement
            self.buffer = xp.empty(nbytes, dtype=xp.uint8)
        return self.buffer[:nbytes].view(dtype).reshape(shape)


_WORKSPACE = _Workspace()


def _im2col(x_pad, kh: int, kw: int, sh: int, sw: int, scratch: bool = False, by_channel: bool = False):
    """x_pad: (N, C, Hp, Wp) -> cols: (N, C*kh*kw, Ho*Wo), a contiguous copy of every kernel window; and (Ho, Wo).

    With ``by_channel=True`` the same numbers are laid out as one matrix (C*kh*kw, N*Ho*Wo): every image's columns
    side by side, so that one GEMM covers the whole batch. With ``scratch=True`` cols lives in the thread's reused
    workspace: valid only until the next scratch im2col. A 1x1 kernel with stride 1 (per image) needs no copy:
    cols is then x_pad itself, reshaped (callers only read cols).
    """
    xp = backend.get_array_module(x_pad)
    n, c, hp, wp = x_pad.shape
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    if (kh, kw, sh, sw) == (1, 1, 1, 1) and not by_channel:  # a 1x1 kernel's only window is the pixel: no copy
        return x_pad.reshape(n, c, ho * wo), (ho, wo)
    s_n, s_c, s_h, s_w = x_pad.strides
    # windows[n, c, a, b, i, j] = x_pad[n, c, i*sh + a, j*sw + b]: moving one output pixel moves sh rows/sw columns
    shape, strides = (n, c, kh, kw, ho, wo), (s_n, s_c, s_h, s_w, s_h * sh, s_w * sw)
    if by_channel:  # the same view with the image axis moved after the kernel offsets: windows[c, a, b, n, i, j]
        shape, strides = shape[1:4] + shape[:1] + shape[4:], strides[1:4] + strides[:1] + strides[4:]
    windows = xp.lib.stride_tricks.as_strided(x_pad, shape=shape, strides=strides)
    if scratch:
        cols = _WORKSPACE.get(windows.shape, x_pad.dtype, xp)
        cols[...] = windows  # the one copy: windows overlap
    else:
        cols = xp.ascontiguousarray(windows)
    if by_channel:
        return cols.reshape(c * kh * kw, n * ho * wo), (ho, wo)
    return cols.reshape(n, c * kh * kw, ho * wo), (ho, wo)


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

    # Stride 1 (and padding < kernel) has a backward that needs nothing from the forward but x and w, so its
    # im2col matrix can live in the reused workspace; otherwise the backward keeps it.
    stride1 = (sh, sw) == (1, 1) and ph < kh and pw < kw
    x_pad = _pad_hw(x.data, ph, pw)
    cols, (ho, wo) = _im2col(x_pad, kh, kw, sh, sw, scratch=stride1)  # (N, K, L) with K = C*kh*kw, L = Ho*Wo
    w2 = weight.data.reshape(o, c * kh * kw)
    out = w2 @ cols  # (O, K) @ (N, K, L) -> (N, O, L): one GEMM per image, already in NCHW order
    if bias is not None:
        out += bias.data[:, None]
    out = out.reshape(n, o, ho, wo)
    if stride1:
        backward = _stride1_backward(x, weight, bias, ph, pw)
    else:
        backward = _col2im_backward(x, weight, bias, cols, x_pad.shape, (sh, sw), (ph, pw))
    parents = (x, weight) if bias is None else (x, weight, bias)
    return Tensor.from_op(out, parents, backward, "conv2d")


def _stride1_backward(x, weight, bias, ph: int, pw: int):
    """The backward of a stride-1 convolution, built from the im2col of the output gradient alone.

    Written with the gradient's padded windows, g_cols[n, (o, a, b), (y, x)] = g_pad[n, o, y + a, x + b] where g is
    padded by k-1-p, both gradients are GEMMs with the kernel flipped in space (a -> kH-1-a, b -> kW-1-b):
        dx[n, c, y, x]               = sum_{o, a, b} w[o, c, kH-1-a, kW-1-b] g_cols[n, (o, a, b), (y, x)]
        dw[o, c, kH-1-a, kW-1-b]     = sum_{n, y, x} x[n, c, y, x] g_cols[n, (o, a, b), (y, x)]
    The first says that dx is itself a convolution, of g with the flipped kernel ("transposed convolution",
    Dumoulin & Visin 2016, sec. 4). One im2col + two GEMMs, and the forward keeps no im2col buffer (9x the input).

    Two layouts of the same sums, chosen by shape (tests/autograd/test_fused_details.py checks they agree):
      - per image (large images): one GEMM per image for dx, and for dw one per image summed over the batch, which
        holds N partial gradients (N, C, O*kH*kW) for a moment: cheap while C <= H*W;
      - by channel (small feature maps with many channels, the inner levels of a U-Net): the columns of all images
        side by side, (O*kH*kW, N*H*W), so that each gradient is ONE GEMM over the batch, without the N partial
        weight gradients (larger than the columns themselves when C > H*W), at the price of two small transposes.
    """
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    by_channel = c > h * w

    def backward(g):
        gx = gw = gb = None
        if x.requires_grad or weight.requires_grad:
            # (N, O*kh*kw, H*W), or (O*kh*kw, N*H*W) by channel; in the workspace: only the two GEMMs below read it
            g_cols, _ = _im2col(_pad_hw(g, kh - 1 - ph, kw - 1 - pw), kh, kw, 1, 1, scratch=True,
                                by_channel=by_channel)
        if x.requires_grad:
            w_flipped = weight.data[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).reshape(c, o * kh * kw)
            gx = w_flipped @ g_cols  # (C, O*kh*kw) @ (N, O*kh*kw, H*W), or @ (O*kh*kw, N*H*W)
            gx = gx.reshape(c, n, h, w).transpose(1, 0, 2, 3).copy() if by_channel else gx.reshape(x.shape)
        if weight.requires_grad:
            if by_channel:  # (C, N*H*W) @ (N*H*W, O*kh*kw)
                gw_flipped = x.data.transpose(1, 0, 2, 3).reshape(c, n * h * w) @ g_cols.T
            else:  # sum_n g_cols[n] @ x[n]^T: (O*kh*kw, C), transposed back (measured ~20 % faster than x @ g_cols^T)
                gw_flipped = (g_cols @ x.data.reshape(n, c, h * w).transpose(0, 2, 1)).sum(axis=0).T
            gw = gw_flipped.reshape(c, o, kh, kw)[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).copy()  # un-flip
        if bias is not None and bias.requires_grad:
            gb = g.sum(axis=(0, 2, 3))
        return gx, gw, gb
    return backward


def _col2im_backward(x, weight, bias, cols, padded_shape: tuple, stride: tuple, padding: tuple):
    """The backward of any convolution, from the forward's im2col buffer ``cols``: (N, C*kh*kw, Ho*Wo).

        dW      = sum_n dout[n] @ cols[n]^T       one batched GEMM, summed over the images
        dx_pad  = col2im(W^T @ dout[n])           scatter-add each kernel offset's column gradients onto x_pad
    """
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    (sh, sw), (ph, pw) = stride, padding
    w2 = weight.data.reshape(o, c * kh * kw)

    def backward(g):
        ho, wo = g.shape[2:]
        g3 = g.reshape(n, o, ho * wo)
        gx = gw = gb = None
        if x.requires_grad:
            dcols = w2.T @ g3  # (K, O) @ (N, O, L) -> (N, K, L)
            gx = _col2im(dcols, padded_shape, kh, kw, sh, sw, ho, wo)[:, :, ph:ph + h, pw:pw + w]  # crop the pad
        if weight.requires_grad:
            gw = (g3 @ cols.transpose(0, 2, 1)).sum(axis=0).reshape(weight.shape)
        if bias is not None and bias.requires_grad:
            gb = g3.sum(axis=(0, 2))
        return gx, gw, gb
    return backward


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
