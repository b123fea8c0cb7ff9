"""``conv2d`` as one fused op: one graph node with an analytic backward made of matrix products (BLAS).

Convolution as a matrix product ("im2col", Chellapilla et al. 2006). For x: (N, C, H, W) and a weight
w: (O, C, kH, kW), every output pixel is a dot product between w[o] and the C*kH*kW input values under the kernel:

    out[n, o, i, j] = sum_{c, a, b} w[o, c, a, b] * x_pad[n, c, i*sH + a, j*sW + b]

Gather those values into one row per output pixel and the whole convolution is ONE matrix product:

    rows[(n, i, j), (a, b, c)] = x_pad[n, c, i*sH + a, j*sW + b]        rows: (N*Ho*Wo, kH*kW*C)
    out_rows = rows @ W_rows,      W_rows[(a, b, c), o] = w[o, c, a, b]  out_rows: (N*Ho*Wo, O)

The gather ("im2row") is a strided *view* of x_pad, copied once. It is taken from x_pad laid out channels-last,
(N, Hp, Wp, C), because there the kW*C numbers of one kernel row are neighbours in memory: the copy moves long
contiguous runs instead of the W-wide pieces that the channels-first layout gives (the gather measured 6-15x
faster at the U-Net's 4x4 and 8x8 feature maps). The price is two transposes (``layout.py``), of x in and of the
output back to NCHW, each 1/9 of the gather's size. And a GEMM over many images keeps BLAS busier than one small
GEMM per image. For 3x3 kernels on many channels, ``winograd.py`` computes the same convolution with 4/9 of the
multiplications.

The backward has two forms (see ``_im2row_backward`` and ``_stride1_backward``):
  - in general, from the forward's rows: dW = rows^T @ dout_rows, and dx = row2im(dout_rows @ W_rows^T),
    row2im being the adjoint of the gather (scatter-add each kernel offset's values back: kH*kW strided adds);
  - with stride 1 (nearly every convolution in a U-Net or VAE), from the im2row of the padded output gradient:
    dx is a convolution of dout with the flipped kernel, and dW a product of x with the same rows. It is faster
    (no scattered adds) and keeps nothing from the forward but x, where the general form keeps rows, 9x the input.
A 1x1 convolution with stride 1 and no padding (``_pointwise``) gathers nothing: it is a linear map of the channels
at every pixel, one GEMM per image straight on the NCHW array.
"""
from __future__ import annotations

import threading

import numpy

from .. import backend
from . import winograd
from .layout import channels_last_padded, to_channels_first
from .ops import as_tensor
from .tensor import Tensor


def _pair(value, name: str, op: str) -> tuple:
    """An int or a pair of ints -> (int, int)."""
    pair = (value, value) if isinstance(value, (int, numpy.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, numpy.integer)) for v in pair):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    return int(pair[0]), int(pair[1])


