"""Captioned shapes: tiny procedural images of one or two coloured shapes, with the sentence that describes them.

    ds = ShapesDataset(20_000, seed=0, split="train")
    ds.images[0]      # (3, 32, 32) float32 in [-1, 1], NCHW like every image in minildm
    ds.captions[0]    # "a large red circle at the top left"
    ds.scenes[0]      # (ShapeObject("red", "circle", "large", "top left", x=0.27, y=0.22, radius=0.19),)

How an image is made, step by step:
  1. ``sample_scene`` draws the attributes (colour, shape, size, position) and the exact geometry: the centre jitters
     by up to 1.5 px around its grid point and the radius varies within its size's range, so no two images of one
     caption are identical (a model has to learn the caption, not memorise 486 pictures).
  2. ``render_scenes`` draws every object as a coverage mask over the pixel grid, computed from a signed distance
     (how far each pixel centre lies inside the shape's edge). Edges are anti-aliased: coverage rises linearly
     across the one-pixel band around the edge, so a pixel whose centre sits on the edge is half covered.
     This is the exact covered area along edges that run with the pixel grid and close to it elsewhere: corners
     gain a little (at most about 1.5 px² per object, small beside the 18 px² of the smallest object).
  3. The colour is blended over a black background by coverage: pixel = (1 - a) * pixel + a * colour.
Everything is vectorised over objects with NumPy masks; 20,000 images take 1–2 s on a laptop CPU.

Randomness: one ``numpy.random.Generator`` per dataset, seeded by ``seed`` and the split's own stream, drawn
scene after scene. The same arguments give the same images, and the first k scenes do not depend on ``n``.
"""
from __future__ import annotations

import numpy as np

from .attributes import (ALL_PAIRS, BACKGROUND, GRID, HELDOUT_PAIRS, JITTER, PALETTE, POSITIONS, RADIUS_RANGE,
                         SEEN_PAIRS, SHAPES, SIZES, TWO_OBJECT_JITTER_ALONG, TWO_OBJECT_LAYOUTS, ShapeObject)
from .captions import caption_for

# split -> id of its random stream. "eval" draws the same kinds of scene as "train" from an independent stream;
# "heldout" draws only scenes that contain a held-out (colour, shape) pair.
SPLITS = {"train": 0, "eval": 1, "heldout": 2}


# --- Sampling ------------------------------------------------------------------------------------------------------

def _pick(rng: np.random.Generator, options):
    # rng.choice would turn a tuple of tuples into a 2-D array; an index keeps the option as it is.
    return options[int(rng.integers(len(options)))]


def _sample_object(rng, pair, position, jitter_x, jitter_y) -> ShapeObject:
    colour, shape = pair
    size = _pick(rng, SIZES)
    radius = rng.uniform(*RADIUS_RANGE[size])
    row, column = POSITIONS[position]
    x = GRID[column] + rng.uniform(-jitter_x, jitter_x)
    y = GRID[row] + rng.uniform(-jitter_y, jitter_y)
    return ShapeObject(colour, shape, size, position, float(x), float(y), float(radius))


