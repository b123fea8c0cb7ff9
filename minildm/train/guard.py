"""The NaN/inf guard: stop training at the first non-finite loss or gradient, before it can do harm.

One NaN in the loss becomes NaN gradients, the optimizer writes NaN into every weight, and from then on the run is
dead — yet it keeps going, and worse, overwrites the last good checkpoint with NaNs. So the training loop checks
the loss (after the forward pass) and the global gradient norm (after the backward pass) and raises
``NonFiniteLossError`` *before* ``optimizer.step()``. The weights, the optimizer and the checkpoint on disk then
still hold the last good state, and the message says where it is:

    NonFiniteLossError: loss is nan at step 137; last good checkpoint: runs/x/checkpoint.safetensors (step 100)
"""
from __future__ import annotations

import math


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss (or gradient norm). Nothing was updated with it.

    Attributes:
        what: "loss" or "gradient norm".  value: the offending float.  step: the step at which it happened.
        checkpoint: path of the last good checkpoint (None if none was written yet).
        checkpoint_step: the step that checkpoint resumes from (None if none).
    """

    def __init__(self, what: str, value: float, step: int, checkpoint=None, checkpoint_step=None):
        self.what, self.value, self.step = what, value, step
        self.checkpoint, self.checkpoint_step = checkpoint, checkpoint_step
        if checkpoint is None:
            where = "no checkpoint was written yet"
        else:
            where = f"last good checkpoint: {checkpoint} (step {checkpoint_step})"
        super().__init__(f"{what} is {value} at step {step}; {where}")


def check_finite(what: str, value: float, step: int, checkpoint=None, checkpoint_step=None) -> None:
    """Raise ``NonFiniteLossError`` if ``value`` (a Python float) is NaN or ±inf; otherwise do nothing."""
    if not math.isfinite(value):
        raise NonFiniteLossError(what, value, step, checkpoint, checkpoint_step)
