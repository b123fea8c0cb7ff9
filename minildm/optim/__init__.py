"""Optimizers and the training helpers around them, one idea per file.

    optimizer.py    the Optimizer base: param groups, per-parameter state, step / zero_grad, exact save & resume
    sgd.py          SGD with momentum, Nesterov and L2 weight decay
    adam.py         Adam (L2 weight decay) and AdamW (decoupled weight decay)
    clip_grad.py    clip_grad_norm_: cap the global gradient norm
    lr_schedule.py  linear_warmup, cosine_decay, warmup_cosine: lr multipliers as functions of the step
    ema.py          EMA: exponential moving average of the weights

A training step::

    optimizer = AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    ema = EMA(model, decay=0.999)
    for step in range(total_steps):
        optimizer.lr = 1e-3 * warmup_cosine(step, warmup_steps=100, total_steps=total_steps)
        optimizer.zero_grad()
        loss = ...
        loss.backward()
        clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        ema.update(model)

The update rules perform PyTorch's float32 operations in PyTorch's order, and tests/optim checks that 20-step
trajectories agree with ``torch.optim`` to 1e-6.
"""
from .adam import Adam, AdamW
from .clip_grad import clip_grad_norm_
from .ema import EMA
from .lr_schedule import cosine_decay, linear_warmup, warmup_cosine
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm_", "linear_warmup", "cosine_decay",
           "warmup_cosine", "EMA"]
