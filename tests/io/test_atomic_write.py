"""An interrupted save leaves the previous file intact and no temporary file behind."""
import os

import numpy as np
import pytest

from minildm.io import atomic_write, load_checkpoint, load_safetensors, save_checkpoint, save_safetensors
from minildm.io import safetensors as safetensors_module


def fail_midway(exception):
    """A replacement for the array writer that writes half of the bytes, then dies."""
    def write_half_then_fail(f, array):
        data = array.reshape(-1).view(np.uint8)
        f.write(data[: data.size // 2])
        raise exception
    return write_half_then_fail


@pytest.mark.parametrize("exception", [OSError("No space left on device"), KeyboardInterrupt()])
def test_interrupted_save_keeps_previous_checkpoint(tmp_path, monkeypatch, exception):
    path = tmp_path / "model.safetensors"
    old = {"w": np.arange(1000, dtype=np.float32)}
    save_safetensors(old, path)
    old_bytes = path.read_bytes()

    monkeypatch.setattr(safetensors_module, "_write_array", fail_midway(exception))
    with pytest.raises(type(exception)):
        save_safetensors({"w": np.zeros(1000, np.float32)}, path)

    assert path.read_bytes() == old_bytes, "the previous file must be untouched"
    assert np.array_equal(load_safetensors(path)["w"], old["w"])
    assert sorted(os.listdir(tmp_path)) == ["model.safetensors"], "no temporary file may be left behind"


def test_interrupted_first_save_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(safetensors_module, "_write_array", fail_midway(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path / "ckpt.safetensors", {"w": np.ones(10, np.float32)}, {"step": 1})
    assert os.listdir(tmp_path) == []


def test_interrupted_checkpoint_keeps_previous(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, {"w": np.ones(10, np.float32)}, {"step": 1})
    monkeypatch.setattr(safetensors_module, "_write_array", fail_midway(OSError("disk full")))
    with pytest.raises(OSError):
        save_checkpoint(path, {"w": np.zeros(10, np.float32)}, {"step": 2})
    state, meta = load_checkpoint(path)
    assert meta == {"step": 1} and np.array_equal(state["w"], np.ones(10, np.float32))
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]


def test_atomic_write_text_and_permissions(tmp_path):
    path = tmp_path / "notes.txt"
    with atomic_write(path, mode="w") as f:
        f.write("héllo\n")
    assert path.read_text(encoding="utf-8") == "héllo\n"
    umask = os.umask(0)
    os.umask(umask)
    if os.name == "posix":
        assert (path.stat().st_mode & 0o777) == (0o666 & ~umask), "same permissions as a normally written file"
    with pytest.raises(ValueError, match="mode must be"):
        with atomic_write(path, mode="a"):
            pass
    with pytest.raises(RuntimeError):
        with atomic_write(path, mode="w") as f:
            f.write("half")
            raise RuntimeError("crash")
    assert path.read_text(encoding="utf-8") == "héllo\n" and os.listdir(tmp_path) == ["notes.txt"]
