"""Recipe 3 of 3: the latent diffusion U-Net (Rombach et al. 2022), conditioned on the frozen CLIP text encoder.

Training is DDPM's Algorithm 1 (Ho et al. 2020) on the autoencoder's latents, with the caption as context:

    z_0 ~ q(z|x) · scaling_factor              a latent of a training image, at unit variance (LDM sec. 4.3.2)
    c   = text_encoder(caption)                (T, D) last_hidden_state; "" with probability 10 %
    t ~ U{0, ..., 999},  ε ~ N(0, I)
    x_t = √ᾱ_t z_0 + √(1-ᾱ_t) ε                DDPM eq. 4, with Stable Diffusion's scaled_linear betas
    loss = ‖ε - ε_θ(x_t, t, c)‖²               ε-prediction, DDPM eq. 14

Replacing 10 % of the captions by the empty one trains the same network as an unconditional model too, which is what
classifier-free guidance needs at sampling time (Ho & Salimans 2022):

    ε̃ = ε_θ(x_t, t, "") + s · (ε_θ(x_t, t, c) - ε_θ(x_t, t, ""))

The autoencoder and the text encoder are frozen, so their outputs never change during training. Hence the big
saving on a CPU: the latents' moments (mean, σ of q(z|x)) of the whole training set are computed once (by the
autoencoder recipe, saved next to it), and the text context once per *distinct* caption — a few thousand rows that
the batches index into. A step then runs the U-Net and nothing else; only the draw of z from q(z|x) stays random.

The U-Net is optimised with AdamW, a linear warmup then cosine decay, gradient clipping at 1, and an exponential
moving average of its weights, which is what gets sampled from and saved (EMA.copy_to before saving).

    result = train_unet("shapes", "runs/shapes/unet", clip_dir="runs/shapes/clip", vae_dir="runs/shapes/vae")
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import backend
from ..autograd import no_grad
from ..data import DataLoader, attribute_accuracy, save_image_grid
from ..models import AutoencoderKL, CLIPTextModel, CLIPTokenizer
from ..models.unet import UNet2DConditionModel
from ..nn import functional as F
from ..optim import EMA, AdamW
from ..schedulers import DDIMScheduler, DDPMScheduler
from .autoencoder import cached_moments, encode_moments
from .loop import train
from .presets import get_preset
from .recipe_common import batches, decay_groups, lr_schedule, make_dataset

UNCONDITIONAL = 0  # row of the empty caption in the context table


@dataclass
class UNetResult:
    """Files and numbers of a U-Net run. ``eval``: attribute-checker rates of samples ("seen"/"heldout" pairs)."""
    folder: Path
    loss_curve: Path | None
    samples: Path | None
    losses: list
    seconds: float
    eval: dict


@dataclass
class LatentDataset:
    """The training set as the U-Net sees it, in the form ``DataLoader`` serves.

    images: (N, 2C, h, w) the moments of q(z|x): mean in the first C channels, σ in the last C.
    captions: N ints, each example's row in the table of cached text contexts.
    """
    images: object
    captions: list


# -- the parts ----------------------------------------------------------------------------------------------------
def build_unet(config, cross_attention_dim: int, latent_channels: int, seed: int) -> UNet2DConditionModel:
    """A fresh U-Net for ``UNetConfig``: cross-attention at every level and in the mid block."""
    levels = len(config.block_out_channels)
    return UNet2DConditionModel(
        sample_size=8, in_channels=latent_channels, out_channels=latent_channels,
        down_block_types=("CrossAttnDownBlock2D",) * levels, up_block_types=("CrossAttnUpBlock2D",) * levels,
        mid_block_type="UNetMidBlock2DCrossAttn", block_out_channels=config.block_out_channels,
        layers_per_block=config.layers_per_block, norm_num_groups=config.norm_num_groups,
        cross_attention_dim=cross_attention_dim, attention_head_dim=config.attention_heads, generator=seed)


def noise_scheduler(config) -> DDPMScheduler:
    """The forward process of training: Stable Diffusion's scaled_linear betas, 0.00085 .. 0.012 over 1000 steps."""
    return DDPMScheduler(num_train_timesteps=config.num_train_timesteps, beta_start=config.beta_start,
                         beta_end=config.beta_end, beta_schedule="scaled_linear", clip_sample=False)


