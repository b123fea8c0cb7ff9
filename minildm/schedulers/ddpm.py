"""DDPM ancestral sampling (Ho et al. 2020, "Denoising Diffusion Probabilistic Models").

Notation:
    x_t      the current sample; x_t' the sample one grid point down (t' = t - 1 on the full grid)
    β_t, α_t, ᾱ_t = betas[t], 1 - β_t, alphas_cumprod[t];  ᾱ_{-1} = 1 (no noise before step 0)
    ε̂, x̂_0   the model's noise prediction and the clean sample it implies
    μ̃, β̃     mean and variance of the posterior q(x_t' | x_t, x_0)                       (DDPM eqs. 6–7)
    z        fresh Gaussian noise, z ~ N(0, I)

One step (DDPM Algorithm 2): predict x̂_0, then draw x_t' ~ N(μ̃(x_t, x̂_0), σ_t² I) with σ_t² chosen by
``variance_type``. Skipping timesteps (``set_timesteps(n)``) replaces the one-step α_t, β_t with ᾱ_t/ᾱ_t' and
1 - ᾱ_t/ᾱ_t', which is the exact posterior for the jump t → t'.
"""
from __future__ import annotations

from .. import backend
from .base import SchedulerBase, SchedulerOutput, check_option, draw_noise, step_dtype, timestep_as_int
from .forward import posterior_mean, posterior_variance, predict_original_sample

VARIANCE_TYPES = ("fixed_small", "fixed_small_log", "fixed_large", "fixed_large_log", "learned", "learned_range")


