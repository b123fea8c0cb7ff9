"""Score a shapes pipeline with the attribute checker: how often does a generated image show what its caption says?

    python scripts/evaluate_shapes.py                                  # the shipped model, 500 + 500 images
    python scripts/evaluate_shapes.py runs/shapes/pipeline --n 200 --guidance 3 --steps 30 --out runs/eval

Captions are single objects drawn like the dataset's: "seen" from the eval split (colour-shape pairs training
showed, in new images), "heldout" from the held-out split (pairs training never showed: a blue circle, a green
triangle...). Images come from ``StableDiffusionPipeline`` at the folder's default settings unless overridden.
Writes ``<out>/scores.json`` and ``<out>/samples_<split>.png`` (the first 32 images of each split).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from minildm import backend
from minildm.data import ShapesDataset, attribute_accuracy, save_image_grid
from minildm.pipelines import StableDiffusionPipeline

DEFAULT_FOLDER = Path(__file__).resolve().parent.parent / "minildm" / "weights" / "shapes"


def evaluate(folder, n: int = 500, guidance: float | None = None, steps: int | None = None, seed: int = 1234,
             batch_size: int = 100, out=None) -> dict:
    """Generate n images per split and return the checker's rates ({"seen": {...}, "heldout": {...}, ...})."""
    folder = Path(folder)
    pipe = StableDiffusionPipeline.from_pretrained(folder)
    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    guidance = pipe.guidance_scale if guidance is None else guidance
    steps = index.get("num_inference_steps", 30) if steps is None else steps
    results = {"folder": str(folder), "n": n, "guidance_scale": guidance, "num_inference_steps": steps, "seed": seed}
    for name, split in (("seen", "eval"), ("heldout", "heldout")):
        captions = ShapesDataset(n, seed=seed, split=split, max_objects=1).captions
        generator, images, began = backend.rng(seed), [], time.perf_counter()
        for start in range(0, n, batch_size):
            images.extend(pipe(captions[start:start + batch_size], num_inference_steps=steps,
                               guidance_scale=guidance, generator=generator))
        results[name] = attribute_accuracy(images, captions)
        results[name]["seconds"] = time.perf_counter() - began
        if out is not None:
            Path(out).mkdir(parents=True, exist_ok=True)
            save_image_grid(images[:32], Path(out) / f"samples_{name}.png", captions=captions[:32],
                            title=f"{name} pairs, guidance {guidance}, {steps} steps")
        print(f"{name:8s} " + "  ".join(f"{k} {v:.3f}" for k, v in results[name].items() if k not in ("n",)),
              flush=True)
    if out is not None:
        (Path(out) / "scores.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default=DEFAULT_FOLDER, help="pipeline folder (default: shipped model)")
    parser.add_argument("--n", type=int, default=500, help="images per split (default 500)")
    parser.add_argument("--guidance", type=float, default=None, help="guidance scale (default: the folder's)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the folder's)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--out", default=None, help="folder for scores.json and sample grids")
    args = parser.parse_args(argv)
    evaluate(args.folder, args.n, args.guidance, args.steps, args.seed, out=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
