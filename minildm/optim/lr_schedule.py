"""Learning-rate schedules as plain functions of the step number, each returning a *multiplier* of the base lr.

    base_lr = 1e-3
    for step in range(total_steps):
        optimizer.lr = base_lr * warmup_cosine(step, warmup_steps=500, total_steps=total_steps)
        ...  # forward, backward
        optimizer.step()

``step`` counts the optimizer updates already made: 0 for the first update, ``total_steps - 1`` for the last.
Plain functions hold no state, so resuming training needs nothing but the step number, and a schedule can be
plotted with a list comprehension.
"""
from __future__ import annotations

import math


def linear_warmup(step: int, warmup_steps: int) -> float:
    """Ramp linearly from 1/warmup_steps (first update) to 1 (update number warmup_steps), then stay at 1.

    Multiplier = min(1, (step + 1) / warmup_steps). Counting from step + 1 means the very first update already
    moves the weights (a multiplier of 0 would waste it). ``warmup_steps = 0`` means no warmup (always 1).
    Warmup keeps Adam's first, poorly estimated steps small while its second-moment average fills in.
    """
    if warmup_steps < 0:
        raise ValueError(f"linear_warmup: warmup_steps must be >= 0, got {warmup_steps}")
    if step < 0:
        raise ValueError(f"linear_warmup: step must be >= 0, got {step}")
    if warmup_steps == 0:
        return 1.0
    return min(1.0, (step + 1) / warmup_steps)


def cosine_decay(step: int, total_steps: int, final_ratio: float = 0.0) -> float:
    """Half a cosine from 1 (step 0) down to ``final_ratio`` (step ``total_steps`` and after).

    Multiplier = r + (1 - r) · (1 + cos(π p)) / 2 with progress p = min(step / total_steps, 1) and r = final_ratio.
    The decay is slow at the start and at the end and fastest in the middle (Loshchilov & Hutter, SGDR, 2017).
    """
    if total_steps <= 0:
        raise ValueError(f"cosine_decay: total_steps must be > 0, got {total_steps}")
    if not 0.0 <= final_ratio <= 1.0:
        raise ValueError(f"cosine_decay: final_ratio must be in [0, 1], got {final_ratio}")
    if step < 0:
        raise ValueError(f"cosine_decay: step must be >= 0, got {step}")
    progress = min(step / total_steps, 1.0)
    return final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, final_ratio: float = 0.0) -> float:
    """``linear_warmup`` for the first ``warmup_steps`` steps, then ``cosine_decay`` over the rest.

    ``total_steps`` counts the whole run, warmup included: the cosine starts at 1 at step ``warmup_steps`` and
    reaches ``final_ratio`` at step ``total_steps``. The curve is continuous: the last warmup step gives 1.
    """
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"warmup_cosine: need 0 <= warmup_steps < total_steps, got warmup_steps={warmup_steps}, "
                         f"total_steps={total_steps}")
    if step < warmup_steps:
        return linear_warmup(step, warmup_steps)
    return cosine_decay(step - warmup_steps, total_steps - warmup_steps, final_ratio)
