"""DDPMScheduler: full sampling loops against diffusers (every prediction type, variance type, clipping and
thresholding option, with injected noise), and the behaviour diffusers does not pin down."""
import numpy as np
import pytest
from helpers import assert_close, host, to_backend
from scheduler_toy import case_id, load_loop_cases, run_loop

from minildm import backend
from minildm.schedulers import DDPMScheduler

FIXTURE, CASES = load_loop_cases("ddpm")
RTOL = {"float64": 1e-6, "float32": 1e-5}


@pytest.mark.parametrize("i", range(len(CASES)), ids=[case_id(c) for c in CASES])
def test_sampling_loop_matches_diffusers(i):
    case = CASES[i]
    output = run_loop(case, FIXTURE)
    assert host(output.prev_sample).dtype == np.dtype(case["dtype"])
    assert_close(output.prev_sample, FIXTURE[f"{i}_prev_sample"], RTOL[case["dtype"]], what="prev_sample")
    assert_close(output.pred_original_sample, FIXTURE[f"{i}_pred_original_sample"], RTOL[case["dtype"]],
                 what="pred_original_sample")


@pytest.mark.parametrize("i", [i for i, c in enumerate(CASES) if c["dtype"] == "float64"][::4])
def test_sampling_loop_with_own_betas(i):
    """With minildm's own betas (correctly rounded, diffusers' torch.linspace may differ in the last bit)."""
    output = run_loop(CASES[i], FIXTURE, own_betas=True)
    assert_close(output.prev_sample, FIXTURE[f"{i}_prev_sample"], 1e-5, what="prev_sample")


RNG = np.random.default_rng(0)
X_T = RNG.standard_normal((2, 3, 4, 4))
EPS = 0.1 * RNG.standard_normal((2, 3, 4, 4))
Z = RNG.standard_normal((2, 3, 4, 4))
VARIANCE = {"learned": RNG.uniform(0.001, 0.02, (2, 3, 4, 4)), "learned_range": RNG.uniform(-1, 1, (2, 3, 4, 4))}


def _one_step(variance_type, t=500):
    """One DDPM step 500 → 400 (n = 10) without clipping, with injected noise Z."""
    scheduler = DDPMScheduler(variance_type=variance_type, clip_sample=False)
    scheduler.set_timesteps(10)
    out = np.concatenate([EPS, VARIANCE[variance_type]], axis=1) if variance_type in VARIANCE else EPS
    return scheduler.step(to_backend(out), t, to_backend(X_T), variance_noise=to_backend(Z)).prev_sample


def test_fixed_large_log_is_fixed_large():
    """Deliberate difference: diffusers takes √(log β_t), a NaN; the name promises variance exp(log β_t) = β_t."""
    large_log = host(_one_step("fixed_large_log"))
    assert np.isfinite(large_log).all()
    assert_close(large_log, host(_one_step("fixed_large")), rtol=1e-6)


def test_variance_types_by_closed_form():
    """x_t' = μ̃ + σ_t z with σ_t² = β̃_t (fixed_small, fixed_small_log), β_t (fixed_large), the model's own
    variance (learned), or exp(½(v+1) log β_t + ½(1-v) log β̃_t) (learned_range, Nichol & Dhariwal eq. 15)."""
    alpha_bar = host(DDPMScheduler().alphas_cumprod).astype(np.float64)
    a_t, a_prev = alpha_bar[500], alpha_bar[400]
    beta = 1 - a_t / a_prev
    beta_tilde = (1 - a_prev) / (1 - a_t) * beta
    x0 = (X_T - np.sqrt(1 - a_t) * EPS) / np.sqrt(a_t)
    mean = np.sqrt(a_prev) * beta / (1 - a_t) * x0 + np.sqrt(a_t / a_prev) * (1 - a_prev) / (1 - a_t) * X_T
    log_var_range = (VARIANCE["learned_range"] + 1) / 2 * np.log(beta) + (1 - VARIANCE["learned_range"]) / 2 * np.log(
        beta_tilde)
    std = {"fixed_small": np.sqrt(beta_tilde), "fixed_small_log": np.sqrt(beta_tilde), "fixed_large": np.sqrt(beta),
           "fixed_large_log": np.sqrt(beta), "learned": np.sqrt(VARIANCE["learned"]),
           "learned_range": np.exp(0.5 * log_var_range)}
    for variance_type, sigma in std.items():
        assert_close(_one_step(variance_type), mean + sigma * Z, rtol=1e-10, what=variance_type)


