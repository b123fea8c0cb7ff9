"""DPM-Solver++ multistep (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion
Probabilistic Models"): a second-order solver of the diffusion ODE; 15–20 steps where DDIM needs 50 or more.

Notation (DPM-Solver's, for the same forward process x_t = α_t x_0 + σ_t ε):
    α_t, σ_t   signal and noise scales: α_t = √ᾱ_t, σ_t = √(1-ᾱ_t)   (not DDPM's α_t = 1 - β_t!)
    sigmas[i]  the grid's noise-to-signal ratios σ_t/α_t = √((1-ᾱ_t)/ᾱ_t), one per grid point plus a final one
    λ_t        half log-SNR, log(α_t/σ_t): grows as the sample gets cleaner
    h          λ_t' - λ_t, the step size in λ from grid point t to t' (the next one down)
    x̂_0(i)     the data prediction at grid point i; DPM-Solver++ integrates these, not ε̂

First order (DPM-Solver++1, the same as DDIM with η = 0):
    x_t' = (σ_t'/σ_t) x_t - α_t' (e^{-h} - 1) x̂_0(i)
Second order multistep (DPM-Solver++(2M), Algorithm 2), reusing the previous step's prediction x̂_0(i-1):
    r = h_prev / h,    D = x̂_0(i) + (1/(2r)) (x̂_0(i) - x̂_0(i-1))
    x_t' = (σ_t'/σ_t) x_t - α_t' (e^{-h} - 1) D
The first step has no previous prediction, so it is first order; so is the last one when it lands on σ = 0.
"""
from __future__ import annotations

import math

from .. import backend
from .base import SchedulerBase, SchedulerOutput, check_option, dynamic_threshold, round_arange_down
from .base import round_linspace, step_dtype, timestep_as_int
from .schedules import log_snr


