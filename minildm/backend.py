"""One place decides where arrays live: NumPy (CPU, default) or CuPy (GPU).

Every piece of model code asks this module for the array module instead of importing NumPy, so the same
line runs on both::

    from minildm import backend
    xp = backend.xp()            # numpy or cupy, whichever is active
    x = xp.zeros((2, 3), dtype=backend.DEFAULT_DTYPE)

Choose the backend with the environment variable ``MINILDM_BACKEND=cupy`` before import, or at run time with
``minildm.backend.use("cupy")``. Randomness always comes from an explicit, seeded generator (``rng(seed)``),
never from the global NumPy state, so every result in minildm can be reproduced.
"""
from __future__ import annotations

import os

import numpy

DEFAULT_DTYPE = numpy.float32
_VALID = ("numpy", "cupy")
_name = "numpy"
_xp = numpy


def use(name: str) -> None:
    """Switch the active backend to ``"numpy"`` or ``"cupy"`` (raises ImportError if CuPy is missing)."""
    global _name, _xp
    if name not in _VALID:
        raise ValueError(f"backend.use: unknown backend {name!r}; valid: {', '.join(_VALID)}")
    if name == "cupy":
        import cupy  # noqa: F401  (imported only on demand: CuPy is optional)

        _xp = cupy
    else:
        _xp = numpy
    _name = name


def name() -> str:
    """Name of the active backend: ``"numpy"`` or ``"cupy"``."""
    return _name


def xp():
    """The active array module (``numpy`` or ``cupy``)."""
    return _xp


def get_array_module(array):
    """The array module an array belongs to (``cupy`` for CuPy arrays, ``numpy`` otherwise)."""
    if type(array).__module__.startswith("cupy"):
        import cupy

        return cupy
    return numpy


def is_device_array(array) -> bool:
    """True when ``array`` is a CuPy (GPU) array."""
    return type(array).__module__.startswith("cupy")


def to_host(array) -> numpy.ndarray:
    """Copy any array (CuPy or NumPy) to a host NumPy array; NumPy arrays are returned as they are."""
    if is_device_array(array):
        return array.get()
    return numpy.asarray(array)


def to_device(array, dtype=None):
    """Move a host or device array onto the active backend (no copy when it is already there)."""
    if _name == "cupy":
        out = _xp.asarray(array)
    else:
        out = to_host(array)
    return out.astype(dtype, copy=False) if dtype is not None else out


def asarray(data, dtype=None):
    """Like ``xp().asarray`` but accepts arrays from either backend."""
    return to_device(data, dtype)


def rng(seed=None):
    """A seeded random generator on the active backend: ``numpy.random.Generator`` or ``cupy.random.Generator``.

    Both support ``standard_normal(size, dtype)``, ``random(size, dtype)`` and ``integers(low, high, size)``.
    Passing an existing generator returns it unchanged, so functions can take ``generator=seed_or_generator``.
    """
    if seed is not None and not isinstance(seed, (int, numpy.integer)):
        return seed  # already a generator
    if _name == "cupy":
        import cupy

        return cupy.random.default_rng(seed)
    return numpy.random.default_rng(seed)


def host_rng(seed=None) -> numpy.random.Generator:
    """A seeded NumPy generator on the host (data generation, shuffling): same seed, same numbers on any backend."""
    if isinstance(seed, numpy.random.Generator):
        return seed
    return numpy.random.default_rng(seed)


_env = os.environ.get("MINILDM_BACKEND", "numpy").strip().lower() or "numpy"
if _env != "numpy":
    use(_env)
