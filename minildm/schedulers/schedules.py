"""Noise schedules: how much noise the forward process adds at each of the T training steps.

Notation (shared by every file in minildm.schedulers):
    T      num_train_timesteps; integer timesteps t = 0 … T-1 (t = 0: almost clean, t = T-1: almost pure noise)
    β_t    betas[t], the variance step t adds:        q(x_t | x_{t-1}) = N(√(1-β_t) x_{t-1}, β_t I)   (DDPM eq. 2)
    α_t    alphas[t] = 1 - β_t
    ᾱ_t    alphas_cumprod[t] = α_0 α_1 … α_t, so      q(x_t | x_0) = N(√ᾱ_t x_0, (1-ᾱ_t) I)          (DDPM eq. 4)
    SNR_t  signal-to-noise ratio ᾱ_t / (1-ᾱ_t);  log_snr = log SNR_t  (DPM-Solver's λ_t is half of it)

Precision. Trained diffusion models were trained with diffusers' float32 betas, so that is what we store:
every schedule is computed in float64 and rounded once to float32 (diffusers' values, up to the last-bit rounding
of ``torch.linspace``), and ᾱ is a float64 running product of the float32 α_t, rounded to float32 — exactly what
``torch.cumprod`` computes on a CPU. Schedules live on the active backend (NumPy or CuPy).
"""
from __future__ import annotations

import math

from .. import backend

BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid")


def make_betas(beta_schedule: str = "linear", num_train_timesteps: int = 1000, beta_start: float = 1e-4,
               beta_end: float = 0.02):
    """β_0 … β_{T-1} as a float32 array (T,) for one of ``BETA_SCHEDULES``.

    - ``"linear"``: β rises linearly from ``beta_start`` to ``beta_end`` (DDPM, Ho et al. 2020, sec. 4).
    - ``"scaled_linear"``: linear in √β (Latent Diffusion / Stable Diffusion: 0.00085 → 0.012).
    - ``"squaredcos_cap_v2"``: the cosine schedule of Nichol & Dhariwal 2021 (eq. 17); ignores beta_start/end.
    - ``"sigmoid"``: a sigmoid from ``beta_start`` to ``beta_end`` over [-6, 6] (GeoDiff, Xu et al. 2022).
    """
    xp, T = backend.xp(), num_train_timesteps
    if beta_schedule == "linear":
        betas = xp.linspace(beta_start, beta_end, T, dtype=xp.float64)
    elif beta_schedule == "scaled_linear":
        betas = xp.linspace(beta_start**0.5, beta_end**0.5, T, dtype=xp.float64) ** 2
    elif beta_schedule == "squaredcos_cap_v2":
        betas = betas_for_alpha_bar(cosine_alpha_bar, T)
    elif beta_schedule == "sigmoid":
        s = 1 / (1 + xp.exp(-xp.linspace(-6, 6, T, dtype=xp.float64)))
        betas = s * (beta_end - beta_start) + beta_start
    else:
        raise ValueError(f"beta_schedule={beta_schedule!r} is not supported; valid: {', '.join(BETA_SCHEDULES)}")
    return betas.astype(xp.float32)


def cosine_alpha_bar(s):
    """ᾱ(s) for continuous time s ∈ [0, 1]: cos²((s + 0.008)/1.008 · π/2)   (Nichol & Dhariwal 2021, eq. 17)."""
    xp = backend.get_array_module(s)
    return xp.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2


def betas_for_alpha_bar(alpha_bar, num_train_timesteps: int, max_beta: float = 0.999):
    """Betas that make ᾱ_t follow a continuous curve ``alpha_bar(s)``, s = t/T: β_t = 1 - ᾱ((t+1)/T) / ᾱ(t/T).

    β is capped at ``max_beta`` so the last steps never divide by a vanishing ᾱ. Returns float64 (T,).
    """
    xp = backend.xp()
    s = xp.arange(num_train_timesteps, dtype=xp.float64)
    betas = 1 - alpha_bar((s + 1) / num_train_timesteps) / alpha_bar(s / num_train_timesteps)
    return xp.minimum(betas, max_beta)


def alphas_cumprod_from_betas(betas):
    """ᾱ_t = ∏_{s≤t} (1 - β_s), as float32 (T,): a float64 running product of the float32 α_t, rounded once."""
    xp = backend.get_array_module(betas)
    alphas = 1 - betas
    return xp.cumprod(alphas.astype(xp.float64)).astype(alphas.dtype)


def rescale_zero_terminal_snr(betas):
    """Rescale betas so the last step is pure noise: ᾱ_{T-1} = 0 (SNR 0), ᾱ_0 unchanged.

    Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps are Flawed", Algorithm 1: shift √ᾱ so its
    last value is 0, scale it so its first value is unchanged, and turn it back into betas (the last one is 1).
    With ᾱ_{T-1} = 0 an ε-prediction model cannot be inverted at t = T-1; use it with ``v_prediction``.
    """
    xp = backend.get_array_module(betas)
    sqrt_alpha_bar = xp.sqrt(xp.cumprod(1 - betas.astype(xp.float64)))
    first, last = sqrt_alpha_bar[0], sqrt_alpha_bar[-1]
    sqrt_alpha_bar = (sqrt_alpha_bar - last) * (first / (first - last))
    alpha_bar = sqrt_alpha_bar**2
    alphas = xp.concatenate([alpha_bar[:1], alpha_bar[1:] / alpha_bar[:-1]])  # undo the running product
    return (1 - alphas).astype(betas.dtype)


def snr(alphas_cumprod):
    """Signal-to-noise ratio of x_t:  SNR_t = ᾱ_t / (1 - ᾱ_t)   (Kingma et al. 2021, "Variational Diffusion Models")."""
    return alphas_cumprod / (1 - alphas_cumprod)


def log_snr(alphas_cumprod):
    """log SNR_t = log ᾱ_t - log(1 - ᾱ_t); strictly decreasing in t, -inf where ᾱ_t = 0 (zero terminal SNR)."""
    xp = backend.get_array_module(alphas_cumprod)
    return xp.log(alphas_cumprod) - xp.log1p(-alphas_cumprod)
