"""Normalisation layers: ``GroupNorm`` (Wu & He 2018) and ``LayerNorm`` (Ba et al. 2016).

Both standardise rows of numbers to zero mean and unit variance, then apply a learned per-channel scale (``weight``,
initialised to 1) and shift (``bias``, initialised to 0); the fused kernels are ``F.group_norm`` / ``F.layer_norm``.
"""
from __future__ import annotations

from . import functional as F
from . import init
from .module import Module, Parameter, as_tensor


class GroupNorm(Module):
    """Normalise each group of C/G channels of each image over (channels in group, H, W).

    Args:
        num_groups: G (must divide num_channels).  num_channels: C.  eps: added to the variance.
        affine: learn per-channel weight and bias.
    Shapes: (N, C, *) -> same.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True):
        super().__init__()
        if num_groups < 1 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels={num_channels} is not divisible by num_groups={num_groups}")
        self.num_groups, self.num_channels, self.eps, self.affine = int(num_groups), int(num_channels), eps, affine
        self.weight = Parameter(init.ones((num_channels,))) if affine else None
        self.bias = Parameter(init.zeros((num_channels,))) if affine else None

    def forward(self, x):
        x = as_tensor(x)
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm: expected input (N, {self.num_channels}, ...), got shape {x.shape}")
        return F.group_norm(x, self.num_groups, self.weight, self.bias, eps=self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class LayerNorm(Module):
    """Normalise each token's feature vector (the last axis).

    Args:
        dim: D, the size of the last axis.  eps: added to the variance.
        elementwise_affine: learn weight (and, if ``bias``, bias) of shape (D,).
    Shapes: (..., D) -> same.
    """

    def __init__(self, dim: int, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True):
        super().__init__()
        self.normalized_shape, self.eps, self.elementwise_affine = (int(dim),), eps, elementwise_affine
        self.weight = Parameter(init.ones((dim,))) if elementwise_affine else None
        self.bias = Parameter(init.zeros((dim,))) if elementwise_affine and bias else None

    def forward(self, x):
        x = as_tensor(x)
        if x.ndim < 1 or x.shape[-1] != self.normalized_shape[0]:
            raise ValueError(f"LayerNorm: expected input with last dimension {self.normalized_shape[0]}, "
                             f"got shape {x.shape}")
        return F.layer_norm(x, self.weight, self.bias, eps=self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
