"""The attribute checker: read colour, shape, size and position back from an image, with no learning at all.

    check_image(image)                  # -> (ShapeObject(colour="red", shape="circle", size="large", ...), ...)
    score(image, "a red circle at the top left")   # -> {"colour": True, "shape": True, ..., "all": True}
    attribute_accuracy(images, captions)           # -> rates over a batch, e.g. {"colour": 0.99, ..., "all": 0.97}

How an image is read, step by step (every step is a plain rule; nothing is fitted to data):
  1. Background: the per-channel median (objects cover well under half the image), subtracted from every pixel.
  2. Foreground: pixels whose brightest channel stands out from the background by more than 0.4.
  3. Objects: connected groups of foreground pixels (``label_components``); specks under 4 pixels are noise.
  4. Colour: the palette colour whose hue is nearest to the object's mean colour. Hue here is the colour divided
     by its brightest channel, so a dim anti-aliased edge pixel has the same hue as the bright middle.
  5. How much of each pixel the object covers: the pixel's colour projected on the palette colour, over the
     object's pixels and a 2-pixel border (so blurred edges count). Projection is linear, so blur moves coverage
     around but keeps its sum, the area, and its centre of mass; zero-mean noise averages out of both.
  6. Shape, by analysis by synthesis: draw each known shape with the renderer itself, with the object's area and
     centre of mass, also blurred by σ = 0.5, 1 and 1.5 px (generated images are often soft), and keep the shape
     whose template differs least from the coverage (sum of squared differences).
  7. Size and position come from that best template: its radius against ``SIZE_THRESHOLD``, its box centre
     against the 3×3 grid (``position_of``).
Measured on 2,000 dataset images per split (half of them two-object scenes): every image fully correct, clean,
with Gaussian noise up to σ = 0.3 on the [-1, 1] scale, and with Gaussian blur up to σ = 1.3 px. Stronger blur
(σ = 1.6 px) smears small squares and circles into each other: shape drops to about 89 %.
See tests/data/test_checker_accuracy.py.
"""
from __future__ import annotations

import functools
import itertools

import numpy as np

from .. import backend
from .attributes import PALETTE, SHAPES, ShapeObject, position_of, size_of
from .captions import parse_caption
from .shapes import coverage

FOREGROUND_THRESHOLD = 0.4  # about half the coverage of the dimmest palette colour: the middle of every edge
MIN_PIXELS_AT_32 = 4        # smaller components are noise (the smallest object, a small triangle, has ~18 pixels)
BORDER = 2                  # pixels around a component that still belong to it (anti-aliasing, blur)
# Area of each shape drawn in a box of radius r, in units of r² (circle π r², square (2r)², triangle ½ 2r 2r), and
# how far below the box centre its centre of mass lies, in units of r (a triangle's is 1/3 of its height above the
# base: r - 2r/3 = r/3 below the centre).
AREA_PER_R2 = {"circle": np.pi, "square": 4.0, "triangle": 2.0}
CENTRE_OF_MASS_BELOW_BOX_CENTRE = {"circle": 0.0, "square": 0.0, "triangle": 1.0 / 3.0}
BLUR_LEVELS = (0.0, 0.5, 1.0, 1.5)  # Gaussian blurs (σ in pixels at 32×32) tried on each template
ATTRIBUTES = ("colour", "shape", "size", "position")

_NAMES = tuple(PALETTE)
_COLOURS = np.asarray([PALETTE[name] for name in _NAMES], dtype=np.float64)  # (6, 3)
_HUES = _COLOURS / _COLOURS.max(axis=1, keepdims=True)


def to_rgb01(image) -> np.ndarray:
    """One image as (H, W, 3) float64 in [0, 1] on the host.

    Accepts minildm's layout, (3, H, W) floats in [-1, 1] (NumPy, CuPy or a Tensor), or uint8 pixels in
    (H, W, 3) or (3, H, W) layout.
    """
    array = backend.to_host(getattr(image, "data", image))
    if array.ndim != 3 or 3 not in (array.shape[0], array.shape[-1]):
        raise ValueError(f"check_image: expected one image (3, H, W) or (H, W, 3), got shape {array.shape}")
    if array.dtype == np.uint8:
        rgb = array.astype(np.float64) / 255.0
        return rgb if array.shape[-1] == 3 else rgb.transpose(1, 2, 0)
    if array.shape[0] != 3:
        raise ValueError(f"check_image: float images are (3, H, W) in [-1, 1], got shape {array.shape}")
    return (array.astype(np.float64).transpose(1, 2, 0) + 1.0) / 2.0


