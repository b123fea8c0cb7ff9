"""``Conv2d``: 2-D cross-correlation with learned kernels (LeCun et al. 1989), as ``torch.nn.Conv2d``.

    out[n, o, i, j] = b[o] + sum_{c, a, b} W[o, c, a, b] * x_pad[n, c, i*stride + a, j*stride + b]

Weights are (out_channels, in_channels, kH, kW). The work is done by ``F.conv2d`` (im2row + one GEMM).
"""
from __future__ import annotations

import numbers

from . import functional as F
from . import init
from .module import Module, Parameter, as_tensor


def _pair(value) -> tuple:
    return (int(value), int(value)) if isinstance(value, numbers.Integral) else tuple(int(v) for v in value)


class Conv2d(Module):
    """Args:
        in_channels, out_channels: C and O.
        kernel_size, stride, padding: an int or a (height, width) pair; zero padding.
        bias: learn a per-output-channel bias.
        generator: int seed or host Generator (None: seed 0). W and b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
            fan_in = in_channels * kH * kW.
    Shapes: (N, C, H, W) -> (N, O, Ho, Wo), Ho = (H + 2 padding - kH) // stride + 1.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True,
                 generator=None):
        super().__init__()
        g = init.host_generator(generator)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = _pair(kernel_size), _pair(stride), _pair(padding)
        kh, kw = self.kernel_size
        bound = init.fan_in_bound(self.in_channels * kh * kw)
        self.weight = Parameter(init.uniform((self.out_channels, self.in_channels, kh, kw), bound, g))
        self.bias = Parameter(init.uniform((self.out_channels,), bound, g)) if bias else None

    def forward(self, x):
        x = as_tensor(x)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Conv2d: expected input (N, {self.in_channels}, H, W), got shape {x.shape}")
        return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
             f"padding={self.padding}")
        return s if self.bias is not None else s + ", bias=False"