def sampling_scheduler(config) -> DDIMScheduler:
    """The sampler shipped with the model: DDIM (deterministic) on the same betas. "trailing" spacing starts at the
    noisiest step t = 999, where training put pure noise (Lin et al. 2023); the last step lands on x̂_0."""
    return DDIMScheduler(num_train_timesteps=config.num_train_timesteps, beta_start=config.beta_start,
                         beta_end=config.beta_end, beta_schedule="scaled_linear", clip_sample=False,
                         set_alpha_to_one=True, timestep_spacing="trailing")


@no_grad()
def encode_captions(text_encoder: CLIPTextModel, tokenizer: CLIPTokenizer, captions, batch_size: int = 256):
    """The context of every caption: backend array (N, T, D), the text encoder's last_hidden_state."""
    text_encoder.eval()
    rows = []
    for start in range(0, len(captions), batch_size):
        ids = backend.to_device(tokenizer(list(captions[start:start + batch_size])).input_ids)
        rows.append(text_encoder(ids).last_hidden_state.data)
    return backend.xp().concatenate(rows)


def drop_captions(rows, rng, probability: float):
    """Replace each caption row by the empty caption's with ``probability`` (classifier-free guidance training).

    rows: (B,) ints; rng: the step's generator. Returns (B,) ints."""
    xp = backend.get_array_module(rows)
    keep = rng.random(rows.shape[0]) >= probability
    return xp.where(keep, rows, UNCONDITIONAL)


# -- the recipe ---------------------------------------------------------------------------------------------------
def load_frozen_parts(clip_dir, vae_dir):
    """(vae, text_encoder, tokenizer) written by the CLIP and autoencoder recipes, frozen, in eval mode."""
    vae = AutoencoderKL.from_pretrained(Path(vae_dir) / "vae")
    text_encoder = CLIPTextModel.from_pretrained(Path(clip_dir) / "text_encoder")
    tokenizer = CLIPTokenizer.from_pretrained(Path(clip_dir) / "tokenizer")
    for model in (vae, text_encoder):
        model.requires_grad_(False).eval()
    return vae, text_encoder, tokenizer


def train_unet(preset="shapes", out_dir="runs/shapes/unet", clip_dir="runs/shapes/clip",
               vae_dir="runs/shapes/vae", resume: bool = False, progress: bool = True, dataset=None) -> UNetResult:
    """Train the U-Net on the latents of the preset's training set; write ``out_dir/unet/`` (EMA weights).

    Also written: checkpoint.safetensors and loss.png (the shared loop) and samples.png (a grid of generated images
    for seen and held-out colour-shape pairs). ``dataset``: the (images, captions) to train on; default the
    preset's training set (whose latents the autoencoder recipe has cached).
    """
    preset = get_preset(preset)
    c, seed = preset.unet, preset.data.seed
    out_dir = Path(out_dir)
    vae, text_encoder, tokenizer = load_frozen_parts(clip_dir, vae_dir)
    data = make_dataset(preset.data) if dataset is None else dataset

    # Precompute once what the frozen parts would compute at every step (see the module docstring).
    moments = cached_moments(vae_dir, preset.data, len(data.images)) if dataset is None else None
    mean, std = moments if moments is not None else encode_moments(vae, data.images)
    table = list(dict.fromkeys(["", *data.captions]))      # distinct captions, the empty one first (row 0)
    contexts = encode_captions(text_encoder, tokenizer, table)                # (U, T, D)
    row_of = {caption: i for i, caption in enumerate(table)}
    latents = LatentDataset(backend.xp().concatenate([mean, std], axis=1), [row_of[t] for t in data.captions])
    channels, scaling = mean.shape[1], float(vae.config["scaling_factor"])

    unet = build_unet(c, contexts.shape[-1], channels, seed)
    scheduler = noise_scheduler(c)
    optimizer = AdamW(decay_groups(unet, c.weight_decay), lr=c.lr)
    ema = EMA(unet, decay=c.ema_decay)
    loader = DataLoader(latents, c.batch_size, shuffle=True, seed=seed)
    next_batch = batches(loader)
    xp = backend.xp()

    def step_fn(step, rng):
        moments, rows = next_batch()
        mu, sigma = moments[:, :channels], moments[:, channels:]
        z0 = (mu + sigma * rng.standard_normal(mu.shape, dtype=mu.dtype)) * scaling    # z_0 ~ q(z|x), unit scale
        context = contexts[drop_captions(xp.asarray(rows), rng, c.caption_dropout)]    # (B, T, D), 10 % ""
        t = rng.integers(0, c.num_train_timesteps, size=mu.shape[0])                 # t ~ U{0..T-1}
        noise = rng.standard_normal(z0.shape, dtype=z0.dtype)                         # ε ~ N(0, I)
        x_t = scheduler.add_noise(z0, noise, t)                                       # √ᾱ z_0 + √(1-ᾱ) ε
        return F.mse_loss(unet(x_t, t, context), noise)                              # ‖ε - ε_θ(x_t, t, c)‖²

    began = time.perf_counter()
    run = train(step_fn, model=unet, optimizer=optimizer, ema=ema, total_steps=c.steps, out_dir=out_dir, seed=seed,
                state={"data": loader}, lr_at=lr_schedule(c), max_grad_norm=c.max_grad_norm,
                checkpoint_every=c.checkpoint_every, resume=resume, progress=progress, desc="unet",
                meta={"recipe": "unet", "preset": preset.name, "config": asdict(c)})

    ema.copy_to(unet)  # sample and ship the averaged weights
    unet.eval()
    unet.save_pretrained(out_dir / "unet")
    parts = dict(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=sampling_scheduler(c))
    samples = save_sample_grid(parts, preset, out_dir / "samples.png")
    rates = evaluate_samples(parts, preset, c.eval_images) if c.eval_images else {}
    if progress and rates:
        print("unet: attribute checker on samples, all correct: " + ", ".join(f"{k} {v:.3f}" for k, v in rates.items()))
    return UNetResult(out_dir, run.loss_curve, samples, run.losses, time.perf_counter() - began, rates)


