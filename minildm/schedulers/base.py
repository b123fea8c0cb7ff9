"""What every discrete-time scheduler shares: the noise schedule, the timestep grid, x̂_0 clipping, the output.

Notation (see schedules.py and forward.py): T = num_train_timesteps, ᾱ_t = alphas_cumprod[t], x̂_0 the predicted
clean sample. Inference runs on a grid of n ≤ T timesteps, highest first (``scheduler.timesteps``); one
``step`` moves the sample from one grid point t to the next one down, t' (or to "before 0": t' = -1).

Timesteps are control data, so the grid is kept as Python ints for every decision a step makes (which t' follows
t, whether to add noise); ``scheduler.timesteps`` is the same grid as a backend int64 array, ready for a model.
A step reads ᾱ_t by indexing with that int: the result stays on the device, and nothing is copied to the host.

Precision: the schedule is stored in float32 (the numbers the model was trained with); a step does its arithmetic
in the sample's precision (float64 when sampling in float64, float32 otherwise) and returns the sample's dtype.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import backend
from .config import ConfigMixin
from .forward import PREDICTION_TYPES, get_velocity, q_sample
from .schedules import BETA_SCHEDULES, alphas_cumprod_from_betas, make_betas, rescale_zero_terminal_snr

TIMESTEP_SPACINGS = ("leading", "trailing", "linspace")


@dataclass
class SchedulerOutput:
    """What ``step`` returns. prev_sample: x_t', the next model input (B, C, H, W); pred_original_sample: x̂_0."""

    prev_sample: object
    pred_original_sample: object = None


def check_option(owner: str, name: str, value, valid) -> None:
    """Raise ``ValueError`` naming the valid choices when ``value`` is not one of them."""
    if value not in valid:
        raise ValueError(f"{owner}: {name}={value!r} is not supported; valid: {', '.join(map(repr, valid))}")


def round_linspace(start: float, stop: float, num: int) -> list[int]:
    """``numpy.linspace(start, stop, num).round()`` as Python ints (same float64 arithmetic, halves to even)."""
    if num == 1:
        return [round(start)]
    step = (stop - start) / (num - 1)
    return [round(start + i * step) for i in range(num - 1)] + [round(stop)]


def round_arange_down(start: float, step: float, num: int) -> list[int]:
    """The first ``num`` values of ``numpy.arange(start, 0, -step).round()`` as Python ints.

    NumPy computes element i as start + i·d with d = (start - step) - start (not exactly -step), so we do too:
    that decides which way ties like 937.5 round. Taking exactly ``num`` values also avoids a NumPy quirk: for
    some n (61, 103, …) ``arange(T, 0, -T/n)`` has n + 1 elements, the last one ≈ 0.
    """
    delta = (start - step) - start
    return [round(start + i * delta) for i in range(num)]


