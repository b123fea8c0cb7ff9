"""Grids of images with matplotlib, on the host: saved as one PNG with captions, or shown in a notebook.

    save_image_grid(ds.images[:16], "samples.png", captions=ds.captions[:16], ncols=4)
    show_grid(images.reshape(2, 8, 3, 32, 32), row_labels=["t=0", "t=500"])   # in a notebook
    show_channels(latents[:4], images[:4])        # each channel of (4, C, h, w) latents as a heat map
    python -m minildm.data samples.png [split] [seed]     # a look at 32 examples of the shapes dataset
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from .. import backend


def to_uint8(images) -> np.ndarray:
    """Images as (N, H, W, 3) uint8 for display.

    Accepts (N, 3, H, W) or (3, H, W) floats in [-1, 1] (minildm's layout, host or device), or (N, H, W, 3) /
    (H, W, 3) uint8 already in display form.
    """
    array = backend.to_host(getattr(images, "data", images))
    if array.dtype == np.uint8:
        return array[None] if array.ndim == 3 else array
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[1] != 3:
        raise ValueError(f"to_uint8: expected (N, 3, H, W) floats in [-1, 1], got shape {array.shape}")
    scaled = (np.clip(array.astype(np.float32), -1.0, 1.0) + 1.0) * 127.5
    return np.round(scaled).astype(np.uint8).transpose(0, 2, 3, 1)


def save_image_grid(images, path, captions=None, ncols: int = 8, title: str | None = None) -> Path:
    """Write ``images`` as a grid to ``path`` (PNG), each with its caption (wrapped) below it; returns the path.

    Args:
        images: (N, 3, H, W) floats in [-1, 1] or (N, H, W, 3) uint8, see ``to_uint8``.
        captions: N strings, or None for a grid without text.
    """
    # The object-oriented Figure API draws without pyplot's global state and without needing a display.
    from matplotlib.figure import Figure

    pictures = to_uint8(images)
    n = len(pictures)
    if captions is not None and len(captions) != n:
        raise ValueError(f"save_image_grid: {n} images but {len(captions)} captions")
    ncols = max(1, min(ncols, n))
    nrows = max(1, -(-n // ncols))
    cell_height = 2.6 if captions is not None else 1.9
    fig = Figure(figsize=(1.9 * ncols, cell_height * nrows + (0.4 if title else 0.0)))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i < n:
            # nearest: show the 32×32 pixels as they are, not smoothed by the display.
            ax.imshow(pictures[i], interpolation="nearest")
            if captions is not None:
                ax.text(0.5, -0.06, "\n".join(textwrap.wrap(captions[i], 26)), fontsize=7, ha="center", va="top",
                        transform=ax.transAxes)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def show_grid(images, row_labels=(), col_labels=(), title: str | None = None, size: float = 1.0):
    """Draw a table of images with matplotlib's pyplot (for notebooks) and return the figure.

    In a notebook, end the cell with ``plt.show()`` (or a ``;``): a figure that is also the cell's value is drawn twice.

    Args:
        images: (rows, cols, 3, H, W) floats in [-1, 1] or (rows, cols, H, W, 3) uint8 (host or device); values
            outside [-1, 1] are clipped for display only.
        row_labels, col_labels: a label per row (left) and per column (top), or empty for none.
        size: inches per image.
    """
    import matplotlib.pyplot as plt

    array = backend.to_host(getattr(images, "data", images))
    if array.ndim != 5:
        raise ValueError(f"show_grid: expected images (rows, cols, 3, H, W) or (rows, cols, H, W, 3), "
                         f"got shape {array.shape}")
    rows, cols = array.shape[:2]
    if len(row_labels) not in (0, rows) or len(col_labels) not in (0, cols):
        raise ValueError(f"show_grid: {rows} rows and {cols} columns but {len(row_labels)} row labels and "
                         f"{len(col_labels)} column labels")
    pictures = to_uint8(array.reshape(rows * cols, *array.shape[2:]))  # (rows * cols, H, W, 3) uint8
    pictures = pictures.reshape(rows, cols, *pictures.shape[1:])
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols + 0.6, size * rows + (0.5 if title else 0.3)),
                             squeeze=False, layout="constrained")
    for r in range(rows):
        for c in range(cols):
            axes[r, c].imshow(pictures[r, c], interpolation="nearest")  # the pixels as they are, not smoothed
            axes[r, c].set_xticks([]), axes[r, c].set_yticks([])
            if r == 0 and len(col_labels):
                axes[r, c].set_title(col_labels[c], fontsize=8)
            if c == 0 and len(row_labels):
                axes[r, c].set_ylabel(row_labels[r], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def show_channels(arrays, images=None, row_labels=(), title: str | None = None, size: float = 1.0,
                  cmap: str = "RdBu_r"):
    """Draw each channel of feature maps (e.g. VAE latents) as a heat map, one row per sample; return the figure.

    Every channel gets one colour scale, symmetric around 0 and shared by all rows (±max |value| of that channel),
    so rows compare directly and 0 is the neutral colour of the diverging ``cmap``.

    Args:
        arrays: (rows, C, h, w) floats (host or device).
        images: optional (rows, 3, H, W) floats in [-1, 1] or (rows, H, W, 3) uint8, drawn first in each row.
        row_labels: a label per row (left), or empty for none.
        size: inches per panel.
    """
    import matplotlib.pyplot as plt

    maps = backend.to_host(getattr(arrays, "data", arrays))
    if maps.ndim != 4:
        raise ValueError(f"show_channels: expected arrays (rows, C, h, w), got shape {maps.shape}")
    rows, channels = maps.shape[:2]
    pictures = None if images is None else to_uint8(images)            # (rows, H, W, 3) uint8
    if pictures is not None and len(pictures) != rows:
        raise ValueError(f"show_channels: {rows} rows of channels but {len(pictures)} images")
    if len(row_labels) not in (0, rows):
        raise ValueError(f"show_channels: {rows} rows but {len(row_labels)} row labels")
    first = 0 if pictures is None else 1                                # the column of channel 0
    limits = np.abs(maps).max(axis=(0, 2, 3))                           # one scale per channel, over all rows
    fig, axes = plt.subplots(rows, first + channels, squeeze=False, layout="constrained",
                             figsize=(size * (first + channels) + 0.6, size * rows + (0.5 if title else 0.3)))
    for r in range(rows):
        if pictures is not None:
            axes[r, 0].imshow(pictures[r], interpolation="nearest")
        for c in range(channels):
            axes[r, first + c].imshow(maps[r, c], cmap=cmap, vmin=-limits[c], vmax=limits[c],
                                      interpolation="nearest")
            if r == 0:
                axes[r, first + c].set_title(f"channel {c}", fontsize=8)
        if len(row_labels):
            axes[r, 0].set_ylabel(row_labels[r], fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([]), ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def save_dataset_preview(path, split: str = "train", seed: int = 0, n: int = 32) -> Path:
    """A grid of ``n`` examples of ``ShapesDataset(split=split, seed=seed)`` with their captions."""
    from .shapes import ShapesDataset

    ds = ShapesDataset(n, seed=seed, split=split, two_object_fraction=0.4)
    return save_image_grid(ds.images, path, ds.captions, ncols=8, title=f"shapes dataset, split={split!r}, seed={seed}")

