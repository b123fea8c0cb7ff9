"""The forward process q(x_t | x_0), the v target, x̂_0 / ε̂ from model outputs, and the posterior q(x_t' | x_t, x_0),
checked against closed forms computed independently (no reference library needed)."""
import numpy as np
import pytest
from helpers import assert_close, host, to_backend

from minildm import backend
from minildm.schedulers import (DDPMScheduler, add_noise, get_velocity, posterior_mean, posterior_mean_variance,
                                posterior_variance, predict_epsilon, predict_original_sample, q_sample)

PREDICTION_TYPES = ["epsilon", "sample", "v_prediction"]


def test_add_noise_has_the_predicted_mean_and_variance():
    """x_t ~ N(√ᾱ_t x_0, (1-ᾱ_t) I), one timestep per sample. With N = 1e5 draws per timestep the sample mean
    must lie within 5 standard errors, 5·√((1-ᾱ)/N), of √ᾱ x_0, and the sample variance within 5·(1-ᾱ)·√(2/N)
    of 1-ᾱ (a false alarm has probability < 1e-6)."""
    scheduler = DDPMScheduler()
    n, timesteps = 100_000, np.array([10, 500, 999])
    x0 = np.array([0.7, -1.3])                                 # one fixed clean sample, (2,)
    t = np.repeat(timesteps, n)                                # (3N,): N samples at each timestep
    noise = backend.rng(0).standard_normal((3 * n, 2), dtype=np.float64)
    x_t = host(scheduler.add_noise(to_backend(np.broadcast_to(x0, (3 * n, 2))), noise, to_backend(t)))
    alpha_bar = host(scheduler.alphas_cumprod).astype(np.float64)
    for k, step in enumerate(timesteps):
        chunk = x_t[k * n:(k + 1) * n]
        mean, var = np.sqrt(alpha_bar[step]) * x0, 1 - alpha_bar[step]
        assert np.all(np.abs(chunk.mean(0) - mean) < 5 * np.sqrt(var / n)), step
        assert np.all(np.abs(chunk.var(0) - var) < 5 * var * np.sqrt(2 / n)), step


def test_add_noise_per_sample_timesteps_and_dtype():
    scheduler = DDPMScheduler()
    x0 = to_backend(np.random.default_rng(0).standard_normal((3, 2, 4, 4)), np.float32)
    noise = to_backend(np.random.default_rng(1).standard_normal((3, 2, 4, 4)), np.float32)
    t = to_backend(np.array([0, 250, 999]))
    x_t = scheduler.add_noise(x0, noise, t)
    assert host(x_t).dtype == np.float32 and x_t.shape == x0.shape
    alpha_bar = host(scheduler.alphas_cumprod)[[0, 250, 999]].reshape(3, 1, 1, 1)
    assert_close(x_t, np.sqrt(alpha_bar) * host(x0) + np.sqrt(1 - alpha_bar) * host(noise), rtol=1e-6, what="x_t")
    assert_close(add_noise(x0, noise, t, scheduler.alphas_cumprod), host(x_t), rtol=0, what="add_noise alias")
    # a single int timestep applies to the whole batch
    assert_close(q_sample(x0, noise, 250, scheduler.alphas_cumprod),
                 host(scheduler.add_noise(x0, noise, to_backend(np.full(3, 250)))), rtol=0, what="int timestep")


