"""Weights that ship inside the package (all trained by minildm's own recipes; nothing is downloaded).

    SHAPES      the text-to-image model: a Stable Diffusion pipeline folder (diffusers layout, float16) trained by
                ``python -m minildm train all --preset shapes`` (see ``scripts/train_shapes.sh``)
    EVAL        the evaluation networks of ``minildm.metrics`` (a feature network and a small CLIP)

    from minildm.weights import SHAPES
    from minildm.pipelines import StableDiffusionPipeline
    pipe = StableDiffusionPipeline.from_pretrained(SHAPES)
"""
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHAPES = HERE / "shapes"
EVAL = HERE / "eval"

__all__ = ["SHAPES", "EVAL"]
