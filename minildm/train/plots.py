"""Figures written during training: the loss curve, and the atomic PNG save every figure goes through.

Figures are drawn with ``matplotlib.figure.Figure`` directly rather than ``pyplot``: no global "current figure",
no GUI backend is chosen or switched (a bare ``Figure`` renders with Agg, the file renderer), nothing stays open,
and it works the same in a script, a test, or a notebook. matplotlib is imported inside the functions, so importing
``minildm.train`` (or running ``python -m minildm --help``) does not pay for it.

All data here is on the host: callers pass Python floats or NumPy arrays (``backend.to_host``), never CuPy arrays.
"""
from __future__ import annotations

from pathlib import Path

import numpy

from ..io import atomic_write


def new_figure(width: float, height: float):
    """A fresh matplotlib ``Figure`` of the given size in inches (not registered with pyplot)."""
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), layout="constrained")


def save_figure(fig, path) -> Path:
    """Write ``fig`` as a PNG to ``path`` atomically (a crash never leaves half an image); returns the path."""
    path = Path(path)
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    return path


def moving_average(values, window: int) -> numpy.ndarray:
    """Mean of each run of ``window`` consecutive values (``len(values) - window + 1`` of them)."""
    values = numpy.asarray(values, dtype=numpy.float64)
    window = max(1, min(window, len(values)))
    csum = numpy.cumsum(numpy.concatenate([[0.0], values]))
    return (csum[window:] - csum[:-window]) / window


def draw_loss_curve(ax, losses, title: str = "training loss") -> None:
    """Draw the raw losses (faint) and their moving average on the matplotlib axes ``ax``."""
    losses = numpy.asarray(losses, dtype=numpy.float64)
    steps = numpy.arange(len(losses))
    ax.plot(steps, losses, color="tab:blue", alpha=0.25, linewidth=0.8, label="loss per step")
    window = max(1, len(losses) // 50)  # ~50 windows across the run, whatever its length
    if window > 1:
        smooth = moving_average(losses, window)
        ax.plot(steps[window - 1:], smooth, color="tab:blue", linewidth=1.8, label=f"mean of {window} steps")
    if len(losses) and losses.min() > 0 and losses.max() > 20 * losses.min():
        ax.set_yscale("log")  # a loss that falls by orders of magnitude: log shows the early and the late part
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right")


def plot_loss_curve(losses, path, title: str = "training loss") -> Path:
    """Write the loss curve of ``losses`` (one float per step) to the PNG ``path``; returns the path."""
    fig = new_figure(6, 4)
    draw_loss_curve(fig.subplots(), losses, title)
    return save_figure(fig, path)
