"""Fused elementwise ops: SiLU, GELU (exact and tanh), QuickGELU, and dropout.

Each activation is one graph node whose backward is the closed-form derivative, instead of the five or six nodes
(and temporaries) the composed formula would record. The derivatives, with sigma(x) = 1 / (1 + e^-x):

    silu(x)       = x sigma(x)                    silu'(x)       = sigma(x) (1 + x (1 - sigma(x)))
    quick_gelu(x) = x sigma(1.702 x)              quick_gelu'(x) = s + 1.702 x s (1 - s),   s = sigma(1.702 x)
    gelu(x)       = x Phi(x)                      gelu'(x)       = Phi(x) + x phi(x)
    gelu_tanh(x)  = x (1 + tanh(u)) / 2,  u = sqrt(2/pi) (x + 0.044715 x^3)
                                          gelu_tanh'(x)  = (1 + t)/2 + x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2) / 2

where Phi is the standard normal CDF and phi its density (Hendrycks & Gimpel 2016, "Gaussian Error Linear Units").

NumPy has no ``erf``, so this file carries two, one per precision:
  - float64 (and any dtype but float32/float16): W. J. Cody's rational Chebyshev approximations ("Rational Chebyshev
    approximations for the error function", Math. Comp. 23, 1969; the coefficients of his CALERF routine), accurate
    to about 1e-15 relative, in three regions selected by masks;
  - float32 (float16 via float32): one rational function valid on all of R, evaluated block by block without masks
    (``_phi_float32``), ~10x faster (gelu on 2M elements, one core: 7 ms, was 70 ms), accurate to float32
    rounding: |error| <= 1.5e-7 for Phi and 2e-7 for erf, and erfc and Phi(x < 0) relative-accurate into the tail
    (tests/autograd/test_fused_speedpaths.py states and checks the bounds).
On CuPy the library's own ``cupyx.scipy.special.erfc`` kernel is used instead.
"""
from __future__ import annotations

import math

import numpy

from .. import backend
from .ops import as_tensor
from .tensor import Tensor

# -- float64: Cody's erf and erfc ------------------------------------------------------------------------------------
# Cody's three regions of y = |x|. Each rational function is evaluated by Horner's rule in numerator and denominator.
# |x| <= 0.46875:    erf(x)  = x * R1(x^2)
_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03,
      1.85777706184603153e-1)
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
# 0.46875 < y <= 4:  erfc(y) = exp(-y^2) * R2(y)
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01, 2.98635138197400131e02,
      8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03,
      2.15311535474403846e-8)
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02, 1.62138957456669019e03,
      3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03, 1.23033935480374942e03)
# y > 4:             erfc(y) = exp(-y^2) / y * (1/sqrt(pi) - z R3(z)),  z = 1 / y^2   (the asymptotic series, corrected)
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2,
      6.58749161529837803e-4, 1.63153871373020978e-2)
_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1, 6.05183413124413191e-2,
      2.33520497626869185e-3)
_SMALL, _LARGE = 0.46875, 4.0


def _erf_small(x):
    """erf(x) for |x| <= 0.46875 (Cody's first region)."""
    z = x * x
    num, den = _A[4] * z, z
    for a, b in zip(_A[:3], _B[:3]):
        num, den = (num + a) * z, (den + b) * z
    return x * (num + _A[3]) / (den + _B[3])


def _erfc_medium(y, xp):
    """erfc(y) for 0.46875 < y <= 4."""
    num, den = _C[8] * y, y
    for c, d in zip(_C[:7], _D[:7]):
        num, den = (num + c) * y, (den + d) * y
    return xp.exp(-y * y) * (num + _C[7]) / (den + _D[7])


def _erfc_large(y, xp):
    """erfc(y) for y > 4 (underflows gracefully to 0 past y ~ 27)."""
    z = 1 / (y * y)
    num, den = _P[5] * z, z
    for p, q in zip(_P[:4], _Q[:4]):
        num, den = (num + p) * z, (den + q) * z
    tail = z * (num + _P[4]) / (den + _Q[4])
    return xp.exp(-y * y) / y * (1 / math.sqrt(math.pi) - tail)


