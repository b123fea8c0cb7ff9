"""The world of the shapes dataset: which colours, shapes, sizes and positions exist, and where they are drawn.

Everything the renderer, the caption grammar and the checker agree on lives here, so the three cannot drift apart.

Geometry is measured in fractions of the image side (0.0 = left/top edge, 1.0 = right/bottom edge), so one scene
renders at any resolution. The comments give the same numbers in pixels of a 32×32 image, the size we train on.
Every object fills a square *box* of side ``2 * radius`` centred on ``(x, y)``: a circle touches its box on four
sides, a square is its box, a triangle (apex up) has its base on the box's bottom edge and its apex at the top.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# --- Colours -------------------------------------------------------------------------------------------------------
# RGB in [0, 1]. Six colours a child would name, chosen far apart in hue so that even a dim, blurred pixel is never
# closer to the wrong one (the checker compares hues: each colour divided by its brightest channel).
PALETTE = {
    "red": (0.95, 0.15, 0.15),
    "green": (0.15, 0.80, 0.20),
    "blue": (0.20, 0.35, 1.00),
    "yellow": (0.95, 0.90, 0.15),
    "purple": (0.65, 0.20, 0.90),
    "white": (0.95, 0.95, 0.95),
}
BACKGROUND = (0.0, 0.0, 0.0)  # plain black: every object stands out from it by brightness alone
COLOURS = tuple(PALETTE)

# --- Shapes and sizes ----------------------------------------------------------------------------------------------
SHAPES = ("circle", "square", "triangle")
SIZES = ("small", "large")
# Radius (half the box side) is drawn uniformly from these ranges: 3–4 px and 5.5–6.5 px at 32×32. The gap between
# them (4 px .. 5.5 px) is what lets the checker tell the sizes apart even in blurred images.
RADIUS_RANGE = {"small": (3.0 / 32, 4.0 / 32), "large": (5.5 / 32, 6.5 / 32)}
SIZE_THRESHOLD = 4.75 / 32  # a measured radius above this is "large"

# --- Positions -----------------------------------------------------------------------------------------------------
# A 3×3 grid. Objects are centred on the grid points 1/4, 1/2, 3/4 of the side (8, 16, 24 px) plus a small jitter;
# the checker's cell borders lie halfway between the grid points, at 3/8 and 5/8 (12 and 20 px).
GRID = (0.25, 0.5, 0.75)
CELL_BORDERS = (0.375, 0.625)
POSITIONS = {  # name -> (row, column) of the grid cell
    "top left": (0, 0), "top": (0, 1), "top right": (0, 2),
    "left": (1, 0), "center": (1, 1), "right": (1, 2),
    "bottom left": (2, 0), "bottom": (2, 1), "bottom right": (2, 2),
}
CELL_TO_POSITION = {cell: name for name, cell in POSITIONS.items()}
# Two-object scenes use one of these pairs of cells: side by side in the middle row, or stacked in the middle column.
TWO_OBJECT_LAYOUTS = (("left", "right"), ("top", "bottom"))
# Jitter of the centre, uniform in ±JITTER: 1.5 px keeps every centre 2.5 px away from a cell border and every
# large object inside the image. Two objects move only ±0.5 px along the line that joins them, so ≥ 2 px always
# separate them.
JITTER = 1.5 / 32
TWO_OBJECT_JITTER_ALONG = 0.5 / 32

# --- Held-out combinations -----------------------------------------------------------------------------------------
# (colour, shape) pairs that split="train" never draws, in any object of any scene. Every colour and every shape
# still appears in training with other partners, so a model that composes attributes can draw these without having
# seen them: the compositional test. One pair per shape, each with a different colour, plus one more triangle.
HELDOUT_PAIRS = (("green", "triangle"), ("blue", "circle"), ("yellow", "square"), ("purple", "triangle"))
ALL_PAIRS = tuple((c, s) for c in COLOURS for s in SHAPES)
SEEN_PAIRS = tuple(p for p in ALL_PAIRS if p not in HELDOUT_PAIRS)


@dataclass(frozen=True)
class ShapeObject:
    """One object of a scene. A scene is a tuple of these, in the order the caption mentions them.

    Attributes:
        colour, shape, position: names from ``COLOURS``, ``SHAPES``, ``POSITIONS``.
        size: "small" or "large"; ``None`` when a caption leaves the size open (any size is then correct).
        x, y, radius: the concrete geometry in fractions of the image side (centre of the box, half its side);
            ``None`` for an object parsed from a caption, which names attributes but not exact places.
    """
    colour: str
    shape: str
    size: str | None
    position: str
    x: float | None = None
    y: float | None = None
    radius: float | None = None

    def attributes(self) -> tuple:
        """(colour, shape, size, position): what a caption says about the object, without the exact geometry."""
        return (self.colour, self.shape, self.size, self.position)


def size_of(radius: float) -> str:
    """The size name of a radius (fraction of the image side)."""
    return "large" if radius > SIZE_THRESHOLD else "small"


def position_of(x: float, y: float) -> str:
    """The position name of the grid cell that contains the point (x, y) (fractions of the image side)."""
    column = int(np.searchsorted(CELL_BORDERS, x))
    row = int(np.searchsorted(CELL_BORDERS, y))
    return CELL_TO_POSITION[(row, column)]
