"""KID_minildm: the unbiased MMD² estimator, checked against a plain double loop and on known distributions."""
import numpy as np
import pytest

from minildm.metrics import kernel_distance, mmd2_unbiased, polynomial_kernel


def naive_mmd2(x, y):
    d = x.shape[1]
    k = lambda a, b: (float(np.dot(a, b)) / d + 1.0) ** 3  # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_unbiased_estimator_equals_double_loop():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5, 3)), 0.5 + rng.standard_normal((7, 3))
    assert mmd2_unbiased(x, y) == pytest.approx(naive_mmd2(x, y), rel=1e-12)
    assert polynomial_kernel(x, y).shape == (5, 7)


def test_same_distribution_near_zero_shifted_positive():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((600, 8)), rng.standard_normal((600, 8))
    same = kernel_distance(x, y, subsets=20, subset_size=300)
    shifted = kernel_distance(x, 0.5 + y, subsets=20, subset_size=300)
    assert abs(same["mean"]) < 3 * same["std"] + 0.01     # unbiased: scatters around 0 (and may be negative)
    assert shifted["mean"] > 10 * max(abs(same["mean"]), same["std"])
    assert shifted["mean"] > 0.1


def test_subsets_follow_the_set_sizes():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((50, 4)), rng.standard_normal((80, 4))
    result = kernel_distance(x, y, subsets=5, subset_size=1000)
    assert result["subset_size"] == 50 and result["subsets"] == 5
    whole = kernel_distance(x, y[:50], subsets=5)  # both sets whole: one estimate, the full-set MMD²
    assert whole["subsets"] == 1 and whole["std"] == 0.0
    assert whole["mean"] == pytest.approx(mmd2_unbiased(x, y[:50]), rel=1e-12)
    with pytest.raises(ValueError, match="need features"):
        kernel_distance(x, rng.standard_normal((10, 5)))