def _erfc_positive(y, xp):
    """erfc(y) for y > 0.46875 (Cody's second and third regions; NaN stays NaN)."""
    out = xp.empty_like(y)
    large = y > _LARGE
    medium = ~large
    out[medium] = _erfc_medium(y[medium], xp)
    out[large] = _erfc_large(y[large], xp)
    return out


# -- float32: one rational function on all of R, no masks --------------------------------------------------------
# For a = |s| >= 0 the lower tail of the normal distribution is written Phi(-a) = exp(-a^2/2) P(a) / Q(a): the form
# of Cody's middle region (erfc(y) = exp(-y^2) P(y)/Q(y), above; also Hart et al. 1968, "Computer Approximations"),
# here with one region for all a. P/Q approximates the Mills ratio Phi(-a) e^{a^2/2}, smooth and ~1/(a sqrt(2 pi))
# for large a, hence deg Q = deg P + 1. The fit spans [0, 14.5], and larger a is clamped to 14.5, where float32's exp
# already gives 0 (Phi(-14) ~ 1e-44 is float32's smallest subnormal); the clamp also keeps every pass free of
# overflow. Coefficients fitted for minildm (near-minimax relative error, Lawson's iteratively reweighted least
# squares; tests/autograd/test_fused_speedpaths.py reruns the fit): exact error 5.9e-9, below float32's rounding
# (6e-8), so the float32 evaluation sets the accuracy. All coefficients are positive: Horner's rule never cancels.
# Cost: ~30 elementwise passes per element, one of them an exp and one a division.
_TAIL_P = (0.500000002941, 0.438299555756, 0.183238169269, 0.04063413537, 0.004116409478)
_TAIL_Q = (1.0, 1.674484091422, 1.202516561385, 0.469478526982, 0.101861116804, 0.010318188717)
_TAIL_CLAMP = 14.5
# Elements per block: few enough that a block's buffers (~2.6 MB) stay in cache, enough that the ~30 Python-level
# calls per block cost little. Measured on 2M elements, one core: 8.6 ms (2^14), 6.7 ms (2^17), 12 ms (no blocks).
_BLOCK = 1 << 17


def _phi_block(x, k, lower, p, e, a, d, cap, positive):
    """One block of ``_phi_float32``: writes p = Phi(s) and e = exp(-s^2/2) = exp(-k x^2), s = +-sqrt(2k) x.

    a, d, positive: scratch of x's size (float32, float32, bool); cap: float32 filled with 14.5 / sqrt(2k)
    (``numpy.minimum`` with an array operand is vectorised, with a scalar it is not).
    """
    numpy.abs(x, out=a)
    numpy.minimum(a, cap, out=a)            # |x|, clamped: no overflow below, even for x = inf (NaN stays NaN)
    numpy.multiply(a, a, out=e)
    e *= -k
    numpy.exp(e, out=e)                     # e = exp(-k x^2) = exp(-s^2/2), from x itself; 0 past the clamp
    if k != 0.5:
        a *= math.sqrt(2 * k)               # a = |s|
    numpy.multiply(a, _TAIL_P[4], out=p)    # p = P(a), by Horner's rule
    for c in _TAIL_P[3:0:-1]:
        p += c
        p *= a
    p += _TAIL_P[0]
    numpy.multiply(a, _TAIL_Q[5], out=d)    # d = Q(a)
    for c in _TAIL_Q[4:0:-1]:
        d += c
        d *= a
    d += _TAIL_Q[0]
    p /= d
    p *= e                                  # p = Phi(-|s|), the lower tail, to full relative accuracy
    # Phi(s) = Phi(-|s|) + [s > 0] (1 - 2 Phi(-|s|)): adds exactly 0 where s < 0, so the tail stays relative-accurate
    (numpy.less if lower else numpy.greater)(x, 0, out=positive)
    numpy.multiply(p, -2.0, out=d)
    d += 1.0
    d *= positive
    p += d


