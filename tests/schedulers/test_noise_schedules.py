"""Noise schedules: parity of betas / alphas_cumprod with diffusers, and the properties every schedule must have."""
import json

import numpy as np
import pytest
from helpers import assert_close, host, load_fixture, to_backend

from minildm import backend
from minildm.schedulers import (DDPMScheduler, DPMSolverMultistepScheduler, betas_for_alpha_bar, log_snr,
                                make_betas, rescale_zero_terminal_snr, snr)
from minildm.schedulers.schedules import BETA_SCHEDULES, alphas_cumprod_from_betas, cosine_alpha_bar

FIXTURE = load_fixture("schedulers_schedules.npz")
CASES = json.loads(str(FIXTURE["cases"]))
CLASSES = {"DDPMScheduler": DDPMScheduler, "DPMSolverMultistepScheduler": DPMSolverMultistepScheduler}


@pytest.mark.parametrize("i", range(len(CASES)), ids=[json.dumps(c["config"]) for c in CASES])
def test_schedule_matches_diffusers(i):
    case = CASES[i]
    scheduler = CLASSES[case["scheduler"]](**case["config"])
    expected = FIXTURE[f"{i}_alphas_cumprod"]
    assert host(scheduler.alphas_cumprod).dtype == np.float32
    # diffusers' float32 torch.linspace may differ from the correctly rounded value in the last bit: ≤ 4e-7
    assert_close(scheduler.alphas_cumprod, expected, rtol=1e-6, what="alphas_cumprod")
    if case["config"].get("rescale_betas_zero_snr"):
        return  # diffusers rescales in float32 (cancellation near t = T); covered by the relative check above
    assert np.max(np.abs(host(scheduler.alphas_cumprod) / expected - 1)) < 1e-6  # elementwise, small ᾱ included
    assert_close(scheduler.betas, FIXTURE[f"{i}_betas"], rtol=1e-6, what="betas")


def test_trained_betas_reproduce_diffusers_alphas_cumprod_exactly():
    """Same float32 betas → the same ᾱ bit for bit (a float64 running product rounded once, like torch.cumprod)."""
    scheduler = DDPMScheduler(trained_betas=FIXTURE["0_betas"])
    maxulp = 0 if backend.name() == "numpy" else 1  # a GPU's parallel cumprod may round a float64 bit differently
    np.testing.assert_array_max_ulp(host(scheduler.alphas_cumprod), FIXTURE["0_alphas_cumprod"], maxulp=maxulp)


@pytest.mark.parametrize("schedule", BETA_SCHEDULES)
@pytest.mark.parametrize("zero_snr", [False, True])
def test_alphas_cumprod_strictly_decreasing_within_0_1(schedule, zero_snr):
    scheduler = DDPMScheduler(beta_schedule=schedule, rescale_betas_zero_snr=zero_snr)
    alpha_bar = host(scheduler.alphas_cumprod).astype(np.float64)
    assert np.all(np.diff(alpha_bar) < 0)
    assert 0 <= alpha_bar[-1] and alpha_bar[0] < 1
    assert_close(scheduler.alphas, 1 - host(scheduler.betas), rtol=0, what="alphas = 1 - betas")


@pytest.mark.parametrize("schedule", BETA_SCHEDULES)
def test_zero_terminal_snr(schedule):
    """Lin et al. 2023: ᾱ_{T-1} = 0 exactly, ᾱ_0 unchanged, and the last beta is 1."""
    plain = DDPMScheduler(beta_schedule=schedule)
    rescaled = DDPMScheduler(beta_schedule=schedule, rescale_betas_zero_snr=True)
    assert host(rescaled.alphas_cumprod)[-1] == 0.0
    assert host(rescaled.betas)[-1] == 1.0
    assert_close(rescaled.alphas_cumprod[:1], host(plain.alphas_cumprod)[:1], rtol=1e-6, what="alpha_bar_0")
    assert host(snr(rescaled.alphas_cumprod))[-1] == 0.0


def test_rescale_keeps_sqrt_alpha_bar_affine():
    """The rescaled √ᾱ is an affine map of the old one: shifted to end at 0, scaled to start where it did."""
    betas = to_backend(np.linspace(1e-4, 0.02, 1000), np.float64)
    old = np.sqrt(np.cumprod(1 - host(betas)))
    new = np.sqrt(np.cumprod(1 - host(rescale_zero_terminal_snr(betas))))
    expected = (old - old[-1]) * old[0] / (old[0] - old[-1])
    np.testing.assert_allclose(new, expected, rtol=1e-9, atol=1e-12)


def test_linear_and_scaled_linear_endpoints():
    betas = host(make_betas("linear", 1000, 1e-4, 0.02))
    assert betas.dtype == np.float32 and betas.shape == (1000,)
    assert betas[0] == np.float32(1e-4) and betas[-1] == np.float32(0.02)
    np.testing.assert_allclose(host(make_betas("scaled_linear", 1000, 0.00085, 0.012))[[0, -1]], [0.00085, 0.012],
                               rtol=1e-6)


def test_cosine_schedule_follows_its_alpha_bar_curve():
    """β_t = 1 - ᾱ((t+1)/T)/ᾱ(t/T), so ᾱ_t = ᾱ((t+1)/T)/ᾱ(0) wherever β stays below the 0.999 cap."""
    T = 1000
    alpha_bar = host(alphas_cumprod_from_betas(make_betas("squaredcos_cap_v2", T))).astype(np.float64)
    s = np.arange(1, T + 1) / T
    curve = np.cos((s + 0.008) / 1.008 * np.pi / 2) ** 2 / np.cos(0.008 / 1.008 * np.pi / 2) ** 2
    np.testing.assert_allclose(alpha_bar[:-1], curve[:-1], rtol=1e-5, atol=1e-7)
    assert host(betas_for_alpha_bar(cosine_alpha_bar, T)).max() <= 0.999


def test_snr_and_log_snr():
    alpha_bar = to_backend([0.9, 0.5, 0.1], np.float64)
    assert_close(snr(alpha_bar), [9.0, 1.0, 1 / 9], rtol=1e-12, what="snr")
    assert_close(log_snr(alpha_bar), np.log([9.0, 1.0, 1 / 9]), rtol=1e-12, what="log_snr")
    assert np.all(np.diff(host(log_snr(DDPMScheduler().alphas_cumprod))) < 0)


def test_unknown_schedule_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid: linear, scaled_linear, squaredcos_cap_v2, sigmoid"):
        make_betas("cosine")
    with pytest.raises(ValueError, match="beta_schedule='laplace'.*'linear'"):
        DDPMScheduler(beta_schedule="laplace")
