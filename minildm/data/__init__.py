"""Data: the captioned shapes dataset, its attribute checker, a resumable loader and a grid plotter.

    from minildm.data import ShapesDataset, DataLoader, score
    ds = ShapesDataset(20_000, seed=0, split="train")     # images (N, 3, 32, 32) in [-1, 1], captions, scenes
    for images, captions in DataLoader(ds, batch_size=64, seed=0): ...
    score(image, "a red circle at the top left")          # {"colour": True, ..., "all": True}

attributes.py (the world: palette, shapes, sizes, positions, held-out pairs) -> captions.py (grammar) ->
shapes.py (sampling, rendering, dataset) -> checker.py (reading attributes back); loader.py; plotting.py.
"""
from .attributes import (COLOURS, HELDOUT_PAIRS, PALETTE, POSITIONS, SEEN_PAIRS, SHAPES, SIZES, TWO_OBJECT_LAYOUTS,
                         ShapeObject)
from .captions import all_captions, caption_for, parse_caption, vocabulary
from .checker import attribute_accuracy, check_image, score
from .loader import DataLoader
from .plotting import save_dataset_preview, save_image_grid, show_channels, show_grid
from .shapes import SPLITS, ShapesDataset, render_scene, render_scenes, sample_scene

__all__ = ["ShapesDataset", "DataLoader", "ShapeObject", "sample_scene", "render_scene", "render_scenes",
           "caption_for", "parse_caption", "all_captions", "vocabulary", "check_image", "score",
           "attribute_accuracy", "save_image_grid", "show_grid", "show_channels", "save_dataset_preview", "COLOURS", "SHAPES", "SIZES",
           "POSITIONS", "TWO_OBJECT_LAYOUTS", "PALETTE", "HELDOUT_PAIRS", "SEEN_PAIRS", "SPLITS"]
