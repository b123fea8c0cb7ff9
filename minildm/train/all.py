"""``train all``: the three recipes in order, then one Stable Diffusion pipeline folder in diffusers' layout.

    CLIP (tokenizer, text encoder) ─► autoencoder (latents, scaling_factor) ─► U-Net (on latents, with text)
                                  ─► pipeline/ : model_index.json unet/ vae/ text_encoder/ tokenizer/ scheduler/

    result = train_all("shapes", "runs/shapes")          # runs/shapes/{clip,vae,unet,pipeline}
    StableDiffusionPipeline.from_pretrained("runs/shapes/pipeline")

The U-Net needs the other two finished: it reads the text encoder and the autoencoder from their folders. With
``resume=True`` every part continues from its own checkpoint if it has one (a finished part then runs no steps and
only rewrites its outputs), so an interrupted ``train all`` loses at most the steps since its last checkpoint.
"""
from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..io import atomic_write
from ..models import save_components
from ..models.pipeline_folder import MODEL_INDEX
from .checkpointing import CHECKPOINT_NAME
from .clip import train_clip
from .autoencoder import train_autoencoder
from .presets import get_preset
from .unet import load_frozen_parts, sampling_scheduler, train_unet
from ..models.unet import UNet2DConditionModel


@dataclass
class TrainAllResult:
    """The pipeline folder, each part's result, and the wall time of each part and of the whole run (seconds)."""
    pipeline: Path
    clip: object
    vae: object
    unet: object
    seconds: dict


def save_pipeline(folder, unet_dir, clip_dir, vae_dir, unet_config, dtype: str = "float16") -> Path:
    """Assemble the trained parts into a pipeline folder that ``StableDiffusionPipeline.from_pretrained`` loads.

    Weights are stored in ``dtype`` (float16 halves the files; they load back as float32). model_index.json also
    records the default ``guidance_scale`` and ``num_inference_steps`` chosen for this model (settings, which
    diffusers ignores: only [library, class] pairs are components).
    """
    vae, text_encoder, tokenizer = load_frozen_parts(clip_dir, vae_dir)
    unet = UNet2DConditionModel.from_pretrained(Path(unet_dir) / "unet")
    folder = save_components(folder, {"unet": unet, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer,
                                      "scheduler": sampling_scheduler(unet_config)}, dtype=dtype)
    index = json.loads((folder / MODEL_INDEX).read_text(encoding="utf-8"))
    index.update(guidance_scale=unet_config.guidance_scale, num_inference_steps=unet_config.num_inference_steps)
    with atomic_write(folder / MODEL_INDEX, mode="w") as f:
        f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return folder


def train_all(preset="shapes", out_dir="runs/shapes", resume: bool = False, progress: bool = True,
              pipeline_dir=None, dtype: str = "float16") -> TrainAllResult:
    """Train CLIP, the autoencoder and the U-Net of ``preset`` in order; write the pipeline folder.

    Args:
        out_dir: receives clip/, vae/, unet/ (checkpoints, loss curves, sample grids) and run.json (timings).
        resume: continue each part from its checkpoint when it has one.
        pipeline_dir: where the pipeline goes (default ``out_dir/pipeline``).
        dtype: of the pipeline's weights, "float16" (default, as shipped) or "float32".
    """
    preset = get_preset(preset)
    out_dir = Path(out_dir)
    dirs = {part: out_dir / part for part in ("clip", "vae", "unet")}
    began, seconds = time.perf_counter(), {}

    def go(part):
        return resume and (dirs[part] / CHECKPOINT_NAME).is_file()

    start = time.perf_counter()
    clip = train_clip(preset, dirs["clip"], resume=go("clip"), progress=progress)
    seconds["clip"] = time.perf_counter() - start
    start = time.perf_counter()
    vae = train_autoencoder(preset, dirs["vae"], resume=go("vae"), progress=progress)
    seconds["vae"] = time.perf_counter() - start
    start = time.perf_counter()
    unet = train_unet(preset, dirs["unet"], clip_dir=dirs["clip"], vae_dir=dirs["vae"], resume=go("unet"),
                      progress=progress)
    seconds["unet"] = time.perf_counter() - start
    pipeline = save_pipeline(pipeline_dir or out_dir / "pipeline", dirs["unet"], dirs["clip"], dirs["vae"],
                             preset.unet, dtype=dtype)
    seconds["total"] = time.perf_counter() - began
    record = {"preset": asdict(preset), "seconds": seconds, "machine": platform.platform(),
              "processor": platform.processor(), "clip_retrieval": clip.retrieval, "vae_eval": vae.eval,
              "scaling_factor": vae.scaling_factor, "unet_eval": unet.eval, "pipeline": str(pipeline)}
    with atomic_write(out_dir / "run.json", mode="w") as f:
        f.write(json.dumps(record, indent=2) + "\n")
    if progress:
        print(f"train all ({preset.name}): " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in seconds.items())
              + f"; pipeline in {pipeline}")
    return TrainAllResult(pipeline, clip, vae, unet, seconds)
