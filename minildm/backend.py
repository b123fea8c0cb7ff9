"""One place decides where arrays live: NumPy (CPU, default) or CuPy (GPU).

Every piece of model code asks this module for the array module instead of importing NumPy, so the same
line runs on both::

    from minildm import backend
    xp = backend.xp()            # numpy or cupy, whichever is active
    x = xp.zeros((2, 3), dtype=backend.DEFAULT_DTYPE)

Choose the backend with the environment variable ``MINILDM_BACKEND=cupy`` before import, or at run time with
``minildm.backend.use("cupy")``. Randomness always comes from an explicit, seeded generator (``rng(seed)``),
never from the global NumPy state, so every result in minildm can be reproduced.

On Linux with glibc, importing this module also tunes malloc so that NumPy's large temporaries are reused instead
of being mapped and unmapped on every step (see ``_tune_malloc``; opt out with ``MINILDM_MALLOC_TUNING=0``).
"""
from __future__ import annotations

import numbers
import os
import sys

import numpy

DEFAULT_DTYPE = numpy.float32
_VALID = ("numpy", "cupy")
_CUPY_HINT = ("CuPy is not installed. Install the build matching your CUDA version, e.g. "
              "`pip install cupy-cuda12x` (CUDA 12) or `pip install cupy-cuda11x` (CUDA 11), "
              "or use the default backend: minildm.backend.use('numpy')")
_name = "numpy"
_xp = numpy


def _import_cupy():
    """Import CuPy on demand (it is optional), with an error that says how to get it."""
    try:
        import cupy
    except ImportError as e:
        raise ImportError(f"minildm.backend: {_CUPY_HINT} ({e})") from e
    return cupy


def use(name: str) -> None:
    """Switch the active backend to ``"numpy"`` or ``"cupy"``.

    Raises:
        ValueError: for any other name.
        ImportError: for ``"cupy"`` when CuPy is not installed (the message says what to install).
    """
    global _name, _xp
    key = str(name).strip().lower()
    if key not in _VALID:
        raise ValueError(f"minildm.backend.use: unknown backend {name!r}; valid: {', '.join(_VALID)}")
    _xp = module(key)  # switch only once the import has succeeded
    _name = key


def module(name: str):
    """The array module of a backend by name: ``numpy``, or ``cupy`` (imported on demand, with an install hint)."""
    key = str(name).strip().lower()
    if key not in _VALID:
        raise ValueError(f"minildm.backend.module: unknown backend {name!r}; valid: {', '.join(_VALID)}")
    return _import_cupy() if key == "cupy" else numpy


def name() -> str:
    """Name of the active backend: ``"numpy"`` or ``"cupy"``."""
    return _name


def xp():
    """The active array module (``numpy`` or ``cupy``)."""
    return _xp


def is_device_array(array) -> bool:
    """True when ``array`` is a CuPy (GPU) array. Checked by module name, so it never imports CuPy."""
    return type(array).__module__.startswith("cupy")


def get_array_module(array):
    """The array module an array belongs to: ``cupy`` for CuPy arrays, ``numpy`` for anything else.

    Use it inside ops to follow the data rather than the global setting (an op on a GPU array stays on the GPU).
    """
    if is_device_array(array):
        return _import_cupy()
    return numpy


def to_host(array) -> numpy.ndarray:
    """Any array (CuPy or NumPy) or array-like as a host NumPy array; NumPy arrays are returned as they are."""
    if is_device_array(array):
        return array.get()
    return numpy.asarray(array)


def to_device(array, dtype=None):
    """Move a host or device array onto the active backend (no copy when it is already there and in ``dtype``)."""
    out = _xp.asarray(array) if _name == "cupy" else to_host(array)
    return out.astype(dtype, copy=False) if dtype is not None else out


def asarray(data, dtype=None):
    """Like ``xp().asarray`` but accepts arrays from either backend."""
    return to_device(data, dtype)


def _is_generator(obj) -> bool:
    # Duck-typed so that a CuPy generator is recognised without importing CuPy.
    return hasattr(obj, "standard_normal") and hasattr(obj, "integers")


def rng(seed=None):
    """A random generator on the active backend: ``numpy.random.Generator`` or ``cupy.random.Generator``.

    Args:
        seed: an int (the same seed gives the same numbers on the same backend), ``None`` (fresh entropy), or an
            existing generator, which is returned unchanged, so functions can take ``generator=seed_or_generator``.
    The global ``numpy.random`` state is never read or changed. Both generators support
    ``standard_normal(size, dtype)``, ``random(size, dtype)`` and ``integers(low, high, size)``.
    """
    if seed is not None and not isinstance(seed, numbers.Integral):
        if _is_generator(seed):
            return seed
        raise TypeError(f"minildm.backend.rng: seed must be an int, None or a generator, got {type(seed).__name__}")
    if _name == "cupy":
        return _xp.random.default_rng(seed)
    return numpy.random.default_rng(seed)


def host_rng(seed=None) -> numpy.random.Generator:
    """A seeded NumPy generator on the host (data generation, shuffling): same seed, same numbers on any backend."""
    if isinstance(seed, numpy.random.Generator):
        return seed
    return numpy.random.default_rng(seed)


def _from_environment() -> None:
    value = os.environ.get("MINILDM_BACKEND", "").strip().lower() or "numpy"
    if value not in _VALID:
        raise ValueError(f"MINILDM_BACKEND={value!r} is not a backend minildm knows; valid: {', '.join(_VALID)}")
    if value != "numpy":
        use(value)


# -- glibc malloc: keep large temporaries in the heap -------------------------------------------------------------
# NumPy gets its buffers from malloc. By default glibc serves every request above a threshold (128 KiB at first,
# raised on the fly up to 32 MiB) with a fresh mmap and gives it back with munmap on free, and trims the heap's top
# whenever more than 2x that threshold is free there. A training step makes and frees the same large temporaries
# again and again (activations, im2col columns, gradients of a few MiB), so the kernel hands out zeroed pages
# one page fault at a time, every step: measured GroupNorm backward 6.6 ms -> 3.4 ms once they stay mapped.
# So, once at import on Linux with glibc, requests up to 32 MiB (glibc's maximum for this setting) come from the
# heap, and the heap is not trimmed until 1 GiB lies free at its top. The price: memory freed by the program stays
# with the process (its RSS is its high-water mark) instead of going back to the OS. Opt out with
# MINILDM_MALLOC_TUNING=0 (before the first import of minildm); other C libraries (macOS, Windows, musl) are left
# alone. Glibc's own switch does the same from outside the process:
#     GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers, from glibc's <malloc.h>
_MMAP_THRESHOLD, _TRIM_THRESHOLD = 32 * 2**20, 2**30


def _tune_malloc() -> bool:
    """Apply the glibc settings above; True when they were applied, False when skipped (never raises)."""
    if os.environ.get("MINILDM_MALLOC_TUNING", "1").strip() == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):  # "glibc 2.36" under glibc; None or an error elsewhere
            return False
        import ctypes
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already uses
        mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
        return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    except (AttributeError, OSError, ValueError):
        return False


MALLOC_TUNED = _tune_malloc()  # whether the glibc settings above are in force in this process
_from_environment()