# -- conv2d ---------------------------------------------------------------------------------------------------------
class _Workspace(threading.local):
    """Scratch memory for the im2row matrices that live only during one call (stride-1 forward and backward).

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

# When Winograd's F(2x2, 3x3) beats im2row (see winograd.py): it saves 5/9 of the GEMM's multiplications but pays
# for its transforms with ~40 array operations, which only many channels amortise. Measured on one core (float32,
# C = O from 16 to 128, 4x4 to 32x32 maps): faster from 48 channels on maps up to 16x16, and from 96 on 32x32.
# On a GPU im2row's one large GEMM is kept (the transforms' ~40 small kernels there are not measured yet).
WINOGRAD_MIN_CHANNELS, WINOGRAD_MAX_PIXELS, WINOGRAD_MIN_CHANNELS_LARGE = 48, 256, 96


def _winograd_pays(x, w) -> bool:
    """True if a stride-1 convolution of x: (N, C, H, W) by w: (O, C, kh, kw) should take the Winograd path."""
    (o, c, kh, kw), (h, wd) = w.shape, x.shape[2:]
    channels = min(c, o)
    small_map = h * wd <= WINOGRAD_MAX_PIXELS
    enough = channels >= WINOGRAD_MIN_CHANNELS_LARGE or (small_map and channels >= WINOGRAD_MIN_CHANNELS)
    return (kh, kw) == (3, 3) and enough and not backend.is_device_array(x)


def _im2row(x_pad, kh: int, kw: int, sh: int, sw: int, scratch: bool = False):
    """x_pad: (N, Hp, Wp, C), channels-last -> rows: (N*Ho*Wo, kh*kw*C), one row per output pixel; and (Ho, Wo).

    rows[(n, i, j), (a, b, c)] = x_pad[n, i*sh + a, j*sw + b, c]. With ``scratch=True`` rows lives in the thread's
    reused workspace: valid only until the next scratch im2row.
    """
    xp = backend.get_array_module(x_pad)
    n, hp, wp, c = x_pad.shape
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    s_n, s_h, s_w, s_c = x_pad.strides
    # windows[n, i, j, a, b, c] = x_pad[n, i*sh + a, j*sw + b, c]: one output pixel further is sh rows/sw columns on
    windows = xp.lib.stride_tricks.as_strided(x_pad, shape=(n, ho, wo, kh, kw, c),
                                              strides=(s_n, s_h * sh, s_w * sw, s_h, s_w, s_c))
    if scratch:
        rows = _WORKSPACE.get(windows.shape, x_pad.dtype, xp)
        rows[...] = windows  # the one copy: windows overlap
    else:
        rows = xp.ascontiguousarray(windows)
    return rows.reshape(n * ho * wo, kh * kw * c), (ho, wo)


# The stride-1 paths gather and multiply one block of images at a time, of about this many bytes of rows: a block
# is written and read back by the GEMM while it is still in the core's cache (2 MiB of L2 on the machine this was
# tuned on), instead of a round trip through main memory for 9x the input. Measured on one core with a cold cache
# (as inside a model): forward up to 25 % faster than one block for the whole batch on the larger inputs, no
# slower on small ones; the backward of the 64-channel 32x32 benchmark conv 22 % faster. A GPU gets the whole batch.
_BLOCK_BYTES = 1 << 20


def _image_blocks(n: int, bytes_per_image: int, like):
    """Slices of range(n) holding about ``_BLOCK_BYTES`` of rows each (at least one image; all n on a GPU)."""
    step = n if backend.is_device_array(like) else max(1, min(n, _BLOCK_BYTES // max(1, bytes_per_image)))
    return [slice(start, min(start + step, n)) for start in range(0, n, step)]


def _weight_rows(w):
    """w: (O, C, kh, kw) -> W_rows: (kh*kw*C, O) with W_rows[(a, b, c), o] = w[o, c, a, b] (matches ``_im2row``)."""
    o = w.shape[0]
    return w.transpose(2, 3, 1, 0).reshape(-1, o)


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
    parents = (x, weight) if bias is None else (x, weight, bias)
    if (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0):
        out, backward = _pointwise(x, weight, bias)
        return Tensor.from_op(out, parents, backward, "conv2d")

    # Stride 1 (and padding < kernel) has a backward that needs nothing from the forward but x and w, so its
    # rows can live in the reused workspace, one block of images at a time; otherwise the backward keeps them.
    stride1 = (sh, sw) == (1, 1) and ph < kh and pw < kw
    if stride1 and _winograd_pays(x.data, weight.data):
        out = winograd.conv3x3(x.data, weight.data, None if bias is None else bias.data, (ph, pw))
        return Tensor.from_op(out, parents, _stride1_backward(x, weight, bias, ph, pw), "conv2d")
    xp = backend.get_array_module(x.data)
    x_pad = channels_last_padded(x.data, ph, pw)
    w_rows = _weight_rows(weight.data)  # (K, O), K = kh*kw*C
    if stride1:
        ho, wo = h + 2 * ph - kh + 1, w + 2 * pw - kw + 1
        out = xp.empty((n * ho * wo, o), dtype=xp.result_type(x.data, w_rows))
        for block in _image_blocks(n, ho * wo * kh * kw * c * x.dtype.itemsize, x.data):
            rows, _ = _im2row(x_pad[block], kh, kw, 1, 1, scratch=True)  # (images * Ho*Wo, K)
            xp.matmul(rows, w_rows, out=out[block.start * ho * wo:block.stop * ho * wo])
    else:
        rows, (ho, wo) = _im2row(x_pad, kh, kw, sh, sw)  # (N*Ho*Wo, K), kept for the backward
        out = rows @ w_rows  # (N*Ho*Wo, K) @ (K, O): the whole batch in one GEMM
    del x_pad
    out = to_channels_first(out.reshape(n, ho, wo, o), None if bias is None else bias.data)
    if stride1:
        backward = _stride1_backward(x, weight, bias, ph, pw)
    else:
        backward = _im2row_backward(x, weight, bias, rows, (sh, sw), (ph, pw))
    return Tensor.from_op(out, parents, backward, "conv2d")


def _pointwise(x, weight, bias):
    """A 1x1 convolution (stride 1, no padding): out[n] = W @ x[n] with W = w: (O, C), at every pixel at once.

    Returns (out: (N, O, H, W), backward). dx[n] = W^T @ dout[n]; dW = sum_n dout[n] @ x[n]^T; db = sum dout.
    """
    xp = backend.get_array_module(x.data)
    n, c, h, w = x.shape
    o = weight.shape[0]
    w2 = weight.data.reshape(o, c)
    x3 = x.data.reshape(n, c, h * w)
    out = w2 @ x3  # (O, C) @ (N, C, H*W) -> (N, O, H*W): one GEMM per image, already in NCHW order
    if bias is not None:
        out += bias.data[:, None]

    def backward(g):
        g3 = g.reshape(n, o, h * w)
        gx = (w2.T @ g3).reshape(x.shape) if x.requires_grad else None
        gw = xp.tensordot(g3, x3, axes=([0, 2], [0, 2])).reshape(weight.shape) if weight.requires_grad else None
        gb = g3.sum(axis=(0, 2)) if bias is not None and bias.requires_grad else None
        return gx, gw, gb
    return out.reshape(n, o, h, w), backward


def _stride1_backward(x, weight, bias, ph: int, pw: int):
    """The backward of a stride-1 convolution, built from the im2row of the output gradient alone.

    Written with the gradient's padded windows, g_rows[(n, y, x), (a, b, o)] = g_pad[n, o, y + a, x + b] where g is
    padded by k-1-p, both gradients are GEMMs with the kernel flipped in space (a -> kH-1-a, b -> kW-1-b):
        dx[n, c, y, x]               = sum_{a, b, o} g_rows[(n, y, x), (a, b, o)] w[o, c, kH-1-a, kW-1-b]
        dw[o, c, kH-1-a, kW-1-b]     = sum_{n, y, x} x[n, c, y, x] g_rows[(n, y, x), (a, b, o)]
    The first says that dx is itself a convolution, of g with the flipped kernel ("transposed convolution",
    Dumoulin & Visin 2016, sec. 4). One im2row + two GEMMs, and the forward keeps no rows. As in the forward, the
    rows are made and used one block of images at a time (in cache); dw sums the blocks' products. Where the
    forward would take Winograd's path, dx (a 3x3 stride-1 convolution of g padded by 2 - p) takes it too.
    """
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape

    def backward(g):
        xp = backend.get_array_module(g)
        gx = gw = gb = None
        flipped = weight.data[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C, O, kh, kw): dx = conv(g, flipped)
        if x.requires_grad and _winograd_pays(g, flipped):  # dx, a 3x3 convolution itself, by Winograd
            gx = winograd.conv3x3(g, flipped, None, (kh - 1 - ph, kw - 1 - pw))
        rows_for_gx = x.requires_grad and gx is None
        if rows_for_gx or weight.requires_grad:
            g_pad = channels_last_padded(g, kh - 1 - ph, kw - 1 - pw)
            if rows_for_gx:
                w_flipped = _weight_rows(flipped)  # (kh*kw*O, C)
                gx_rows = xp.empty((n * h * w, c), dtype=g.dtype)
            if weight.requires_grad:
                x_rows = x.data.transpose(1, 0, 2, 3).reshape(c, n * h * w)  # (C, N*H*W), one copy
                gw_flipped = xp.zeros((c, kh * kw * o), dtype=g.dtype)
            for block in _image_blocks(n, h * w * kh * kw * o * g.dtype.itemsize, g):
                g_rows, _ = _im2row(g_pad[block], kh, kw, 1, 1, scratch=True)  # (images * H*W, kh*kw*O)
                pixels = slice(block.start * h * w, block.stop * h * w)
                if rows_for_gx:
                    xp.matmul(g_rows, w_flipped, out=gx_rows[pixels])
                if weight.requires_grad:
                    gw_flipped += x_rows[:, pixels] @ g_rows
            if rows_for_gx:
                gx = to_channels_first(gx_rows.reshape(n, h, w, c))
            if weight.requires_grad:  # un-flip, to (O, C, kh, kw)
                gw = gw_flipped.reshape(c, kh, kw, o)[:, ::-1, ::-1].transpose(3, 0, 1, 2).copy()
        if bias is not None and bias.requires_grad:
            gb = g.sum(axis=(0, 2, 3))
        return gx, gw, gb
    return backward


def _im2row_backward(x, weight, bias, rows, stride: tuple, padding: tuple):
    """The backward of any convolution, from the forward's rows: (N*Ho*Wo, kh*kw*C).

        dW_rows = rows^T @ dout_rows                one GEMM over the batch
        dx_pad  = row2im(dout_rows @ W_rows^T)     scatter-add each kernel offset's values back onto x_pad
    """
    xp = backend.get_array_module(rows)
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    (sh, sw), (ph, pw) = stride, padding

    def backward(g):
        ho, wo = g.shape[2:]
        g_rows = g.transpose(0, 2, 3, 1).reshape(n * ho * wo, o)  # channels-last, (N*Ho*Wo, O)
        gx = gw = gb = None
        if x.requires_grad:
            d_rows = (g_rows @ _weight_rows(weight.data).T).reshape(n, ho, wo, kh, kw, c)
            dx_pad = xp.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=g.dtype)
            for a in range(kh):  # one strided add per kernel offset; each covers every image, pixel and channel
                for b in range(kw):
                    dx_pad[:, a:a + sh * (ho - 1) + 1:sh, b:b + sw * (wo - 1) + 1:sw] += d_rows[:, :, :, a, b]
            gx = to_channels_first(dx_pad[:, ph:ph + h, pw:pw + w])  # crop the padding, back to NCHW
        if weight.requires_grad:
            gw = (rows.T @ g_rows).reshape(kh, kw, c, o).transpose(3, 2, 0, 1).copy()
        if bias is not None and bias.requires_grad:
            gb = g_rows.sum(axis=0)
        return gx, gw, gb
    return backward
