"""``AutoencoderKL``: the variational autoencoder in which Stable Diffusion does its diffusion.

Latent diffusion (Rombach et al. 2022, sec. 3.1) first trains an autoencoder that squeezes an image x (B, 3, H, W)
into a latent z (B, 4, H/8, W/8) and back, then runs the diffusion model on z, 48x fewer numbers. The encoder does
not output z itself but a diagonal Gaussian q(z|x) = N(mean, diag(exp(logvar))) (Kingma & Welling 2014); training
adds a small KL penalty towards N(0, I) ("KL-reg."), which keeps the latent space smooth without forcing it to be
a unit Gaussian. quant_conv / post_quant_conv are 1x1 convs around the latent (the names come from LDM's
vector-quantised sibling, where a codebook sits there).

    vae = AutoencoderKL.from_pretrained("weights/vae")
    posterior = vae.encode(images)                              # images in [-1, 1]
    latents = posterior.sample(generator=0) * vae.config["scaling_factor"]
    images = vae.decode(latents / vae.config["scaling_factor"])

``scaling_factor`` (0.18215 for SD 1.x) rescales latents to roughly unit variance before the diffusion model sees
them (LDM sec. 4.3.2 and appendix D.1); the pipelines apply it, encode/decode do not. Configs and state-dict names
are diffusers', so its checkpoints load unchanged.
"""
from __future__ import annotations

import math

from .. import backend, nn
from ..autograd import Tensor
from ..nn import init
from .modeling_utils import ModelMixin
from .vae_blocks import Decoder, Encoder

_ACTIVATIONS = ("silu", "swish")  # the same function; every VAE block uses it


class DiagonalGaussianDistribution:
    """N(mean, diag(var)) per latent element, from the encoder's (B, 2C, h, w) output split along channels.

    Attributes (all Tensors (B, C, h, w), differentiable): ``mean``, ``logvar`` (clamped to [-30, 20] as in LDM, so
    exp never overflows nor underflows to an exact zero), ``std = exp(logvar / 2)``, ``var = exp(logvar)``.
    ``deterministic=True`` makes it a point mass at the mean (std = var = 0).
    """

    def __init__(self, parameters: Tensor, deterministic: bool = False):
        if parameters.ndim != 4 or parameters.shape[1] % 2:
            raise ValueError(f"DiagonalGaussianDistribution: expected parameters (B, 2C, h, w), "
                             f"got shape {tuple(parameters.shape)}")
        self.parameters = parameters
        self.deterministic = deterministic
        self.mean, logvar = parameters.chunk(2, axis=1)
        self.logvar = logvar.clip(-30.0, 20.0)
        if deterministic:
            zeros = Tensor(backend.get_array_module(parameters.data).zeros_like(self.mean.data))
            self.std = self.var = zeros
        else:
            self.std = (0.5 * self.logvar).exp()
            self.var = self.logvar.exp()

    def sample(self, generator=None) -> Tensor:
        """z = mean + std * eps, eps ~ N(0, I): the reparameterisation trick (Kingma & Welling 2014, sec. 2.4),
        so gradients reach mean and logvar through z. ``generator``: int seed or backend generator."""
        xp = backend.get_array_module(self.mean.data)
        eps = backend.rng(generator).standard_normal(self.mean.shape, dtype=xp.float32)
        return self.mean + self.std * Tensor(eps.astype(self.mean.dtype, copy=False))

    def mode(self) -> Tensor:
        """The most likely latent: the mean."""
        return self.mean

    def kl(self, other: "DiagonalGaussianDistribution | None" = None) -> Tensor:
        """KL(self || other) per sample, summed over (C, h, w): a (B,) Tensor. ``other`` defaults to N(0, I):

            KL = 1/2 sum(mean^2 + var - 1 - logvar)                       (Kingma & Welling 2014, appendix B)
            KL = 1/2 sum((mean - m_o)^2 / var_o + var / var_o - 1 - logvar + logvar_o)   (two diagonal Gaussians)
        """
        if self.deterministic:
            return Tensor(backend.get_array_module(self.mean.data).zeros(self.mean.shape[0], self.mean.dtype))
        if other is None:
            terms = self.mean ** 2 + self.var - 1.0 - self.logvar
        else:
            terms = (self.mean - other.mean) ** 2 / other.var + self.var / other.var - 1.0 - self.logvar + other.logvar
        return 0.5 * terms.sum(axis=(1, 2, 3))

    def nll(self, sample, axis=(1, 2, 3)) -> Tensor:
        """Negative log-likelihood of ``sample`` under this Gaussian, summed over ``axis``:
        1/2 sum(log 2 pi + logvar + (sample - mean)^2 / var)."""
        if self.deterministic:
            return Tensor(backend.get_array_module(self.mean.data).zeros(self.mean.shape[0], self.mean.dtype))
        sample = sample if isinstance(sample, Tensor) else Tensor(sample)
        return 0.5 * (math.log(2 * math.pi) + self.logvar + (sample - self.mean) ** 2 / self.var).sum(axis=axis)


