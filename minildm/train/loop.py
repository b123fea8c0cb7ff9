"""The training loop every recipe shares: step, guard, update, average, checkpoint, resume.

A recipe (the 2-D toy, the VAE, the U-Net...) writes only what is special about it — a *step function* that takes
the step number and that step's random generator and returns the loss:

    def step_fn(step, rng):
        x0 = data[rng.integers(0, len(data), size=256)]                  # a batch
        noise = rng.standard_normal(x0.shape, dtype="float32")            # ε ~ N(0, I)
        t = rng.integers(0, 1000, size=256)                              # t ~ U{0, ..., T-1}
        return F.mse_loss(model(scheduler.add_noise(x0, noise, t), t), noise)

    result = train(step_fn, model=model, optimizer=AdamW(model.parameters(), lr=1e-3), ema=EMA(model, 0.999),
                   total_steps=5000, out_dir="runs/toy", seed=0)

and ``train`` does the rest, the same way for every model:

    for step k = start, ..., total_steps - 1:
        set the learning rate for step k                        (lr_at(k), if given)
        rng = generator derived from (seed, k)                   (seeding.py: resume needs no RNG state)
        loss = step_fn(k, rng)                                   forward pass
        stop if the loss is NaN/inf                              (guard.py, before anything changes)
        loss.backward()                                          gradients
        measure (and optionally clip) the gradient norm; stop if it is NaN/inf
        optimizer.step(); ema.update(model)                      the only lines that change the weights
        every checkpoint_every steps and at the end: save everything (checkpointing.py) and the loss curve

Resuming (``resume=True``) loads the checkpoint in ``out_dir`` and continues at its step. Because every step's
random numbers come from (seed, k) and the checkpoint holds all other state, the resumed run computes exactly the
same numbers as a run that was never interrupted: the same losses, bit for bit, and the same final weights.

A run stopped by Ctrl-C or a crash loses at most the steps since its last checkpoint; the checkpoint is replaced
atomically, so it is never half-written. Steps are counted from 0 (see ``checkpointing.py``).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..autograd import Tensor
from ..optim import clip_grad_norm_
from .checkpointing import CHECKPOINT_NAME, ResumeError, load_training_state, save_training_state
from .guard import check_finite
from .plots import plot_loss_curve
from .progress import ProgressBar
from .seeding import reseed_dropout, step_generator

LOSS_CURVE_NAME = "loss.png"


@dataclass
class TrainResult:
    """What ``train`` returns.

    losses: the loss of every step of the run, ``losses[k]`` for step k (including steps run before a resume).
    start_step: the step this process started at (0, or the checkpoint's step when resuming).
    checkpoint: the last checkpoint written (``out_dir/checkpoint.safetensors``).
    loss_curve: the loss-curve PNG (``out_dir/loss.png``), or None when ``plot=False``.
    seconds: wall time of the steps run by this process.
    """

    losses: list = field(default_factory=list)
    start_step: int = 0
    checkpoint: Path | None = None
    loss_curve: Path | None = None
    seconds: float = 0.0


def train(step_fn, *, model, optimizer, total_steps: int, out_dir, seed: int = 0, ema=None, state: dict | None = None,
          lr_at=None, max_grad_norm: float | None = None, checkpoint_every: int = 1000, resume: bool = False,
          progress: bool = True, desc: str = "train", meta: dict | None = None, plot: bool = True) -> TrainResult:
    """Train ``model`` for steps ``0 .. total_steps - 1`` (or from a checkpoint's step, when resuming).

    Args:
        step_fn: ``step_fn(step, rng) -> loss``, a scalar Tensor to minimise. ``rng`` is this step's generator on
            the active backend; draw every random number of the step from it (batch, noise, timesteps).
        model: the ``Module`` being trained (saved, put in training mode, its Dropout layers reseeded per step).
        optimizer: an optimizer over (some of) the model's parameters; only those are clipped and updated.
        total_steps: where the run ends.
        out_dir: folder for ``checkpoint.safetensors`` and ``loss.png`` (created if missing).
        seed: the run's seed; step k draws from a generator seeded with (seed, k).
        ema: an ``EMA`` of the model, updated after every optimizer step and saved with the rest.
        state: more objects to save and restore, name -> object with ``state_dict``/``load_state_dict``
            (e.g. ``{"data": loader}`` for a loader that remembers its position).
        lr_at: ``lr_at(step) -> learning rate`` (e.g. ``lambda k: 1e-3 * warmup_cosine(k, 100, total_steps)``);
            None keeps the optimizer's learning rate.
        max_grad_norm: clip the global gradient norm to this (None: measure it, for the guard, but never clip).
        checkpoint_every: save a checkpoint after every this many steps; one is always saved at the end.
        resume: continue from ``out_dir/checkpoint.safetensors`` (which must exist, written with the same seed).
        progress: show a tqdm progress bar (on stderr).
        desc: the label of the progress bar.
        meta: JSON values saved in each checkpoint (e.g. the recipe's settings), for the record.
        plot: write the loss curve ``out_dir/loss.png`` at every checkpoint.
    Returns:
        a ``TrainResult``.
    Raises:
        ResumeError: ``resume=True`` but the checkpoint belongs to another run (seed) or is past ``total_steps``.
        NonFiniteLossError: the loss or the gradient norm was NaN or inf at some step. The weights, optimizer and
            EMA were not updated with it, and the last checkpoint (named in the message) is intact.
    """
    if total_steps < 0 or checkpoint_every < 1:
        raise ValueError(f"train: need total_steps >= 0 and checkpoint_every >= 1, got {total_steps}, "
                         f"{checkpoint_every}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = out_dir / CHECKPOINT_NAME
    stateful = _stateful(model, optimizer, ema, state)
    params = [p for group in optimizer.param_groups for p in group["params"]]

    start, losses = 0, []
    if resume:
        start, losses, _ = load_training_state(checkpoint, stateful, seed=seed)
        if start > total_steps:
            raise ResumeError(f"cannot resume from {checkpoint}: it is at step {start}, past total_steps={total_steps}")
    last_good = (checkpoint, start) if resume else (None, None)  # what the guard's message points to
    result = TrainResult(losses=losses, start_step=start, checkpoint=checkpoint if resume else None)

    model.train()
    bar = ProgressBar(total_steps, start, desc, enabled=progress, history=losses)
    began = time.perf_counter()
    try:
        for step in range(start, total_steps):
            if lr_at is not None:
                optimizer.lr = lr_at(step)
            rng = step_generator(seed, step)
            reseed_dropout(model, seed, step)

            optimizer.zero_grad()
            loss = _check_loss(step_fn(step, rng), step)
            loss_value = float(loss.data)  # one number to the host per step: the guard and the log need it
            check_finite("loss", loss_value, step, *last_good)

            loss.backward()
            grad_norm = clip_grad_norm_(params, max_grad_norm if max_grad_norm is not None else math.inf)
            check_finite("gradient norm", grad_norm, step, *last_good)

            optimizer.step()  # from here on the weights hold step k's update
            if ema is not None:
                ema.update(model)
            losses.append(loss_value)
            bar.update(loss_value)

            done = step + 1  # the state now is the state step `done` starts from
            if done % checkpoint_every == 0 or done == total_steps:
                save_training_state(checkpoint, step=done, seed=seed, losses=losses, stateful=stateful, meta=meta)
                last_good = (checkpoint, done)
                result.checkpoint = checkpoint
                if plot:
                    result.loss_curve = plot_loss_curve(losses, out_dir / LOSS_CURVE_NAME, title=f"{desc} loss")
    finally:
        bar.close()
    result.seconds = time.perf_counter() - began
    if plot and result.loss_curve is None and losses:  # resumed at the very end: nothing ran, still draw the curve
        result.loss_curve = plot_loss_curve(losses, out_dir / LOSS_CURVE_NAME, title=f"{desc} loss")
    return result


def _stateful(model, optimizer, ema, state) -> dict:
    """Everything a checkpoint saves, by name."""
    stateful = {"model": model, "optimizer": optimizer}
    if ema is not None:
        stateful["ema"] = ema
    for name, obj in (state or {}).items():
        if name in stateful:
            raise ValueError(f"train: state name {name!r} is taken (model, optimizer and ema are saved already)")
        if not (hasattr(obj, "state_dict") and hasattr(obj, "load_state_dict")):
            raise TypeError(f"train: state[{name!r}] is a {type(obj).__name__}, which has no state_dict() and "
                            "load_state_dict(), so it cannot be saved and restored")
        stateful[name] = obj
    return stateful


def _check_loss(loss, step: int) -> Tensor:
    """The step function must return one differentiable number; say clearly what it returned instead."""
    where = f"train: step_fn must return the loss as a one-element Tensor that requires grad, but at step {step}"
    if not isinstance(loss, Tensor):
        raise TypeError(f"{where} it returned a {type(loss).__name__}")
    if loss.data.size != 1:
        raise TypeError(f"{where} it returned shape {loss.shape} (reduce it, e.g. with .mean())")
    if not loss.requires_grad:
        raise TypeError(f"{where} the loss needs no gradient (computed under no_grad(), or from frozen weights?)")
    return loss
