"""Weight initialisation, as PyTorch does it, from an explicit seeded generator.

Every layer constructor takes ``generator=None``: an int seed, a NumPy ``Generator`` (``backend.host_rng``), or
None, which means seed 0. A block turns its argument into ONE host generator (``host_generator``) and hands that
same object to all of its children, which draw from it one after another in definition order. So a whole model is
a deterministic function of one seed, and building it twice with the same seed gives the same numbers.

The numbers are always drawn on the host in float32 and then moved to the active backend, so a model built on
CuPy has exactly the weights of the same model built on NumPy.

The schemes (``torch.nn.Linear.reset_parameters`` and ``torch.nn.Conv2d``'s, which share them):

    weight ~ U(-b, b),  b = gain * sqrt(3 / fan_in)  with gain = sqrt(2 / (1 + a^2)), a = sqrt(5)
                         => b = 1 / sqrt(fan_in)       ("Kaiming-uniform with a = sqrt(5)", He et al. 2015)
    bias   ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    Embedding weight ~ N(0, 1);  norm weight = 1, norm bias = 0.

fan_in is the number of inputs that feed one output: in_features for Linear, in_channels * kH * kW for Conv2d.

``skip_init()`` turns the random draws off for a block: a model built inside it has all-zero weights, which is what
``from_pretrained`` wants when every weight is about to be replaced by the file's (for Stable Diffusion's
860M-parameter U-Net, drawing them cost 8 s and 3.4 GB that were thrown away).
"""
from __future__ import annotations

import contextlib
import math
import numbers

from .. import backend

DTYPE = backend.DEFAULT_DTYPE


class _Skip:
    active = False  # set only inside skip_init()


@contextlib.contextmanager
def skip_init():
    """Inside this block ``uniform`` and ``normal`` return zeros and draw nothing from their generator.

    For a model whose every parameter is overwritten next (``load_state_dict(..., strict=True)``). The zeros cost
    next to nothing: the OS maps fresh zeroed pages lazily, and nothing touches them before they are replaced.
    """
    previous = _Skip.active
    _Skip.active = True
    try:
        yield
    finally:
        _Skip.active = previous


def host_generator(generator=None):
    """The host (NumPy) generator a layer draws from: None -> seed 0, int -> that seed, a Generator -> itself."""
    if generator is None:
        generator = 0
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        return backend.host_rng(int(generator))
    if hasattr(generator, "standard_normal") and hasattr(generator, "integers"):
        if not type(generator).__module__.startswith("numpy"):
            raise TypeError("init: layers draw their weights on the host; pass an int seed or "
                            f"backend.host_rng(seed), not a {type(generator).__module__} generator")
        return generator
    raise TypeError(f"init: generator must be None, an int seed or a NumPy Generator, got {type(generator).__name__}")


def derive_seed(generator) -> int:
    """A fresh int seed drawn from ``generator`` (used by modules that need their own random stream, e.g. Dropout)."""
    return int(host_generator(generator).integers(0, 2**63 - 1))


def uniform(shape, bound: float, generator):
    """U(-bound, bound) of ``shape``, drawn on the host in float32, as an array on the active backend."""
    if _Skip.active:
        return zeros(shape)
    u = host_generator(generator).random(tuple(shape), dtype=DTYPE)  # U[0, 1)
    return backend.to_device(u * DTYPE(2 * bound) - DTYPE(bound))


def normal(shape, std: float, generator):
    """N(0, std^2) of ``shape``, drawn on the host in float32, as an array on the active backend."""
    if _Skip.active:
        return zeros(shape)
    z = host_generator(generator).standard_normal(tuple(shape), dtype=DTYPE)
    return backend.to_device(z * DTYPE(std) if std != 1 else z)


def ones(shape):
    return backend.xp().ones(tuple(shape), dtype=DTYPE)


def zeros(shape):
    return backend.xp().zeros(tuple(shape), dtype=DTYPE)


def fan_in_bound(fan_in: int) -> float:
    """1 / sqrt(fan_in): the bound of PyTorch's default uniform init for Linear and Conv weights and biases."""
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