def spaced_timesteps(timestep_spacing: str, num_inference_steps: int, num_train_timesteps: int,
                     steps_offset: int = 0) -> list[int]:
    """The n = ``num_inference_steps`` timesteps a DDPM/DDIM sampler visits, highest first.

    Lin et al. 2023, Table 2 (T = 1000, n = 10):
      leading   0, k, 2k, … (k = T // n) plus ``steps_offset``, reversed: 900, 800, …, 0  (SD v1 uses offset 1)
      trailing  T - 1 downwards in steps of T/n: 999, 899, …, 99  (always starts at the noisiest step)
      linspace  n values evenly spread over [0, T - 1], rounded: 999, 888, …, 0
    """
    n, T = num_inference_steps, num_train_timesteps
    if timestep_spacing == "leading":
        return [i * (T // n) + steps_offset for i in reversed(range(n))]
    if timestep_spacing == "trailing":
        return [t - 1 for t in round_arange_down(T, T / n, n)]
    if timestep_spacing == "linspace":
        return round_linspace(0, T - 1, n)[::-1]
    raise ValueError(f"timestep_spacing={timestep_spacing!r} is not supported; valid: {', '.join(TIMESTEP_SPACINGS)}")


def dynamic_threshold(sample, ratio: float = 0.995, max_value: float = 1.0):
    """Imagen's dynamic thresholding of x̂_0 (Saharia et al. 2022, sec. 2.3).

    Per sample, s = the ``ratio`` quantile of |x̂_0|, kept within [1, ``max_value``]; then clip x̂_0 to [-s, s]
    and divide by s. With s = 1 this is ordinary clipping to [-1, 1]. Not meant for latent diffusion.
    """
    xp = backend.get_array_module(sample)
    flat = sample.reshape(sample.shape[0], -1)
    s = xp.quantile(xp.abs(flat), ratio, axis=1)
    s = xp.minimum(xp.maximum(s, 1), max_value)[:, None]
    return (xp.clip(flat, -s, s) / s).reshape(sample.shape)


def step_dtype(sample):
    """The precision a step computes in: float64 for float64 samples, float32 for everything else."""
    xp = backend.get_array_module(sample)
    return xp.float64 if sample.dtype == xp.float64 else xp.float32


def timestep_as_int(timestep) -> int:
    """A timestep given as a Python int, a NumPy integer or a 0-d array, as a Python int.

    Pass Python ints (``for t in scheduler.timesteps.tolist()``) to keep a GPU loop free of host reads; a 0-d
    CuPy array works too, at the cost of reading one integer back from the device.
    """
    return int(timestep)


def draw_noise(owner: str, like, generator, variance_noise):
    """The z ~ N(0, I) of a stochastic step, shaped and typed like ``like``: ``variance_noise`` if given, else
    drawn from ``generator`` (a ``backend.rng(seed)`` made once before the loop)."""
    xp = backend.get_array_module(like)
    if variance_noise is not None:
        if generator is not None:
            raise ValueError(f"{owner}.step: pass either generator or variance_noise, not both")
        return xp.asarray(variance_noise)
    if generator is None:
        raise ValueError(f"{owner}.step: this step adds noise; pass generator=backend.rng(seed) "
                         "(made once, before the loop) or variance_noise=")
    if isinstance(generator, int):
        raise TypeError(f"{owner}.step: generator must be a generator, e.g. backend.rng({generator}) created once "
                        "before the loop; a bare seed would repeat the same noise at every step")
    dtype = xp.float64 if like.dtype == xp.float64 else xp.float32
    noise = generator.standard_normal(like.shape, dtype=dtype)
    return xp.asarray(noise).astype(like.dtype, copy=False)


class SchedulerBase(ConfigMixin):
    """Shared state of the discrete-time schedulers: betas, alphas, alphas_cumprod and the timestep grid."""

    order = 1                # model evaluations per step (1 for all schedulers here; pipelines read it)
    init_noise_sigma = 1.0   # x_T ~ N(0, init_noise_sigma² I)

    def _init_schedule(self) -> None:
        """Build β, α, ᾱ from ``self.config`` and set the full training grid T-1, …, 0 as the timesteps."""
        c, name = self.config, type(self).__name__
        check_option(name, "beta_schedule", c.beta_schedule, BETA_SCHEDULES)
        check_option(name, "prediction_type", c.prediction_type, PREDICTION_TYPES)
        check_option(name, "timestep_spacing", c.timestep_spacing, TIMESTEP_SPACINGS)
        xp = backend.xp()
        if c.trained_betas is not None:
            self.betas = xp.asarray(c.trained_betas, dtype=xp.float32)
        else:
            self.betas = make_betas(c.beta_schedule, c.num_train_timesteps, c.beta_start, c.beta_end)
        if c.rescale_betas_zero_snr:
            self.betas = rescale_zero_terminal_snr(self.betas)
        self.alphas = 1 - self.betas                                  # α_t = 1 - β_t
        self.alphas_cumprod = alphas_cumprod_from_betas(self.betas)   # ᾱ_t = α_0 ⋯ α_t
        self.one = xp.asarray(1.0, dtype=xp.float32)                  # ᾱ before step 0 (no noise yet)
        self.num_inference_steps = None
        self._set_grid(list(range(c.num_train_timesteps - 1, -1, -1)))

    def _set_grid(self, timesteps: list[int]) -> None:
        """Store the grid as Python ints (``timestep_list``) and as a backend int64 array (``timesteps``)."""
        self.timestep_list = [int(t) for t in timesteps]
        self.timesteps = backend.xp().asarray(self.timestep_list, dtype=backend.xp().int64)
        # the grid point each timestep steps to; -1 means "past the last step"
        self._prev = dict(zip(self.timestep_list, self.timestep_list[1:] + [-1]))

    def set_timesteps(self, num_inference_steps: int | None = None, timesteps: list[int] | None = None) -> None:
        """Choose the inference grid: ``num_inference_steps`` spaced by ``timestep_spacing``, or explicit
        ``timesteps`` (strictly decreasing ints below num_train_timesteps). Run before sampling."""
        T, name = self.config.num_train_timesteps, type(self).__name__
        if (num_inference_steps is None) == (timesteps is None):
            raise ValueError(f"{name}.set_timesteps: pass exactly one of num_inference_steps or timesteps")
        if timesteps is not None:
            timesteps = [timestep_as_int(t) for t in timesteps]
            if any(a <= b for a, b in zip(timesteps, timesteps[1:])) or not 0 <= timesteps[-1] <= timesteps[0] < T:
                raise ValueError(f"{name}.set_timesteps: timesteps must be strictly decreasing within [0, {T})")
        else:
            if not 1 <= num_inference_steps <= T:
                raise ValueError(f"{name}.set_timesteps: num_inference_steps={num_inference_steps} must be in "
                                 f"[1, num_train_timesteps={T}]")
            timesteps = spaced_timesteps(self.config.timestep_spacing, num_inference_steps, T,
                                         self.config.steps_offset)
        self.num_inference_steps = len(timesteps)
        self._set_grid(timesteps)

    def previous_timestep(self, timestep) -> int:
        """The grid point after ``timestep`` (the next one down), or -1 after the last; looked up in the grid."""
        t = timestep_as_int(timestep)
        if t not in self._prev:
            raise ValueError(f"{type(self).__name__}: timestep {t} is not on the current grid "
                             f"{self.timestep_list[:3]}…{self.timestep_list[-2:]} (see set_timesteps)")
        return self._prev[t]

    def scale_model_input(self, sample, timestep=None):
        """The model input at ``timestep``: x_t itself for these schedulers (kept for a uniform pipeline loop)."""
        return sample

    def add_noise(self, original_samples, noise, timesteps):
        """x_t = √ᾱ_t x_0 + √(1-ᾱ_t) ε, one timestep per sample (DDPM eq. 4); see ``forward.q_sample``."""
        return q_sample(original_samples, noise, timesteps, self.alphas_cumprod)

    def get_velocity(self, sample, noise, timesteps):
        """v = √ᾱ_t ε - √(1-ᾱ_t) x_0, the v-prediction training target; see ``forward.get_velocity``."""
        return get_velocity(sample, noise, timesteps, self.alphas_cumprod)

    def _clip_or_threshold(self, pred_original_sample):
        """Keep x̂_0 in range: dynamic thresholding if ``thresholding``, else clipping if ``clip_sample``."""
        c, xp = self.config, backend.get_array_module(pred_original_sample)
        if c.thresholding:
            return dynamic_threshold(pred_original_sample, c.dynamic_thresholding_ratio, c.sample_max_value)
        if c.get("clip_sample"):
            return xp.clip(pred_original_sample, -c.clip_sample_range, c.clip_sample_range)
        return pred_original_sample

    def __len__(self) -> int:
        return self.config.num_train_timesteps
