"""Kernel Inception Distance, on minildm's features: ``KID_minildm`` (Bińkowski et al. 2018, "Demystifying MMD
GANs", sec. 4).

KID is the squared maximum mean discrepancy (MMD², Gretton et al. 2012) between the two feature distributions, with
the cubic polynomial kernel on d-dimensional features

    k(x, y) = (xᵀy / d + 1)³

and the *unbiased* estimator: for samples x₁..x_m and y₁..y_n,

    MMD²_u = 1/(m(m−1)) Σ_{i≠j} k(xᵢ, xⱼ) + 1/(n(n−1)) Σ_{i≠j} k(yᵢ, yⱼ) − 2/(mn) Σ_{i,j} k(xᵢ, yⱼ)

Leaving out the diagonal (i = j) is what removes the bias: its expectation is exactly MMD², at any sample size, so
two sets from one distribution score 0 on average (single estimates scatter around 0 and can be negative) — unlike
FD, whose floor depends on N. Like Bińkowski et al. we average the estimate over random subsets of both sets
(``subsets`` draws of ``subset_size`` rows each, without replacement), which also gives a standard deviation.

Host code: NumPy, float64.
"""
from __future__ import annotations

import numpy as np

from .. import backend


def polynomial_kernel(x, y) -> np.ndarray:
    """k(x, y) = (xᵀy / d + 1)³ for every pair of rows: x (m, d), y (n, d) -> (m, n)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x, y) -> float:
    """The unbiased MMD² estimate with the cubic polynomial kernel; x (m, d), y (n, d), m, n ≥ 2."""
    m, n = x.shape[0], y.shape[0]
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))   # Σ_{i≠j}: the whole sum minus the diagonal
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.mean())


def kernel_distance(features1, features2, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> dict:
    """KID_minildm: the mean and standard deviation of ``mmd2_unbiased`` over random subsets.

    Args:
        features1, features2: (N₁, d) and (N₂, d) feature vectors.
        subsets: how many subset pairs to average over (Bińkowski et al.: 100).
        subset_size: rows per subset, at most min(N₁, N₂) (Bińkowski et al.: 1000); when it equals both set
            sizes every subset would be the whole set, so one estimate is made (standard deviation 0).
        seed: of the host generator that draws the subsets.
    Returns:
        {"mean": float, "std": float, "subset_size": int, "subsets": int}.
    """
    x = backend.to_host(features1).astype(np.float64)
    y = backend.to_host(features2).astype(np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"kernel_distance: need features (N1, d) and (N2, d), got {x.shape} and {y.shape}")
    size = min(int(subset_size), x.shape[0], y.shape[0])
    if size < 2:
        raise ValueError(f"kernel_distance: need at least 2 samples per set, got {x.shape[0]} and {y.shape[0]}")
    if size == x.shape[0] == y.shape[0]:
        subsets = 1
    rng = np.random.default_rng(seed)
    estimates = [mmd2_unbiased(x[rng.choice(x.shape[0], size, replace=False)],
                               y[rng.choice(y.shape[0], size, replace=False)]) for _ in range(int(subsets))]
    return {"mean": float(np.mean(estimates)), "std": float(np.std(estimates)), "subset_size": size,
            "subsets": int(subsets)}
