"""DDIMScheduler: sampling loops against diffusers (η = 0 and η > 0 with injected noise, every prediction type,
clipping and thresholding option), an ε-oracle that must recover x_0 exactly, and DDIM's known identities."""
import numpy as np
import pytest
from helpers import assert_close, host, to_backend
from scheduler_toy import case_id, load_loop_cases, run_loop

from minildm import backend
from minildm.schedulers import DDIMScheduler, DDPMScheduler

FIXTURE, CASES = load_loop_cases("ddim")
RTOL = {"float64": 1e-6, "float32": 1e-5}


@pytest.mark.parametrize("i", range(len(CASES)), ids=[case_id(c) for c in CASES])
def test_sampling_loop_matches_reference(i):
    """diffusers' DDIM; for grid_prev cases (trailing / linspace with uneven steps) diffusers' own step with the
    previous timestep taken from the grid, where diffusers' t - T // n shortcut would leave it."""
    case = CASES[i]
    output = run_loop(case, FIXTURE)
    assert host(output.prev_sample).dtype == np.dtype(case["dtype"])
    assert_close(output.prev_sample, FIXTURE[f"{i}_prev_sample"], RTOL[case["dtype"]], what="prev_sample")
    assert_close(output.pred_original_sample, FIXTURE[f"{i}_pred_original_sample"], RTOL[case["dtype"]],
                 what="pred_original_sample")


@pytest.mark.parametrize("i", [i for i, c in enumerate(CASES) if c["dtype"] == "float64"][::4])
def test_sampling_loop_with_own_betas(i):
    output = run_loop(CASES[i], FIXTURE, own_betas=True)
    assert_close(output.prev_sample, FIXTURE[f"{i}_prev_sample"], 1e-5, what="prev_sample")


def _oracle_sample(scheduler, x0, dtype, prediction_type="epsilon"):
    """Sample with the exact model for data concentrated at one point x_0 (ε = (x_t - √ᾱ x_0)/√(1-ᾱ), and the
    matching x_0 or v targets), starting from Gaussian noise."""
    alpha_bar = host(scheduler.alphas_cumprod).astype(np.float64)
    x = to_backend(np.random.default_rng(0).standard_normal(x0.shape), dtype)
    for t in scheduler.timesteps.tolist():
        a, s = np.sqrt(alpha_bar[t]), np.sqrt(1 - alpha_bar[t])
        eps = (host(x).astype(np.float64) - a * x0) / s
        target = {"epsilon": eps, "sample": x0, "v_prediction": a * eps - s * x0}[prediction_type]
        x = scheduler.step(to_backend(target, dtype), t, x).prev_sample
    return host(x)


