"""Fused elementwise ops: SiLU, GELU (exact and tanh), QuickGELU, and dropout.

Each activation is one graph node whose backward is the closed-form derivative, instead of the five or six nodes
(and temporaries) the composed formula would record. The derivatives, with sigma(x) = 1 / (1 + e^-x):

    silu(x)       = x sigma(x)                    silu'(x)       = sigma(x) (1 + x (1 - sigma(x)))
    quick_gelu(x) = x sigma(1.702 x)              quick_gelu'(x) = s + 1.702 x s (1 - s),   s = sigma(1.702 x)
    gelu(x)       = x Phi(x)                      gelu'(x)       = Phi(x) + x phi(x)
    gelu_tanh(x)  = x (1 + tanh(u)) / 2,  u = sqrt(2/pi) (x + 0.044715 x^3)
                                          gelu_tanh'(x)  = (1 + t)/2 + x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2) / 2

where Phi is the standard normal CDF and phi its density (Hendrycks & Gimpel 2016, "Gaussian Error Linear Units").

NumPy has no ``erf``, so this file carries one: W. J. Cody's rational Chebyshev approximations ("Rational Chebyshev
approximations for the error function", Math. Comp. 23, 1969; the coefficients of his CALERF routine), accurate to
about 1e-15 relative in float64. On CuPy the library's own ``cupyx.scipy.special.erfc`` kernel is used instead.
"""
from __future__ import annotations

import math

from .. import backend
from .ops import as_tensor
from .tensor import Tensor

# -- erf and erfc ---------------------------------------------------------------------------------------------------
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


def erfc(x):
    """Complementary error function 1 - erf(x) of a backend array, to ~1e-15 relative (float64).

    Computed directly, not as 1 - erf, so it keeps full relative accuracy in the tail where it is tiny.
    """
    if backend.is_device_array(x):
        from cupyx.scipy.special import erfc as cupy_erfc
        return cupy_erfc(x)
    xp = backend.get_array_module(x)
    y = xp.abs(x)
    out = xp.empty_like(y)
    small = y <= _SMALL
    out[small] = 1 - _erf_small(y[small])
    out[~small] = _erfc_positive(y[~small], xp)
    return xp.where(x < 0, 2 - out, out)  # erfc(-y) = 2 - erfc(y)


def erf(x):
    """Error function of a backend array, to ~1e-15 relative (float64); see ``erfc``."""
    if backend.is_device_array(x):
        from cupyx.scipy.special import erf as cupy_erf
        return cupy_erf(x)
    xp = backend.get_array_module(x)
    out = xp.empty_like(x)
    small = xp.abs(x) <= _SMALL
    out[small] = _erf_small(x[small])
    rest = x[~small]
    out[~small] = xp.copysign(1 - _erfc_positive(xp.abs(rest), xp), rest)  # erf is odd
    return out


def _sigmoid(x, xp):
    """1 / (1 + e^-x) via tanh, which never overflows."""
    return 0.5 + 0.5 * xp.tanh(0.5 * x)


# -- activations ----------------------------------------------------------------------------------------------------
def silu(x) -> Tensor:
    """SiLU / swish: x * sigmoid(x) (Elfwing et al. 2017). x: any shape."""
    x = as_tensor(x)
    xp = backend.get_array_module(x.data)
    s = _sigmoid(x.data, xp)
    return Tensor.from_op(x.data * s, (x,), lambda g: (g * (s * (1 + x.data * (1 - s))),), "silu")


def quick_gelu(x) -> Tensor:
    """CLIP's GELU approximation x * sigmoid(1.702 x) (Hendrycks & Gimpel 2016, sec. 2). x: any shape."""
    x = as_tensor(x)
    xp = backend.get_array_module(x.data)
    s = _sigmoid(1.702 * x.data, xp)
    return Tensor.from_op(x.data * s, (x,), lambda g: (g * (s + 1.702 * x.data * s * (1 - s)),), "quick_gelu")


def gelu(x, approximate: str = "none") -> Tensor:
    """GELU: x * Phi(x) with the exact normal CDF (``approximate="none"``) or its tanh approximation ("tanh").

    x: any shape. Matches ``torch.nn.functional.gelu``.
    """
    x = as_tensor(x)
    xp = backend.get_array_module(x.data)
    if approximate == "none":
        # Phi(x) = erfc(-x / sqrt 2) / 2: stays accurate for very negative x, where 1 + erf(...) would cancel.
        cdf = 0.5 * erfc(x.data * -math.sqrt(0.5))
        pdf = xp.exp(-0.5 * x.data * x.data) * (1 / math.sqrt(2 * math.pi))
        return Tensor.from_op(x.data * cdf, (x,), lambda g: (g * (cdf + x.data * pdf),), "gelu")
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
