"""Training: the loop every recipe shares, and the recipes themselves (one file each).

    loop.py           train(step_fn, model=..., optimizer=..., ...): the loop, with exact resume
    seeding.py        per-step random generators derived from (seed, step), so resume needs no RNG state
    guard.py          NonFiniteLossError: stop at the first NaN/inf loss or gradient, before any harm
    checkpointing.py  save_training_state / load_training_state: the whole run in one safetensors file
    progress.py       the tqdm bar with the smoothed loss
    plots.py          loss-curve PNG (matplotlib, no pyplot), atomic figure saves
    toy2d.py          the first recipe: DDPM on 2-D points (``python -m minildm demo``)

The Stable Diffusion parts' recipes sit beside toy2d.py, one file each, all built on ``train``. Recipes are not
imported here (``from minildm.train import toy2d``), so importing the loop stays light.
"""
from .checkpointing import CHECKPOINT_NAME, ResumeError, load_training_state, save_training_state
from .guard import NonFiniteLossError, check_finite
from .loop import LOSS_CURVE_NAME, TrainResult, train
from .plots import plot_loss_curve
from .progress import ProgressBar, SmoothedLoss
from .seeding import reseed_dropout, step_generator, step_seed

__all__ = ["train", "TrainResult", "NonFiniteLossError", "check_finite", "save_training_state",
           "load_training_state", "ResumeError", "CHECKPOINT_NAME", "LOSS_CURVE_NAME", "plot_loss_curve", "ProgressBar",
           "SmoothedLoss", "step_seed", "step_generator", "reseed_dropout"]