def test_velocity_identities():
    """v = √ᾱ ε - √(1-ᾱ) x_0 is the rotation of (x_0, ε) by the angle φ, cos φ = √ᾱ; so ‖(x_t, v)‖ = ‖(x_0, ε)‖
    and x_0 = √ᾱ x_t - √(1-ᾱ) v  (Salimans & Ho 2022)."""
    scheduler = DDPMScheduler()
    rng = np.random.default_rng(0)
    x0, eps = rng.standard_normal((4, 3, 2, 2)), rng.standard_normal((4, 3, 2, 2))
    t = np.array([1, 100, 600, 999])
    x_t = host(scheduler.add_noise(to_backend(x0), to_backend(eps), to_backend(t)))
    v = host(scheduler.get_velocity(to_backend(x0), to_backend(eps), to_backend(t)))
    a = np.sqrt(host(scheduler.alphas_cumprod).astype(np.float64)[t]).reshape(-1, 1, 1, 1)
    s = np.sqrt(1 - a**2)
    np.testing.assert_allclose(v, a * eps - s * x0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x_t**2 + v**2, x0**2 + eps**2, rtol=1e-6)
    np.testing.assert_allclose(a * x_t - s * v, x0, atol=1e-6)
    assert_close(get_velocity(to_backend(x0), to_backend(eps), to_backend(t), scheduler.alphas_cumprod), v, rtol=0)


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
def test_predictions_invert_the_forward_process(prediction_type):
    """Given the true target (ε, x_0 or v) at x_t, predict_original_sample / predict_epsilon return x_0 and ε."""
    rng = np.random.default_rng(1)
    x0, eps = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 3, 4, 4))
    alpha_bar = to_backend(np.float64(0.37))
    a, s = np.sqrt(0.37), np.sqrt(0.63)
    x_t = a * x0 + s * eps
    target = {"epsilon": eps, "sample": x0, "v_prediction": a * eps - s * x0}[prediction_type]
    args = (to_backend(target), to_backend(x_t), alpha_bar, prediction_type)
    assert_close(predict_original_sample(*args), x0, rtol=1e-12, what="x0")
    assert_close(predict_epsilon(*args), eps, rtol=1e-12, what="eps")


def test_unknown_prediction_type():
    with pytest.raises(ValueError, match="valid: epsilon, sample, v_prediction"):
        predict_original_sample(to_backend([1.0]), to_backend([1.0]), to_backend(0.5), "noise")
    with pytest.raises(ValueError, match="prediction_type='x0'.*'epsilon', 'sample', 'v_prediction'"):
        DDPMScheduler(prediction_type="x0")


@pytest.mark.parametrize("t, t_prev", [(1, 0), (500, 499), (999, 998), (700, 350), (40, 0)])
def test_posterior_is_the_gaussian_product(t, t_prev):
    """q(x_t' | x_t, x_0) ∝ q(x_t | x_t') q(x_t' | x_0), a product of two Gaussians in x_t' (Bayes):
        q(x_t | x_t') = N(√a x_t', (1-a)),  a = ᾱ_t/ᾱ_t';     q(x_t' | x_0) = N(√ᾱ_t' x_0, 1-ᾱ_t')
    precision 1/β̃ = a/(1-a) + 1/(1-ᾱ_t'), mean β̃ · (√a x_t/(1-a) + √ᾱ_t' x_0/(1-ᾱ_t'))."""
    alpha_bar = host(DDPMScheduler().alphas_cumprod).astype(np.float64)
    ab_t, ab_prev = alpha_bar[t], alpha_bar[t_prev]
    a = ab_t / ab_prev
    precision = a / (1 - a) + 1 / (1 - ab_prev)
    rng = np.random.default_rng(t)
    x0, x_t = rng.standard_normal(5), rng.standard_normal(5)
    mean = (np.sqrt(a) * x_t / (1 - a) + np.sqrt(ab_prev) * x0 / (1 - ab_prev)) / precision

    got_mean, got_var = posterior_mean_variance(to_backend(x0), to_backend(x_t), to_backend(ab_t), to_backend(ab_prev))
    assert_close(got_mean, mean, rtol=1e-10, what="posterior mean")
    assert_close(got_var, 1 / precision, rtol=1e-10, what="posterior variance")
    assert_close(posterior_mean(to_backend(x0), to_backend(x_t), to_backend(ab_t), to_backend(ab_prev)), mean,
                 rtol=1e-10)
    assert_close(posterior_variance(to_backend(ab_t), to_backend(ab_prev)), 1 / precision, rtol=1e-10)


def test_posterior_of_the_last_step_is_x0():
    """From t = 0 to "before 0" (ᾱ = 1) the posterior is a point mass at x_0: mean x_0, variance 0."""
    x0, x_t = to_backend(np.array([0.3, -0.2])), to_backend(np.array([1.0, 2.0]))
    mean, var = posterior_mean_variance(x0, x_t, to_backend(np.float64(0.9999)), to_backend(np.float64(1.0)))
    assert_close(mean, host(x0), rtol=1e-12)
    assert float(host(var)) == 0.0
