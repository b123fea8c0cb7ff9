"""``evaluate``: measure a model folder — FD_minildm, KID_minildm, CLIP score, R-precision, attribute accuracy —
across guidance scales; print the table, write metrics.json, table.md and the trade-off plot.

    python -m minildm evaluate --n 500 --out runs/evaluate

The work is ``minildm.metrics.evaluate`` (which also declares the options); this file only wires it in.
"""
from __future__ import annotations

import argparse

import time

from .common import UsageError, paragraphs, writable_folder


def add_evaluate(subparsers) -> None:
    from ..metrics.evaluate import add_evaluate_arguments
    p = subparsers.add_parser(
        "evaluate", help="measure a model: FD_minildm, KID, CLIP score, R-precision, attribute accuracy",
        description=paragraphs(
            "Generate images for captions of the shapes world at several guidance scales and measure them against "
            "real images: FD_minildm and KID_minildm (minildm's own feature network, NOT Inception's, so not FID), "
            "CLIP score and R-precision (an evaluation CLIP the generators never used), and the attribute checker's "
            "accuracy on seen and held-out colour-shape pairs, one and two objects.",
            "--n images are split evenly across the guidance scales. Real images of the same captions give the "
            "floor each number should be read against."),
        epilog="example:\n  python -m minildm evaluate --n 500 --guidance 1,3,5,7.5 --out runs/evaluate",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_evaluate_arguments(p)
    p.set_defaults(run=run_evaluate)


def run_evaluate(args) -> int:
    from ..metrics.evaluate import EvaluateUsageError
    writable_folder(args.out)
    try:
        return evaluate_main(args)
    except EvaluateUsageError as e:  # a bad option, too few images, no model folder, no evaluation networks
        raise UsageError(str(e)) from None


def evaluate_main(args) -> int:
    """Run ``evaluate`` with the options of ``add_evaluate_arguments``; print the table and where the files went.

    Returns the exit status (0). Raises ``EvaluateUsageError`` for options that cannot work (checked before any
    image is made): a bad --guidance, --n too small for FD, a missing model folder or missing evaluation networks.
    """
    # The pipeline is loaded here, at the command's edge, and handed to ``evaluate``: minildm.metrics never
    # imports ``pipelines`` (nothing below the CLI does; measuring a generator only needs to call it).
    from ..metrics.eval_networks import load_eval_networks
    from ..metrics.evaluate import EvaluateUsageError, evaluate, format_table, guidance_list
    from ..pipelines import StableDiffusionPipeline
    from ..schedulers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler
    guidance = guidance_list(args.guidance)
    for option, value in (("--n", args.n), ("--steps", args.steps), ("--batch-size", args.batch_size)):
        if value < 1:  # argparse checks these; a caller that builds args by hand may not have
            raise EvaluateUsageError(f"{option} must be a positive integer, got {value}")
    try:
        nets = load_eval_networks(args.eval_networks)
        pipe = StableDiffusionPipeline.from_pretrained(args.model)
    except FileNotFoundError as e:
        raise EvaluateUsageError(str(e)) from None
    per_scale = args.n // len(guidance)
    if per_scale <= nets.feature_dim:
        raise EvaluateUsageError(f"--n {args.n} over {len(guidance)} guidance scale(s) gives {per_scale} images per "
                                 f"scale; FD needs more than {nets.feature_dim}: use --n "
                                 f"{(nets.feature_dim + 1) * len(guidance)} or more")
    chosen = {"ddim": DDIMScheduler, "dpm": DPMSolverMultistepScheduler, "ddpm": DDPMScheduler}[args.scheduler]
    pipe.scheduler = chosen.from_config(pipe.scheduler.config)  # same noise schedule, another sampler
    began = time.perf_counter()
    results = evaluate(pipe, n=args.n, guidance=guidance, steps=args.steps, seed=args.seed, out=args.out,
                       nets=nets, batch_size=args.batch_size, progress=not args.no_progress, label=str(args.model))
    print(format_table(results))
    print(f"FD_minildm / KID_minildm: minildm's own feature network, not Inception; compare only at equal N. "
          f"{time.perf_counter() - began:.0f} s in all.")
    print(f"wrote {args.out / 'metrics.json'}, {args.out / 'table.md'}, {args.out / 'tradeoff.png'}")
    return 0
