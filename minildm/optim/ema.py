"""Exponential moving average (EMA) of a model's weights — the weights diffusion models are sampled with.

After every optimizer step, each shadow weight moves a little towards the live weight:

    shadow ← decay · shadow + (1 - decay) · param

With decay = 0.9999 the shadow averages roughly the last 1 / (1 - decay) = 10 000 steps, which smooths out the
noise of SGD; samples from the averaged weights are markedly cleaner (Song & Ermon 2020, Ho et al. 2020).

Warmup (our choice, on by default). Early in training the live weights move fast and the shadow starts at the
random initial weights, which a decay of 0.9999 would remember for tens of thousands of steps. So the decay used
at the n-th update (n = 0, 1, 2, ...) is

    decay_n = min(decay, (1 + n) / (10 + n))

— 0.1, 0.18, 0.25, ... rising towards 1, so the shadow first follows the weights closely and only later becomes a
long average. This is the schedule of TensorFlow's ``ExponentialMovingAverage(num_updates=...)``, also used by
diffusers' ``EMAModel``. Pass ``warmup=False`` to use ``decay`` from the first update.

The model is any object with ``named_parameters()`` yielding (name, Tensor) pairs, e.g. ``minildm.nn.Module``.
"""
from __future__ import annotations

import contextlib

import numpy

from .. import backend
from ..autograd import no_grad
from .optimizer import scalar


class EMA:
    """Shadow copies of a model's parameters, averaged over training.

    Args:
        model: the model whose parameters are averaged (the shadow starts as a copy of them).
        decay: the largest decay; the shadow averages about 1 / (1 - decay) steps.
        warmup: use decay_n = min(decay, (1 + n) / (10 + n)) at update n (see the module docstring).
    Attributes:
        shadow: dict parameter name → backend array (same dtype as the parameter).
        num_updates: how many times ``update`` has run.
    """

    def __init__(self, model, decay: float = 0.9999, warmup: bool = True):
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA: decay must be in [0, 1], got {decay}")
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.num_updates = 0
        self.shadow = {name: p.data.copy() for name, p in model.named_parameters()}

    def current_decay(self) -> float:
        """The decay the next ``update`` will use."""
        if not self.warmup:
            return self.decay
        n = self.num_updates
        return min(self.decay, (1 + n) / (10 + n))

    def update(self, model) -> None:
        """shadow ← d · shadow + (1 - d) · param for every parameter, with d = ``current_decay()``."""
        d = self.current_decay()
        with no_grad():
            for name, p in self._matching(model, "update"):
                shadow = self.shadow[name]
                shadow *= scalar(d, shadow.dtype)
                shadow += p.data * scalar(1 - d, shadow.dtype)
        self.num_updates += 1

    def copy_to(self, model) -> None:
        """Overwrite the model's parameters (in place) with the averaged weights."""
        with no_grad():
            for name, p in self._matching(model, "copy_to"):
                p.data[...] = self.shadow[name]

    @contextlib.contextmanager
    def average_parameters(self, model):
        """Within the block the model holds the averaged weights; afterwards its own weights come back.

            with ema.average_parameters(model):
                images = sample(model, ...)
        """
        saved = {name: p.data.copy() for name, p in self._matching(model, "average_parameters")}
        self.copy_to(model)
        try:
            yield model
        finally:
            with no_grad():
                for name, p in model.named_parameters():
                    p.data[...] = saved[name]

    def _matching(self, model, what: str):
        """(name, param) pairs of ``model``, checked to be exactly the parameters the shadow was made from."""
        pairs = list(model.named_parameters())
        names = [name for name, _ in pairs]
        missing = sorted(set(self.shadow) - set(names))
        unexpected = sorted(set(names) - set(self.shadow))
        if missing or unexpected:
            raise ValueError(f"EMA.{what}: the model's parameters differ from the averaged ones; "
                             f"missing from the model: {missing}; not in the EMA: {unexpected}")
        for name, p in pairs:
            if p.shape != tuple(self.shadow[name].shape):
                raise ValueError(f"EMA.{what}: parameter {name!r} has shape {p.shape}, "
                                 f"the EMA holds shape {tuple(self.shadow[name].shape)}")
        return pairs

    # -- save and resume ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"decay", "warmup", "num_updates", "shadow": {name: host NumPy array}}``."""
        return {"decay": self.decay, "warmup": self.warmup, "num_updates": self.num_updates,
                "shadow": {name: backend.to_host(s).copy() for name, s in self.shadow.items()}}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what ``state_dict`` saved (the parameter names and shapes must match)."""
        saved = state_dict["shadow"]
        missing = sorted(set(self.shadow) - set(saved))
        unexpected = sorted(set(saved) - set(self.shadow))
        if missing or unexpected:
            raise ValueError(f"EMA.load_state_dict: missing keys {missing}; unexpected keys {unexpected}")
        shadow = {}
        for name, current in self.shadow.items():
            value = saved[name]
            if tuple(value.shape) != tuple(current.shape):
                raise ValueError(f"EMA.load_state_dict: {name!r} has shape {tuple(value.shape)} in the saved "
                                 f"state, expected {tuple(current.shape)}")
            shadow[name] = backend.to_device(numpy.array(backend.to_host(value)), current.dtype)
        self.shadow = shadow
        self.decay = float(state_dict["decay"])
        self.warmup = bool(state_dict["warmup"])
        self.num_updates = int(state_dict["num_updates"])
