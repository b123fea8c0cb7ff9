"""The safetensors file format, read and written by hand (no dependency, and no code that could run on load).

A .safetensors file is three parts, back to back:

    ┌──────────────┬─────────────────────────────────────────┬──────────────────────────────┐
    │ N (8 bytes)  │ header: N bytes of UTF-8 JSON            │ data: the raw tensor bytes   │
    │ u64, little- │ {"__metadata__": {"format": "pt"},      │ little-endian, C order,      │
    │ endian       │  "conv.weight": {"dtype": "F32",        │ one tensor after another     │
    │              │   "shape": [8, 4, 3, 3],                │                              │
    │              │   "data_offsets": [0, 1152]}, ...}      │                              │
    └──────────────┴─────────────────────────────────────────┴──────────────────────────────┘

``data_offsets`` [begin, end) count bytes from the start of the data part. Nothing in the file is executable —
unlike a pickled PyTorch ``.bin``/``.ckpt``, loading a safetensors file cannot run code — and a reader can check
every claim the header makes against the file's actual size before trusting it, which ``_read`` does.

Writer conventions (the same as the reference ``safetensors`` library, so files are interchangeable): the header is
padded with spaces so the data starts at a multiple of 8 bytes, and tensors are laid out by decreasing item size,
then by name, which keeps every tensor aligned to its item size. BF16 (bfloat16, which NumPy lacks) can be read and
is converted to float32 exactly (bfloat16 is the top half of a float32).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy

from .. import backend
from .atomic import atomic_write

# safetensors dtype code ↔ NumPy dtype (little-endian on disk)
DTYPES = {"BOOL": "|b1", "U8": "|u1", "I8": "|i1", "U16": "<u2", "I16": "<i2", "F16": "<f2", "U32": "<u4",
          "I32": "<i4", "F32": "<f4", "U64": "<u8", "I64": "<i8", "F64": "<f8"}
CODES = {numpy.dtype(v).str: k for k, v in DTYPES.items()}
MAX_HEADER_BYTES = 100_000_000  # the reference implementation's limit: a header is never anywhere near this


class SafetensorsError(ValueError):
    """The file is not a valid safetensors file (the message says what is wrong)."""


# -- writing ----------------------------------------------------------------------------------------------------------
def save_safetensors(tensors: dict, path, metadata: dict | None = None) -> None:
    """Write ``{name: array}`` to ``path`` in safetensors format, atomically (see ``atomic.py``).

    Args:
        tensors: names → NumPy or CuPy arrays (bool, uint8/16/32/64, int8/16/32/64, float16/32/64).
        path: the file to write; its folder must exist.
        metadata: optional ``{str: str}`` stored in the header under ``"__metadata__"``.
    """
    arrays = {}
    for name, value in tensors.items():
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise ValueError(f"save_safetensors: invalid tensor name {name!r} (need a non-empty string, "
                             "not '__metadata__')")
        array = numpy.asarray(backend.to_host(value))
        little = array.astype(array.dtype.newbyteorder("<"), copy=False) if array.dtype.byteorder == ">" else array
        if little.dtype.str not in CODES:
            raise ValueError(f"save_safetensors: {name!r} has dtype {array.dtype}, which safetensors cannot store "
                             f"(supported: {', '.join(str(numpy.dtype(d)) for d in DTYPES.values())})")
        arrays[name] = numpy.asarray(little, order="C")  # C order (not ascontiguousarray: it turns 0-d into 1-d)

    header = {}
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise ValueError("save_safetensors: metadata must map strings to strings")
        header["__metadata__"] = dict(metadata)
    order = sorted(arrays, key=lambda name: (-arrays[name].itemsize, name))
    offset = 0
    for name in order:
        a = arrays[name]
        header[name] = {"dtype": CODES[a.dtype.str], "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-(8 + len(header_bytes)) % 8)  # pad so the data part starts 8-byte aligned

    with atomic_write(path) as f:
        f.write(len(header_bytes).to_bytes(8, "little"))
        f.write(header_bytes)
        for name in order:
            _write_array(f, arrays[name])


def _write_array(f, array: numpy.ndarray) -> None:
    """Write the raw bytes of a C-contiguous array (without first copying them into a bytes object)."""
    f.write(array.reshape(-1).view(numpy.uint8))


# -- reading ----------------------------------------------------------------------------------------------------------
def load_safetensors(path) -> dict:
    """Read a safetensors file into ``{name: host NumPy array}`` (in file order). BF16 becomes float32.

    Raises ``SafetensorsError`` (a ValueError) naming the problem when the file is not valid safetensors.
    """
    return _read(path, load_data=True)[0]


def load_safetensors_metadata(path) -> dict:
    """The ``"__metadata__"`` dict of a safetensors file (empty when there is none); reads only the header."""
    return _read(path, load_data=False)[1]


def _read(path, load_data: bool):
    """(tensors, metadata) of a safetensors file, after checking the header against the file size."""
    path = Path(path)
    size = path.stat().st_size

    def fail(problem):
        return SafetensorsError(f"{path}: not a valid safetensors file: {problem}")

    with open(path, "rb") as f:
        if size < 8:
            raise fail(f"the file has {size} bytes, too short for the 8-byte header length")
        first = f.read(8)
        n = int.from_bytes(first, "little")
        if n > size - 8 or n > MAX_HEADER_BYTES:
            raise fail(f"header length {n} bytes is larger than the file ({size} bytes) allows{_guess_format(first)}")
        try:
            header = json.loads(f.read(n).decode("utf-8"), object_pairs_hook=_no_duplicates)
        except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as e:
            raise fail(f"the header is not valid JSON ({e}){_guess_format(first)}") from None
        if not isinstance(header, dict):
            raise fail(f"the header is JSON {type(header).__name__}, expected an object")
        metadata = header.pop("__metadata__", None) or {}
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise fail("'__metadata__' must map strings to strings")

        data_start, data_size = 8 + n, size - 8 - n
        entries = {name: _parse_entry(name, entry, fail) for name, entry in header.items()}
        entries = dict(sorted(entries.items(), key=lambda item: item[1][2]))  # file order
        position = 0
        for name, (dtype, shape, (begin, end)) in entries.items():
            if end > data_size:
                raise fail(f"the file is truncated: tensor {name!r} needs bytes [{begin}, {end}) of the data part, "
                           f"which has only {data_size} bytes")
            if begin != position:
                raise fail(f"tensor {name!r} starts at byte {begin}, expected {position} "
                           "(tensors must follow each other without gaps or overlaps)")
            position = end
        if position != data_size:
            raise fail(f"{data_size - position} unexpected bytes after the tensor data")

        tensors = {}
        if load_data:
            for name, (dtype, shape, (begin, end)) in entries.items():
                f.seek(data_start + begin)
                tensors[name] = _read_array(f, dtype, shape, fail, name)
    return tensors, metadata


def _parse_entry(name: str, entry, fail):
    """Check one header entry; return (dtype code, shape tuple, (begin, end))."""
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise fail(f"tensor {name!r}: entry must have exactly 'dtype', 'shape' and 'data_offsets', got {entry!r}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in DTYPES and dtype != "BF16":
        raise fail(f"tensor {name!r} has unknown or unsupported dtype {dtype!r} "
                   f"(supported: {', '.join(list(DTYPES) + ['BF16'])})")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise fail(f"tensor {name!r} has invalid shape {shape!r}")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(o) for o in offsets):
        raise fail(f"tensor {name!r} has invalid data_offsets {offsets!r}")
    begin, end = offsets
    itemsize = 2 if dtype == "BF16" else numpy.dtype(DTYPES[dtype]).itemsize
    if end - begin != math.prod(shape) * itemsize:
        raise fail(f"tensor {name!r}: data_offsets {offsets} span {end - begin} bytes, but a {dtype} tensor of "
                   f"shape {tuple(shape)} needs {math.prod(shape) * itemsize}")
    return dtype, tuple(shape), (begin, end)


def _read_array(f, dtype: str, shape: tuple, fail, name: str) -> numpy.ndarray:
    """Read one tensor's bytes straight into a new array."""
    out = numpy.empty(shape, dtype="<u2" if dtype == "BF16" else DTYPES[dtype])
    buffer = out.reshape(-1).view(numpy.uint8)
    if f.readinto(buffer) != buffer.size:
        raise fail(f"the file ended while reading tensor {name!r}")
    if dtype == "BF16":  # bfloat16 = the upper 16 bits of a float32: shift them back into place
        out = (out.astype(numpy.uint32) << 16).view(numpy.float32)
    return out


def _is_count(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate tensor names {sorted({k for k in keys if keys.count(k) > 1})}")
    return dict(pairs)


def _guess_format(first_bytes: bytes) -> str:
    """A hint when the file is plainly something else."""
    if first_bytes.startswith(b"PK\x03\x04"):
        return " — it looks like a zip archive (an .npz, or a PyTorch .pt/.bin saved with torch.save)"
    if first_bytes[:1] == b"\x80":
        return " — it looks like a Python pickle (e.g. a PyTorch .bin/.ckpt); minildm never unpickles"
    if first_bytes.startswith(b"\x93NUMPY"):
        return " — it looks like a NumPy .npy file"
    return ""