@pytest.mark.parametrize("spacing, n", [("leading", 50), ("trailing", 7), ("linspace", 30), ("trailing", 1000)])
@pytest.mark.parametrize("prediction_type", ["epsilon", "sample", "v_prediction"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_perfect_oracle_recovers_x0(spacing, n, prediction_type, dtype):
    """With η = 0 every step keeps x̂_0 = x_0 and the last step (to ᾱ = 1) returns it: x_0 exactly (≤ 1e-5)."""
    scheduler = DDIMScheduler(timestep_spacing=spacing, clip_sample=False, prediction_type=prediction_type)
    scheduler.set_timesteps(n)
    x0 = np.random.default_rng(1).uniform(-1, 1, (2, 3, 4, 4))
    np.testing.assert_allclose(_oracle_sample(scheduler, x0, dtype, prediction_type), x0, atol=1e-5)


def test_eta_one_is_the_ddpm_posterior():
    """DDIM with η = 1 draws from q(x_t' | x_t, x̂_0), exactly DDPM's fixed_small step (Song et al. 2020, sec. 4.1)."""
    ddim, ddpm = DDIMScheduler(clip_sample=False), DDPMScheduler(clip_sample=False)
    for s in (ddim, ddpm):
        s.set_timesteps(timesteps=[980, 700, 650, 3])
    rng = np.random.default_rng(2)
    x, eps, z = (to_backend(rng.standard_normal((2, 3, 4, 4))) for _ in range(3))
    for t in (980, 700, 650):
        a = ddim.step(eps, t, x, eta=1.0, variance_noise=z).prev_sample
        b = ddpm.step(eps, t, x, variance_noise=z).prev_sample
        assert_close(a, host(b), rtol=1e-10, what=f"t={t}")


def test_eta_zero_is_deterministic_and_needs_no_generator():
    scheduler = DDIMScheduler()
    scheduler.set_timesteps(10)
    x, eps = to_backend(np.ones((1, 2, 2, 2)), np.float32), to_backend(np.full((1, 2, 2, 2), 0.1), np.float32)
    a = scheduler.step(eps, 900, x).prev_sample
    b = scheduler.step(eps, 900, x, eta=0.0, variance_noise=to_backend(np.ones((1, 2, 2, 2)), np.float32))
    assert host(a).dtype == np.float32
    np.testing.assert_array_equal(host(a), host(b.prev_sample))
    with pytest.raises(ValueError, match="pass generator=backend.rng"):
        scheduler.step(eps, 900, x, eta=0.5)
    c = scheduler.step(eps, 900, x, eta=0.5, generator=backend.rng(0)).prev_sample
    assert host(c).shape == (1, 2, 2, 2) and not np.array_equal(host(a), host(c))


def test_step_before_set_timesteps_is_a_clear_error():
    scheduler = DDIMScheduler()
    x = to_backend(np.zeros((1, 1, 2, 2)))
    with pytest.raises(RuntimeError, match=r"call scheduler.set_timesteps\(num_inference_steps\) before sampling"):
        scheduler.step(x, 999, x)


def test_set_alpha_to_one():
    """The last step goes to ᾱ = 1 (a clean x̂_0) or, with set_alpha_to_one=False, to ᾱ_0."""
    x, eps = to_backend(np.full((1, 1, 1, 1), 0.5)), to_backend(np.full((1, 1, 1, 1), 0.2))
    clean, rough = DDIMScheduler(clip_sample=False), DDIMScheduler(clip_sample=False, set_alpha_to_one=False)
    for s in (clean, rough):
        s.set_timesteps(10)
    out = clean.step(eps, 0, x)
    assert_close(out.prev_sample, host(out.pred_original_sample), rtol=1e-12)
    a0 = float(host(rough.alphas_cumprod)[0])
    x0 = (0.5 - np.sqrt(1 - a0) * 0.2) / np.sqrt(a0)
    assert_close(rough.step(eps, 0, x).prev_sample, [[[[np.sqrt(a0) * x0 + np.sqrt(1 - a0) * 0.2]]]], rtol=1e-12)


def test_use_clipped_model_output():
    """With use_clipped_model_output, ε̂ is recomputed from the clipped x̂_0, so x_t' lies on the line through
    the clipped x̂_0 and x_t (η = 0)."""
    scheduler = DDIMScheduler(clip_sample=True)
    scheduler.set_timesteps(10)
    x, eps = to_backend(np.full((1, 1, 1, 2), 2.0)), to_backend(np.array([[[[0.1, -3.0]]]]))
    out = scheduler.step(eps, 900, x, use_clipped_model_output=True)
    ab = host(scheduler.alphas_cumprod).astype(np.float64)
    x0 = np.clip((2.0 - np.sqrt(1 - ab[900]) * host(eps)) / np.sqrt(ab[900]), -1, 1)
    eps_clipped = (2.0 - np.sqrt(ab[900]) * x0) / np.sqrt(1 - ab[900])
    assert_close(out.prev_sample, np.sqrt(ab[800]) * x0 + np.sqrt(1 - ab[800]) * eps_clipped, rtol=1e-12)
