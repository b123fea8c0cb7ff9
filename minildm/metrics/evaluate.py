"""``python -m minildm evaluate``: generate images at several guidance scales, measure them, and write it all down.

    python -m minildm evaluate --n 500                      # the shipped model, 4 guidance scales, about 4 minutes
    python -m minildm evaluate --model runs/shapes/pipeline --n 2000 --guidance 1,2,4,8 --out runs/eval

What it measures, for each guidance scale s (Ho & Salimans 2022), on the same captions and the same starting noise:

    FD_minildm    Fréchet distance of our evaluation network's features (frechet.py) — not Inception's, so not FID
    KID_minildm   unbiased kernel distance on the same features (kid.py)
    CLIP score    100 · max(cos, 0) under the *evaluation* CLIP, and R-precision against 31 false captions
    attributes    the deterministic checker's accuracy: all, seen / held-out colour-shape pairs, one / two objects

and the same numbers for *real* images, the yardstick at this N:

    real A   images of the evaluation captions (75 % seen pairs, split "eval"; 25 % held-out pairs, "heldout")
    real B   an independent real set of the same size and kind: the reference every FD and KID is measured against

Seeds: A uses ``seed``, B ``seed + 1`` (independent streams of ShapesDataset; the generators train on split "train",
which never overlaps). Seeds that would reuse the evaluation networks' own training images are refused.

The generated images are made for A's captions, so "generated vs B" and "A vs B" compare like with like, and
FD(A, B) is the floor: what a perfect generator would score at this N, on average (FD is biased upwards at small N;
KID is not, so its floor is about 0).
Raising s trades variety for fidelity to the caption: the FD-vs-CLIP-score curve of Saharia et al. 2022 (Imagen,
Fig. 4) and of the Stable Diffusion v1 model card, which ``tradeoff.png`` draws.

Cost: sampling dominates. ``n`` is the *total* number of generated images, split evenly across the guidance scales
(N = n / scales per row, which must exceed the 64 feature dimensions). A guided image costs about twice an unguided
one (two U-Net passes per step). Generated images go through uint8, as a saved PNG would; so do the real ones.

Writes ``<out>/metrics.json`` (everything), ``<out>/table.md`` (the printed table), ``<out>/tradeoff.png`` and
``<out>/samples_guidance_<s>.png`` (the first 16 images of each scale).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .. import backend
from ..data import ShapesDataset, save_image_grid
from ..io import atomic_write
from .attributes import attribute_table
from .clip_score import clip_score, r_precision
from .eval_networks import EVAL_SEED, EVAL_WEIGHTS, load_eval_networks
from .frechet import frechet_distance_features
from .kid import kernel_distance
from ..weights import SHAPES

DEFAULT_MODEL = SHAPES
DEFAULT_GUIDANCE = (1.0, 3.0, 5.0, 7.5)
HELDOUT_FRACTION = 0.25
SCHEDULERS = ("ddim", "dpm", "ddpm")


class EvaluateUsageError(ValueError):
    """An option of ``evaluate`` that cannot work as given (the CLI reports it as a usage error, exit status 2)."""


# -- data -----------------------------------------------------------------------------------------------------------
def real_set(n: int, seed: int):
    """(images (n, 3, 32, 32) in [-1, 1] through uint8, captions): 75 % split "eval", 25 % split "heldout"."""
    n_heldout = round(n * HELDOUT_FRACTION)
    parts = [ShapesDataset(n - n_heldout, seed=seed, split="eval"),
             ShapesDataset(n_heldout, seed=seed, split="heldout")]
    return through_uint8(np.concatenate([p.images for p in parts])), [c for p in parts for c in p.captions]


def through_uint8(images) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> the same, rounded to the 256 levels a PNG stores (so real and generated images
    pass through the same quantisation)."""
    pixels = np.round((np.clip(images, -1, 1) + 1) * 127.5)
    return (pixels / 127.5 - 1).astype(np.float32)


def from_uint8(pixels) -> np.ndarray:
    """(N, H, W, 3) uint8, as the pipeline returns, -> (N, 3, H, W) float32 in [-1, 1]."""
    return (np.asarray(pixels, dtype=np.float32).transpose(0, 3, 1, 2) / 127.5 - 1).astype(np.float32)


# -- measuring ------------------------------------------------------------------------------------------------------
def measure(nets, images, captions, reference_features, seed: int = 0) -> dict:
    """Every metric of one image set against the reference features: a JSON-ready dict.

    images (N, 3, 32, 32) in [-1, 1], captions N strings, reference_features (M, d) of the real set B.
    """
    features = nets.features(images)
    image_embeds, text_embeds = nets.image_embeddings(images), nets.text_embeddings(captions)
    return {"n": len(captions),
            "FD_minildm": frechet_distance_features(features, reference_features),
            "KID_minildm": kernel_distance(features, reference_features, seed=seed),
            "clip_score": clip_score(image_embeds, text_embeds),
            "r_precision": r_precision(image_embeds, text_embeds, captions, seed=seed),
            "attributes": attribute_table(images, captions)}


