"""A file that is not what it claims to be is refused with an error that says what is wrong."""
import json
import pickle

import numpy as np
import pytest

from minildm.io import SafetensorsError, load_safetensors, save_safetensors


def raw_file(path, header, data=b"", header_length=None):
    """Write a hand-made safetensors file: header is a dict (JSON-encoded here) or raw bytes."""
    body = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(body) if header_length is None else header_length
    path.write_bytes(n.to_bytes(8, "little") + body + data)
    return path


def entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


def test_truncated_file(tmp_path):
    path = tmp_path / "t.safetensors"
    save_safetensors({"w": np.ones((4, 4), np.float32)}, path)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(SafetensorsError, match=r"truncated: tensor 'w' needs bytes \[0, 64\).*only 54 bytes"):
        load_safetensors(path)


def test_tiny_file_and_header_longer_than_file(tmp_path):
    (tmp_path / "tiny").write_bytes(b"abc")
    with pytest.raises(SafetensorsError, match="3 bytes, too short"):
        load_safetensors(tmp_path / "tiny")
    path = raw_file(tmp_path / "b", {"w": entry()}, b"\0" * 8, header_length=10_000)
    with pytest.raises(SafetensorsError, match="header length 10000 bytes is larger than the file"):
        load_safetensors(path)


def test_bad_json(tmp_path):
    with pytest.raises(SafetensorsError, match="header is not valid JSON"):
        load_safetensors(raw_file(tmp_path / "t", b'{"w": {"dtype": "F32",'))
    with pytest.raises(SafetensorsError, match="header is not valid JSON"):
        load_safetensors(raw_file(tmp_path / "t", b"\xff\xfe\x00{}"))
    with pytest.raises(SafetensorsError, match="the header is JSON list, expected an object"):
        load_safetensors(raw_file(tmp_path / "t", b"[1, 2]"))
    with pytest.raises(SafetensorsError, match=r"duplicate tensor names \['w'\]"):
        load_safetensors(raw_file(tmp_path / "t", b'{"w": 1, "w": 2}'))


BAD_LAYOUTS = {
    "out of range": ({"w": entry(offsets=(0, 8))}, b"\0" * 4, "truncated"),
    "size mismatch": ({"w": entry(shape=(3,), offsets=(0, 8))}, b"\0" * 8, r"span 8 bytes.*needs 12"),
    "negative": ({"w": entry(offsets=(-8, 0))}, b"", "invalid data_offsets"),
    "gap": ({"w": entry(offsets=(4, 12))}, b"\0" * 12, "starts at byte 4, expected 0"),
    "overlap": ({"a": entry(offsets=(0, 8)), "b": entry(offsets=(4, 12))}, b"\0" * 12, "starts at byte 4"),
    "trailing": ({"w": entry()}, b"\0" * 9, "1 unexpected bytes after the tensor data"),
    "bad shape": ({"w": entry(shape=(2.5,))}, b"\0" * 8, "invalid shape"),
    "bad entry": ({"w": {"dtype": "F32", "shape": [2]}}, b"\0" * 8, "must have exactly 'dtype'"),
}


@pytest.mark.parametrize("case", sorted(BAD_LAYOUTS))
def test_offsets_out_of_range_or_inconsistent(tmp_path, case):
    header, data, message = BAD_LAYOUTS[case]
    with pytest.raises(SafetensorsError, match=message):
        load_safetensors(raw_file(tmp_path / "t", header, data))


def test_unknown_dtype(tmp_path):
    path = raw_file(tmp_path / "t", {"w": entry(dtype="F8_E4M3", offsets=(0, 2))}, b"\0\0")
    with pytest.raises(SafetensorsError, match="unknown or unsupported dtype 'F8_E4M3'"):
        load_safetensors(path)


def test_other_formats_are_named(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.ones(3))
    with pytest.raises(SafetensorsError, match="looks like a zip archive"):
        load_safetensors(tmp_path / "a.npz")
    (tmp_path / "model.bin").write_bytes(pickle.dumps({"w": [1.0] * 100}, protocol=4))
    with pytest.raises(SafetensorsError, match="looks like a Python pickle.*never unpickles"):
        load_safetensors(tmp_path / "model.bin")
    (tmp_path / "text.txt").write_text("hello, this is certainly not a tensor file")
    with pytest.raises(SafetensorsError, match="not a valid safetensors file"):
        load_safetensors(tmp_path / "text.txt")
    with pytest.raises(FileNotFoundError):
        load_safetensors(tmp_path / "missing.safetensors")