def _phi_float32(x, k: float = 0.5, lower: bool = False):
    """(Phi(s), exp(-s^2/2)) for s = sqrt(2k) x (s = -sqrt(2k) x when ``lower``), x a float32/float16 NumPy array.

    k = 1/2 gives gelu's Phi(x) and exp(-x^2/2); k = 1 gives erf(x) = 2 Phi(sqrt2 x) - 1 and, with ``lower``,
    erfc(x) = 2 Phi(-sqrt2 x), with exp(-x^2) computed from x itself (not from a rounded sqrt2 x). The work runs
    over blocks of ``_BLOCK`` elements, so its ~30 passes read and write cache instead of main memory.
    """
    dtype = x.dtype
    x = numpy.asarray(x, dtype=numpy.float32, order="C")  # a copy only for float16 or a strided view (GEGLU's gate)
    p, e = numpy.empty_like(x), numpy.empty_like(x)
    flat_x, flat_p, flat_e = x.reshape(-1), p.reshape(-1), e.reshape(-1)
    size = min(_BLOCK, flat_x.size)
    a, d = numpy.empty(size, numpy.float32), numpy.empty(size, numpy.float32)
    cap, positive = numpy.full(size, _TAIL_CLAMP / math.sqrt(2 * k), numpy.float32), numpy.empty(size, bool)
    for i in range(0, flat_x.size, _BLOCK):
        j = min(i + _BLOCK, flat_x.size)
        n = j - i
        _phi_block(flat_x[i:j], k, lower, flat_p[i:j], flat_e[i:j], a[:n], d[:n], cap[:n], positive[:n])
    return p.astype(dtype, copy=False), e.astype(dtype, copy=False)


def _float32_path(x) -> bool:
    """True for host arrays that take the fast path: float32, and float16 (computed in float32)."""
    return not backend.is_device_array(x) and x.dtype in (numpy.float32, numpy.float16)


# -- erf and erfc, public -------------------------------------------------------------------------------------------
def erfc(x):
    """Complementary error function 1 - erf(x) of a backend array: ~1e-15 relative in float64; in float32 a few
    units of float32 rounding, times the tail's conditioning 1 + 2x^2 (1e-6 relative at x = 4, 4e-6 at x = 9).

    Computed directly, not as 1 - erf, so it keeps full relative accuracy in the tail where it is tiny.
    """
    if backend.is_device_array(x):
        from cupyx.scipy.special import erfc as cupy_erfc
        return cupy_erfc(x)
    xp = backend.get_array_module(x)
    if _float32_path(x):
        out, _ = _phi_float32(x, k=1.0, lower=True)
        out *= 2  # erfc(x) = 2 Phi(-sqrt2 x)
        return out
    y = xp.abs(x)
    out = xp.empty_like(y)
    small = y <= _SMALL
    out[small] = 1 - _erf_small(y[small])
    out[~small] = _erfc_positive(y[~small], xp)
    return xp.where(x < 0, 2 - out, out)  # erfc(-y) = 2 - erfc(y)


def erf(x):
    """Error function of a backend array: ~1e-15 relative in float64; in float32, |error| <= 2e-7."""
    if backend.is_device_array(x):
        from cupyx.scipy.special import erf as cupy_erf
        return cupy_erf(x)
    xp = backend.get_array_module(x)
    if _float32_path(x):  # not on a hot path (gelu uses erfc), so numpy.where may do the choosing
        x32 = x.astype(numpy.float32, copy=False)
        y = numpy.abs(x32)
        tail, _ = _phi_float32(y, k=1.0, lower=True)     # Phi(-sqrt2 |x|) = erfc(|x|) / 2
        out = numpy.copysign(1 - 2 * tail, x32)            # erf is odd; 1 - erfc has absolute accuracy ...
        near_zero = _erf_small(numpy.clip(x32, -_SMALL, _SMALL))
        return numpy.where(y <= _SMALL, near_zero, out).astype(x.dtype, copy=False)  # ... near 0 Cody's is relative
    out = xp.empty_like(x)
    small = xp.abs(x) <= _SMALL
    out[small] = _erf_small(x[small])
    rest = x[~small]
    out[~small] = xp.copysign(1 - _erfc_positive(xp.abs(rest), xp), rest)  # erf is odd
    return out


def _normal_cdf(x):
    """(Phi(x), exp(-x^2/2)) of a backend array: the fast float32 path, else through ``erfc``."""
    if _float32_path(x):
        return _phi_float32(x)
    xp = backend.get_array_module(x)
    # Phi(x) = erfc(-x / sqrt 2) / 2: stays accurate for very negative x, where 1 + erf(...) would cancel.
    return 0.5 * erfc(x * -math.sqrt(0.5)), xp.exp(-0.5 * x * x)