def sample_scene(rng: np.random.Generator, split: str = "train", n_objects: int = 1) -> tuple:
    """Draw one scene: a tuple of ``n_objects`` (1 or 2) ``ShapeObject``, in the order the caption will name them.

    Args:
        rng: a seeded ``numpy.random.Generator`` (``minildm.backend.host_rng(seed)``).
        split: "train" / "eval" use only seen (colour, shape) pairs; "heldout" puts a held-out pair in one object
            (the other object of a two-object scene may have any pair).
    """
    if split not in SPLITS:
        raise ValueError(f"sample_scene: unknown split {split!r}; valid: {', '.join(SPLITS)}")
    if n_objects == 1:
        pair = _pick(rng, HELDOUT_PAIRS if split == "heldout" else SEEN_PAIRS)
        return (_sample_object(rng, pair, _pick(rng, tuple(POSITIONS)), JITTER, JITTER),)
    if n_objects != 2:
        raise ValueError(f"sample_scene: n_objects must be 1 or 2, got {n_objects}")
    if split == "heldout":  # one held-out pair, in a random one of the two objects
        pairs = [_pick(rng, HELDOUT_PAIRS), _pick(rng, ALL_PAIRS)]
        if rng.random() < 0.5:
            pairs.reverse()
    else:
        pairs = [_pick(rng, SEEN_PAIRS), _pick(rng, SEEN_PAIRS)]
    layout = _pick(rng, TWO_OBJECT_LAYOUTS)
    positions = layout if rng.random() < 0.5 else layout[::-1]  # either object may be mentioned first
    # The objects may only jitter a little towards each other (along the layout's axis), so they never touch.
    side_by_side = layout == ("left", "right")
    jitter_x = TWO_OBJECT_JITTER_ALONG if side_by_side else JITTER
    jitter_y = JITTER if side_by_side else TWO_OBJECT_JITTER_ALONG
    return tuple(_sample_object(rng, pair, position, jitter_x, jitter_y) for pair, position in zip(pairs, positions))


# --- Rendering -----------------------------------------------------------------------------------------------------

def _signed_distance(shape: str, dx, dy, r):
    """Distance in pixels from each pixel centre to the shape's edge: positive inside, negative outside.

    dx, dy: (M, H, W) offsets of the pixel centres from the box centre (y grows downwards); r: (M, 1, 1) radius.
    """
    if shape == "circle":
        return r - np.sqrt(dx * dx + dy * dy)
    if shape == "square":  # inside when inside both the vertical and the horizontal band
        return r - np.maximum(np.abs(dx), np.abs(dy))
    if shape == "triangle":
        # Apex (0, -r), base corners (±r, r). Inside: above the base (dy <= r) and between the slanted sides,
        # |dx| <= (dy + r) / 2. Dividing by the length of (2, 1), sqrt(5), turns the side test into a distance.
        return np.minimum(r - dy, (dy + r - 2 * np.abs(dx)) / np.sqrt(5.0))
    raise ValueError(f"unknown shape {shape!r}; known shapes: {', '.join(SHAPES)}")


def coverage(shapes, x, y, radius, resolution: int = 32) -> np.ndarray:
    """How much of each pixel each object covers: (M, resolution, resolution) float32 in [0, 1].

    Args:
        shapes: M shape names; x, y, radius: (M,) box centres and radii in fractions of the image side.
    """
    shapes = np.asarray(shapes)
    centres = np.arange(resolution, dtype=np.float32) + 0.5  # pixel i covers [i, i + 1): its centre is i + 0.5
    px = lambda v: np.asarray(v, dtype=np.float32).reshape(-1, 1, 1) * resolution  # noqa: E731  fractions -> pixels
    dx = centres[None, None, :] - px(x)
    dy = centres[None, :, None] - px(y)
    r = px(radius)
    out = np.zeros((len(shapes), resolution, resolution), dtype=np.float32)
    for shape in SHAPES:
        sel = shapes == shape
        if sel.any():
            # A pixel whose centre is 0.5 px inside the edge is fully covered, 0.5 px outside not at all.
            out[sel] = np.clip(_signed_distance(shape, dx[sel], dy[sel], r[sel]) + 0.5, 0.0, 1.0)
    return out


def _render_block(scenes, resolution: int) -> np.ndarray:
    images = np.empty((len(scenes), 3, resolution, resolution), dtype=np.float32)
    images[:] = np.asarray(BACKGROUND, dtype=np.float32)[:, None, None]
    for slot in range(max((len(s) for s in scenes), default=0)):  # first objects, then second objects
        rows = [i for i, scene in enumerate(scenes) if len(scene) > slot]
        objects = [scenes[i][slot] for i in rows]
        alpha = coverage([o.shape for o in objects], [o.x for o in objects], [o.y for o in objects],
                         [o.radius for o in objects], resolution)[:, None]                     # (M, 1, H, W)
        colour = np.asarray([PALETTE[o.colour] for o in objects], dtype=np.float32)[:, :, None, None]  # (M, 3, 1, 1)
        images[rows] = (1 - alpha) * images[rows] + alpha * colour
    return images * 2 - 1  # [0, 1] -> [-1, 1], the range diffusion models work in


