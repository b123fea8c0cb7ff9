"""The progress bar of a training run: steps done, speed (it/s), time left, and the smoothed loss.

A single step's loss is noisy (it depends on the random batch, noise and timesteps), so the bar shows an
exponential moving average instead, with the bias correction Adam uses for its moments:

    m_n = β m_{n-1} + (1 - β) loss_n,   m_0 = 0          shown: m_n / (1 - β^n)

Without the correction the first values would be pulled towards the initial 0. β = 0.98 averages roughly the last
1 / (1 - β) = 50 steps. The bar itself is ``tqdm``, which measures the speed and estimates the time left.
"""
from __future__ import annotations

from tqdm import tqdm  # the plain text bar (tqdm.auto would need ipywidgets in notebooks)


class SmoothedLoss:
    """Bias-corrected exponential moving average of the loss (display only; training never reads it)."""

    def __init__(self, beta: float = 0.98):
        self.beta = beta
        self.average = 0.0   # m_n
        self.count = 0       # n

    def update(self, loss: float) -> float:
        """Add one loss; return the smoothed value m_n / (1 - β^n)."""
        self.count += 1
        self.average = self.beta * self.average + (1 - self.beta) * loss
        return self.value

    @property
    def value(self) -> float:
        return self.average / (1 - self.beta ** self.count) if self.count else float("nan")


class ProgressBar:
    """A tqdm bar over steps ``start .. total - 1``, showing the smoothed loss.

    Args:
        total: the step the run ends at (steps are counted from 0).
        start: the first step this process runs (> 0 after a resume; the bar starts there).
        desc: the label in front of the bar, e.g. "toy2d".
        enabled: False shows nothing (tests, logs).
        history: losses of earlier steps (after a resume), to start the average where the old run left it.
    """

    def __init__(self, total: int, start: int = 0, desc: str = "train", enabled: bool = True, history=()):
        self.loss = SmoothedLoss()
        for value in history[-200:]:  # the last few hundred losses are all that still count in the average
            self.loss.update(value)
        # mininterval: redraw at most 10 times a second, so drawing never slows down a fast loop
        self._bar = tqdm(total=total, initial=start, desc=desc, disable=not enabled, dynamic_ncols=True,
                         mininterval=0.1)

    def update(self, loss: float) -> None:
        """One step done with this loss."""
        smoothed = self.loss.update(loss)
        self._bar.set_postfix_str(f"loss {smoothed:.4f}", refresh=False)  # drawn by update(), when it redraws
        self._bar.update(1)

    def write(self, message: str) -> None:
        """Print a line above the bar without breaking it."""
        self._bar.write(message)

    def close(self) -> None:
        self._bar.close()