def _shift_min(labels, fill):
    # Smallest value among each pixel and its 4 neighbours (up, down, left, right); `fill` beyond the border.
    padded = np.full((labels.shape[0] + 2, labels.shape[1] + 2), fill, dtype=labels.dtype)
    padded[1:-1, 1:-1] = labels
    return np.minimum.reduce([labels, padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]])


def label_components(mask: np.ndarray) -> np.ndarray:
    """Label the 4-connected groups of True pixels: (H, W) int, 0..K-1 in raster order of each group's first pixel,
    -1 on False pixels.

    Every foreground pixel starts with its own index as label and repeatedly takes the smallest label among itself
    and its foreground neighbours. Labels only flow inside a group, so when nothing changes any more each group
    carries the index of its first pixel.
    """
    none = mask.size  # larger than every pixel index: "no label"
    labels = np.where(mask, np.arange(mask.size).reshape(mask.shape), none)
    while True:
        spread = np.where(mask, _shift_min(labels, none), none)
        if np.array_equal(spread, labels):
            break
        labels = spread
    out = np.full(mask.shape, -1, dtype=np.int64)
    out[mask] = np.searchsorted(np.unique(labels[mask]), labels[mask])  # first-pixel indices -> 0, 1, 2, ...
    return out


def _dilate(mask: np.ndarray, steps: int) -> np.ndarray:
    # Grow a mask by `steps` pixels in the 4 directions (a diamond), reusing the neighbour minimum on 0/1 values.
    grown = mask.astype(np.int64)
    for _ in range(steps):
        grown = -_shift_min(-grown, 0)  # max over the neighbourhood
    return grown.astype(bool)


