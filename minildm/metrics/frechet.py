"""The Fréchet distance between two sets of features (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update
Rule Converge to a Local Nash Equilibrium", eq. 6) — FID's formula, on our own features: ``FD_minildm``.

Fit a Gaussian N(μ, Σ) to each set of feature vectors; the Fréchet (2-Wasserstein) distance between the two
Gaussians is

    FD = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^½)

The matrix Σ₁Σ₂ is not symmetric, so its square root is awkward (``scipy.linalg.sqrtm`` goes through a complex Schur
decomposition and may return small imaginary parts). Only the *trace* of the root is needed, and

    Tr((Σ₁ Σ₂)^½) = Tr((Σ₁^½ Σ₂ Σ₁^½)^½)

because Σ₁Σ₂ = Σ₁^½ (Σ₁^½ Σ₂ Σ₁^½) Σ₁^-½ is similar to the symmetric positive semi-definite M = Σ₁^½ Σ₂ Σ₁^½: they
have the same eigenvalues λᵢ ≥ 0, and the trace of the root is Σᵢ √λᵢ. Two symmetric eigendecompositions
(``numpy.linalg.eigh``: real, stable, sorted) give Σ₁^½ and then the λᵢ; eigenvalues that rounding pushes slightly
below zero are clipped to 0. (The identity also holds for singular Σ₁, by continuity.)

**Names.** Features come from minildm's own evaluation network (``eval_networks.py``), not from Inception-v3, so the
numbers are *not* FID and are comparable only with other FD_minildm numbers (same network, same N). Every output
says ``FD_minildm``.

**Bias.** FD estimated from N samples is biased upwards: the mean term alone has expectation
‖μ₁ − μ₂‖² + Tr Σ₁ / N₁ + Tr Σ₂ / N₂, and the square-root term adds more (Bińkowski et al. 2018, sec. 4; Chong &
Forsyth 2020, "Effectively Unbiased FID"), so two sets of *real* images from one distribution do not score 0.
Compare FD only at equal N, and look at the real-vs-real floor at that N (``evaluate`` reports it) — or at KID,
which is unbiased (``kid.py``).

This is host code: plain NumPy in float64, whatever backend computed the features (metrics are a few small matrix
operations on N x d arrays; float32 would lose digits in Tr Σ₁ + Tr Σ₂ − 2 Tr(·), a difference of near-equal sums).
"""
from __future__ import annotations

import numpy as np

from .. import backend


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """The mean (d,) and the unbiased covariance (d, d) of N feature vectors (N, d), in float64.

    Raises:
        ValueError: features are not (N, d), or N ≤ d (see ``check_sample_size``).
    """
    x = _features(features, "feature_statistics")
    check_sample_size(x.shape[0], x.shape[1], "feature_statistics")
    mu = x.mean(axis=0)
    centred = x - mu
    return mu, centred.T @ centred / (x.shape[0] - 1)   # Σ = (1 / (N − 1)) Σₙ (xₙ − μ)(xₙ − μ)ᵀ


def check_sample_size(n: int, d: int, where: str = "frechet_distance") -> None:
    """Refuse N ≤ d: a covariance from N samples has rank at most N − 1 < d, so it says nothing about some
    directions, and FD from it is dominated by that (its bias grows like d / N anyway)."""
    if n <= d:
        raise ValueError(f"{where}: {n} samples of {d}-dimensional features; the covariance needs more samples than "
                         f"dimensions (N > d, and N ≥ 10 d for a stable number). Use at least {d + 1} images, ideally "
                         f"{10 * d} or more")


def sqrtm_psd(matrix) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (d, d): V diag(√max(λ, 0)) Vᵀ."""
    eigenvalues, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ vectors.T


def trace_sqrt_product(sigma1, sigma2) -> float:
    """Tr((Σ₁ Σ₂)^½) = Tr((Σ₁^½ Σ₂ Σ₁^½)^½) = Σᵢ √λᵢ for the eigenvalues λᵢ of the symmetric Σ₁^½ Σ₂ Σ₁^½."""
    root1 = sqrtm_psd(sigma1)
    m = root1 @ sigma2 @ root1
    m = (m + m.T) / 2  # symmetric in exact arithmetic; make it so in floating point before eigvalsh
    return float(np.sqrt(np.clip(np.linalg.eigvalsh(m), 0.0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """FD = ‖μ₁ − μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2 Tr((Σ₁ Σ₂)^½) between N(μ₁, Σ₁) and N(μ₂, Σ₂); mu (d,), sigma (d, d).

    Never negative in exact arithmetic; a tiny negative value from rounding (two identical sets) is returned as 0.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"frechet_distance: expected mu (d,) and sigma (d, d) for both sets, got mu1 {mu1.shape}, "
                         f"sigma1 {sigma1.shape}, mu2 {mu2.shape}, sigma2 {sigma2.shape}")
    mean_term = float(np.sum((mu1 - mu2) ** 2))
    covariance_term = float(np.trace(sigma1) + np.trace(sigma2)) - 2.0 * trace_sqrt_product(sigma1, sigma2)
    return max(mean_term + covariance_term, 0.0)


def frechet_distance_features(features1, features2) -> float:
    """FD_minildm between two sets of feature vectors, (N₁, d) and (N₂, d), each with N > d.

    Raises:
        ValueError: a set is not (N, d), the widths differ, or a set has N ≤ d.
    """
    x, y = _features(features1, "frechet_distance"), _features(features2, "frechet_distance")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"frechet_distance: features of width {x.shape[1]} and {y.shape[1]} cannot be compared")
    for n in (x.shape[0], y.shape[0]):
        check_sample_size(n, x.shape[1])
    return frechet_distance(*feature_statistics(x), *feature_statistics(y))


def _features(features, where: str) -> np.ndarray:
    x = backend.to_host(features).astype(np.float64)  # host float64, even for CuPy features
    if x.ndim != 2:
        raise ValueError(f"{where}: features must be (N, d), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{where}: features contain NaN or inf")
    return x
