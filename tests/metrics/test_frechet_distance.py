"""FD_minildm: the Fréchet distance agrees with closed forms (always) and with scipy's sqrtm (where SciPy is)."""
import numpy as np
import pytest

from minildm.metrics import check_sample_size, feature_statistics, frechet_distance, frechet_distance_features
from minildm.metrics import sqrtm_psd, trace_sqrt_product


def random_rotation(d, rng):
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))  # a proper random orthogonal matrix


def test_diagonal_covariances_match_closed_form():
    # N(μ₁, diag(a)) vs N(μ₂, diag(b)): FD = ‖μ₁ − μ₂‖² + Σᵢ (√aᵢ − √bᵢ)², with a zero variance (singular Σ₁) too
    rng = np.random.default_rng(0)
    d = 12
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    a, b = rng.uniform(0.1, 4.0, d), rng.uniform(0.1, 4.0, d)
    a[3] = 0.0
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10, abs=1e-10)


def test_commuting_covariances_match_closed_form():
    # Σ₁ = Q diag(a) Qᵀ and Σ₂ = Q diag(b) Qᵀ commute, so (Σ₁Σ₂)^½ = Q diag(√(ab)) Qᵀ and FD has the same closed form
    rng = np.random.default_rng(1)
    d = 16
    q = random_rotation(d, rng)
    a, b = rng.uniform(0.0, 3.0, d), rng.uniform(0.0, 3.0, d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    fd = frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert fd == pytest.approx(expected, rel=1e-9)


def test_identical_and_scaled_gaussians():
    rng = np.random.default_rng(2)
    d = 10
    m = rng.standard_normal((d, d))
    sigma = m @ m.T
    assert frechet_distance(np.zeros(d), sigma, np.zeros(d), sigma) == pytest.approx(0.0, abs=1e-9)
    # Σ₂ = c² Σ₁ commutes with Σ₁: Tr((Σ₁Σ₂)^½) = c Tr Σ₁, so FD = (1 − c)² Tr Σ₁
    assert frechet_distance(np.zeros(d), sigma, np.zeros(d), 9 * sigma) == pytest.approx(4 * np.trace(sigma), rel=1e-9)


def test_general_covariances_match_scipy_sqrtm():
    scipy_linalg = pytest.importorskip("scipy.linalg")  # the closed-form tests above always run
    rng = np.random.default_rng(3)
    for d in (2, 8, 64):
        m1, m2 = rng.standard_normal((d, 2 * d)), rng.standard_normal((d, 2 * d))
        s1, s2 = m1 @ m1.T / d, m2 @ m2.T / d
        mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
        root = scipy_linalg.sqrtm(s1 @ s2)
        expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(root).real
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
        assert trace_sqrt_product(s1, s2) == pytest.approx(np.trace(root).real, rel=1e-9)
        assert trace_sqrt_product(s2, s1) == pytest.approx(trace_sqrt_product(s1, s2), rel=1e-9)  # symmetric


def test_sqrtm_psd_squares_back():
    rng = np.random.default_rng(4)
    m = rng.standard_normal((6, 3))
    sigma = m @ m.T  # rank 3: eigenvalues that rounding may push below 0 are clipped
    root = sqrtm_psd(sigma)
    np.testing.assert_allclose(root @ root, sigma, atol=1e-10)
    np.testing.assert_allclose(root, root.T, atol=1e-12)


def test_features_estimate_the_true_distance():
    # from samples: N(0, I) vs N(1, 4 I) in d = 4 has FD = 4·1 + 4·(2 − 1)² = 8; the estimate's bias is O(d / N)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((20000, 4))
    y = 1 + 2 * rng.standard_normal((20000, 4))
    assert frechet_distance_features(x, y) == pytest.approx(8.0, rel=0.03)
    mu, sigma = feature_statistics(x)
    assert mu.shape == (4,) and sigma.shape == (4, 4)
    np.testing.assert_allclose(sigma, np.cov(x, rowvar=False), rtol=1e-12)  # unbiased (N − 1) covariance


def test_refuses_fewer_samples_than_dimensions():
    rng = np.random.default_rng(6)
    for n in (10, 64):
        with pytest.raises(ValueError, match=r"64-dimensional features; the covariance needs more samples than"):
            frechet_distance_features(rng.standard_normal((n, 64)), rng.standard_normal((500, 64)))
    frechet_distance_features(rng.standard_normal((65, 64)), rng.standard_normal((65, 64)))  # N = d + 1 is allowed
    with pytest.raises(ValueError, match="N > d"):
        check_sample_size(3, 3)
    with pytest.raises(ValueError, match="width 8 and 9"):
        frechet_distance_features(np.zeros((20, 8)), np.zeros((20, 9)))
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        frechet_distance_features(np.zeros(20), np.zeros((20, 1)))
