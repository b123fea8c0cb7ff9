"""Score a shapes pipeline with the attribute checker: how often does a generated image show what its caption says?

    python scripts/evaluate_shapes.py                         # the shipped model: guidance 1 and its default
    python scripts/evaluate_shapes.py runs/shapes/pipeline --n 200 --guidance 1,3,5 --steps 30 --out runs/eval

For each guidance scale, on the same captions and the same starting noise:

    seen/one       n single objects whose colour-shape pair training showed (split "eval": new images)
    heldout/one    n single objects whose pair training never showed (a blue circle, a green triangle...)
    seen/two, heldout/two    n_two two-object captions, half of each kind

Images come from ``StableDiffusionPipeline`` with the folder's default sampler and step count unless overridden.
Prints a Markdown table (the README's) and writes ``<out>/scores.json``, ``<out>/table.md`` and
``<out>/samples_guidance_<s>.png`` (the first 32 single-object images of each kind).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from minildm import backend
from minildm.data import ShapesDataset, save_image_grid
from minildm.io import atomic_write
from minildm.metrics.attributes import attribute_table
from minildm.pipelines import StableDiffusionPipeline
from minildm.weights import SHAPES

ROWS = ("seen/one", "heldout/one", "seen/two", "heldout/two")
COLUMNS = ("colour", "shape", "size", "position", "count", "all")


def evaluation_captions(n: int, n_two: int, seed: int) -> list[str]:
    """n seen + n held-out single-object captions, then n_two two-object ones (half seen, half held-out pairs)."""
    captions = []
    for split, count, objects in (("eval", n, 1), ("heldout", n, 1), ("eval", n_two // 2, 2),
                                  ("heldout", n_two - n_two // 2, 2)):
        if count:
            captions += ShapesDataset(count, seed=seed, split=split, max_objects=objects,
                                      two_object_fraction=1.0).captions
    return captions


def evaluate(folder=SHAPES, n: int = 500, n_two: int = 200, guidance=None, steps: int | None = None,
             seed: int = 1234, batch_size: int = 100, out=None) -> dict:
    """Generate and score; returns {"settings": {...}, "<guidance>": attribute_table(...) + seconds}."""
    folder = Path(folder)
    pipe = StableDiffusionPipeline.from_pretrained(folder)
    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    guidance = guidance or sorted({1.0, float(pipe.guidance_scale)})
    steps = steps or index.get("num_inference_steps", 30)
    captions = evaluation_captions(n, n_two, seed)
    results = {"settings": {"folder": str(folder), "n": n, "n_two": n_two, "guidance": guidance,
                            "num_inference_steps": steps, "scheduler": type(pipe.scheduler).__name__,
                            "seed": seed, "default_guidance": float(pipe.guidance_scale)}}
    for scale in guidance:
        generator, images, began = backend.rng(seed), [], time.perf_counter()  # same noise for every scale
        for start in range(0, len(captions), batch_size):
            images.append(pipe(captions[start:start + batch_size], num_inference_steps=steps, guidance_scale=scale,
                               generator=generator, output_type="np"))
        images = np.concatenate(images)                 # (N, H, W, 3) in [0, 1], host arrays (output_type="np")
        as_model = images.transpose(0, 3, 1, 2) * 2 - 1   # (N, 3, H, W) in [-1, 1], as the checker reads
        table = attribute_table(as_model, captions)
        table["seconds"] = time.perf_counter() - began
        results[f"{scale:g}"] = table
        print(f"guidance {scale:g}: {len(captions)} images in {table['seconds']:.0f} s", flush=True)
        if out is not None:
            Path(out).mkdir(parents=True, exist_ok=True)
            picks = list(range(min(n, 16))) + list(range(n, n + min(n, 16)))
            save_image_grid(as_model[picks], Path(out) / f"samples_guidance_{scale:g}.png",
                            captions=[captions[i] for i in picks],
                            title=f"top: seen pairs, bottom: held-out pairs; guidance {scale:g}, {steps} steps")
    text = markdown_table(results)
    print(text)
    if out is not None:
        with atomic_write(Path(out) / "scores.json", mode="w") as f:
            f.write(json.dumps(results, indent=2) + "\n")
        with atomic_write(Path(out) / "table.md", mode="w") as f:
            f.write(text + "\n")
    return results


def markdown_table(results: dict) -> str:
    """One row per guidance scale and caption group: the checker's rate per attribute and all-correct."""
    lines = ["| guidance | captions | n | " + " | ".join(COLUMNS) + " |",
             "|---|---|---|" + "---|" * len(COLUMNS)]
    for scale in results["settings"]["guidance"]:
        table = results[f"{scale:g}"]
        for row in ROWS:
            if row in table:
                cells = " | ".join(f"{table[row][c]:.3f}" if c != "all" else f"**{table[row][c]:.3f}**"
                                   for c in COLUMNS)
                lines.append(f"| {scale:g} | {row.replace('/', ', ')} object{'s' if row.endswith('two') else ''} | "
                             f"{table[row]['n']} | {cells} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default=SHAPES, help="pipeline folder (default: the shipped model)")
    parser.add_argument("--n", type=int, default=500, help="single-object images per kind (default 500)")
    parser.add_argument("--n-two", type=int, default=200, help="two-object images (default 200)")
    parser.add_argument("--guidance", default=None,
                        help="comma-separated scales (default: 1 and the folder's default)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the folder's)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--out", default=None, help="folder for scores.json, table.md and sample grids")
    args = parser.parse_args(argv)
    guidance = [float(s) for s in args.guidance.split(",")] if args.guidance else None
    evaluate(args.folder, args.n, args.n_two, guidance, args.steps, args.seed, out=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
