"""``Dropout`` (Srivastava et al. 2014): in training, zero each element with probability p and scale the survivors
by 1/(1-p), so the expected output equals the input; in evaluation mode (``model.eval()``) it is the identity.

The random mask comes from the module's own generator, seeded at construction from the ``generator`` argument, so
a model's dropout masks are reproducible from its seed (the sequence of masks depends on how many calls came before).
"""
from __future__ import annotations

from .. import backend
from . import functional as F
from . import init
from .module import Module, as_tensor


class Dropout(Module):
    """Args:
        p: drop probability in [0, 1].
        generator: int seed or host Generator (None: seed 0) from which this module's seed is drawn.
    Shapes: any -> same.
    """

    def __init__(self, p: float = 0.5, generator=None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = float(p)
        self.seed = init.derive_seed(generator)
        self._rng, self._rng_backend = None, None

    def forward(self, x):
        x = as_tensor(x)
        if not self.training or self.p == 0.0:
            return x
        if self._rng_backend != backend.name():  # first call, or the backend changed: a generator where x lives
            self._rng, self._rng_backend = backend.rng(self.seed), backend.name()
        return F.dropout(x, self.p, training=True, generator=self._rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"