def generate(pipe, captions, guidance_scale: float, steps: int, seed: int, batch_size: int, bar=None) -> np.ndarray:
    """Images for ``captions`` from the pipeline, in batches: (N, 3, 32, 32) in [-1, 1] (through uint8).

    One generator, seeded ``seed``, draws the noise batch after batch, so every guidance scale starts from the same
    x_T for the same caption (the rows of the trade-off curve differ only by s).
    """
    generator, images = backend.rng(seed), []
    for start in range(0, len(captions), batch_size):
        batch = captions[start:start + batch_size]
        images.append(from_uint8(pipe(batch, num_inference_steps=steps, guidance_scale=guidance_scale,
                                      generator=generator, output_type="uint8")))
        if bar is not None:
            bar.update(len(batch))
    return np.concatenate(images)


def evaluate(pipe, n: int = 500, guidance=DEFAULT_GUIDANCE, steps: int = 30, seed: int = 0, out=None, nets=None,
             batch_size: int = 128, progress: bool = True, label: str = "") -> dict:
    """Generate ``n`` images in all (n / len(guidance) per scale), measure them and the real sets; return the results.

    Args:
        pipe: a ``StableDiffusionPipeline`` (any object called like it), with the scheduler already chosen.
        guidance: the guidance scales s; steps: sampling steps; seed: of the captions, real images and noise.
        out: folder for metrics.json, tradeoff.png and sample grids (None: write nothing).
        nets: ``EvalNetworks`` (default: the shipped ones in minildm/weights/eval).
        label: names the model in the outputs (e.g. its folder).
    """
    from tqdm import tqdm
    nets = load_eval_networks(EVAL_WEIGHTS) if nets is None else nets
    guidance = [float(g) for g in guidance]
    per_scale = n // max(len(guidance), 1)
    if not guidance or per_scale <= nets.feature_dim:
        raise EvaluateUsageError(f"evaluate: n={n} over {len(guidance)} guidance scale(s) gives {per_scale} images per "
                                 f"scale; FD needs more than {nets.feature_dim} (the feature dimension): use n >= "
                                 f"{(nets.feature_dim + 1) * max(len(guidance), 1)}")
    judges = {EVAL_SEED, EVAL_SEED + 1}  # the evaluation networks learned from (and were checked on) these images
    if judges & {seed, seed + 1} or seed < 0:
        raise EvaluateUsageError(f"evaluate: seed {seed} is negative or would reuse images the evaluation networks "
                                 f"were trained on (seeds {sorted(judges)}); choose another seed")
    real_a, captions = real_set(per_scale, seed)
    real_b, _ = real_set(per_scale, seed + 1)  # another seed: an independent stream of images
    reference = nets.features(real_b)
    floor = measure(nets, real_a, captions, reference, seed)
    results = {"model": label, "n_per_guidance": per_scale, "steps": steps, "seed": seed,
               "scheduler": type(pipe.scheduler).__name__, "eval_networks": str(nets.folder),
               "note": "FD_minildm / KID_minildm use minildm's evaluation network, not Inception: they are not FID "
                       "or KID and compare only with each other at equal n. real: real images of the same captions "
                       "(the floor at this n).",
               "real": floor, "generated": []}
    pipe.show_progress = False
    bar = tqdm(total=per_scale * len(guidance), desc="evaluate", unit="img", disable=not progress, leave=False)
    for g in guidance:
        began = time.perf_counter()
        images = generate(pipe, captions, g, steps, seed, batch_size, bar)
        seconds = time.perf_counter() - began
        row = {"guidance_scale": g, **measure(nets, images, captions, reference, seed),
               "sample_seconds": seconds, "images_per_second": per_scale / seconds}
        results["generated"].append(row)
        if out is not None:
            Path(out).mkdir(parents=True, exist_ok=True)
            save_image_grid(images[:16], Path(out) / f"samples_guidance_{g:g}.png", captions=captions[:16],
                            title=f"guidance {g:g}, {steps} steps")
    bar.close()
    if out is not None:
        write_outputs(results, out)
    return results