class DDPMScheduler(SchedulerBase):
    """Denoising diffusion probabilistic model sampler (stochastic, one model call per step).

    Args:
        num_train_timesteps: T, the number of diffusion steps the model was trained with.
        beta_start, beta_end: first and last β of the ``linear``, ``scaled_linear`` and ``sigmoid`` schedules.
        beta_schedule: ``"linear"`` (DDPM), ``"scaled_linear"`` (Stable Diffusion), ``"squaredcos_cap_v2"``
            (cosine, Nichol & Dhariwal 2021) or ``"sigmoid"`` (GeoDiff).
        trained_betas: explicit betas (a list or array of length T); overrides the schedule.
        variance_type: the reverse-step variance σ_t²:
            ``"fixed_small"`` σ² = β̃_t, the posterior variance (DDPM's choice for x_0 ~ a point mass);
            ``"fixed_small_log"`` the same, computed as exp(½ log β̃_t) (RL diffuser);
            ``"fixed_large"`` σ² = β_t (DDPM's choice for x_0 ~ N(0, I));
            ``"fixed_large_log"`` the same, computed as exp(log β_t) (GLIDE);
            ``"learned"`` the model predicts σ² itself in its extra channels;
            ``"learned_range"`` the model predicts v ∈ [-1, 1] and log σ² = ½(v+1) log β_t + ½(1-v) log β̃_t
            (Nichol & Dhariwal 2021, eq. 15). For the two learned types the model output has 2C channels:
            the prediction, then the variance.
        clip_sample: clip x̂_0 to [-clip_sample_range, clip_sample_range] (pixel-space models; not for latents).
        prediction_type: what the model predicts: ``"epsilon"`` (ε), ``"sample"`` (x_0) or ``"v_prediction"``.
        thresholding: use Imagen's dynamic thresholding of x̂_0 instead of clipping (pixel-space models only).
        dynamic_thresholding_ratio: the quantile of |x̂_0| used as threshold (``thresholding=True`` only).
        clip_sample_range: the bound for ``clip_sample``.
        sample_max_value: the largest threshold dynamic thresholding may use.
        timestep_spacing: ``"leading"``, ``"trailing"`` or ``"linspace"``: how ``set_timesteps(n)`` spreads its
            n steps over [0, T) (Lin et al. 2023, Table 2; see ``base.spaced_timesteps``).
        steps_offset: added to every ``"leading"`` timestep (Stable Diffusion v1 uses 1).
        rescale_betas_zero_snr: rescale the schedule to zero terminal SNR (Lin et al. 2023); pair it with
            ``v_prediction`` and ``"trailing"`` spacing.

    Before ``set_timesteps`` the grid is every training step T-1, …, 0 (the original 1000-step sampler).
    Differences from diffusers: ``fixed_large_log`` gives the variance its name promises (diffusers takes the
    square root of log β_t, a NaN); a step that needs noise requires ``generator`` or ``variance_noise`` (no
    hidden global random state).
    """

    def __init__(self, num_train_timesteps: int = 1000, beta_start: float = 0.0001, beta_end: float = 0.02,
                 beta_schedule: str = "linear", trained_betas=None, variance_type: str = "fixed_small",
                 clip_sample: bool = True, prediction_type: str = "epsilon", thresholding: bool = False,
                 dynamic_thresholding_ratio: float = 0.995, clip_sample_range: float = 1.0,
                 sample_max_value: float = 1.0, timestep_spacing: str = "leading", steps_offset: int = 0,
                 rescale_betas_zero_snr: bool = False):
        self.register_to_config(locals())
        check_option("DDPMScheduler", "variance_type", variance_type, VARIANCE_TYPES)
        self._init_schedule()

    def step(self, model_output, timestep, sample, generator=None, variance_noise=None) -> SchedulerOutput:
        """One reverse step x_t → x_t' (t' = ``previous_timestep(t)``).

        Args:
            model_output: the model's prediction at (x_t, t), (B, C, H, W); (B, 2C, H, W) for learned variances.
            timestep: t, a grid point (Python int or 0-d array).
            sample: x_t, (B, C, H, W); its dtype is kept.
            generator: random generator for z (``backend.rng(seed)``, created once before the loop).
            variance_noise: z itself, (B, C, H, W), instead of a generator.
        Returns:
            SchedulerOutput(prev_sample=x_t', pred_original_sample=x̂_0).
        """
        t = timestep_as_int(timestep)
        prev_t = self.previous_timestep(t)
        model_output, predicted_variance = self._split_learned_variance(model_output, sample)

        # 1. ᾱ for both ends of the step (0-d arrays on the device, in the sample's precision)
        dtype = step_dtype(sample)
        alpha_prod_t = self.alphas_cumprod[t].astype(dtype)
        alpha_prod_t_prev = (self.alphas_cumprod[prev_t] if prev_t >= 0 else self.one).astype(dtype)

        # 2. x̂_0 from the model output                                             DDPM eq. 15
        pred_original_sample = predict_original_sample(model_output, sample, alpha_prod_t,
                                                       self.config.prediction_type)
        pred_original_sample = self._clip_or_threshold(pred_original_sample)

        # 3. the posterior mean  μ̃ = c_0 x̂_0 + c_t x_t                               DDPM eq. 7
        prev_sample = posterior_mean(pred_original_sample, sample, alpha_prod_t, alpha_prod_t_prev)

        # 4. x_t' = μ̃ + σ_t z  (no noise on the last step, from t = 0)              DDPM Algorithm 2, line 4
        if t > 0:
            z = draw_noise("DDPMScheduler", model_output, generator, variance_noise)
            prev_sample = prev_sample + self._std_dev(alpha_prod_t, alpha_prod_t_prev, predicted_variance) * z

        return SchedulerOutput(prev_sample=prev_sample.astype(sample.dtype, copy=False),
                               pred_original_sample=pred_original_sample.astype(sample.dtype, copy=False))

    def _split_learned_variance(self, model_output, sample):
        """(prediction, predicted variance) for the learned variance types, which need 2C output channels."""
        channels, learned = sample.shape[1], self.config.variance_type in ("learned", "learned_range")
        expected = 2 * channels if learned else channels
        if model_output.shape[1] != expected:
            raise ValueError(f"DDPMScheduler.step: model_output has {model_output.shape[1]} channels, expected "
                             f"{expected} for variance_type={self.config.variance_type!r} and a {channels}-channel "
                             "sample")
        if not learned:
            return model_output, None
        return model_output[:, :channels], model_output[:, channels:]

    def _std_dev(self, alpha_prod_t, alpha_prod_t_prev, predicted_variance):
        """σ_t, the standard deviation of the noise added by the step, for each ``variance_type``."""
        xp, variance_type = backend.get_array_module(alpha_prod_t), self.config.variance_type
        current_beta_t = 1 - alpha_prod_t / alpha_prod_t_prev                          # β_t for the jump t → t'
        small = xp.maximum(posterior_variance(alpha_prod_t, alpha_prod_t_prev), 1e-20)  # β̃_t > 0, to take a log
        if variance_type == "fixed_small":
            return xp.sqrt(small)
        if variance_type == "fixed_small_log":
            return xp.exp(0.5 * xp.log(small))
        if variance_type == "fixed_large":
            return xp.sqrt(current_beta_t)
        if variance_type == "fixed_large_log":
            return xp.exp(0.5 * xp.log(current_beta_t))
        if variance_type == "learned":
            return xp.sqrt(predicted_variance)
        # learned_range: interpolate the log-variance between β̃_t and β_t     Nichol & Dhariwal 2021, eq. 15
        frac = (predicted_variance + 1) / 2
        log_variance = frac * xp.log(current_beta_t) + (1 - frac) * xp.log(small)
        return xp.exp(0.5 * log_variance)