class DPMSolverMultistepScheduler(SchedulerBase):
    """DPM-Solver++(2M), deterministic: the usual fast sampler for Stable Diffusion (20–25 steps).

    Args:
        num_train_timesteps: T, the number of diffusion steps the model was trained with.
        beta_start, beta_end: first and last β of the ``linear``, ``scaled_linear`` and ``sigmoid`` schedules.
        beta_schedule: ``"linear"``, ``"scaled_linear"`` (Stable Diffusion), ``"squaredcos_cap_v2"`` or
            ``"sigmoid"`` (see ``schedules.make_betas``).
        trained_betas: explicit betas (a list or array of length T); overrides the schedule.
        solver_order: 2 (multistep, recommended for guided sampling) or 1 (= DDIM with η = 0).
        prediction_type: what the model predicts: ``"epsilon"`` (ε), ``"sample"`` (x_0) or ``"v_prediction"``.
        thresholding: dynamically threshold each x̂_0 (Imagen; pixel-space models only).
        dynamic_thresholding_ratio: the quantile of |x̂_0| used as threshold (``thresholding=True`` only).
        sample_max_value: the largest threshold dynamic thresholding may use.
        algorithm_type: ``"dpmsolver++"`` (the data-prediction solver; the only one implemented here).
        solver_type: how the second-order term is formed: ``"midpoint"`` (Algorithm 2, the default) or
            ``"heun"``.
        lower_order_final: use a first-order last step when sampling with fewer than 15 steps (more stable).
        euler_at_final: always make the last step first order.
        final_sigmas_type: where the last step lands: ``"zero"`` (σ = 0: the clean x̂_0) or ``"sigma_min"``
            (the noise level of t = 0).
        lambda_min_clipped: never start from a timestep whose λ_t is below this (useful for the cosine schedule);
            -inf (default) keeps the whole range.
        timestep_spacing: ``"linspace"`` (default), ``"leading"`` or ``"trailing"``; like DDIM's, but over
            n + 1 points of which the last (t ≈ 0) is dropped, since the solver ends at the final sigma instead.
        steps_offset: added to every ``"leading"`` timestep.
        rescale_betas_zero_snr: rescale the schedule to zero terminal SNR (Lin et al. 2023); ᾱ_{T-1} is then set
            to 2⁻²⁴ instead of 0 so that σ/α stays finite. Pair it with ``v_prediction`` and ``"trailing"``.

    ``step`` keeps the previous step's x̂_0 and a step counter, so run one sampling loop at a time and call
    ``set_timesteps`` before each. ``generator`` and ``variance_noise`` are accepted for a uniform pipeline loop
    and unused: this solver is deterministic. Difference from diffusers: a float64 sample is stepped in float64
    (diffusers rounds it to float32 each step), with coefficients in float64.
    """

    def __init__(self, num_train_timesteps: int = 1000, beta_start: float = 0.0001, beta_end: float = 0.02,
                 beta_schedule: str = "linear", trained_betas=None, solver_order: int = 2,
                 prediction_type: str = "epsilon", thresholding: bool = False,
                 dynamic_thresholding_ratio: float = 0.995, sample_max_value: float = 1.0,
                 algorithm_type: str = "dpmsolver++", solver_type: str = "midpoint", lower_order_final: bool = True,
                 euler_at_final: bool = False, final_sigmas_type: str = "zero",
                 lambda_min_clipped: float = -math.inf, timestep_spacing: str = "linspace", steps_offset: int = 0,
                 rescale_betas_zero_snr: bool = False):
        self.register_to_config(locals())
        check_option("DPMSolverMultistepScheduler", "solver_order", solver_order, (1, 2))
        check_option("DPMSolverMultistepScheduler", "algorithm_type", algorithm_type, ("dpmsolver++",))
        check_option("DPMSolverMultistepScheduler", "solver_type", solver_type, ("midpoint", "heun"))
        check_option("DPMSolverMultistepScheduler", "final_sigmas_type", final_sigmas_type, ("zero", "sigma_min"))
        self._init_schedule()
        if rescale_betas_zero_snr:  # ᾱ_{T-1} = 0 would make σ/α infinite: use the smallest float16 instead
            self.alphas_cumprod[-1] = 2.0**-24
        self.sigmas = None
        self._reset_solver_state()

    def _reset_solver_state(self) -> None:
        self.model_outputs = [None] * self.config.solver_order  # the latest x̂_0 predictions, oldest first
        self.lower_order_nums = 0                               # steps taken so far (saturates at solver_order)
        self.step_index = None                                  # position on the grid of the next step

    def set_timesteps(self, num_inference_steps: int | None = None, timesteps: list[int] | None = None) -> None:
        """Choose the grid (as ``DDPMScheduler.set_timesteps``) and its ``sigmas``; resets the solver's memory."""
        c, T = self.config, self.config.num_train_timesteps
        if (num_inference_steps is None) == (timesteps is None):
            raise ValueError("DPMSolverMultistepScheduler.set_timesteps: pass exactly one of num_inference_steps "
                             "or timesteps")
        if timesteps is None:
            n = num_inference_steps
            if not 1 <= n <= T:
                raise ValueError(f"DPMSolverMultistepScheduler.set_timesteps: num_inference_steps={n} must be in "
                                 f"[1, num_train_timesteps={T}]")
            # the largest usable t: skip the noisiest timesteps whose λ_t is below lambda_min_clipped
            last = T - int((0.5 * log_snr(self.alphas_cumprod) < c.lambda_min_clipped).sum())
            if c.timestep_spacing == "linspace":
                timesteps = round_linspace(0, last - 1, n + 1)[::-1][:-1]
            elif c.timestep_spacing == "leading":
                timesteps = [i * (last // (n + 1)) + c.steps_offset for i in range(n, 0, -1)]
            else:
                timesteps = [t - 1 for t in round_arange_down(last, T / n, n)]
        super().set_timesteps(timesteps=timesteps)

        # σ/α at every grid point, then the final one: 0 (a clean sample) or its value at t = 0
        xp = backend.xp()
        all_sigmas = xp.sqrt((1 - self.alphas_cumprod) / self.alphas_cumprod)
        final = xp.zeros(1, dtype=xp.float32) if c.final_sigmas_type == "zero" else all_sigmas[:1]
        self.sigmas = xp.concatenate([all_sigmas[self.timesteps], final])
        self._reset_solver_state()

    def step(self, model_output, timestep, sample, generator=None, variance_noise=None) -> SchedulerOutput:
        """One solver step from grid point ``timestep`` to the next; returns SchedulerOutput(prev_sample=x_t')."""
        if self.sigmas is None:
            raise RuntimeError("DPMSolverMultistepScheduler.step: no inference timesteps yet; call "
                               "scheduler.set_timesteps(num_inference_steps) before sampling")
        if self.step_index is None:  # the first step of a loop may start anywhere on the grid (img2img)
            t = timestep_as_int(timestep)
            self.previous_timestep(t)  # a clear error if t is not on the grid
            self.step_index = self.timestep_list.index(t)
        i, n, c = self.step_index, len(self.timestep_list), self.config

        # 1. the data prediction x̂_0(i), remembered for the next step
        pred_original_sample = self.convert_model_output(model_output, sample)
        self.model_outputs = self.model_outputs[1:] + [pred_original_sample]

        # 2. first order at the start (nothing to reuse yet) and, if asked for, at the end
        is_last = i == n - 1
        lower_order_final = is_last and (c.euler_at_final or (c.lower_order_final and n < 15)
                                         or c.final_sigmas_type == "zero")
        if c.solver_order == 1 or self.lower_order_nums < 1 or lower_order_final:
            prev_sample = self.first_order_update(pred_original_sample, sample)
        else:
            prev_sample = self.second_order_update(self.model_outputs, sample)

        self.lower_order_nums = min(self.lower_order_nums + 1, c.solver_order)
        self.step_index += 1
        return SchedulerOutput(prev_sample=prev_sample.astype(sample.dtype, copy=False),
                               pred_original_sample=pred_original_sample.astype(sample.dtype, copy=False))

    def _alpha_sigma_lambda(self, i: int, dtype):
        """α, σ and λ = log α - log σ at grid point i, from sigmas[i] = σ/α  (α² + σ² = 1), as 0-d ``dtype``."""
        xp = backend.xp()
        ratio = self.sigmas[i].astype(dtype)
        alpha = 1 / xp.sqrt(ratio**2 + 1)
        sigma = ratio * alpha
        return alpha, sigma, xp.log(alpha) - xp.log(sigma)

    def convert_model_output(self, model_output, sample):
        """x̂_0 from the model output at the current grid point (then dynamically thresholded, if asked).

        The identities of ``forward.predict_original_sample``, written with α_t = √ᾱ_t and σ_t = √(1-ᾱ_t).
        """
        alpha_t, sigma_t, _ = self._alpha_sigma_lambda(self.step_index, step_dtype(sample))
        if self.config.prediction_type == "epsilon":
            pred = (sample - sigma_t * model_output) / alpha_t
        elif self.config.prediction_type == "sample":
            pred = model_output
        else:  # v_prediction
            pred = alpha_t * sample - sigma_t * model_output
        if self.config.thresholding:
            pred = dynamic_threshold(pred, self.config.dynamic_thresholding_ratio, self.config.sample_max_value)
        return pred

    def first_order_update(self, pred_original_sample, sample):
        """x_t' = (σ_t'/σ_t) x_t - α_t' (e^{-h} - 1) x̂_0                       (DPM-Solver++1 = DDIM, η = 0)."""
        i = self.step_index
        if i + 1 == len(self.timestep_list) and self.config.final_sigmas_type == "zero":
            return pred_original_sample  # σ_t' = 0, α_t' = 1, e^{-h} = 0: the update lands exactly on x̂_0
        xp, dtype = backend.xp(), step_dtype(sample)
        _, sigma_s, lambda_s = self._alpha_sigma_lambda(i, dtype)
        alpha_t, sigma_t, lambda_t = self._alpha_sigma_lambda(i + 1, dtype)
        h = lambda_t - lambda_s
        return (sigma_t / sigma_s) * sample - (alpha_t * (xp.exp(-h) - 1.0)) * pred_original_sample

    def second_order_update(self, model_outputs, sample):
        """DPM-Solver++(2M): extrapolate x̂_0 linearly in λ from the last two predictions    (Algorithm 2)."""
        xp, i, dtype = backend.xp(), self.step_index, step_dtype(sample)
        _, _, lambda_s1 = self._alpha_sigma_lambda(i - 1, dtype)
        _, sigma_s0, lambda_s0 = self._alpha_sigma_lambda(i, dtype)
        alpha_t, sigma_t, lambda_t = self._alpha_sigma_lambda(i + 1, dtype)
        m0, m1 = model_outputs[-1], model_outputs[-2]
        h, h_prev = lambda_t - lambda_s0, lambda_s0 - lambda_s1
        r = h_prev / h
        D0, D1 = m0, (1.0 / r) * (m0 - m1)  # x̂_0 and its backward difference per unit step h
        if self.config.solver_type == "midpoint":
            return ((sigma_t / sigma_s0) * sample - (alpha_t * (xp.exp(-h) - 1.0)) * D0
                    - 0.5 * (alpha_t * (xp.exp(-h) - 1.0)) * D1)
        return ((sigma_t / sigma_s0) * sample - (alpha_t * (xp.exp(-h) - 1.0)) * D0
                + (alpha_t * ((xp.exp(-h) - 1.0) / h + 1.0)) * D1)
