"""load_npz never unpickles and says which array it refused; save_npz round-trips exactly."""
import numpy as np
import pytest
from helpers import to_backend

from minildm.io import load_npz, save_npz


def test_round_trip(tmp_path):
    arrays = {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "ids": np.array([1, 2], np.int64),
              "name": np.array("a unicode string is fine"), "device": to_backend(np.ones(2, np.float16))}
    save_npz(tmp_path / "a.npz", arrays)
    loaded = load_npz(tmp_path / "a.npz")
    assert sorted(loaded) == sorted(arrays)
    for k in ("x", "ids", "name"):
        assert loaded[k].dtype == arrays[k].dtype and np.array_equal(loaded[k], arrays[k])
    assert loaded["device"].dtype == np.float16 and isinstance(loaded["device"], np.ndarray)


def test_pickle_bearing_npz_is_refused(tmp_path):
    np.savez(tmp_path / "evil.npz", fine=np.ones(3), payload=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(ValueError, match="array 'payload' holds Python objects stored as a pickle; refusing"):
        load_npz(tmp_path / "evil.npz")
    with pytest.raises(ValueError, match="'payload' has dtype object"):
        save_npz(tmp_path / "b.npz", {"payload": np.array([{"a": 1}], dtype=object)})
    assert not (tmp_path / "b.npz").exists()


def test_not_an_npz(tmp_path):
    np.save(tmp_path / "x.npy", np.ones(3))
    with pytest.raises(ValueError, match="is not an .npz archive"):
        load_npz(tmp_path / "x.npy")
