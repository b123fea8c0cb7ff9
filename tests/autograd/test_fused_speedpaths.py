"""The fast paths are the same math: float32 erf/erfc/GELU against double-precision references, and malloc tuning.

The float32 path (``activations._phi_float32``) evaluates Phi(-a) = exp(-a^2/2) P(a)/Q(a) without masks. Its bounds,
stated here and checked on a dense grid of float32 inputs (every value compared with ``math.erf``/``math.erfc`` of
that same float32 number, in double precision), with u = 2^-24 (float32's unit roundoff, 6e-8):

    erf(x)             |error| <= 2e-7                               (and <= 5e-7 relative for |x| <= 0.5)
    erfc(x)            |error| <= 3e-7; relative <= 5 u (1 + 2 x^2) wherever erfc(x) is a normal float32
    Phi(x) (GELU)      |error| <= 1.5e-7; relative <= 5 u (1 + x^2) for x < 0 (the tail, down to 1e-38)

The factor (1 + x^2) is the conditioning of the tail, not a weakness of the fit: exp(-x^2/2) of a float32 x whose
square is rounded to 24 bits is itself only good to ~u x^2 relative. The float64 path (Cody) is unchanged and is
tested in test_fused_details.py to 1e-14.
"""
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import host, to_backend

from minildm import backend
from minildm.autograd import Tensor
from minildm.autograd import activations
from minildm.autograd.activations import erf, erfc
from minildm.nn import functional as F

U = 2.0 ** -24
NORMAL_MIN = float(np.finfo(np.float32).tiny)  # 1.2e-38
host_only = pytest.mark.skipif(backend.name() != "numpy", reason="the float32 fast path is the NumPy (host) path")


def float32_grid():
    """Every 1e-5 on [-10, 10], plus values near 0 down to 1e-30, as float32, sorted, unique."""
    near_zero = np.geomspace(1e-30, 10, 20001)
    values = np.concatenate([np.linspace(-10, 10, 2_000_001), near_zero, -near_zero, [0.0, 0.46875, 4.0]])
    return np.unique(values.astype(np.float32))


@pytest.fixture(scope="module")
def grid():
    x = float32_grid()
    exact = x.astype(np.float64)
    return x, {"erf": np.array([math.erf(v) for v in exact]), "erfc": np.array([math.erfc(v) for v in exact]),
               "phi": np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in exact])}


# -- the rational function itself -----------------------------------------------------------------------------------
def fit_tail_rational(m=4, k=5, a_max=14.5, points=4000, iterations=60):
    """The fit behind ``_TAIL_P``/``_TAIL_Q``: P_m/Q_k ~ Phi(-a) e^{a^2/2} on [0, a_max], near-minimax relative error.

    Lawson's algorithm: weighted least squares, each round re-weighting every point by its error (and, as in
    Sanathanan & Koerner's linearisation, dividing the residual P - f Q by the previous round's Q). Points are
    Chebyshev-spaced. Returns (max relative error on the points, P's coefficients, Q's), lowest degree first.
    """
    a = a_max * (1 - np.cos(np.linspace(0, np.pi, points))) / 2
    f = np.array([0.5 * math.erfc(v / math.sqrt(2)) * math.exp(v * v / 2) for v in a])
    powers = a[:, None] ** np.arange(max(m, k) + 1)
    weights, q_prev, best = np.ones(points), np.ones(points), None
    for _ in range(iterations):
        design = np.hstack([powers[:, :m + 1], -f[:, None] * powers[:, 1:k + 1]]) / (f * q_prev)[:, None]
        root = np.sqrt(weights)
        coef = np.linalg.lstsq(design * root[:, None], root / q_prev, rcond=None)[0]
        p, q = coef[:m + 1], np.concatenate([[1.0], coef[m + 1:]])
        q_prev = powers[:, :k + 1] @ q
        err = (powers[:, :m + 1] @ p) / q_prev / f - 1
        if best is None or np.abs(err).max() < best[0]:
            best = (np.abs(err).max(), p, q)
        weights = weights * np.abs(err)
        weights /= weights.sum()
    return best