# -- sampling (what the pipeline does, kept here so a recipe can look at its own model) ----------------------------
@no_grad()
def generate(parts: dict, captions, guidance_scale: float, num_inference_steps: int, seed: int = 0,
             batch_size: int = 128):
    """Images for ``captions``: DDIM with classifier-free guidance, then the VAE decoder.

    parts: unet, vae, text_encoder, tokenizer, scheduler (a DDIM scheduler). Returns (N, 3, 32, 32) in [-1, 1].
    The same computation as ``StableDiffusionPipeline`` (which the recipes may not import: nothing imports
    pipelines), written out in a few lines.
    """
    unet, vae, scheduler = parts["unet"], parts["vae"], parts["scheduler"]
    xp, rng = backend.xp(), backend.rng(seed)
    contexts = encode_captions(parts["text_encoder"], parts["tokenizer"], ["", *captions])
    channels, size = unet.config["in_channels"], unet.config["sample_size"]
    noise = rng.standard_normal((len(captions), channels, size, size), dtype=xp.float32)   # x_T ~ N(0, I)
    scheduler.set_timesteps(num_inference_steps)
    images = []
    for start in range(0, len(captions), batch_size):
        x = noise[start:start + batch_size]
        cond = contexts[1 + start:1 + start + len(x)]
        context = xp.concatenate([xp.broadcast_to(contexts[:1], cond.shape), cond])  # unconditional half first
        for t in scheduler.timesteps.tolist():
            eps_uncond, eps_cond = unet(xp.concatenate([x, x]), t, context).data.reshape(2, *x.shape)
            eps = eps_uncond + guidance_scale * (eps_cond - eps_uncond)              # Ho & Salimans 2022, eq. 6
            x = scheduler.step(eps, t, x).prev_sample
        images.append(vae.decode(x / vae.config["scaling_factor"]).data.clip(-1, 1))
    return xp.concatenate(images)


def _eval_captions(preset, n: int, split: str) -> list:
    """n single-object captions of the eval split (seen colour-shape pairs) or of the held-out split."""
    return make_dataset(preset.data, n=n, split=split, max_objects=1).captions


def save_sample_grid(parts: dict, preset, path, per_split: int = 8) -> Path:
    """A grid of samples for seen (top) and held-out (bottom) colour-shape pairs, with their captions."""
    c = preset.unet
    captions = _eval_captions(preset, per_split, "eval") + _eval_captions(preset, per_split, "heldout")
    images = generate(parts, captions, c.guidance_scale, c.num_inference_steps, seed=preset.data.seed)
    return save_image_grid(images, path, captions=captions, ncols=per_split,
                           title=f"samples, guidance {c.guidance_scale}, DDIM {c.num_inference_steps} steps "
                                 "(top: seen pairs, bottom: held-out pairs)")


def evaluate_samples(parts: dict, preset, n: int) -> dict:
    """The attribute checker's "all correct" rate on n samples each for seen and held-out single objects."""
    c, out = preset.unet, {}
    for name, split in (("seen", "eval"), ("heldout", "heldout")):
        captions = _eval_captions(preset, n, split)
        images = generate(parts, captions, c.guidance_scale, c.num_inference_steps, seed=preset.data.seed + 1)
        out[name] = attribute_accuracy(images, captions)["all"]
    return out