@functools.lru_cache(maxsize=None)
def _blur_matrices(size: int) -> np.ndarray:
    """(L, size, size): one matrix per σ in BLUR_LEVELS; ``B @ image @ B.T`` blurs an image (zero beyond the border).

    A Gaussian blur is separable, and a 1-D blur is a matrix product: row i of B is the kernel centred on pixel i.
    """
    offsets = np.arange(size)[:, None] - np.arange(size)[None, :]
    scale = size / 32  # the levels are given in pixels of a 32×32 image
    out = [np.eye(size)]
    for sigma in BLUR_LEVELS[1:]:
        kernel = np.exp(-0.5 * (offsets / (sigma * scale)) ** 2)
        out.append(kernel / kernel[size // 2].sum())  # the full kernel sums to 1 (the border just loses some)
    return np.stack(out)


def _read_object(rgb, pixels, region, resolution) -> ShapeObject:
    """Colour, shape, size and position of one component. rgb: (H, W, 3) minus background; pixels/region: masks."""
    mean = rgb[pixels].mean(axis=0)
    hue = mean / max(mean.max(), 1e-6)
    k = int(np.argmin(((_HUES - hue) ** 2).sum(axis=1)))
    colour = _COLOURS[k]
    weight = np.where(region, rgb @ colour / (colour @ colour), 0.0)  # coverage in [0, 1], (H, W)
    area = max(weight.sum(), 1e-6)
    rows, cols = np.indices(weight.shape) + 0.5  # pixel centres
    cx, cy = (weight * cols).sum() / area, (weight * rows).sum() / area
    # One template per shape with the object's area and centre of mass: (3, H, W), geometry in pixels.
    r = np.sqrt(area / np.array([AREA_PER_R2[shape] for shape in SHAPES]))
    box_y = cy - np.array([CENTRE_OF_MASS_BELOW_BOX_CENTRE[shape] for shape in SHAPES]) * r
    sharp = coverage(SHAPES, np.full(3, cx) / resolution, box_y / resolution, r / resolution, resolution)
    # The image may be blurred (a VAE, a diffusion model): try each template blurred by every level, keep the best.
    blur = _blur_matrices(resolution)                                    # (L, H, H)
    templates = blur[None] @ sharp[:, None] @ blur[None].transpose(0, 1, 3, 2)  # (3, L, H, W)
    misfit = (((weight - templates) * region) ** 2).sum(axis=(2, 3)).min(axis=1)  # (3,)
    best = int(np.argmin(misfit))
    x, y, radius = cx / resolution, box_y[best] / resolution, r[best] / resolution
    return ShapeObject(_NAMES[k], SHAPES[best], size_of(radius), position_of(x, y), float(x), float(y), float(radius))


def check_image(image) -> tuple:
    """The objects in one image, as a scene: a tuple of ``ShapeObject`` (with measured x, y, radius), in raster order.

    Args:
        image: (3, H, W) float in [-1, 1] (host or device) or uint8 pixels, see ``to_rgb01``; square images.
    """
    rgb = to_rgb01(image)
    resolution = rgb.shape[0]
    rgb = rgb - np.median(rgb.reshape(-1, 3), axis=0)
    labels = label_components(rgb.max(axis=2) > FOREGROUND_THRESHOLD)
    min_pixels = MIN_PIXELS_AT_32 * (resolution / 32) ** 2
    objects = []
    for k in range(labels.max() + 1):
        pixels = labels == k
        if pixels.sum() < min_pixels:
            continue
        region = _dilate(pixels, BORDER) & ((labels == -1) | pixels)  # own pixels + border, never another object's
        objects.append(_read_object(rgb, pixels, region, resolution))
    return tuple(objects)


def _agrees(expected: ShapeObject, found: ShapeObject | None, attribute: str) -> bool:
    if found is None:  # a described object that has no detected partner gets nothing right
        return False
    wanted = getattr(expected, attribute)
    return wanted is None or wanted == getattr(found, attribute)  # size None: the caption left it open


def score(image, caption) -> dict:
    """Which attributes of a caption an image shows: dict of bools colour, shape, size, position, count, all.

    Each described object is paired with a detected one, choosing the pairing that agrees on the most attributes,
    so "a red circle on the left and a blue square on the right" is judged object by object (a red square and a
    blue circle in those places fail on shape, not on everything). An attribute is True when it is right for every
    described object. ``count``: the image holds exactly as many objects as described; ``all`` needs all five.

    Args:
        caption: a caption in the dataset's grammar (see ``parse_caption``) or an already parsed scene.
    """
    expected = parse_caption(caption) if isinstance(caption, str) else tuple(caption)
    found = check_image(image)
    candidates = list(found) + [None] * len(expected)  # None: "no partner", when too few objects were found
    best, best_agreement = None, -1
    for pairing in itertools.permutations(range(len(candidates)), len(expected)):
        partners = [candidates[i] for i in pairing]
        agreement = sum(_agrees(e, p, a) for e, p in zip(expected, partners) for a in ATTRIBUTES)
        if agreement > best_agreement:
            best, best_agreement = partners, agreement
    result = {a: all(_agrees(e, p, a) for e, p in zip(expected, best)) for a in ATTRIBUTES}
    result["count"] = len(found) == len(expected)
    result["all"] = all(result.values())
    return result


def attribute_accuracy(images, captions) -> dict:
    """Share of images that get each attribute right: dict colour, shape, size, position, count, all (floats in
    [0, 1]) and n, the number of images.

    Args:
        images: (N, 3, H, W) floats in [-1, 1] (host or device) or a sequence of single images.
        captions: N captions, one per image.
    """
    if len(images) != len(captions):
        raise ValueError(f"attribute_accuracy: {len(images)} images but {len(captions)} captions")
    if len(captions) == 0:
        raise ValueError("attribute_accuracy: no images to score")
    images = backend.to_host(getattr(images, "data", images)) if not isinstance(images, (list, tuple)) else images
    scores = [score(image, caption) for image, caption in zip(images, captions)]
    rates = {key: float(np.mean([s[key] for s in scores])) for key in scores[0]}
    rates["n"] = len(scores)
    return rates
