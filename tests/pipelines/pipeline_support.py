"""Shared by the pipeline tests: the tiny pipeline folder (scripts/fixtures/pipeline.py), its reference outputs,
and a generator that replays recorded draws."""
from helpers import FIXTURES, load_fixture

from minildm import backend
from minildm.pipelines import StableDiffusionPipeline

FOLDER = FIXTURES / "pipeline_tiny"  # images 16x16 <-> latents (4, 8, 8); VAE factor 2, U-Net 2 levels
SIZE, LATENT = 16, (4, 8, 8)


def load_pipeline(cls=StableDiffusionPipeline):
    pipe = cls.from_pretrained(FOLDER)
    pipe.show_progress = False
    return pipe


def case(name: str) -> dict:
    """A reference case with its settings as Python values (prompts as lists of str, numbers as int/float)."""
    f = load_fixture(f"pipeline_{name}.npz")
    out = {}
    for key, value in f.items():
        if value.dtype.kind == "U":
            out[key] = [str(v) for v in value]
        elif value.ndim == 0:
            out[key] = value.item()
        else:
            out[key] = value
    return out


class ReplayGenerator:
    """Stands in for ``backend.rng(seed)``: returns recorded arrays (e.g. the draws diffusers made from its torch
    generator) from ``standard_normal``, in order, so minildm consumes exactly the same random numbers."""

    def __init__(self, *arrays):
        self.arrays = list(arrays)

    def standard_normal(self, size, dtype=None):
        assert self.arrays, "the pipeline drew more random numbers than diffusers did"
        array = self.arrays.pop(0)
        assert array.shape == tuple(size), f"draw of shape {tuple(size)}, recorded {array.shape}"
        return backend.to_device(array, dtype)

    def integers(self, *args, **kwargs):  # part of the generator interface; the pipelines never call it
        raise AssertionError("unexpected integers() draw")
