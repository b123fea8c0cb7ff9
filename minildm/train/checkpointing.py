"""Saving and restoring a whole training run, so that a resumed run continues exactly where the old one stopped.

What must be saved to continue *bit for bit*? Everything that influences a future step:

- the model weights, and the optimizer state (Adam's moments and step counts — without them the first resumed
  steps would be far too large);
- the EMA shadow weights (the weights we sample with);
- the data loader's position, if it has one (which examples come next);
- the step number — the random numbers of step k are derived from (seed, k) (see ``seeding.py``), so the step
  number and the seed are all the RNG state there is;
- the loss history, so the loss curve of a resumed run is the whole curve.

Anything with ``state_dict()`` and ``load_state_dict()`` (a ``Module``, an ``Optimizer``, an ``EMA``, a loader)
can be saved: pass it in the ``stateful`` dict under a name. One checkpoint is one safetensors file (arrays as
tensors, the rest as JSON metadata, never a pickle), written by ``minildm.io.save_checkpoint`` to a temporary file
and renamed over the old one, so the previous checkpoint survives any crash during the save.

Step convention (everywhere in ``minildm.train``): "step k" is the k-th update counting from 0. A checkpoint saved
"at step k" holds the state *after* k updates, i.e. the state in which step k begins; resuming from it runs step k
next. Its loss history has exactly k entries.
"""
from __future__ import annotations

from pathlib import Path

import numpy

from .. import backend
from ..io import load_checkpoint, save_checkpoint

CHECKPOINT_NAME = "checkpoint.safetensors"


class ResumeError(ValueError):
    """A checkpoint that exists but cannot continue this run (another seed, missing objects, past the end)."""


def save_training_state(path, *, step: int, seed: int, losses, stateful: dict, meta: dict | None = None) -> None:
    """Write the training state at the start of step ``step`` to ``path``, atomically.

    Args:
        step: the number of updates done so far (the step a resumed run will run next).
        seed: the run's seed (checked again on resume: the per-step random numbers depend on it).
        losses: the loss of every step so far, ``len(losses) == step``.
        stateful: name -> object with ``state_dict()``, e.g. ``{"model": m, "optimizer": opt, "ema": ema}``.
        meta: extra JSON values to store (e.g. the recipe's config), returned by ``load_training_state``.
    """
    if len(losses) != step:
        raise ValueError(f"save_training_state: {len(losses)} losses recorded for {step} steps; they must agree")
    arrays = {
        "state": {name: obj.state_dict() for name, obj in stateful.items()},
        "losses": numpy.asarray(losses, dtype=numpy.float64),  # float64 holds every float32 loss exactly
    }
    info = {"step": int(step), "seed": int(seed), "backend": backend.name(), "run": meta or {}}
    save_checkpoint(path, arrays, meta=info)


def load_training_state(path, stateful: dict, seed: int | None = None) -> tuple[int, list, dict]:
    """Restore every object of ``stateful`` from the checkpoint at ``path``.

    Args:
        stateful: name -> object with ``load_state_dict()``; the same names that were saved.
        seed: if given, must equal the saved seed (a different seed would silently change every later step).
    Returns:
        ``(step, losses, run_meta)``: the step to run next, the loss history (a list of ``step`` floats), and the
        ``meta`` dict given to ``save_training_state``.
    Raises:
        FileNotFoundError: no checkpoint at ``path``.
        ResumeError: the checkpoint does not fit (another seed, missing objects), found before anything is loaded.
        ValueError: an object's own ``load_state_dict`` refuses its state (e.g. a model of another shape).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"cannot resume: no checkpoint at {path} (train once without resume first)")
    arrays, info = load_checkpoint(path)
    saved = arrays["state"]
    missing = sorted(set(stateful) - set(saved))
    if missing:
        raise ResumeError(f"cannot resume from {path}: it holds no state for {missing} (it has {sorted(saved)})")
    if seed is not None and info["seed"] != seed:
        raise ResumeError(f"cannot resume from {path}: it was trained with seed {info['seed']}, this run uses seed "
                         f"{seed}; use the same seed, or train from scratch in another folder")
    for name, obj in stateful.items():
        obj.load_state_dict(saved[name])
    losses = [float(x) for x in arrays["losses"]]
    return int(info["step"]), losses, info["run"]
