"""Our safetensors reader/writer: bit-exact round trips, the on-disk layout, and interop with the `safetensors`
package in both directions."""
import json

import numpy as np
import pytest
from helpers import to_backend

from minildm.io import load_safetensors, load_safetensors_metadata, save_safetensors


def sample_tensors():
    rng = np.random.default_rng(0)
    return {
        "unet.conv_in.weight": rng.standard_normal((8, 4, 3, 3)).astype(np.float32),
        "unet.conv_in.bias": rng.standard_normal(8).astype(np.float16),
        "vae.scale": np.array(0.18215, np.float64),                      # 0-d
        "tokenizer.ids": rng.integers(-2**40, 2**40, size=(2, 5), dtype=np.int64),
        "mask": rng.random((3, 3)) > 0.5,
        "pixels": rng.integers(0, 255, size=(2, 2, 3), dtype=np.uint8),
        "counts": np.arange(6, dtype=np.int32).reshape(2, 3),
        "empty": np.zeros((0, 4), np.float32),
        "special": np.array([np.nan, np.inf, -np.inf, -0.0, 1e-45], np.float32),
    }


def assert_same(loaded, expected):
    assert list(sorted(loaded)) == list(sorted(expected))
    for name, e in expected.items():
        a = loaded[name]
        assert a.dtype == e.dtype and a.shape == e.shape, name
        assert a.tobytes() == np.ascontiguousarray(e).tobytes(), f"{name}: bits differ"


def test_round_trip_is_bit_exact(tmp_path):
    tensors = sample_tensors()
    save_safetensors(tensors, tmp_path / "t.safetensors", metadata={"format": "pt", "note": "ünïcode"})
    assert_same(load_safetensors(tmp_path / "t.safetensors"), tensors)
    assert load_safetensors_metadata(tmp_path / "t.safetensors") == {"format": "pt", "note": "ünïcode"}


def test_backend_arrays_and_unusual_layouts(tmp_path):
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    tensors = {"device": to_backend(base),                       # CuPy on a GPU run
               "transposed": base.T,                             # not C-contiguous
               "big_endian": base.astype(">f4")}                 # stored little-endian on disk
    save_safetensors(tensors, tmp_path / "t.safetensors")
    loaded = load_safetensors(tmp_path / "t.safetensors")
    assert np.array_equal(loaded["device"], base)
    assert np.array_equal(loaded["transposed"], base.T) and loaded["transposed"].flags.c_contiguous
    assert np.array_equal(loaded["big_endian"], base) and loaded["big_endian"].dtype == np.float32


def test_layout_on_disk(tmp_path):
    save_safetensors({"b": np.ones(3, np.float16), "a": np.ones(2, np.float64)}, tmp_path / "t.safetensors")
    raw = (tmp_path / "t.safetensors").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert (8 + n) % 8 == 0, "data part starts 8-byte aligned"
    header = json.loads(raw[8:8 + n])
    assert header == {"a": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]},       # larger items first
                      "b": {"dtype": "F16", "shape": [3], "data_offsets": [16, 22]}}
    assert len(raw) == 8 + n + 22
    assert raw[8 + n:8 + n + 16] == np.ones(2, "<f8").tobytes()


def test_interop_reference_reads_ours(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open

    tensors = sample_tensors()
    save_safetensors(tensors, tmp_path / "ours.safetensors", metadata={"format": "pt"})
    assert_same(safetensors_numpy.load_file(tmp_path / "ours.safetensors"), tensors)
    with safe_open(tmp_path / "ours.safetensors", framework="numpy") as f:
        assert f.metadata() == {"format": "pt"}


def test_interop_we_read_reference(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    tensors = sample_tensors()
    safetensors_numpy.save_file(tensors, tmp_path / "theirs.safetensors", metadata={"k": "v"})
    assert_same(load_safetensors(tmp_path / "theirs.safetensors"), tensors)
    assert load_safetensors_metadata(tmp_path / "theirs.safetensors") == {"k": "v"}


def test_bf16_reads_as_float32(tmp_path):
    values = np.array([1.0, -2.5, 3.140625, 0.0, -np.inf, 65280.0], np.float32)  # exactly representable in bf16
    bf16_bytes = (values.view(np.uint32) >> 16).astype("<u2").tobytes()      # bfloat16 = upper half of a float32
    header = json.dumps({"w": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, len(bf16_bytes)]}}).encode()
    (tmp_path / "bf16.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bf16_bytes)
    w = load_safetensors(tmp_path / "bf16.safetensors")["w"]
    assert w.dtype == np.float32 and np.array_equal(w, values.reshape(2, 3))


def test_bf16_written_by_the_reference(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    x = torch.tensor([[0.1, -1e3, 7.0]], dtype=torch.bfloat16)
    save_file({"x": x}, tmp_path / "bf16.safetensors")
    assert np.array_equal(load_safetensors(tmp_path / "bf16.safetensors")["x"], x.float().numpy())


def test_unsupported_dtype_and_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="complex128, which safetensors cannot store"):
        save_safetensors({"z": np.ones(2, np.complex128)}, tmp_path / "z.safetensors")
    with pytest.raises(ValueError, match="invalid tensor name '__metadata__'"):
        save_safetensors({"__metadata__": np.ones(2)}, tmp_path / "z.safetensors")
    with pytest.raises(ValueError, match="metadata must map strings to strings"):
        save_safetensors({"a": np.ones(2)}, tmp_path / "z.safetensors", metadata={"step": 3})
    assert not list(tmp_path.iterdir()), "a refused save writes nothing"
