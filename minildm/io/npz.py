"""NumPy ``.npz`` archives, read without ever unpickling and written atomically.

An ``.npz`` is a zip of ``.npy`` files. Plain numeric arrays are stored as raw bytes, but an array of Python
objects is stored as a *pickle*, and unpickling can run arbitrary code. So ``load_npz`` passes
``allow_pickle=False`` and turns NumPy's terse refusal into an error that names the offending array.
"""
from __future__ import annotations

from pathlib import Path

import numpy

from .. import backend
from .atomic import atomic_write

_ZIP_MAGIC = b"PK\x03\x04"


def load_npz(path) -> dict:
    """Read an ``.npz`` archive into ``{name: host NumPy array}``, refusing pickled (object) arrays."""
    path = Path(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != _ZIP_MAGIC:
        raise ValueError(f"load_npz: {path} is not an .npz archive (a .npz is a zip file; this one starts with "
                         f"{magic!r})")
    out = {}
    with numpy.load(path, allow_pickle=False) as archive:
        for name in archive.files:
            try:
                out[name] = archive[name]
            except ValueError as e:
                if "pickle" not in str(e).lower():
                    raise ValueError(f"load_npz: {path}: cannot read array {name!r}: {e}") from None
                raise ValueError(f"load_npz: {path}: array {name!r} holds Python objects stored as a pickle; "
                                 "refusing to unpickle it, since unpickling can run arbitrary code") from None
    return out


def save_npz(path, arrays: dict) -> None:
    """Write ``{name: array}`` as an uncompressed ``.npz``, atomically. Object arrays are refused (they would be
    pickled, and ``load_npz`` would then refuse them)."""
    host = {}
    for name, value in arrays.items():
        array = numpy.asarray(backend.to_host(value))
        if array.dtype.hasobject:
            raise ValueError(f"save_npz: array {name!r} has dtype object, which .npz can only store as a pickle")
        host[name] = array
    with atomic_write(path) as f:
        numpy.savez(f, **host)
