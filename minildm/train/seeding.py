"""Randomness for training that survives a crash: every step's random numbers are a function of (seed, step).

A training step draws random numbers — which examples form the batch, the noise ε, the timesteps t, dropout masks.
The usual way, one generator created at the start and advanced step after step, has a catch: to resume exactly
after a crash, the generator's internal state at the checkpoint must be saved and restored too (and on a GPU that
state is an opaque device buffer).

We avoid that state altogether. Step k gets a *fresh* generator seeded from the pair (seed, k):

    rng_k = backend.rng(step_seed(seed, k))

so the numbers step k draws do not depend on how many steps ran before it in this process. Resuming at step k
needs nothing but the step number, and the resumed run draws exactly the numbers the uninterrupted one drew.

``step_seed`` mixes the pair with NumPy's ``SeedSequence`` (a hash designed for this): seeds (0, 1) and (1, 0)
give unrelated streams, as do neighbouring steps — unlike ``seed + step``, which would make run 1's step 0 replay
run 0's step 1.
"""
from __future__ import annotations

import numpy

from .. import backend
from ..nn import Dropout


def step_seed(seed: int, step: int, stream: int = 0) -> int:
    """A 64-bit int seed for step ``step`` of a run seeded with ``seed`` (both ints >= 0).

    ``stream`` tells apart independent uses within one step (e.g. 0 for the step function, 1 + i for the i-th
    dropout layer), so two of them never draw the same numbers.
    """
    if seed < 0 or step < 0 or stream < 0:
        raise ValueError(f"step_seed: seed, step and stream must be >= 0, got {seed}, {step}, {stream}")
    words = numpy.random.SeedSequence([int(seed), int(step), int(stream)]).generate_state(1, numpy.uint64)
    return int(words[0])


def step_generator(seed: int, step: int):
    """The random generator of step ``step``, on the active backend (``numpy`` or ``cupy`` Generator)."""
    return backend.rng(step_seed(seed, step))


def reseed_dropout(model, seed: int, step: int) -> None:
    """Give every ``Dropout`` layer of ``model`` a fresh stream for step ``step``, derived from (seed, step).

    A ``Dropout`` keeps its own generator between calls, which would make its masks depend on how many steps
    ran before in this process, and a resumed run would drop different units. Reseeding it at every step makes
    its masks, like everything else, a function of (seed, step).
    """
    dropouts = [m for m in model.modules() if isinstance(m, Dropout)]
    for i, layer in enumerate(dropouts):
        layer.seed = step_seed(seed, step, stream=1 + i)
        # Dropout builds its generator from `seed` when `_rng_backend` differs from the active backend; clearing
        # it makes the next forward pass start the new stream.
        layer._rng_backend = None  # noqa: SLF001