# -- reporting ------------------------------------------------------------------------------------------------------
def format_table(results: dict) -> str:
    """The results as a Markdown table (ready for a README): one row for real images, one per guidance scale."""
    n = results["n_per_guidance"]
    lines = [f"| images (N = {n} each) | guidance | FD_minildm ↓ | KID_minildm ↓ | CLIP score ↑ | R-precision ↑ "
             "| all correct ↑ | seen | held-out | one object | two objects | s / image |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def row(name, guidance, m, speed):
        a = m["attributes"]
        cell = lambda group: f"{a[group]['all']:.3f}" if group in a else "–"  # noqa: E731
        kid = m["KID_minildm"]  # ± its spread over subsets, when there were several (N > subset size)
        kid_text = f"{kid['mean']:.4f}" + (f" ± {kid['std']:.4f}" if kid["subsets"] > 1 else "")
        lines.append(f"| {name} | {guidance} | {m['FD_minildm']:.2f} | {kid_text} | "
                     f"{m['clip_score']:.1f} | {m['r_precision']:.3f} | {cell('all')} | {cell('seen')} | "
                     f"{cell('heldout')} | {cell('one')} | {cell('two')} | {speed} |")

    row("real (floor)", "–", results["real"], "–")
    for m in results["generated"]:
        row("generated", f"{m['guidance_scale']:g}", m, f"{1 / m['images_per_second']:.2f}")
    return "\n".join(lines)


def plot_tradeoff(results: dict, path) -> Path:
    """FD_minildm against CLIP score, one point per guidance scale, with the real-image floor: a PNG at ``path``."""
    from ..train.plots import new_figure, save_figure
    rows = results["generated"]
    x, y = [m["clip_score"] for m in rows], [m["FD_minildm"] for m in rows]
    real = results["real"]
    fig = new_figure(6, 4.5)
    ax = fig.subplots()
    ax.plot(x, y, "o-", color="tab:blue", label="generated")
    for m, xi, yi in zip(rows, x, y):
        ax.annotate(f"s = {m['guidance_scale']:g}", (xi, yi), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.plot([real["clip_score"]], [real["FD_minildm"]], "*", color="tab:green", markersize=12,
            label="real images (FD floor at this N)")
    ax.axhline(real["FD_minildm"], color="tab:green", linestyle=":", linewidth=1)
    ax.set_xlabel("CLIP score (evaluation CLIP) →  better text alignment")
    ax.set_ylabel("FD_minildm (not FID) ↓  closer to real images")
    ax.set_title(f"guidance trade-off, N = {results['n_per_guidance']} per point, {results['scheduler']} "
                 f"{results['steps']} steps", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return save_figure(fig, path)


def write_outputs(results: dict, out) -> dict:
    """Write metrics.json (everything), table.md and tradeoff.png into ``out``; returns name -> path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "metrics.json", "table": out / "table.md", "plot": out / "tradeoff.png"}
    with atomic_write(paths["json"], mode="w") as f:
        f.write(json.dumps(results, indent=2) + "\n")
    with atomic_write(paths["table"], mode="w") as f:
        f.write(format_table(results) + "\n")
    plot_tradeoff(results, paths["plot"])
    return paths


# -- the command line -----------------------------------------------------------------------------------------------
def guidance_list(text: str) -> list[float]:
    """"1,3,5,7.5" -> [1.0, 3.0, 5.0, 7.5]; every scale must be a number >= 0."""
    problem = f"--guidance: expected one or more numbers >= 0 separated by commas, like 1,3,5,7.5; got {text!r}"
    try:
        scales = [float(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise EvaluateUsageError(problem) from None
    if not scales or any(s < 0 for s in scales):
        raise EvaluateUsageError(problem)
    return scales


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1, or a message that says what is wrong."""
    import argparse
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def add_evaluate_arguments(parser) -> None:
    """The options of ``python -m minildm evaluate`` (an ``argparse`` parser or subparser)."""
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, metavar="FOLDER",
                        help="pipeline folder to evaluate (default: the shipped model, minildm/weights/shapes)")
    parser.add_argument("--n", type=_positive_int, default=500, metavar="N",
                        help="generated images in all, split evenly across the guidance scales; each scale needs "
                             "more than 64 (default 500: 125 per scale, about 4 minutes on 2 CPU cores)")
    parser.add_argument("--guidance", default=",".join(f"{g:g}" for g in DEFAULT_GUIDANCE), metavar="S1,S2,...",
                        help="guidance scales, comma-separated (default 1,3,5,7.5)")
    parser.add_argument("--scheduler", choices=SCHEDULERS, default="ddim",
                        help="the sampler: ddim, dpm (DPM-Solver++) or ddpm (default ddim)")
    parser.add_argument("--steps", type=_positive_int, default=30, metavar="N", help="sampling steps (default 30)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the captions, the real images and the noise (default 0)")
    parser.add_argument("--out", type=Path, default=Path("runs/evaluate"), metavar="DIR",
                        help="folder for metrics.json, table.md, tradeoff.png and sample grids (default "
                             "runs/evaluate)")
    parser.add_argument("--eval-networks", type=Path, default=EVAL_WEIGHTS, metavar="FOLDER",
                        help="the evaluation networks (default: the shipped ones, minildm/weights/eval)")
    parser.add_argument("--batch-size", type=_positive_int, default=128, metavar="N",
                        help="images per pipeline call (default 128)")
    parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
