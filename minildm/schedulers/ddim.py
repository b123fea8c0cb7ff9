"""DDIM sampling (Song et al. 2020, "Denoising Diffusion Implicit Models").

Notation:
    x_t      the current sample; x_t' the sample at the next grid point down, t' (t' = -1 after the last one)
    ᾱ_t      alphas_cumprod[t] (the paper writes α_t for it);  ᾱ_{-1} = 1, or ᾱ_0 if ``set_alpha_to_one=False``
    ε̂, x̂_0   the model's noise prediction and the clean sample it implies               (DDIM eq. 9)
    σ_t(η)   the step's noise level: η = 0 deterministic DDIM, η = 1 DDPM-like            (DDIM eq. 16)
    z        fresh Gaussian noise, z ~ N(0, I)

One step (DDIM eq. 12):
    x_t' = √ᾱ_t' x̂_0  +  √(1 - ᾱ_t' - σ_t²) ε̂  +  σ_t z
           "predicted x_0"  "direction pointing to x_t"  "random noise"
"""
from __future__ import annotations

from .. import backend
from .base import SchedulerBase, SchedulerOutput, draw_noise, step_dtype, timestep_as_int
from .forward import posterior_variance, predict_epsilon, predict_original_sample


class DDIMScheduler(SchedulerBase):
    """Denoising diffusion implicit model sampler: deterministic for η = 0, so 50 steps do the work of 1000.

    Args:
        num_train_timesteps: T, the number of diffusion steps the model was trained with.
        beta_start, beta_end: first and last β of the ``linear``, ``scaled_linear`` and ``sigmoid`` schedules.
        beta_schedule: ``"linear"``, ``"scaled_linear"`` (Stable Diffusion), ``"squaredcos_cap_v2"`` or
            ``"sigmoid"`` (see ``schedules.make_betas``).
        trained_betas: explicit betas (a list or array of length T); overrides the schedule.
        clip_sample: clip x̂_0 to [-clip_sample_range, clip_sample_range] (pixel-space models; not for latents).
        set_alpha_to_one: the ᾱ used after the last grid point: 1 (a clean sample; the default) or, if False,
            ᾱ_0 (Stable Diffusion v1 configs set False).
        steps_offset: added to every ``"leading"`` timestep (Stable Diffusion v1 uses 1).
        prediction_type: what the model predicts: ``"epsilon"`` (ε), ``"sample"`` (x_0) or ``"v_prediction"``.
        thresholding: use Imagen's dynamic thresholding of x̂_0 instead of clipping (pixel-space models only).
        dynamic_thresholding_ratio: the quantile of |x̂_0| used as threshold (``thresholding=True`` only).
        clip_sample_range: the bound for ``clip_sample``.
        sample_max_value: the largest threshold dynamic thresholding may use.
        timestep_spacing: ``"leading"``, ``"trailing"`` or ``"linspace"``: how ``set_timesteps(n)`` spreads its
            n steps over [0, T) (Lin et al. 2023, Table 2; see ``base.spaced_timesteps``).
        rescale_betas_zero_snr: rescale the schedule to zero terminal SNR (Lin et al. 2023); pair it with
            ``v_prediction`` and ``"trailing"`` spacing.

    The noise schedule options are DDPMScheduler's, so a DDPM config builds a DDIM sampler:
    ``DDIMScheduler.from_config(ddpm.config)``.

    The step after t is the next timestep on the grid, looked up in ``timesteps``. Deliberate difference from
    diffusers: diffusers computes it as t - T // n, which is the same for ``"leading"`` spacing and for
    ``"trailing"`` spacing when n divides T, but wrong for ``"linspace"`` spacing and for ``"trailing"`` when n
    does not divide T (T = 1000, n = 7: the grid is 999, 856, 713, …; diffusers steps 999 → 857, 856 → 714, …).
    ``set_timesteps`` also accepts explicit ``timesteps=[...]``, which diffusers' DDIM does not.
    """

    def __init__(self, num_train_timesteps: int = 1000, beta_start: float = 0.0001, beta_end: float = 0.02,
                 beta_schedule: str = "linear", trained_betas=None, clip_sample: bool = True,
                 set_alpha_to_one: bool = True, steps_offset: int = 0, prediction_type: str = "epsilon",
                 thresholding: bool = False, dynamic_thresholding_ratio: float = 0.995,
                 clip_sample_range: float = 1.0, sample_max_value: float = 1.0, timestep_spacing: str = "leading",
                 rescale_betas_zero_snr: bool = False):
        self.register_to_config(locals())
        self._init_schedule()
        # ᾱ after the last step: there is no earlier timestep, so use 1 (clean) or ᾱ_0
        self.final_alpha_cumprod = self.one if set_alpha_to_one else self.alphas_cumprod[0]

    def step(self, model_output, timestep, sample, eta: float = 0.0, use_clipped_model_output: bool = False,
             generator=None, variance_noise=None) -> SchedulerOutput:
        """One step x_t → x_t' (t' = ``previous_timestep(t)``).

        Args:
            model_output: the model's prediction at (x_t, t), (B, C, H, W).
            timestep: t, a grid point (Python int or 0-d array).
            sample: x_t, (B, C, H, W); its dtype is kept.
            eta: η ≥ 0, the weight of the random noise: 0 is deterministic DDIM, 1 matches DDPM's posterior.
            use_clipped_model_output: recompute ε̂ from the clipped x̂_0 (as GLIDE does).
            generator: random generator for z when η > 0 (``backend.rng(seed)``, created once before the loop).
            variance_noise: z itself, (B, C, H, W), instead of a generator.
        Returns:
            SchedulerOutput(prev_sample=x_t', pred_original_sample=x̂_0).
        """
        if self.num_inference_steps is None:
            raise RuntimeError("DDIMScheduler.step: no inference timesteps yet; call "
                               "scheduler.set_timesteps(num_inference_steps) before sampling")
        xp = backend.get_array_module(sample)
        t = timestep_as_int(timestep)
        prev_t = self.previous_timestep(t)

        # 1. ᾱ for both ends of the step (0-d arrays on the device, in the sample's precision)
        dtype = step_dtype(sample)
        alpha_prod_t = self.alphas_cumprod[t].astype(dtype)
        alpha_prod_t_prev = (self.alphas_cumprod[prev_t] if prev_t >= 0 else self.final_alpha_cumprod).astype(dtype)

        # 2. x̂_0 and ε̂ from the model output                                         DDIM eq. 9
        prediction_type = self.config.prediction_type
        pred_original_sample = predict_original_sample(model_output, sample, alpha_prod_t, prediction_type)
        pred_epsilon = predict_epsilon(model_output, sample, alpha_prod_t, prediction_type)

        # 3. clip or threshold x̂_0; optionally make ε̂ consistent with the clipped x̂_0
        pred_original_sample = self._clip_or_threshold(pred_original_sample)
        if use_clipped_model_output:
            pred_epsilon = predict_epsilon(pred_original_sample, sample, alpha_prod_t, "sample")

        # 4. σ_t(η) = η √((1-ᾱ_t')/(1-ᾱ_t)) √(1 - ᾱ_t/ᾱ_t')                          DDIM eq. 16
        std_dev_t = eta * xp.sqrt(posterior_variance(alpha_prod_t, alpha_prod_t_prev))

        # 5. x_t' = √ᾱ_t' x̂_0 + √(1 - ᾱ_t' - σ_t²) ε̂ + σ_t z                           DDIM eq. 12
        prev_sample = (xp.sqrt(alpha_prod_t_prev) * pred_original_sample
                       + xp.sqrt(1 - alpha_prod_t_prev - std_dev_t**2) * pred_epsilon)
        if eta > 0:
            prev_sample = prev_sample + std_dev_t * draw_noise("DDIMScheduler", model_output, generator,
                                                               variance_noise)

        return SchedulerOutput(prev_sample=prev_sample.astype(sample.dtype, copy=False),
                               pred_original_sample=pred_original_sample.astype(sample.dtype, copy=False))