def test_shipped_coefficients_are_the_fit_and_accurate_in_exact_arithmetic():
    _, p, q = fit_tail_rational()
    np.testing.assert_allclose(activations._TAIL_P, p, rtol=1e-9)
    np.testing.assert_allclose(activations._TAIL_Q, q, rtol=1e-9)
    a = np.linspace(0, activations._TAIL_CLAMP, 20001)
    mills = np.array([0.5 * math.erfc(v / math.sqrt(2)) * math.exp(v * v / 2) for v in a])
    ratio = np.polyval(activations._TAIL_P[::-1], a) / np.polyval(activations._TAIL_Q[::-1], a)
    assert np.abs(ratio / mills - 1).max() < 6e-9  # far below float32's rounding: the evaluation sets the accuracy


# -- float32 accuracy on a dense grid ----------------------------------------------------------------------------------
@host_only
def test_float32_erf_is_within_2e7_of_math_erf(grid):
    x, ref = grid
    got = erf(x)
    assert got.dtype == np.float32
    err = np.abs(got.astype(np.float64) - ref["erf"])
    assert err.max() <= 2e-7, f"max |erf error| {err.max():.3g} at x = {x[err.argmax()]}"
    small = (np.abs(x) <= 0.5) & (x != 0)  # near 0 the error stays relative too (Cody's odd rational)
    assert (err[small] / np.abs(ref["erf"][small])).max() <= 5e-7


@host_only
def test_float32_erfc_is_relative_accurate_into_the_tail(grid):
    x, ref = grid
    got = erfc(x).astype(np.float64)
    err = np.abs(got - ref["erfc"])
    assert err.max() <= 3e-7
    normal = ref["erfc"] > NORMAL_MIN  # erfc(x) for x up to ~9.2, where it reaches 1e-38
    bound = 5 * U * (1 + 2 * x[normal].astype(np.float64) ** 2)
    assert np.all(err[normal] / ref["erfc"][normal] <= bound)


@host_only
def test_float32_phi_for_gelu(grid):
    x, ref = grid
    phi, e = activations._phi_float32(x)
    err = np.abs(phi.astype(np.float64) - ref["phi"])
    assert err.max() <= 1.5e-7
    tail = (x < 0) & (ref["phi"] > NORMAL_MIN)
    assert np.all(err[tail] / ref["phi"][tail] <= 5 * U * (1 + x[tail].astype(np.float64) ** 2))
    exact_e = np.exp(-0.5 * x.astype(np.float64) ** 2)
    assert np.all(np.abs(e - exact_e) <= 3 * U * (1 + x.astype(np.float64) ** 2) * exact_e + 1e-45)


@host_only
def test_float32_gelu_and_its_gradient_match_float64():
    x64 = np.concatenate([np.linspace(-12, 12, 200_001), [-1e30, -100.0, 100.0, 1e30]])
    x32 = x64.astype(np.float32)
    exact = x32.astype(np.float64)
    fast, slow = Tensor(x32, requires_grad=True), Tensor(exact, requires_grad=True)  # float64 = Cody's path
    g = np.random.default_rng(0).standard_normal(x32.shape)
    F.gelu(fast).backward(g.astype(np.float32))
    ref = F.gelu(slow)
    ref.backward(g)
    out_err = np.abs(host(F.gelu(Tensor(x32))).astype(np.float64) - ref.data)
    assert np.all(out_err <= 2e-7 * np.maximum(np.abs(exact), 1))
    grad_err = np.abs(fast.grad.astype(np.float64) - slow.grad)
    assert np.all(grad_err <= 4e-7 * np.abs(g) * np.maximum(np.abs(exact), 1))
    np.testing.assert_array_equal(fast.grad[-4:], g[-4:].astype(np.float32) * [0, 0, 1, 1])  # gelu' -> 0 and 1


