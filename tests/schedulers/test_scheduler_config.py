"""Scheduler configs: .config, from_config across scheduler kinds, save/load of scheduler_config.json, and a real
Stable Diffusion v1.5 config."""
import json
import math
import warnings

import numpy as np
import pytest
from helpers import host

from minildm.schedulers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, SchedulerConfig

SCHEDULERS = [DDPMScheduler, DDIMScheduler, DPMSolverMultistepScheduler]

# runwayml/stable-diffusion-v1-5, scheduler/scheduler_config.json (a public config)
SD15_SCHEDULER_CONFIG = {
    "_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000, "set_alpha_to_one": False,
    "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None, "clip_sample": False,
}


@pytest.mark.parametrize("cls", SCHEDULERS)
def test_config_holds_every_constructor_argument(cls):
    scheduler = cls(num_train_timesteps=500, beta_schedule="scaled_linear")
    assert isinstance(scheduler.config, dict) and isinstance(scheduler.config, SchedulerConfig)
    assert list(scheduler.config) == cls.config_keys()
    assert scheduler.config["num_train_timesteps"] == 500 and scheduler.config.beta_schedule == "scaled_linear"
    with pytest.raises(AttributeError, match="no key 'nope'"):
        scheduler.config.nope
    rebuilt = cls.from_config(scheduler.config)
    assert rebuilt.config == scheduler.config
    np.testing.assert_array_equal(host(rebuilt.alphas_cumprod), host(scheduler.alphas_cumprod))


@pytest.mark.parametrize("cls", SCHEDULERS)
def test_save_and_load_round_trip(cls, tmp_path):
    scheduler = cls(beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction", timestep_spacing="trailing",
                    rescale_betas_zero_snr=True)
    path = scheduler.save_pretrained(tmp_path / "scheduler")
    assert path.name == "scheduler_config.json"
    assert [p.name for p in path.parent.iterdir()] == ["scheduler_config.json"]  # no temp file left behind
    saved = json.loads(path.read_text())
    assert saved["_class_name"] == cls.__name__ and saved["prediction_type"] == "v_prediction"
    loaded = cls.from_pretrained(tmp_path / "scheduler")
    assert type(loaded) is cls and loaded.config == scheduler.config
    np.testing.assert_array_equal(host(loaded.alphas_cumprod), host(scheduler.alphas_cumprod))
    assert cls.from_pretrained(tmp_path, subfolder="scheduler").config == scheduler.config


def test_save_overwrites_atomically(tmp_path):
    DDPMScheduler().save_pretrained(tmp_path)
    DDPMScheduler(beta_end=0.03).save_pretrained(tmp_path)
    assert json.loads((tmp_path / "scheduler_config.json").read_text())["beta_end"] == 0.03
    assert len(list(tmp_path.iterdir())) == 1


def test_dpm_infinite_lambda_clip_survives_json(tmp_path):
    DPMSolverMultistepScheduler().save_pretrained(tmp_path)
    assert DPMSolverMultistepScheduler.from_pretrained(tmp_path).config.lambda_min_clipped == -math.inf


def test_trained_betas_are_stored_as_a_list(tmp_path):
    betas = np.linspace(1e-4, 0.02, 100, dtype=np.float32)
    scheduler = DDIMScheduler(num_train_timesteps=100, trained_betas=betas)
    assert isinstance(scheduler.config.trained_betas, list) and len(scheduler.config.trained_betas) == 100
    scheduler.save_pretrained(tmp_path)
    loaded = DDIMScheduler.from_pretrained(tmp_path)
    np.testing.assert_array_equal(host(loaded.betas), betas)


def test_one_schedulers_config_builds_another_kind():
    """DDPM → DDIM → DPM-Solver keep the noise schedule; options only a sibling understands are dropped quietly."""
    ddpm = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, variance_type="fixed_large",
                         prediction_type="v_prediction", steps_offset=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ddim = DDIMScheduler.from_config(ddpm.config)
        dpm = DPMSolverMultistepScheduler.from_config(ddim.config, solver_order=1)
    assert ddim.config.prediction_type == "v_prediction" and ddim.config.steps_offset == 1
    assert "variance_type" not in ddim.config and dpm.config.solver_order == 1
    for other in (ddim, dpm):
        np.testing.assert_array_equal(host(other.betas), host(ddpm.betas))


def test_unknown_keys_are_ignored_with_a_warning():
    with pytest.warns(UserWarning, match="DDIMScheduler.from_config: ignoring unknown config keys: shift, skip"):
        scheduler = DDIMScheduler.from_config({"beta_end": 0.03, "skip": 1, "shift": 3.0, "_private": 0})
    assert scheduler.config.beta_end == 0.03


def test_stable_diffusion_v1_5_scheduler_config_loads(tmp_path):
    with pytest.warns(UserWarning, match="unknown config keys: skip_prk_steps$"):
        ddim = DDIMScheduler.from_config(SD15_SCHEDULER_CONFIG)
    c = ddim.config
    assert (c.beta_schedule, c.beta_start, c.beta_end, c.steps_offset) == ("scaled_linear", 0.00085, 0.012, 1)
    assert c.set_alpha_to_one is False and c.clip_sample is False and c.prediction_type == "epsilon"
    ddim.set_timesteps(50)
    assert ddim.timestep_list[:3] == [981, 961, 941] and ddim.timestep_list[-1] == 1
    np.testing.assert_allclose(float(host(ddim.alphas_cumprod)[-1]), 0.0047, atol=1e-4)  # SD's terminal ᾱ

    (tmp_path / "scheduler").mkdir()
    (tmp_path / "scheduler" / "scheduler_config.json").write_text(json.dumps(SD15_SCHEDULER_CONFIG))
    with pytest.warns(UserWarning, match="skip_prk_steps"):
        dpm = DPMSolverMultistepScheduler.from_pretrained(tmp_path, subfolder="scheduler")
    with pytest.warns(UserWarning, match="skip_prk_steps"):
        ddpm = DDPMScheduler.from_pretrained(tmp_path / "scheduler")
    assert dpm.config.steps_offset == 1 and ddpm.config.beta_schedule == "scaled_linear"


def test_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no scheduler_config.json"):
        DDIMScheduler.from_pretrained(tmp_path)
