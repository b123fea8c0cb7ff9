"""``train``: the Stable Diffusion recipes of ``minildm.train`` from the command line.

    python -m minildm train all --preset shapes             # CLIP, autoencoder, U-Net, then runs/shapes/pipeline
    python -m minildm train vae --preset tiny --out runs/t  # one part; its folder is runs/t/vae
    python -m minildm train unet --resume                   # continue from runs/shapes/unet/checkpoint.safetensors

One run folder holds the parts side by side, as ``train_all`` lays them out, so parts trained one at a time and
parts trained by ``train all`` are interchangeable:

    OUT/clip/   text_encoder/ tokenizer/ (+ the vision tower, checkpoint, loss.png)
    OUT/vae/    vae/ latents.safetensors reconstructions.png (+ checkpoint, loss.png)
    OUT/unet/   unet/ samples.png (+ checkpoint, loss.png)          needs OUT/clip and OUT/vae
    OUT/pipeline/                                                   train all only: what `sample --model` loads
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import UsageError, paragraphs, positive_int, warn, writable_folder

PARTS = ("clip", "vae", "unet")


def add_train(subparsers) -> None:
    from ..train.presets import PRESETS
    p = subparsers.add_parser(
        "train", help="train the text encoder, the autoencoder, the U-Net, or all three into a model folder",
        description=paragraphs(
            "Train a Stable Diffusion model on the captioned shapes data set with minildm's own recipes.",
            "Each part goes to its own folder in OUT (OUT/clip, OUT/vae, OUT/unet); `train all` trains the three in "
            "order and then assembles OUT/pipeline, the folder that `sample --model` loads. An interrupted run "
            "continues from its last checkpoint with --resume; a run that diverges (NaN loss) stops with exit "
            "status 1 and names its last good checkpoint."),
        epilog="examples:\n"
               "  python -m minildm train all --preset tiny --out runs/tiny      # seconds: a smoke test\n"
               "  python -m minildm train all --preset shapes                    # the shipped model, ~22 min on CPU\n"
               "  python -m minildm sample \"a red circle at the top left\" --model runs/tiny/pipeline",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("part", choices=[*PARTS, "all"],
                   help="clip: the tokenizer and text encoder (a miniature CLIP); vae: the autoencoder; unet: the "
                        "diffusion U-Net (needs clip and vae in the same --out); all: the three, then the pipeline")
    p.add_argument("--preset", choices=list(PRESETS), default="shapes",
                   help="the settings: shapes (the shipped model, about 22 minutes on 2 CPU cores) or tiny (toy "
                        "sizes, seconds; for trying the commands out) (default shapes)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="the run folder, holding clip/, vae/, unet/ (and pipeline/) (default runs/<preset>)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint(s) in --out instead of starting over (same --preset)")
    p.add_argument("--steps", type=positive_int, metavar="N",
                   help="training steps of the part (of each part for `all`) (default: the preset's; a warmup "
                        "longer than N is shortened to fit)")
    p.add_argument("--pipeline", type=Path, metavar="DIR",
                   help="train all: where to write the pipeline folder (default OUT/pipeline)")
    p.add_argument("--no-progress", action="store_true", help="do not show progress bars or evaluation lines")
    p.set_defaults(run=run_train)


def run_train(args) -> int:
    from ..train import CHECKPOINT_NAME, ResumeError
    out = args.out or Path("runs") / args.preset
    parts = PARTS if args.part == "all" else (args.part,)
    if args.pipeline is not None and args.part != "all":
        raise UsageError("--pipeline is only for `train all` (the pipeline folder is assembled from all three parts)")
    checkpoints = {part: out / part / CHECKPOINT_NAME for part in parts}
    found = [part for part, path in checkpoints.items() if path.is_file()]
    if args.resume and not found:
        where = " or ".join(str(checkpoints[part].parent) for part in parts)
        raise UsageError(f"--resume: there is no checkpoint in {where} (run once without --resume first)")
    if args.resume:
        for part in found:
            _check_same_preset(checkpoints[part], args.preset)
    else:
        for part in found:
            warn(f"{checkpoints[part]} exists; training from scratch replaces it (--resume continues it)")
    if args.part == "unet":
        _check_frozen_parts(out, args.preset)
    writable_folder(out)
    if args.pipeline is not None:
        writable_folder(args.pipeline)
    preset = _preset(args.preset, parts, args.steps)

    progress = not args.no_progress
    try:
        if args.part == "all":
            from ..train.all import train_all
            everything = train_all(preset, out, resume=args.resume, progress=progress, pipeline_dir=args.pipeline)
            results = {part: getattr(everything, part) for part in PARTS}
        else:
            results = {args.part: _train_part(args.part, preset, out, args.resume, progress)}
    except ResumeError as e:  # the checkpoint is of another run (seed), or already past --steps
        raise UsageError(str(e)) from None
    except ValueError as e:
        if not args.resume:
            raise
        message = str(e) if len(str(e)) < 300 else str(e)[:300] + " ..."  # a state-dict mismatch lists every key
        raise UsageError(f"cannot resume in {out}: {message} (was it trained with another --preset?)") from None

    for part, result in results.items():
        print(_summary(part, result))
    if args.part == "all":
        print(f"wrote {everything.pipeline}  (the model; try: python -m minildm sample \"a red circle at the top "
              f"left\" --model {everything.pipeline})")
    return 0


def _train_part(part: str, preset, out: Path, resume: bool, progress: bool):
    if part == "clip":
        from ..train.clip import train_clip
        return train_clip(preset, out / "clip", resume=resume, progress=progress)
    if part == "vae":
        from ..train.autoencoder import train_autoencoder
        return train_autoencoder(preset, out / "vae", resume=resume, progress=progress)
    from ..train.unet import train_unet
    return train_unet(preset, out / "unet", clip_dir=out / "clip", vae_dir=out / "vae", resume=resume,
                      progress=progress)


def _preset(name: str, parts, steps: int | None):
    """The preset, with ``steps`` (if given) for each part trained; a warmup longer than that is shortened to
    ``steps - 1``, since the learning-rate schedule warms up before it decays."""
    from ..train.presets import get_preset
    preset = get_preset(name)
    if steps is None:
        return preset
    return get_preset(preset, **{part: {"steps": steps,
                                        "warmup_steps": min(getattr(preset, part).warmup_steps, steps - 1)}
                                 for part in parts})


def _check_same_preset(checkpoint: Path, preset: str) -> None:
    """A checkpoint records the preset it was trained with; resuming it with another cannot work (other sizes)."""
    import json

    from ..io import load_safetensors_metadata
    try:  # only the header is read; an unreadable file is left for the recipe to report
        saved = json.loads(load_safetensors_metadata(checkpoint)["meta"])["run"]["preset"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    if saved != preset:
        raise UsageError(f"--resume: {checkpoint} was trained with --preset {saved}, not {preset}; resume it with "
                         f"--preset {saved}, or train from scratch in another --out")


def _check_frozen_parts(out: Path, preset: str) -> None:
    """The U-Net trains on the autoencoder's latents, conditioned on the text encoder: both must be there."""
    needed = {"clip": out / "clip" / "text_encoder", "vae": out / "vae" / "vae"}
    missing = [part for part, folder in needed.items() if not folder.is_dir()]
    if missing:
        commands = " and ".join(f"`python -m minildm train {part} --preset {preset} --out {out}`" for part in missing)
        raise UsageError(f"train unet needs the trained {' and '.join(missing)} in {out}, but "
                         f"{' and '.join(str(needed[p]) for p in missing)} {'is' if len(missing) == 1 else 'are'} "
                         f"missing; run {commands} first "
                         "(or `train all`)")


def _summary(part: str, result) -> str:
    """One line per part: steps, final loss, time, where it went."""
    losses = getattr(result, "losses", None) or []
    loss = f", final loss {losses[-1]:.4f}" if losses else ""
    seconds = getattr(result, "seconds", None)
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    return f"{part}: {len(losses)} steps{loss}{took}; wrote {getattr(result, 'folder', '')}"