class AutoencoderKL(ModelMixin, nn.Module):
    """The KL-regularised autoencoder of latent diffusion. Arguments are diffusers' config keys.

    Args:
        in_channels, out_channels: image channels (3).
        down_block_types, up_block_types: one per level; only "DownEncoderBlock2D" / "UpDecoderBlock2D".
        block_out_channels: channels per level, e.g. (128, 256, 512, 512) for SD; the latent is
            2 ** (levels - 1) times smaller than the image per side.
        layers_per_block: resnets per encoder level (the decoder has one more).
        act_fn: "silu" (or its other name "swish"); nothing else is used by diffusers' VAEs.
        latent_channels: C of the latent (4 for SD).
        norm_num_groups: GroupNorm groups; must divide every channel count.
        sample_size: the image size the model was trained at (informational).
        scaling_factor, shift_factor: latents for the diffusion model are (z - shift_factor) * scaling_factor;
            applied by the pipelines, stored here because they belong to the trained VAE.
        latents_mean, latents_std: per-channel latent statistics some checkpoints carry (stored, unused).
        force_upcast: accepted and ignored (diffusers' hint to run the VAE in float32; minildm computes in the
            model's dtype, float32 by default).
        use_quant_conv, use_post_quant_conv: include the 1x1 convs around the latent.
        mid_block_add_attention: self-attention in the mid blocks of encoder and decoder.
        generator: int seed or host Generator for the random initialisation.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, down_block_types=("DownEncoderBlock2D",),
                 up_block_types=("UpDecoderBlock2D",), block_out_channels=(64,), layers_per_block: int = 1,
                 act_fn: str = "silu", latent_channels: int = 4, norm_num_groups: int = 32, sample_size: int = 32,
                 scaling_factor: float = 0.18215, shift_factor: float | None = None, latents_mean=None,
                 latents_std=None, force_upcast: bool = True, use_quant_conv: bool = True,
                 use_post_quant_conv: bool = True, mid_block_add_attention: bool = True, generator=None):
        super().__init__()
        if act_fn not in _ACTIVATIONS:
            raise ValueError(f"AutoencoderKL: unsupported act_fn {act_fn!r}; supported: {list(_ACTIVATIONS)}")
        if len(down_block_types) != len(up_block_types):
            raise ValueError(f"AutoencoderKL: {len(down_block_types)} down_block_types but {len(up_block_types)} "
                             "up_block_types; the decoder mirrors the encoder")
        g = init.host_generator(generator)
        self.in_channels, self.latent_channels = in_channels, latent_channels
        self.encoder = Encoder(in_channels, latent_channels, down_block_types, block_out_channels, layers_per_block,
                               norm_num_groups, double_z=True, mid_block_add_attention=mid_block_add_attention,
                               generator=g)
        self.decoder = Decoder(latent_channels, out_channels, up_block_types, block_out_channels, layers_per_block,
                               norm_num_groups, mid_block_add_attention=mid_block_add_attention, generator=g)
        self.quant_conv = nn.Conv2d(2 * latent_channels, 2 * latent_channels, 1, generator=g) if use_quant_conv \
            else None
        self.post_quant_conv = nn.Conv2d(latent_channels, latent_channels, 1, generator=g) if use_post_quant_conv \
            else None

    def encode(self, x) -> DiagonalGaussianDistribution:
        """Images (B, in_channels, H, W), roughly in [-1, 1] -> the posterior q(z|x) over (B, latent_channels, h, w)."""
        x = nn.module.as_tensor(x)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"AutoencoderKL.encode: expected images (B, {self.in_channels}, H, W), "
                             f"got shape {tuple(x.shape)}")
        moments = self.encoder(x)
        if self.quant_conv is not None:
            moments = self.quant_conv(moments)
        return DiagonalGaussianDistribution(moments)

    def decode(self, z) -> Tensor:
        """Latents (B, latent_channels, h, w) -> images (B, out_channels, h * f, w * f), f = 2 ** (levels - 1)."""
        z = nn.module.as_tensor(z)
        if z.ndim != 4 or z.shape[1] != self.latent_channels:
            raise ValueError(f"AutoencoderKL.decode: expected latents (B, {self.latent_channels}, h, w), "
                             f"got shape {tuple(z.shape)}")
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        return self.decoder(z)

    def forward(self, x, sample_posterior: bool = False, generator=None) -> Tensor:
        """Reconstruction decode(z) of images x, with z the posterior's mean (or a sample of it)."""
        posterior = self.encode(x)
        z = posterior.sample(generator) if sample_posterior else posterior.mode()
        return self.decode(z)