def test_no_noise_on_the_last_step():
    scheduler = DDPMScheduler()
    scheduler.set_timesteps(10)
    x, out = to_backend(X_T), to_backend(EPS)
    quiet = scheduler.step(out, 0, x).prev_sample  # t = 0: no generator needed
    noisy = scheduler.step(out, 0, x, variance_noise=to_backend(Z)).prev_sample
    assert_close(quiet, host(noisy), rtol=0)


def test_generator_draws_reproducible_noise():
    scheduler = DDPMScheduler()
    scheduler.set_timesteps(10)
    x, out = to_backend(X_T, np.float32), to_backend(EPS, np.float32)
    a = scheduler.step(out, 500, x, generator=backend.rng(7)).prev_sample
    b = scheduler.step(out, 500, x, generator=backend.rng(7)).prev_sample
    c = scheduler.step(out, 500, x, generator=backend.rng(8)).prev_sample
    assert host(a).dtype == np.float32
    np.testing.assert_array_equal(host(a), host(b))
    assert not np.array_equal(host(a), host(c))


def test_noise_errors_speak_plainly():
    scheduler = DDPMScheduler()
    scheduler.set_timesteps(10)
    x, out, z = to_backend(X_T), to_backend(EPS), to_backend(Z)
    with pytest.raises(ValueError, match="pass generator=backend.rng"):
        scheduler.step(out, 500, x)
    with pytest.raises(ValueError, match="either generator or variance_noise"):
        scheduler.step(out, 500, x, generator=backend.rng(0), variance_noise=z)
    with pytest.raises(TypeError, match="bare seed would repeat the same noise"):
        scheduler.step(out, 500, x, generator=0)


def test_learned_variance_needs_2c_channels():
    scheduler = DDPMScheduler(variance_type="learned_range")
    with pytest.raises(ValueError, match="model_output has 3 channels, expected 6"):
        scheduler.step(to_backend(EPS), 999, to_backend(X_T), variance_noise=to_backend(Z))
    with pytest.raises(ValueError, match="has 6 channels, expected 3 for variance_type='fixed_small'"):
        DDPMScheduler().step(to_backend(np.concatenate([EPS, EPS], 1)), 999, to_backend(X_T), variance_noise=Z)


def test_unknown_variance_type_lists_the_valid_ones():
    with pytest.raises(ValueError, match="variance_type='small'.*'fixed_small', 'fixed_small_log', 'fixed_large', "
                                         "'fixed_large_log', 'learned', 'learned_range'"):
        DDPMScheduler(variance_type="small")


def test_scheduler_surface():
    scheduler = DDPMScheduler()
    x = to_backend(X_T)
    assert scheduler.scale_model_input(x, 10) is x
    assert scheduler.init_noise_sigma == 1.0 and scheduler.order == 1 and len(scheduler) == 1000
    assert scheduler.num_inference_steps is None and scheduler.timesteps.shape == (1000,)
    scheduler.set_timesteps(25)
    assert scheduler.num_inference_steps == 25 and len(scheduler.timesteps) == 25
    output = scheduler.step(to_backend(EPS), 0, x)
    assert output.prev_sample.shape == x.shape and output.pred_original_sample.shape == x.shape


def test_timestep_may_be_a_0d_array():
    scheduler = DDPMScheduler()
    scheduler.set_timesteps(10)
    x, out = to_backend(X_T), to_backend(EPS)
    a = scheduler.step(out, scheduler.timesteps[-1], x).prev_sample
    assert_close(a, host(scheduler.step(out, 0, x).prev_sample), rtol=0)


def test_one_thousand_step_chain_recovers_a_point_mass():
    """With the exact ε for data concentrated at one x_0, ancestral sampling over all 1000 steps lands near x_0:
    every step's x̂_0 equals x_0, and the last step (t = 0 → clean, no noise) returns x̂_0 itself."""
    scheduler = DDPMScheduler(clip_sample=False)
    x0 = to_backend(np.array([[0.5, -0.25, 0.75]]))
    alpha_bar = scheduler.alphas_cumprod.astype(np.float64)
    generator = backend.rng(3)
    x = to_backend(np.random.default_rng(0).standard_normal((1, 3)))
    for t in scheduler.timesteps.tolist():
        eps = (x - alpha_bar[t] ** 0.5 * x0) / (1 - alpha_bar[t]) ** 0.5
        x = scheduler.step(eps, t, x, generator=generator).prev_sample
    assert_close(x, host(x0), rtol=1e-9)
