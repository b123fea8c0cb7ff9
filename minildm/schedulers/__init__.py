"""minildm.schedulers: the diffusion math, on plain backend arrays (NumPy or CuPy; no autograd).

    schedules.py   betas for each noise schedule, zero-terminal-SNR rescaling, SNR and log-SNR
    forward.py     q(x_t | x_0) (add_noise / q_sample), the v target, x̂_0 and ε̂ from a model output,
                   the posterior q(x_t' | x_t, x_0)
    base.py        what the samplers share: the schedule, the timestep grid, clipping, SchedulerOutput
    config.py      .config, from_config, save_pretrained / from_pretrained (scheduler_config.json)
    ddpm.py        DDPMScheduler: ancestral sampling, 1000 steps (or fewer)
    ddim.py        DDIMScheduler: deterministic (η = 0) or stochastic, ~50 steps
    dpm_solver.py  DPMSolverMultistepScheduler: DPM-Solver++(2M), ~20 steps

A sampling loop looks the same for every scheduler:

    scheduler.set_timesteps(50)
    x = backend.rng(0).standard_normal((1, 4, 32, 32), dtype="float32") * scheduler.init_noise_sigma
    for t in scheduler.timesteps.tolist():
        x = scheduler.step(model(scheduler.scale_model_input(x, t), t), t, x).prev_sample
"""
from .base import SchedulerOutput, dynamic_threshold, spaced_timesteps
from .config import SchedulerConfig
from .ddim import DDIMScheduler
from .ddpm import DDPMScheduler
from .dpm_solver import DPMSolverMultistepScheduler
from .forward import (get_velocity, posterior_mean, posterior_mean_variance, posterior_variance, predict_epsilon,
                      predict_original_sample, q_sample)
from .schedules import (alphas_cumprod_from_betas, betas_for_alpha_bar, log_snr, make_betas,
                        rescale_zero_terminal_snr, snr)

add_noise = q_sample  # the diffusers name for q(x_t | x_0)

__all__ = [
    "DDPMScheduler", "DDIMScheduler", "DPMSolverMultistepScheduler", "SchedulerOutput", "SchedulerConfig",
    "make_betas", "betas_for_alpha_bar", "alphas_cumprod_from_betas", "rescale_zero_terminal_snr", "snr", "log_snr",
    "q_sample", "add_noise", "get_velocity", "predict_original_sample", "predict_epsilon", "posterior_mean",
    "posterior_variance", "posterior_mean_variance", "spaced_timesteps", "dynamic_threshold",
]
