"""How a diffusion model is told the noise level: sinusoidal timestep embeddings and the MLP that follows them.

A timestep t becomes a vector of sines and cosines at geometrically spaced frequencies (the positional encoding
of Vaswani et al. 2017, used for t in DDPM, Ho et al. 2020, sec. 3.2 / appendix B). With half = dim // 2 and
i = 0 .. half-1 (diffusers' ``get_timestep_embedding``):

    freq_i = exp(-ln(max_period) * i / (half - downscale_freq_shift))
    emb    = [sin(scale * t * freq_i) for all i,  cos(scale * t * freq_i) for all i]     (cos first if flipped)

and a zero column is appended when dim is odd. ``TimestepEmbedding`` then maps it through
linear_1 -> SiLU -> linear_2 to the width the ResNet blocks expect.
"""
from __future__ import annotations

import math

from .. import backend
from ..autograd import Tensor
from . import init
from .activations import get_activation
from .linear import Linear
from .module import Module, as_tensor


def get_timestep_embedding(timesteps, embedding_dim: int, flip_sin_to_cos: bool = False,
                           downscale_freq_shift: float = 1, scale: float = 1, max_period: int = 10000) -> Tensor:
    """Sinusoidal embeddings of a batch of (possibly fractional) timesteps.

    Args:
        timesteps: 1-D (N,) array, list or Tensor.
        embedding_dim: D.  flip_sin_to_cos: put the cosines first (SD's U-Net does).
        downscale_freq_shift: s in freq_i = exp(-ln(max_period) i / (half - s)); SD uses 0, DDPM's code 1.
        scale: multiplies the arguments.  max_period: the longest wavelength, in timesteps.
    Returns:
        (N, D) float32 Tensor (no gradient: timesteps are inputs, not parameters).

    The frequencies are computed in float64 and rounded once to float32 (exactly rounded, the same on NumPy and
    CuPy); the products t * freq_i are then formed in float32, as diffusers does. Note that for t ~ 1000 a
    float32 argument is only known to ~6e-5, which bounds how closely any two float32 implementations can agree.
    """
    t = timesteps.data if isinstance(timesteps, Tensor) else backend.to_device(timesteps)
    if t.ndim != 1:
        raise ValueError(f"get_timestep_embedding: timesteps must be 1-D (one per batch element), got shape {t.shape}")
    xp = backend.xp()
    half = embedding_dim // 2
    exponent = xp.arange(half, dtype=xp.float64) * (-math.log(max_period) / (half - downscale_freq_shift))
    freqs = xp.exp(exponent).astype(xp.float32)
    args = t.astype(xp.float32)[:, None] * freqs[None, :]
    if scale != 1:
        args = args * xp.float32(scale)
    sin, cos = xp.sin(args), xp.cos(args)
    parts = [cos, sin] if flip_sin_to_cos else [sin, cos]
    if embedding_dim % 2:
        parts.append(xp.zeros((t.shape[0], 1), dtype=xp.float32))
    return Tensor(xp.concatenate(parts, axis=1))


class Timesteps(Module):
    """Module form of ``get_timestep_embedding`` (no parameters); diffusers' ``time_proj``."""

    def __init__(self, num_channels: int, flip_sin_to_cos: bool, downscale_freq_shift: float, scale: float = 1):
        super().__init__()
        self.num_channels, self.flip_sin_to_cos = num_channels, flip_sin_to_cos
        self.downscale_freq_shift, self.scale = downscale_freq_shift, scale

    def forward(self, timesteps) -> Tensor:
        return get_timestep_embedding(timesteps, self.num_channels, flip_sin_to_cos=self.flip_sin_to_cos,
                                      downscale_freq_shift=self.downscale_freq_shift, scale=self.scale)

    def extra_repr(self) -> str:
        return (f"num_channels={self.num_channels}, flip_sin_to_cos={self.flip_sin_to_cos}, "
                f"downscale_freq_shift={self.downscale_freq_shift}")


class TimestepEmbedding(Module):
    """The time-embedding MLP: linear_1 -> act -> linear_2 (-> post_act), diffusers' ``time_embedding``.

    Args:
        in_channels: width of the sinusoidal embedding.  time_embed_dim: hidden (and default output) width.
        act_fn: "silu" (default), "swish" or "gelu".  out_dim: output width (default time_embed_dim).
        post_act_fn: optional activation after linear_2.
        cond_proj_dim: if given, ``forward(sample, condition)`` adds ``cond_proj(condition)`` (no bias) first.
        sample_proj_bias: biases of linear_1 and linear_2.
    Shapes: (N, in_channels) -> (N, out_dim or time_embed_dim).
    """

    def __init__(self, in_channels: int, time_embed_dim: int, act_fn: str = "silu", out_dim: int | None = None,
                 post_act_fn: str | None = None, cond_proj_dim: int | None = None, sample_proj_bias: bool = True,
                 generator=None):
        super().__init__()
        g = init.host_generator(generator)
        self.in_channels = in_channels
        self.linear_1 = Linear(in_channels, time_embed_dim, bias=sample_proj_bias, generator=g)
        self.cond_proj = Linear(cond_proj_dim, in_channels, bias=False, generator=g) if cond_proj_dim else None
        self.act = get_activation(act_fn, "TimestepEmbedding") if act_fn is not None else None
        self.linear_2 = Linear(time_embed_dim, out_dim or time_embed_dim, bias=sample_proj_bias, generator=g)
        self.post_act = get_activation(post_act_fn, "TimestepEmbedding") if post_act_fn is not None else None

    def forward(self, sample, condition=None):
        sample = as_tensor(sample)
        if sample.ndim != 2 or sample.shape[1] != self.in_channels:
            raise ValueError(f"TimestepEmbedding: expected input (N, {self.in_channels}), got shape {sample.shape}")
        if condition is not None:
            if self.cond_proj is None:
                raise ValueError("TimestepEmbedding: got a condition but was built without cond_proj_dim")
            sample = sample + self.cond_proj(condition)
        sample = self.linear_1(sample)
        if self.act is not None:
            sample = self.act(sample)
        sample = self.linear_2(sample)
        return self.post_act(sample) if self.post_act is not None else sample
