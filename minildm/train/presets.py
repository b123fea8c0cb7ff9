"""The settings of the three Stable Diffusion recipes (CLIP, autoencoder, U-Net), as plain dataclasses.

Two presets ship:

    shapes   the model in ``minildm/weights/shapes``: all three parts in about 22 minutes on 2 CPU cores (measured)
    tiny     the same recipes with toy sizes and a few steps, so tests run them end to end in seconds

    preset = get_preset("shapes")                       # a Preset: data, clip, vae, unet settings
    preset = get_preset("shapes", unet={"steps": 500})  # ... with some fields replaced (a fresh copy)

Every number is a plain value; ``dataclasses.asdict(preset)`` is what each checkpoint records. How the ``shapes``
sizes were chosen (the budget, measured on a 2-core CPU) is written next to each section.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace


@dataclass(frozen=True)
class DataConfig:
    """The captioned shapes training set (``minildm.data.ShapesDataset``, split "train"), shared by all three parts.

    num_images: images rendered once, in memory. The U-Net sees each of them several times; more images would
        cost encoding time (their latents are precomputed once) for little gain on a 486-caption world.
    two_object_fraction: share of two-object scenes ("a red circle on the left and a blue square on the right").
        The quality target is on single objects, so they are a minority, but the model should know "and".
    omit_size_fraction: share of captions without a size word, so prompts without one work too.
    """
    num_images: int = 12_000
    seed: int = 0
    two_object_fraction: float = 0.2
    omit_size_fraction: float = 0.25


@dataclass(frozen=True)
class CLIPConfig:
    """The miniature CLIP: a small CNN image tower and ``CLIPTextModel``, trained contrastively.

    The text tower, frozen afterwards, is the diffusion model's text encoder (its last_hidden_state is the context),
    so its width ``hidden_size`` is the U-Net's ``cross_attention_dim``.
    """
    steps: int = 600                        # zero-shot caption retrieval has saturated by then (~3 min on one core)
    batch_size: int = 128
    lr: float = 1e-3
    warmup_steps: int = 50
    weight_decay: float = 0.1               # CLIP's value (Radford et al. 2021, appendix F uses 0.2 for large models)
    max_grad_norm: float = 1.0
    max_length: int = 20                    # tokens incl. BOS/EOS: the longest caption has 15 words
    hidden_size: int = 64
    num_hidden_layers: int = 3
    num_attention_heads: int = 4
    projection_dim: int = 64                # the joint image-text embedding
    vision_channels: tuple = (16, 32, 64)   # CNN stages, each halving the resolution: 32 -> 16 -> 8 -> 4
    vision_norm_groups: int = 8
    eval_images: int = 512                  # per split, for the zero-shot caption retrieval at the end (0: none)
    checkpoint_every: int = 200


@dataclass(frozen=True)
class VAEConfig:
    """``AutoencoderKL`` 32x32x3 -> 8x8x4: three block levels, two downsamplings (f = 4).

    Loss per element: mean squared error of the reconstruction (images in [-1, 1]) + ``kl_weight`` x the KL term
    averaged over the latent elements (see ``minildm.train.autoencoder`` for why 1e-5).
    """
    steps: int = 1000                       # ~5 min on one core
    batch_size: int = 16                    # many small steps learn faster here than few large ones
    lr: float = 2e-3
    warmup_steps: int = 50
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    kl_weight: float = 1e-5
    block_out_channels: tuple = (16, 32, 64)   # 32x32, 16x16, 8x8
    layers_per_block: int = 1
    norm_num_groups: int = 16
    latent_channels: int = 4
    mid_block_add_attention: bool = True
    eval_images: int = 256                  # eval images reconstructed and checked at the end (0: none)
    checkpoint_every: int = 250


@dataclass(frozen=True)
class UNetConfig:
    """``UNet2DConditionModel`` on the 8x8x4 latents, epsilon-prediction, scaled_linear betas (Stable Diffusion's).

    Two levels (8x8 and 4x4) with cross-attention at both and in the mid block; one ResNet per level and way.

    Why (48, 96), lr 2e-3, 2800 steps (measured on 2 cores, checker on 100 samples at guidance 3, seen / held-out
    pairs all correct): (64, 128) at lr 1e-3 reached 0.83 / 0.53 after 2000 steps (20 min) and 1.00 / 0.55 after
    4000 (25 min, alone on the machine); the narrower U-Net at twice the learning rate runs ~1.6x faster per step
    and reached 0.99 / 0.73 after 2800 steps (18 min of CPU). Held-out pairs are where the budget goes.
    """
    steps: int = 2800                       # ~18 min on one core
    batch_size: int = 32
    lr: float = 2e-3
    warmup_steps: int = 100
    weight_decay: float = 1e-2
    max_grad_norm: float = 1.0
    ema_decay: float = 0.999
    caption_dropout: float = 0.1            # share of empty captions, for classifier-free guidance
    block_out_channels: tuple = (48, 96)    # see the note above
    layers_per_block: int = 1
    attention_heads: int = 4
    norm_num_groups: int = 16
    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012
    guidance_scale: float = 3.0             # defaults written into the pipeline folder (README's guidance table)
    num_inference_steps: int = 30
    eval_images: int = 100                  # samples scored by the attribute checker at the end (0: none)
    checkpoint_every: int = 250


@dataclass(frozen=True)
class Preset:
    """All settings of one ``train all`` run."""
    name: str
    data: DataConfig = field(default_factory=DataConfig)
    clip: CLIPConfig = field(default_factory=CLIPConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    unet: UNetConfig = field(default_factory=UNetConfig)


SHAPES = Preset("shapes")

TINY = Preset(
    "tiny",
    data=DataConfig(num_images=256),
    clip=CLIPConfig(steps=12, batch_size=32, lr=3e-3, warmup_steps=2, hidden_size=32, num_hidden_layers=1,
                    num_attention_heads=2, projection_dim=16, vision_channels=(8, 16), vision_norm_groups=4,
                    eval_images=0, checkpoint_every=4),
    vae=VAEConfig(steps=12, batch_size=8, lr=3e-3, warmup_steps=2, block_out_channels=(8, 16, 16),
                  norm_num_groups=4, eval_images=8, checkpoint_every=4),
    unet=UNetConfig(steps=12, batch_size=16, lr=3e-3, warmup_steps=2, block_out_channels=(16, 32), attention_heads=2,
                    norm_num_groups=8, num_inference_steps=4, eval_images=0, checkpoint_every=4),
)

PRESETS = {"shapes": SHAPES, "tiny": TINY}


def get_preset(preset="shapes", **overrides) -> Preset:
    """A preset by name (or a ``Preset``, returned as is), with fields of its parts replaced.

    ``overrides`` maps a part ("data", "clip", "vae", "unet") to a dict of new values, e.g.
    ``get_preset("tiny", unet={"steps": 50})``. Unknown names raise a ``ValueError`` that lists the valid ones.
    """
    if isinstance(preset, Preset):
        chosen = preset
    elif preset in PRESETS:
        chosen = PRESETS[preset]
    else:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
    for part, values in overrides.items():
        if part not in ("data", "clip", "vae", "unet"):
            raise ValueError(f"get_preset: no part {part!r}; parts: data, clip, vae, unet")
        config = getattr(chosen, part)
        known = {f.name for f in fields(config)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"get_preset: {type(config).__name__} has no fields {unknown}; valid: {sorted(known)}")
        chosen = replace(chosen, **{part: replace(config, **values)})
    return chosen
