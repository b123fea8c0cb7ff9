"""Shared pieces of the metrics tests: the evaluation networks, image corruptions, a tiny random pipeline."""
from __future__ import annotations

import functools
import tempfile

import numpy as np

from minildm.metrics.eval_networks import EVAL_WEIGHTS, load_eval_networks


@functools.lru_cache(maxsize=1)
def eval_networks():
    """The shipped evaluation networks; where they are missing (weights deleted or being retrained), small ones
    trained here in about 25 s — weaker judges, but strong enough for what the tests ask."""
    if (EVAL_WEIGHTS / "features" / "config.json").is_file() and (EVAL_WEIGHTS / "clip").is_dir():
        return load_eval_networks(EVAL_WEIGHTS)
    from minildm.metrics.eval_training import tiny_config, train_eval_networks
    folder = tempfile.mkdtemp(prefix="minildm_eval_networks_")
    config = tiny_config(num_images=3000, batch_size=64, lr=3e-3, feature_steps=200, clip_steps=300,
                         projection_dim=32, text_hidden_size=32, check_images=300)
    train_eval_networks(config=config, run_dir=f"{folder}/run", weights_dir=f"{folder}/weights", progress=False)
    return load_eval_networks(f"{folder}/weights")


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """(N, C, H, W) blurred by a Gaussian of std ``sigma`` pixels (separable, edges reflected)."""
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    out = images
    for axis in (2, 3):
        padded = np.pad(out, [(0, 0)] * axis + [(radius, radius)] + [(0, 0)] * (3 - axis), mode="reflect")
        size = images.shape[axis]
        out = sum(t * np.take(padded, np.arange(k, k + size), axis=axis) for k, t in enumerate(taps))
    return out.astype(np.float32)


def add_noise(images: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Images plus N(0, sigma²) noise, clipped to [-1, 1]."""
    noise = np.random.default_rng(seed).standard_normal(images.shape).astype(np.float32)
    return np.clip(images + sigma * noise, -1, 1)


def tiny_pipeline():
    """A StableDiffusionPipeline with random weights of the ``tiny`` preset's sizes: 32x32 images in a blink."""
    from minildm.data import all_captions
    from minildm.pipelines import StableDiffusionPipeline
    from minildm.train.autoencoder import build_vae
    from minildm.train.clip import build_clip, build_tokenizer
    from minildm.train.presets import get_preset
    from minildm.train.unet import build_unet, sampling_scheduler
    preset = get_preset("tiny")
    tokenizer = build_tokenizer(all_captions(2)[::5], preset.clip.max_length)
    clip = build_clip(preset.clip, tokenizer, seed=0)
    unet = build_unet(preset.unet, preset.clip.hidden_size, preset.vae.latent_channels, seed=0)
    pipe = StableDiffusionPipeline(vae=build_vae(preset.vae, seed=0), text_encoder=clip.text_model,
                                   tokenizer=tokenizer, unet=unet, scheduler=sampling_scheduler(preset.unet))
    for model in (pipe.vae, pipe.text_encoder, pipe.unet):
        model.eval()
    return pipe
