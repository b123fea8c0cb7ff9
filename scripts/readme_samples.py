"""The sample grid of the README: the shipped model on seen pairs, held-out pairs and two-object captions.

    python scripts/readme_samples.py                      # writes minildm/weights/shapes/samples.png

Default sampler, steps and guidance of the model folder; one image per caption, seed 0.
"""
from __future__ import annotations

import json
import sys

from minildm.data import save_image_grid
from minildm.pipelines import StableDiffusionPipeline
from minildm.weights import SHAPES

CAPTIONS = [
    # colour-shape pairs the training set shows
    "a red circle at the top left", "a large yellow circle in the center", "a small green square on the right",
    "a blue triangle at the bottom", "a purple circle at the top right", "a large white triangle on the left",
    "a small red square at the bottom left", "a green circle at the top",
    # pairs held out of training (HELDOUT_PAIRS): the compositional test
    "a blue circle at the top", "a large green triangle on the left", "a yellow square at the bottom right",
    "a small purple triangle in the center",
    # two objects
    "a red circle on the left and a blue square on the right",
    "a yellow triangle at the top and a green circle at the bottom",
    "a white square on the left and a red triangle on the right",
    "a purple square at the top and a blue triangle at the bottom",
]


def main(out=SHAPES / "samples.png") -> int:
    pipe = StableDiffusionPipeline.from_pretrained(SHAPES)
    steps = json.loads((SHAPES / "model_index.json").read_text(encoding="utf-8"))["num_inference_steps"]
    images = pipe(CAPTIONS, num_inference_steps=steps, generator=0)  # (16, 32, 32, 3) uint8
    save_image_grid(images, out, captions=CAPTIONS, ncols=8,
                    title=f"minildm shapes model: guidance {pipe.guidance_scale:g}, {steps} DDIM steps, seed 0 "
                          "(row 1: seen pairs; row 2: held-out pairs, then two objects)")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
