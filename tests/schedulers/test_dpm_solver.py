"""DPMSolverMultistepScheduler (DPM-Solver++ 2M): loops against diffusers, its identities, and its accuracy."""
import re

import numpy as np
import pytest
from helpers import assert_close, host, to_backend
from scheduler_toy import case_id, load_loop_cases, run_loop

from minildm.schedulers import DDIMScheduler, DPMSolverMultistepScheduler

FIXTURE, CASES = load_loop_cases("dpm")
RTOL = {"float64": 1e-6, "float32": 1e-5}


@pytest.mark.parametrize("i", range(len(CASES)), ids=[case_id(c) for c in CASES])
def test_sampling_loop_matches_diffusers(i):
    """float64: diffusers rounds the sample to float32 inside each step, we do not; the difference stays < 5e-7."""
    case = CASES[i]
    output = run_loop(case, FIXTURE)
    assert host(output.prev_sample).dtype == np.dtype(case["dtype"])
    assert_close(output.prev_sample, FIXTURE[f"{i}_prev_sample"], RTOL[case["dtype"]], what="prev_sample")


@pytest.mark.parametrize("i", [i for i, c in enumerate(CASES) if c["dtype"] == "float64"][::3])
def test_sampling_loop_with_own_betas(i):
    output = run_loop(CASES[i], FIXTURE, own_betas=True)
    assert_close(output.prev_sample, FIXTURE[f"{i}_prev_sample"], 1e-5, what="prev_sample")


def _gaussian_data_model(mean, std, alpha_bar):
    """The exact ε-prediction for data x_0 ~ N(mean, std²): E[ε | x_t] = σ (x_t - α·mean) / (α² std² + σ²)."""
    def model(x, t):
        a, s = np.sqrt(alpha_bar[t]), np.sqrt(1 - alpha_bar[t])
        return s * (x - a * mean) / (a**2 * std**2 + s**2)
    return model


def _sample(scheduler, model, x):
    x = to_backend(x)
    for t in scheduler.timesteps.tolist():
        x = scheduler.step(to_backend(model(host(x), t)), t, x).prev_sample
    return host(x)


def test_second_order_convergence_on_gaussian_data():
    """For Gaussian data the probability-flow ODE is solved exactly by x_t = α_t·mean + √(α_t² std² + σ_t²)·z
    with z constant, so the true endpoint from x at t = 999 is known. DPM-Solver++(2M) converges at second order
    (doubling the steps cuts its error ≥ 4×, DDIM's about 2×), and 50 of its steps beat 200 DDIM steps."""
    mean, std = 0.5, 0.3
    x_T = np.random.default_rng(0).standard_normal((4, 3, 8, 8))
    alpha_bar = host(DDIMScheduler().alphas_cumprod).astype(np.float64)
    model = _gaussian_data_model(mean, std, alpha_bar)
    a, s = np.sqrt(alpha_bar[999]), np.sqrt(1 - alpha_bar[999])
    exact = mean + std * (x_T - a * mean) / np.sqrt(a**2 * std**2 + s**2)

    def error(scheduler, n):
        scheduler.set_timesteps(n)
        return np.abs(_sample(scheduler, model, x_T) - exact).max()

    dpm = {n: error(DPMSolverMultistepScheduler(), n) for n in (50, 100)}
    ddim = {n: error(DDIMScheduler(timestep_spacing="trailing", clip_sample=False), n) for n in (50, 100, 200)}
    assert dpm[50] / dpm[100] >= 4 and 1.5 <= ddim[50] / ddim[100] <= 2.5, (dpm, ddim)
    assert dpm[50] < ddim[200], (dpm, ddim)


def test_first_order_is_ddim_with_eta_zero():
    """DPM-Solver++1: x_t' = (σ_t'/σ_t) x_t - α_t' (e^{-h} - 1) x̂_0, which is DDIM's η = 0 step written in λ."""
    dpm = DPMSolverMultistepScheduler(solver_order=1)
    dpm.set_timesteps(12)
    ddim = DDIMScheduler(clip_sample=False)
    ddim.set_timesteps(timesteps=dpm.timestep_list)
    model = _gaussian_data_model(0.2, 0.7, host(ddim.alphas_cumprod).astype(np.float64))
    x_T = np.random.default_rng(1).standard_normal((2, 3, 4, 4))
    np.testing.assert_allclose(_sample(dpm, model, x_T), _sample(ddim, model, x_T), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample", "v_prediction"])
def test_perfect_oracle_recovers_x0(prediction_type):
    """When every prediction is the same x_0, the second-order correction vanishes and the solver lands on x_0."""
    scheduler = DPMSolverMultistepScheduler(prediction_type=prediction_type)
    scheduler.set_timesteps(20)
    alpha_bar = host(scheduler.alphas_cumprod).astype(np.float64)
    x0 = np.random.default_rng(2).uniform(-1, 1, (2, 3, 4, 4))
    x = to_backend(np.random.default_rng(3).standard_normal(x0.shape))
    for t in scheduler.timesteps.tolist():
        a, s = np.sqrt(alpha_bar[t]), np.sqrt(1 - alpha_bar[t])
        eps = (host(x) - a * x0) / s
        target = {"epsilon": eps, "sample": x0, "v_prediction": a * eps - s * x0}[prediction_type]
        x = scheduler.step(to_backend(target), t, x).prev_sample
    np.testing.assert_allclose(host(x), x0, atol=1e-5)


def test_set_timesteps_resets_the_solver_and_img2img_starts_mid_grid():
    scheduler = DPMSolverMultistepScheduler()
    model = _gaussian_data_model(0.0, 1.0, host(scheduler.alphas_cumprod).astype(np.float64))
    x_T = np.random.default_rng(4).standard_normal((1, 2, 3, 3)).astype(np.float32)
    scheduler.set_timesteps(10)
    first = _sample(scheduler, model, x_T)
    scheduler.set_timesteps(10)
    assert first.dtype == np.float32
    np.testing.assert_array_equal(_sample(scheduler, model, x_T), first)
    # a loop may start part-way down the grid (image-to-image): the first step finds its place on the grid
    scheduler.set_timesteps(10)
    x = to_backend(x_T)
    for t in scheduler.timesteps.tolist()[4:]:
        x = scheduler.step(to_backend(model(host(x), t)), t, x).prev_sample
    assert scheduler.step_index == 10 and np.isfinite(host(x)).all()


def test_step_before_set_timesteps_is_a_clear_error():
    x = to_backend(np.zeros((1, 1, 2, 2)))
    with pytest.raises(RuntimeError, match="call scheduler.set_timesteps"):
        DPMSolverMultistepScheduler().step(x, 999, x)


@pytest.mark.parametrize("option, value, valid", [
    ("solver_order", 3, "1, 2"), ("algorithm_type", "sde-dpmsolver++", "'dpmsolver\\+\\+'"),
    ("solver_type", "logrho", "'midpoint', 'heun'"), ("final_sigmas_type", "max", "'zero', 'sigma_min'"),
    ("timestep_spacing", "even", "'leading', 'trailing', 'linspace'")])
def test_unknown_options_list_the_valid_ones(option, value, valid):
    with pytest.raises(ValueError, match=re.escape(f"{option}={value!r} is not supported; valid: ") + valid):
        DPMSolverMultistepScheduler(**{option: value})
