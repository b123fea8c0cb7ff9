"""Recipe 2 of 3: the autoencoder in whose latent space the diffusion model works (Rombach et al. 2022, sec. 3.1).

``AutoencoderKL`` squeezes a 32x32x3 image into an 8x8x4 latent (f = 4: three block levels, two downsamplings)
and back. Training minimises, per example,

    loss = mean over pixels (x̂ - x)²  +  β · mean over latent elements KL(q(z|x) || N(0, I))

with x̂ = decode(z), z ~ q(z|x) drawn with the reparameterisation trick (Kingma & Welling 2014).

Reconstruction: mean squared error on images in [-1, 1]. Our images are flat colours on black with sharp
anti-aliased edges; MSE reaches every pixel and converges fast, and the attribute checker (which reads colour,
shape, size and position back) confirms the reconstructions keep what the captions describe.

β = 1e-5, per element on both sides. The KL term is there to keep the latents at a sane scale (so that one number,
``scaling_factor``, brings them to unit variance for the diffusion model) and the posteriors from collapsing to
points; it must not fight the reconstruction. The sizes, measured at the end of the ``shapes`` run: reconstruction
MSE ~5e-3; KL per element ~5 (latent spread ~1.8, posterior σ ~0.02, both unscaled), so β·KL ~5e-5, about 1 % of the
loss. With β = 1e-3 the KL term would be as large as the reconstruction term and would pull every latent towards
N(0, I), trading sharp edges (what tells a small triangle from a small circle) for a rounder latent distribution we
do not need; with β = 0 nothing would bound the latents' scale. 1e-5 lets the reconstruction win by two orders of
magnitude while still tying the latents to the origin: they come out with std ~1.8, close to unit scale.

scaling_factor = 1 / std of the training latents (all elements of z ~ q(z|x) over the training set), computed
after training and written into the VAE's config, as LDM prescribes (appendix D.1) — SD's 0.18215 is the value for
*its* autoencoder, not ours. The latents' moments are saved too (latents.safetensors), so the U-Net recipe need
not encode the training set a second time.

    result = train_autoencoder("shapes", "runs/shapes/vae")     # writes vae/ (config.json with scaling_factor)
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import backend, io
from ..autograd import no_grad
from ..data import DataLoader, attribute_accuracy, save_image_grid
from ..models import AutoencoderKL
from ..nn import functional as F
from ..optim import AdamW
from .loop import train
from .presets import get_preset
from .recipe_common import batches, decay_groups, lr_schedule, make_dataset

LATENTS_FILE = "latents.safetensors"


@dataclass
class AutoencoderResult:
    """Files and numbers of an autoencoder run.

    scaling_factor: 1 / std of the training latents.  latent_mean: their mean (should be near 0).
    posterior_std: mean σ of q(z|x), in the units of the scaled latents (how wide the posteriors are).
    eval: reconstruction MSE and the attribute checker's rates on reconstructed eval images.
    """
    folder: Path
    loss_curve: Path | None
    losses: list
    seconds: float
    scaling_factor: float
    latent_mean: float
    posterior_std: float
    eval: dict


def build_vae(config, seed: int, scaling_factor: float = 1.0) -> AutoencoderKL:
    """A freshly initialised ``AutoencoderKL`` for ``VAEConfig``: 32x32x3 <-> 8x8x4 with three block levels."""
    levels = len(config.block_out_channels)
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * levels,
                         up_block_types=("UpDecoderBlock2D",) * levels, block_out_channels=config.block_out_channels,
                         layers_per_block=config.layers_per_block, latent_channels=config.latent_channels,
                         norm_num_groups=config.norm_num_groups, sample_size=32, scaling_factor=scaling_factor,
                         mid_block_add_attention=config.mid_block_add_attention, generator=seed)


def vae_loss(vae: AutoencoderKL, images, generator, kl_weight: float):
    """(loss, reconstruction MSE, KL per latent element) for a batch of images (B, 3, H, W) in [-1, 1]."""
    posterior = vae.encode(images)
    reconstruction = vae.decode(posterior.sample(generator))   # z ~ q(z|x), reparameterised
    mse = F.mse_loss(reconstruction, images)                    # mean over B x 3 x H x W
    kl = posterior.kl().mean() / posterior.mean[0].size         # KL summed over (C, h, w) -> per element
    return mse + kl_weight * kl, mse, kl


@no_grad()
def encode_moments(vae: AutoencoderKL, images, batch_size: int = 256):
    """Mean and σ of q(z|x) for every image: two backend arrays (N, C, h, w). Images: host (N, 3, H, W)."""
    vae.eval()
    means, stds = [], []
    for start in range(0, len(images), batch_size):
        posterior = vae.encode(backend.to_device(images[start:start + batch_size], backend.DEFAULT_DTYPE))
        means.append(posterior.mean.data)
        stds.append(posterior.std.data)
    xp = backend.xp()
    return xp.concatenate(means), xp.concatenate(stds)


def with_scaling_factor(vae: AutoencoderKL, scaling_factor: float) -> AutoencoderKL:
    """The same weights in a VAE whose config records ``scaling_factor`` (configs are fixed at construction)."""
    out = AutoencoderKL.from_config({**vae.config, "scaling_factor": float(scaling_factor)})
    out.load_state_dict(vae.state_dict())
    return out


def train_autoencoder(preset="shapes", out_dir="runs/shapes/vae", resume: bool = False, progress: bool = True,
                      dataset=None) -> AutoencoderResult:
    """Train ``AutoencoderKL`` on the preset's training set; write ``out_dir/vae/`` (with its scaling_factor).

    Also written: checkpoint.safetensors and loss.png (the shared loop), latents.safetensors (the training set's
    posterior moments, reused by the U-Net recipe) and reconstructions.png (eval images over their reconstructions).
    ``dataset``: the (images, captions) to train on; default the preset's training set.
    """
    preset = get_preset(preset)
    c, seed = preset.vae, preset.data.seed
    out_dir = Path(out_dir)
    data = make_dataset(preset.data) if dataset is None else dataset
    vae = build_vae(c, seed)
    optimizer = AdamW(decay_groups(vae, c.weight_decay), lr=c.lr)
    loader = DataLoader(data, c.batch_size, shuffle=True, seed=seed)
    next_batch = batches(loader)

    def step_fn(step, rng):
        images, _ = next_batch()
        return vae_loss(vae, images, rng, c.kl_weight)[0]

    began = time.perf_counter()
    run = train(step_fn, model=vae, optimizer=optimizer, total_steps=c.steps, out_dir=out_dir, seed=seed,
                state={"data": loader}, lr_at=lr_schedule(c), max_grad_norm=c.max_grad_norm,
                checkpoint_every=c.checkpoint_every, resume=resume, progress=progress, desc="vae",
                meta={"recipe": "autoencoder", "preset": preset.name, "config": asdict(c)})

    # scaling_factor = 1 / std of z ~ q(z|x) over the whole training set (LDM, appendix D.1).
    mean, std = encode_moments(vae, data.images)
    z = mean + std * backend.rng(seed).standard_normal(mean.shape, dtype=mean.dtype)
    scaling_factor = 1.0 / float(z.std())
    vae = with_scaling_factor(vae, scaling_factor)
    vae.save_pretrained(out_dir / "vae")
    io.save_safetensors({"mean": mean, "std": std}, out_dir / LATENTS_FILE,
                        metadata={"data": json.dumps(asdict(preset.data)), "num_images": str(len(data.images))})
    result = AutoencoderResult(out_dir, run.loss_curve, run.losses, time.perf_counter() - began, scaling_factor,
                               float(z.mean()) * scaling_factor, float(std.mean()) * scaling_factor,
                               evaluate_reconstructions(vae, preset, out_dir / "reconstructions.png", c.eval_images)
                               if c.eval_images else {})
    if progress:
        print(f"vae: scaling_factor {scaling_factor:.4f}, scaled latent mean {result.latent_mean:+.3f}, mean "
              f"posterior σ {result.posterior_std:.3f}; eval " + ", ".join(f"{k} {v:.4g}" for k, v in result.eval.items()))
    return result


def cached_moments(vae_dir, data_config, num_images: int):
    """The training set's posterior moments saved by ``train_autoencoder`` in ``vae_dir``, or None when they are
    missing or were computed for another data set."""
    path = Path(vae_dir) / LATENTS_FILE
    if not path.is_file():
        return None
    info = io.load_safetensors_metadata(path)
    if info.get("data") != json.dumps(asdict(data_config)) or info.get("num_images") != str(num_images):
        return None
    arrays = io.load_safetensors(path)
    return backend.to_device(arrays["mean"]), backend.to_device(arrays["std"])


@no_grad()
def evaluate_reconstructions(vae: AutoencoderKL, preset, grid_path=None, n: int = 256) -> dict:
    """Reconstruct ``n`` eval images through the posterior means: their MSE and the attribute checker's rates.

    The checker's "all" rate on reconstructions is the ceiling for the diffusion model: it cannot draw more
    faithfully than its decoder can.
    """
    data = make_dataset(preset.data, n=n, split="eval")
    images = backend.to_device(data.images, backend.DEFAULT_DTYPE)
    vae.eval()
    reconstructed = vae(images).data.clip(-1, 1)
    rates = attribute_accuracy(reconstructed, data.captions)
    out = {"mse": float(((reconstructed - images) ** 2).mean()), "checker_all": rates["all"]}
    if grid_path is not None:
        k = min(16, n)
        xp = backend.xp()
        both = xp.concatenate([images[:k], reconstructed[:k]])
        save_image_grid(both, grid_path, captions=data.captions[:k] + ["(reconstruction)"] * k, ncols=8,
                        title="eval images (top rows) and their VAE reconstructions (bottom rows)")
    return out
