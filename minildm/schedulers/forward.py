"""The forward (noising) process and the identities every sampler is built from.

Notation (see schedules.py): x_0 clean sample, ε ~ N(0, I) noise, ᾱ_t = alphas_cumprod[t], and

    x_t = √ᾱ_t x_0 + √(1-ᾱ_t) ε                                           (DDPM eq. 4, reparameterised)

so any one of (x_0, ε, v) determines the other two given x_t. A model predicts one of them, named by its
``prediction_type``: ``"epsilon"`` (ε̂), ``"sample"`` (x̂_0) or ``"v_prediction"`` (v̂ = √ᾱ_t ε - √(1-ᾱ_t) x_0).
Hats mark predictions: x̂_0 is the model's guess of x_0.

Samplers step from t to an earlier t' (t' = t - 1 in DDPM; further back after ``set_timesteps``). The functions
here take ᾱ_t and ᾱ_t' (``alpha_prod_t``, ``alpha_prod_t_prev``) as arrays of any broadcastable shape: 0-d
scalars inside a sampler's step, (B, 1, 1, 1) for per-sample timesteps.
"""
from __future__ import annotations

from .. import backend

PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")


def _alpha_bar_per_sample(alphas_cumprod, timesteps, like):
    """ᾱ_t for each sample of ``like`` (B, ...), in like's dtype, shaped (B, 1, …, 1) to broadcast."""
    xp = backend.get_array_module(like)
    t = xp.asarray(timesteps).reshape(-1)  # an int, a list or a (B,) array of timesteps
    return alphas_cumprod.astype(like.dtype)[t].reshape((-1,) + (1,) * (like.ndim - 1))


def q_sample(original_samples, noise, timesteps, alphas_cumprod):
    """Sample q(x_t | x_0):  x_t = √ᾱ_t x_0 + √(1-ᾱ_t) ε                    (DDPM eq. 4).

    original_samples x_0 and noise ε: (B, C, H, W); timesteps: an int or (B,) ints, one per sample.
    Computed in the samples' dtype.
    """
    xp = backend.get_array_module(original_samples)
    alpha_bar = _alpha_bar_per_sample(alphas_cumprod, timesteps, original_samples)
    return xp.sqrt(alpha_bar) * original_samples + xp.sqrt(1 - alpha_bar) * noise


def get_velocity(sample, noise, timesteps, alphas_cumprod):
    """The v-prediction target  v = √ᾱ_t ε - √(1-ᾱ_t) x_0   (Salimans & Ho 2022, sec. 4); shapes as ``q_sample``."""
    xp = backend.get_array_module(sample)
    alpha_bar = _alpha_bar_per_sample(alphas_cumprod, timesteps, sample)
    return xp.sqrt(alpha_bar) * noise - xp.sqrt(1 - alpha_bar) * sample


def predict_original_sample(model_output, sample, alpha_prod_t, prediction_type: str):
    """x̂_0 from the model output at x_t = ``sample``.

    epsilon:       x̂_0 = (x_t - √(1-ᾱ_t) ε̂) / √ᾱ_t      (DDPM eq. 15, DDIM eq. 9)
    sample:        x̂_0 = model output
    v_prediction:  x̂_0 = √ᾱ_t x_t - √(1-ᾱ_t) v̂          (Salimans & Ho 2022, sec. 4)
    """
    xp = backend.get_array_module(sample)
    if prediction_type == "epsilon":
        return (sample - xp.sqrt(1 - alpha_prod_t) * model_output) / xp.sqrt(alpha_prod_t)
    if prediction_type == "sample":
        return model_output
    if prediction_type == "v_prediction":
        return xp.sqrt(alpha_prod_t) * sample - xp.sqrt(1 - alpha_prod_t) * model_output
    raise ValueError(f"prediction_type={prediction_type!r} is not supported; valid: {', '.join(PREDICTION_TYPES)}")


def predict_epsilon(model_output, sample, alpha_prod_t, prediction_type: str):
    """ε̂ from the model output at x_t = ``sample`` (the same identity solved for ε).

    epsilon:       ε̂ = model output
    sample:        ε̂ = (x_t - √ᾱ_t x̂_0) / √(1-ᾱ_t)
    v_prediction:  ε̂ = √ᾱ_t v̂ + √(1-ᾱ_t) x_t
    """
    xp = backend.get_array_module(sample)
    if prediction_type == "epsilon":
        return model_output
    if prediction_type == "sample":
        return (sample - xp.sqrt(alpha_prod_t) * model_output) / xp.sqrt(1 - alpha_prod_t)
    if prediction_type == "v_prediction":
        return xp.sqrt(alpha_prod_t) * model_output + xp.sqrt(1 - alpha_prod_t) * sample
    raise ValueError(f"prediction_type={prediction_type!r} is not supported; valid: {', '.join(PREDICTION_TYPES)}")


def posterior_mean_coefficients(alpha_prod_t, alpha_prod_t_prev):
    """The two weights of the posterior mean  μ̃ = c_0 · x_0 + c_t · x_t   (DDPM eq. 7).

    For a jump t → t' the one-step α_t and β_t of the paper become ᾱ_t/ᾱ_t' and 1 - ᾱ_t/ᾱ_t'.
        c_0 = √ᾱ_t' β_t / (1 - ᾱ_t)          c_t = √α_t (1 - ᾱ_t') / (1 - ᾱ_t)
    """
    xp = backend.get_array_module(alpha_prod_t)
    current_alpha_t = alpha_prod_t / alpha_prod_t_prev
    current_beta_t = 1 - current_alpha_t
    coef_original = xp.sqrt(alpha_prod_t_prev) * current_beta_t / (1 - alpha_prod_t)
    coef_current = xp.sqrt(current_alpha_t) * (1 - alpha_prod_t_prev) / (1 - alpha_prod_t)
    return coef_original, coef_current


def posterior_mean(original_sample, sample, alpha_prod_t, alpha_prod_t_prev):
    """Mean of q(x_t' | x_t, x_0):  μ̃ = c_0 x_0 + c_t x_t                  (DDPM eqs. 6–7)."""
    coef_original, coef_current = posterior_mean_coefficients(alpha_prod_t, alpha_prod_t_prev)
    return coef_original * original_sample + coef_current * sample


def posterior_variance(alpha_prod_t, alpha_prod_t_prev):
    """Variance of q(x_t' | x_t, x_0):  β̃_t = (1 - ᾱ_t') / (1 - ᾱ_t) · β_t     (DDPM eq. 7)."""
    current_beta_t = 1 - alpha_prod_t / alpha_prod_t_prev
    return (1 - alpha_prod_t_prev) / (1 - alpha_prod_t) * current_beta_t


def posterior_mean_variance(original_sample, sample, alpha_prod_t, alpha_prod_t_prev):
    """(μ̃, β̃) of the Gaussian q(x_t' | x_t, x_0)                             (DDPM eqs. 6–7)."""
    return (posterior_mean(original_sample, sample, alpha_prod_t, alpha_prod_t_prev),
            posterior_variance(alpha_prod_t, alpha_prod_t_prev))