def _sigmoid(x, xp, scale: float = 1.0):
    """sigmoid(scale x) = (1 + tanh(scale x / 2)) / 2: never overflows; one new array, the rest in place.

    (1 / (1 + exp(-x)) would keep relative accuracy below x ~ -17, where this form has absolute accuracy only, but
    measured 20% slower: exp and a division instead of tanh and a multiply.)
    """
    s = xp.asarray(x * (0.5 * scale))  # asarray: a 0-d input gives a NumPy scalar, which out= would refuse
    xp.tanh(s, out=s)
    s *= 0.5
    s += 0.5
    return s


# -- activations ----------------------------------------------------------------------------------------------------
def silu(x) -> Tensor:
    """SiLU / swish: x * sigmoid(x) (Elfwing et al. 2017). x: any shape."""
    x = as_tensor(x)
    s = _sigmoid(x.data, backend.get_array_module(x.data))

    def backward(g):
        d = 1 - s  # silu'(x) = s (1 + x (1 - s)), built in one array
        d *= x.data
        d += 1
        d *= s
        d *= g
        return (d,)
    return Tensor.from_op(x.data * s, (x,), backward, "silu")


def quick_gelu(x) -> Tensor:
    """CLIP's GELU approximation x * sigmoid(1.702 x) (Hendrycks & Gimpel 2016, sec. 2). x: any shape."""
    x = as_tensor(x)
    s = _sigmoid(x.data, backend.get_array_module(x.data), 1.702)

    def backward(g):
        d = 1 - s  # quick_gelu'(x) = s (1 + 1.702 x (1 - s)), built in one array
        d *= x.data
        d *= 1.702
        d += 1
        d *= s
        d *= g
        return (d,)
    return Tensor.from_op(x.data * s, (x,), backward, "quick_gelu")


def gelu(x, approximate: str = "none") -> Tensor:
    """GELU: x * Phi(x) with the exact normal CDF (``approximate="none"``) or its tanh approximation ("tanh").

    x: any shape. Matches ``torch.nn.functional.gelu``.
    """
    x = as_tensor(x)
    xp = backend.get_array_module(x.data)
    if approximate == "none":
        cdf, e = _normal_cdf(x.data)  # Phi(x) and exp(-x^2/2), which the backward reuses as phi(x) sqrt(2 pi)

        def backward(g):
            d = x.data * e
            d *= 1 / math.sqrt(2 * math.pi)  # x phi(x)
            d += cdf
            d *= g
            return (d,)
        return Tensor.from_op(x.data * cdf, (x,), backward, "gelu")
    if approximate == "tanh":
        k = math.sqrt(2 / math.pi)
        t = xp.tanh(k * (x.data + 0.044715 * x.data ** 3))

        def backward(g):
            du = k * (1 + 3 * 0.044715 * x.data * x.data)
            return (g * (0.5 * (1 + t) + 0.5 * x.data * (1 - t * t) * du),)
        return Tensor.from_op(0.5 * x.data * (1 + t), (x,), backward, "gelu_tanh")
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


# -- dropout --------------------------------------------------------------------------------------------------------
def dropout(x, p: float = 0.5, training: bool = True, generator=None) -> Tensor:
    """Inverted dropout (Srivastava et al. 2014): zero each element with probability p, scale survivors by 1/(1-p).

    The scaling keeps E[output] = x, so at evaluation time (``training=False``) dropout is the identity.

    Args:
        x: any shape.
        p: drop probability in [0, 1].
        training: when False (or p == 0) the input is returned unchanged.
        generator: ``backend.rng(seed)`` or a seed; required when dropping, because randomness is never hidden.
    """
    x = as_tensor(x)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if generator is None:
        raise ValueError("dropout: training with p > 0 needs an explicit generator, e.g. generator=backend.rng(0)")
    xp = backend.get_array_module(x.data)
    if p == 1.0:
        scale = xp.zeros_like(x.data)
    else:
        keep = backend.rng(generator).random(x.shape, dtype=x.dtype) >= p  # P(keep) = 1 - p
        scale = keep * x.dtype.type(1.0 / (1.0 - p))  # the mask and the 1/(1-p) factor in one array
    return Tensor.from_op(x.data * scale, (x,), lambda g: (g * scale,), "dropout")
