"""minildm.backend: choosing NumPy or CuPy, moving arrays, seeded randomness."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minildm import backend

HAVE_CUPY = importlib.util.find_spec("cupy") is not None
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def restore_backend():
    """Tests that switch the backend put the one the suite runs on back."""
    before = backend.name()
    yield
    backend.use(before)


def run_python(code: str, env_value: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MINILDM_BACKEND=env_value, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=60)


def test_unknown_backend_is_a_value_error(restore_backend):
    with pytest.raises(ValueError, match=r"unknown backend 'tpu'.*numpy, cupy"):
        backend.use("tpu")


def test_use_numpy_is_case_insensitive(restore_backend):
    backend.use("NumPy")
    assert backend.name() == "numpy" and backend.xp() is np


@pytest.mark.skipif(HAVE_CUPY, reason="CuPy is installed here")
def test_use_cupy_without_cupy_says_what_to_install(restore_backend):
    with pytest.raises(ImportError, match="pip install cupy-cuda12x"):
        backend.use("cupy")
    assert backend.name() == "numpy"  # a failed switch leaves the backend as it was


@pytest.mark.skipif(not HAVE_CUPY, reason="CuPy is not installed")
def test_use_cupy_switches_the_array_module(restore_backend):
    import cupy

    backend.use("cupy")
    assert backend.name() == "cupy" and backend.xp() is cupy
    assert backend.is_device_array(backend.to_device(np.ones(3)))


def test_environment_variable_chooses_the_backend():
    done = run_python("import minildm; print(minildm.backend.name())", "numpy")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "numpy"


def test_bad_environment_variable_names_itself():
    done = run_python("import minildm", "tensorflow")
    assert done.returncode != 0
    assert "MINILDM_BACKEND='tensorflow'" in done.stderr


@pytest.mark.skipif(HAVE_CUPY, reason="CuPy is installed here")
def test_environment_variable_cupy_without_cupy_is_a_clear_import_error():
    done = run_python("import minildm", "cupy")
    assert done.returncode != 0
    assert "ImportError" in done.stderr and "pip install cupy-cuda12x" in done.stderr


def test_get_array_module_follows_the_data():
    assert backend.get_array_module(np.ones(2)) is np
    assert backend.get_array_module([1.0, 2.0]) is np
    assert backend.get_array_module(backend.to_device(np.ones(2))) is backend.xp()


def test_to_device_and_to_host_round_trip():
    host = np.arange(6, dtype=np.float64).reshape(2, 3)
    dev = backend.to_device(host)
    assert type(dev) is type(backend.xp().asarray(host))
    assert backend.is_device_array(dev) == (backend.name() == "cupy")
    back = backend.to_host(dev)
    assert isinstance(back, np.ndarray) and back.dtype == np.float64
    np.testing.assert_array_equal(back, host)
    assert backend.to_device(host, np.float32).dtype == np.float32
    assert backend.to_host(host) is host  # host arrays are not copied
    assert backend.to_host([1, 2]).tolist() == [1, 2]


def test_default_dtype_is_float32():
    assert backend.DEFAULT_DTYPE == np.float32


def test_rng_is_reproducible_and_leaves_global_numpy_state_alone():
    np.random.seed(1234)
    state_before = np.random.get_state()
    a = backend.to_host(backend.rng(7).standard_normal((4, 5), dtype=np.float32))
    b = backend.to_host(backend.rng(7).standard_normal((4, 5), dtype=np.float32))
    c = backend.to_host(backend.rng(8).standard_normal((4, 5), dtype=np.float32))
    assert backend.to_host(backend.rng(np.int64(7)).standard_normal(3)).shape == (3,)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    state_after = np.random.get_state()
    assert state_before[0] == state_after[0] and state_before[2:] == state_after[2:]
    np.testing.assert_array_equal(state_before[1], state_after[1])


def test_rng_passes_a_generator_through_and_rejects_other_seeds():
    g = backend.rng(0)
    assert backend.rng(g) is g
    with pytest.raises(TypeError, match="seed must be an int"):
        backend.rng(0.5)


def test_host_rng_is_numpy_and_seeded():
    g = backend.host_rng(3)
    assert isinstance(g, np.random.Generator)
    np.testing.assert_array_equal(g.random(3), backend.host_rng(3).random(3))
    assert backend.host_rng(g) is g


def test_module_by_name_without_switching(restore_backend):
    assert backend.module("NumPy") is np
    with pytest.raises(ValueError, match=r"backend.module: unknown backend 'tpu'"):
        backend.module("tpu")
    if HAVE_CUPY:
        import cupy
        assert backend.module("cupy") is cupy
    else:
        with pytest.raises(ImportError, match="pip install cupy-cuda12x"):
            backend.module("cupy")
    assert backend.name() == "numpy"  # asking for a module never changes the active backend