@host_only
def test_float32_special_values():
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 3e38, -3e38, 1e-45], np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no warnings from huge or infinite inputs
        tiny = np.float32(1e-45 * 2 / math.sqrt(math.pi))  # erf(x) ~ 2x / sqrt(pi), rounded to a subnormal
        np.testing.assert_array_equal(erf(x), [1, -1, np.nan, 0, -0.0, 1, -1, tiny])
        np.testing.assert_array_equal(erfc(x), [0, 2, np.nan, 1, 1, 0, 2, 1])
        phi, e = activations._phi_float32(x)
    np.testing.assert_array_equal(phi, [1, 0, np.nan, 0.5, 0.5, 1, 0, 0.5])
    np.testing.assert_array_equal(e, [0, 0, np.nan, 1, 1, 0, 0, 1])
    out = F.gelu(Tensor(x[[0, 2, 5, 6]])).data
    np.testing.assert_array_equal(out, np.array([np.inf, np.nan, 3e38, -0.0], np.float32))  # gelu(-inf): NaN, as torch


@host_only
def test_float32_path_handles_any_layout_and_size():
    rng = np.random.default_rng(1)
    wide = rng.standard_normal((3, 5, 2 * 7)).astype(np.float32)
    gate = wide[..., 7:]  # a strided view, like GEGLU's gate
    np.testing.assert_array_equal(erf(gate), erf(np.ascontiguousarray(gate)))
    long = rng.standard_normal(activations._BLOCK * 2 + 3).astype(np.float32)  # blocks plus a ragged end
    np.testing.assert_array_equal(erfc(long)[-3:], erfc(long[-3:]))
    assert erf(np.float32(0.5) * np.ones((), np.float32)).shape == ()
    assert erfc(np.zeros((0, 4), np.float32)).shape == (0, 4)
    half = erf(gate.astype(np.float16))  # float16 is computed in float32
    assert half.dtype == np.float16
    np.testing.assert_allclose(half, erf(gate.astype(np.float16).astype(np.float32)), rtol=1e-3)


def test_silu_and_quick_gelu_match_their_formulas():
    x = np.linspace(-60, 60, 2001).astype(np.float32).astype(np.float64)  # float32 inputs, float64 references
    for fn, k in ((F.silu, 1.0), (F.quick_gelu, 1.702)):
        t = Tensor(to_backend(x, np.float32), requires_grad=True)
        out = fn(t)
        out.backward(to_backend(np.ones_like(x), np.float32))
        s = 1 / (1 + np.exp(-k * x))
        # sigmoid = (1 + tanh(kx/2)) / 2 has absolute accuracy (u), not relative, in the negative tail
        err = np.abs(host(out) - x * s)
        assert np.all(err <= 4 * U * np.abs(x * s) + 2 * U * np.abs(x)), err.max()
        grad_err = np.abs(host(t.grad) - s * (1 + k * x * (1 - s)))
        assert np.all(grad_err <= 4 * U * (1 + k * np.abs(x))), grad_err.max()
        scalar = fn(Tensor(to_backend(np.float32(1.5))))  # 0-d input
        assert host(scalar).shape == () and abs(float(host(scalar)) - 1.5 / (1 + math.exp(-1.5 * k))) < 1e-6


# -- malloc tuning (minildm/backend.py) ------------------------------------------------------------------------------
_FAULTS = """
import resource, numpy
import minildm.backend as b
faults = []
for _ in range(8):  # make and free three 12 MiB arrays, as a training step makes and frees its temporaries
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    arrays = [numpy.ones(3 * 2**20, numpy.float32) for _ in range(3)]
    del arrays
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(b.MALLOC_TUNED, *faults)
"""


def _run_faults(**env):
    out = subprocess.run([sys.executable, "-c", _FAULTS], capture_output=True, text=True, check=True,
                         env={**os.environ, **env}).stdout.split()
    return out[0] == "True", [int(v) for v in out[1:]]


def test_malloc_tuning_keeps_large_temporaries_mapped():
    tuned, faults = _run_faults(MINILDM_MALLOC_TUNING="1")
    glibc = sys.platform.startswith("linux") and bool(os.confstr("CS_GNU_LIBC_VERSION"))
    assert tuned == glibc  # applied on Linux/glibc, silently skipped elsewhere
    if tuned:  # after the first round the memory is reused: no new pages (untuned: ~1500 page faults per round)
        assert sum(faults[1:]) <= faults[0] // 10, faults


def test_malloc_tuning_opt_out():
    tuned, _ = _run_faults(MINILDM_MALLOC_TUNING="0")
    assert not tuned