def render_scenes(scenes, resolution: int = 32, block: int = 2048) -> np.ndarray:
    """Images of many scenes: (N, 3, resolution, resolution) float32 in [-1, 1], background -1 (black).

    Every object needs its geometry (x, y, radius), as ``sample_scene`` gives it. Works in blocks of ``block``
    scenes so that memory stays small for large datasets.
    """
    for scene in scenes:
        for obj in scene:
            if obj.x is None or obj.y is None or obj.radius is None:
                raise ValueError(f"render_scenes: {obj} has no geometry (x, y, radius); draw scenes with "
                                 "sample_scene, parse_caption gives attributes only")
    out = np.empty((len(scenes), 3, resolution, resolution), dtype=np.float32)
    for start in range(0, len(scenes), block):
        out[start:start + block] = _render_block(scenes[start:start + block], resolution)
    return out


def render_scene(scene, resolution: int = 32) -> np.ndarray:
    """The image of one scene: (3, resolution, resolution) float32 in [-1, 1]."""
    return render_scenes([scene], resolution)[0]


# --- The dataset ---------------------------------------------------------------------------------------------------

class ShapesDataset:
    """``n`` captioned images generated in memory (host NumPy arrays; the loader moves batches to the device).

    Args:
        n: number of images.
        seed: seeds the split's random stream; each split has its own, so the splits never share images.
        split: "train" (seen colour/shape pairs only), "eval" (the same kinds of scene, another stream) or
            "heldout" (every scene contains a pair from ``HELDOUT_PAIRS``, which "train" never shows).
        max_objects: 1 (single objects only) or 2.
        two_object_fraction: share of two-object scenes when ``max_objects == 2``.
        resolution: image side in pixels (the geometry scales with it).
        omit_size_fraction: share of captions that leave out the size word ("a red circle at the top"), so a
            model also understands prompts that do not say how big; ``scenes`` still record the true size.

    Attributes:
        images: (n, 3, resolution, resolution) float32 in [-1, 1].
        captions: list of n strings. scenes: list of n tuples of ``ShapeObject`` (with geometry).
    """

    def __init__(self, n: int, seed: int = 0, split: str = "train", max_objects: int = 2,
                 two_object_fraction: float = 0.3, resolution: int = 32, omit_size_fraction: float = 0.25):
        if split not in SPLITS:
            raise ValueError(f"ShapesDataset: unknown split {split!r}; valid: {', '.join(SPLITS)}")
        if max_objects not in (1, 2):
            raise ValueError(f"ShapesDataset: max_objects must be 1 or 2, got {max_objects}")
        for name, value in (("two_object_fraction", two_object_fraction), ("omit_size_fraction", omit_size_fraction)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"ShapesDataset: {name} must lie in [0, 1], got {value}")
        if int(n) < 0 or int(resolution) < 8:
            raise ValueError(f"ShapesDataset: need n >= 0 and resolution >= 8, got n={n}, resolution={resolution}")
        self.n, self.seed, self.split, self.resolution = int(n), seed, split, int(resolution)
        # spawn_key gives every split its own independent stream from the same seed.
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SPLITS[split],)))
        self.scenes, self.captions = [], []
        for _ in range(self.n):
            two = rng.random() < two_object_fraction and max_objects == 2
            scene = sample_scene(rng, split, 2 if two else 1)
            with_size = rng.random() >= omit_size_fraction
            self.scenes.append(scene)
            self.captions.append(caption_for(scene, with_size=with_size))
        self.images = render_scenes(self.scenes, self.resolution)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index):
        """(image (3, H, W) float32 in [-1, 1], caption) of one example."""
        return self.images[index], self.captions[index]

    def __repr__(self) -> str:
        return f"ShapesDataset(n={self.n}, seed={self.seed}, split={self.split!r}, resolution={self.resolution})"
