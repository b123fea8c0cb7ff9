"""A whole diffusion model on 2-D points: the first recipe to read, and ``python -m minildm demo``.

Stable Diffusion, shrunk until the idea is all that is left. The data are points on a spiral; the model is a small
MLP that looks at a noisy point x_t and the noise level t and predicts the noise ε that was added. Training is
DDPM's Algorithm 1, sampling its Algorithm 2 (Ho et al. 2020, "Denoising Diffusion Probabilistic Models") and
DDIM's deterministic shortcut (Song et al. 2020). Every part is the real one the image models use: the noise
schedule and samplers from ``minildm.schedulers``, layers from ``minildm.nn``, AdamW and EMA from ``minildm.optim``,
and the shared loop of ``minildm.train``. It trains in well under a minute on two CPU cores.

Notation (DDPM): T training timesteps; β_t the noise added at step t; ᾱ_t = Π_{s≤t} (1 - β_s);
    x_t = √ᾱ_t x_0 + √(1-ᾱ_t) ε,   ε ~ N(0, I)                                   (DDPM eq. 4)
and the network ε_θ(x_t, t) is trained so that ε_θ(x_t, t) ≈ ε. Timesteps here are 0-based, t ∈ {0, ..., T-1}
(the paper counts 1..T).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy  # host side only: making the data set, measuring samples, plotting (the model uses backend arrays)

from .. import backend
from ..autograd import no_grad
from ..nn import Linear, Module, ModuleList, TimestepEmbedding, Timesteps, get_timestep_embedding, init
from ..nn import functional as F
from ..optim import EMA, AdamW, warmup_cosine
from ..schedulers import DDIMScheduler, DDPMScheduler
from .loop import train
from .plots import draw_loss_curve, new_figure, save_figure


@dataclass
class Toy2DConfig:
    """Every setting of the recipe, as plain values."""

    steps: int = 3000               # optimizer steps
    batch_size: int = 512
    lr: float = 3e-3                # peak learning rate (linear warmup, then cosine decay to 10 %)
    warmup_steps: int = 100
    weight_decay: float = 0.0       # tiny model, plenty of data: nothing to regularise
    ema_decay: float = 0.995        # the sampling weights average the last ~200 steps
    hidden: int = 128               # width of the MLP
    num_blocks: int = 3             # residual blocks
    time_embed_dim: int = 32        # width of the sinusoidal timestep embedding
    point_embed_dim: int = 32       # width of the sinusoidal embedding of each coordinate
    point_scale: float = 25.0       # coordinates are multiplied by this before embedding: the finest detail seen
    num_train_timesteps: int = 250  # T, with DDPM's linear β schedule from 1e-4 to 0.02 (see run())
    num_data: int = 8192            # points in the training set
    num_samples: int = 1000         # points drawn by each sampler at the end
    ddim_steps: int = 50            # DDIM needs ~20x fewer steps than DDPM's T
    checkpoint_every: int = 1000
    seed: int = 0


# -- the data: a spiral -----------------------------------------------------------------------------------------
THETA_MIN, THETA_MAX = 0.5 * math.pi, 4.5 * math.pi   # two turns
RADIUS = 2.0          # outer radius: the points then have about unit variance, like the noise ε they are mixed with
SPIRAL_NOISE = 0.04   # the spiral's thickness (std of the jitter)


def spiral_curve(s) -> numpy.ndarray:
    """Points on the noiseless spiral, (n,) positions s ∈ [0, 1] -> (n, 2), radius growing from 0.22 to 2."""
    theta = THETA_MIN + (THETA_MAX - THETA_MIN) * numpy.asarray(s, dtype=numpy.float64)
    radius = RADIUS * theta / THETA_MAX                          # Archimedes' spiral: r ∝ θ
    return numpy.stack([radius * numpy.cos(theta), radius * numpy.sin(theta)], axis=1)


def make_spiral(n: int, seed: int) -> numpy.ndarray:
    """The data set q(x_0): n points on the spiral plus a little Gaussian jitter, (n, 2) float32 on the host.

    Drawn on the host from ``seed``, so the data are the same on NumPy and CuPy. Arc length grows like θ², so
    positions s = √u with u uniform spread the points roughly evenly along the curve.
    """
    g = backend.host_rng(seed)
    points = spiral_curve(numpy.sqrt(g.random(n))) + SPIRAL_NOISE * g.standard_normal((n, 2))
    return points.astype(numpy.float32)


# -- the model: ε_θ(x_t, t) --------------------------------------------------------------------------------------
class ToyDenoiser(Module):
    """An MLP noise predictor ε_θ(x_t, t) with residual blocks and sinusoidal embeddings of t and of the point.

    The same design as the U-Net's, minus convolutions and attention: t becomes sines and cosines
    (``Timesteps``), an MLP turns them into a vector (``TimestepEmbedding``), and that vector is added to the
    features of the point, so every layer knows how noisy its input is.

    The point's two coordinates are embedded the same way (sines and cosines of ``point_scale`` · coordinate at
    geometrically spaced frequencies, "Fourier features", Tancik et al. 2020). An MLP fed raw coordinates learns
    smooth functions first and sharp detail only slowly; the high frequencies hand it the detail directly, and
    the spiral comes out clearly in a third of the steps.

    Shapes: x (B, 2) backend array, t (B,) ints -> ε̂ (B, 2) Tensor.
    """

    def __init__(self, hidden: int = 128, num_blocks: int = 3, time_embed_dim: int = 32,
                 point_embed_dim: int = 32, point_scale: float = 25.0, generator=None):
        super().__init__()
        g = init.host_generator(generator)  # one generator, drawn from in definition order: one seed, one model
        self.point_embed_dim, self.point_scale = point_embed_dim, point_scale
        self.time_proj = Timesteps(time_embed_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(time_embed_dim, hidden, generator=g)
        self.proj_in = Linear(2 * point_embed_dim, hidden, generator=g)
        self.blocks = ModuleList([Linear(hidden, hidden, generator=g) for _ in range(num_blocks)])
        self.proj_out = Linear(hidden, 2, generator=g)

    def forward(self, x, t):
        batch = x.shape[0]
        temb = self.time_embedding(self.time_proj(t))      # (B, hidden): "how noisy is x?"
        coords = x.reshape(-1) * x.dtype.type(self.point_scale)                       # (2B,): x0, y0, x1, y1, ...
        features = get_timestep_embedding(coords, self.point_embed_dim, flip_sin_to_cos=True,
                                          downscale_freq_shift=0).reshape(batch, -1)  # (B, 2 · point_embed_dim)
        h = self.proj_in(features) + temb                   # (B, hidden)
        for block in self.blocks:
            h = h + block(F.silu(h + temb))                 # residual block, reminded of t each time
        return self.proj_out(F.silu(h))                     # (B, 2): the predicted noise ε̂


# -- training: DDPM Algorithm 1 --------------------------------------------------------------------------------
def diffusion_loss(model, scheduler, data, batch_size: int, rng):
    """One Monte-Carlo estimate of DDPM's simplified objective L_simple (eq. 14), as a scalar Tensor.

    Args:
        data: (N, 2) backend array, the training set.  rng: this step's backend generator.
    """
    T = scheduler.config.num_train_timesteps
    x0 = data[rng.integers(0, data.shape[0], size=batch_size)]           # Alg. 1 line 2: x_0 ~ q(x_0)
    t = rng.integers(0, T, size=batch_size)                               # line 3: t ~ Uniform({0, ..., T-1})
    noise = rng.standard_normal(x0.shape, dtype=x0.dtype)                 # line 4: ε ~ N(0, I)
    x_t = scheduler.add_noise(x0, noise, t)                               # x_t = √ᾱ_t x_0 + √(1-ᾱ_t) ε
    # line 5: gradient step on ‖ε - ε_θ(x_t, t)‖², here averaged over the batch and the two coordinates
    return F.mse_loss(model(x_t, t), noise)


# -- sampling: DDPM Algorithm 2 (and DDIM) ---------------------------------------------------------------------
@no_grad()
def sample(model, scheduler, num_samples: int, generator):
    """Run the reverse process from noise down to t = 0 over ``scheduler.timesteps``; returns (n, 2) points.

    With a ``DDPMScheduler`` on its full grid this is Algorithm 2 line for line; with a ``DDIMScheduler`` after
    ``set_timesteps(n)`` it is DDIM's deterministic update (DDIM eq. 12 with η = 0), taking n steps instead of T.
    """
    xp = backend.xp()
    x = generator.standard_normal((num_samples, 2), dtype=xp.float32)   # Alg. 2 line 1: x_T ~ N(0, I)
    for t in scheduler.timesteps.tolist():                               # line 2: for t = T, ..., 1
        t_batch = xp.full((num_samples,), t, dtype=xp.int64)
        eps = model(x, t_batch).data                                     # ε_θ(x_t, t)
        # lines 3-4: x_{t-1} = (x_t - β_t/√(1-ᾱ_t) ε_θ) / √α_t + σ_t z,  z ~ N(0, I), no z at the last step
        # (DDPMScheduler computes the same mean as x̂_0 from eq. 15 put into the posterior mean μ̃ of eq. 7)
        x = scheduler.step(eps, t, x, generator=generator).prev_sample
    return x                                                             # line 6: return x_0


# -- measuring the samples (host) --------------------------------------------------------------------------------
def distance_to_spiral(points, resolution: int = 4000) -> numpy.ndarray:
    """Euclidean distance from each point (n, 2) to the noiseless spiral, (n,) on the host.

    The curve is represented by ``resolution`` points, much finer than its noise (spacing ≈ 0.004).
    """
    curve = spiral_curve(numpy.linspace(0.0, 1.0, resolution))
    return _nearest_distances(backend.to_host(points).astype(numpy.float64), curve)


def coverage_gap(points, resolution: int = 400) -> float:
    """Mean distance from points along the spiral to the nearest sample: small only if no part is missed."""
    curve = spiral_curve(numpy.linspace(0.0, 1.0, resolution))
    return float(_nearest_distances(curve, backend.to_host(points).astype(numpy.float64)).mean())


def _nearest_distances(a: numpy.ndarray, b: numpy.ndarray, chunk: int = 1024) -> numpy.ndarray:
    """For each row of a (n, 2), the distance to the nearest row of b (m, 2), in chunks to bound memory."""
    out = numpy.empty(len(a))
    for i in range(0, len(a), chunk):
        diff = a[i:i + chunk, None, :] - b[None, :, :]                  # (chunk, m, 2)
        out[i:i + chunk] = numpy.sqrt((diff ** 2).sum(-1).min(axis=1))
    return out


# -- the whole recipe -------------------------------------------------------------------------------------------
@dataclass
class Toy2DResult:
    """Files written, quality numbers (lower is better; the data themselves score ``data_distance``), timings."""

    figure: Path
    loss_curve: Path
    checkpoint: Path
    final_loss: float          # mean loss of the last 100 steps
    data_distance: float       # mean distance to the spiral of the training data (the noise floor)
    ddpm_distance: float       # ... of the DDPM samples
    ddim_distance: float       # ... of the DDIM samples
    ddpm_coverage_gap: float   # mean distance from the spiral to the nearest DDPM sample
    train_seconds: float
    sample_seconds: float


def run(config: Toy2DConfig, out, run_dir, resume: bool = False, progress: bool = True) -> Toy2DResult:
    """Train the toy model with ``config``, sample it with DDPM and DDIM, and write the figure ``out`` (PNG).

    ``run_dir`` receives the checkpoint and the loss curve; ``resume=True`` continues from its checkpoint.
    """
    c = config
    data = backend.to_device(make_spiral(c.num_data, c.seed))
    model = ToyDenoiser(c.hidden, c.num_blocks, c.time_embed_dim, c.point_embed_dim, c.point_scale, generator=c.seed)
    # DDPM's schedule: β linear from 1e-4 to 0.02 over T steps. With T = 250 (not DDPM's 1000) it ends at
    # ᾱ_T ≈ 0.08, so x_T = 0.28 x_0 + 0.96 ε, which for unit-variance data is close to the N(0, I) that sampling
    # starts from; and, unlike T = 1000 (ᾱ_T ≈ 4e-5), most training steps fall on the low noise levels that decide
    # the spiral's fine shape. clip_sample=False: the points are not pixels in [-1, 1].
    ddpm = DDPMScheduler(num_train_timesteps=c.num_train_timesteps, clip_sample=False)
    optimizer = AdamW(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)
    ema = EMA(model, decay=c.ema_decay)

    def step_fn(step, rng):
        return diffusion_loss(model, ddpm, data, c.batch_size, rng)

    warmup = min(c.warmup_steps, c.steps // 10)  # a very short run (a quick test) warms up for a tenth of it

    def lr_at(step):
        return c.lr * warmup_cosine(step, warmup, c.steps, final_ratio=0.1)

    trained = train(step_fn, model=model, optimizer=optimizer, ema=ema, total_steps=c.steps, out_dir=run_dir,
                    seed=c.seed, lr_at=lr_at,
                    checkpoint_every=c.checkpoint_every, resume=resume, progress=progress, desc="toy2d",
                    meta={"recipe": "toy2d", "config": asdict(c)})

    # Sample with the averaged (EMA) weights, as diffusion models are; same starting noise for both samplers.
    began = time.perf_counter()
    ddim = DDIMScheduler.from_config(ddpm.config, timestep_spacing="trailing")  # start at the noisiest step
    ddim.set_timesteps(c.ddim_steps)
    model.eval()
    with ema.average_parameters(model):
        ddpm_points = sample(model, ddpm, c.num_samples, backend.rng(c.seed))  # all T steps: Algorithm 2
        ddim_points = sample(model, ddim, c.num_samples, backend.rng(c.seed))
    sample_seconds = time.perf_counter() - began

    shown = make_spiral(c.num_samples, c.seed + 1)  # fresh data points, as many as samples, for a fair picture
    distances = [float(distance_to_spiral(points).mean()) for points in (shown, ddpm_points, ddim_points)]
    panels = [(shown, "data: points on a spiral", "tab:gray"),
              (ddpm_points, f"DDPM, {len(ddpm.timesteps)} steps", "tab:blue"),
              (ddim_points, f"DDIM, {len(ddim.timesteps)} steps", "tab:orange")]
    panels = [(points, f"{title}\nmean distance to the curve {d:.3f}", color)
              for (points, title, color), d in zip(panels, distances)]
    figure = plot_demo(out, panels, trained.losses)
    return Toy2DResult(
        figure=figure, loss_curve=trained.loss_curve, checkpoint=trained.checkpoint,
        final_loss=float(numpy.mean(trained.losses[-100:])), data_distance=distances[0],
        ddpm_distance=distances[1], ddim_distance=distances[2], ddpm_coverage_gap=coverage_gap(ddpm_points),
        train_seconds=trained.seconds, sample_seconds=sample_seconds)


def plot_demo(path, panels, losses):
    """One scatter plot per (points (n, 2), title, color) panel, then the loss curve; returns the PNG's path."""
    fig = new_figure(4 * (len(panels) + 1), 4.3)
    axes = fig.subplots(1, len(panels) + 1)
    for ax, (points, title, color) in zip(axes, panels):
        points = backend.to_host(points)
        ax.scatter(points[:, 0], points[:, 1], s=3, color=color, alpha=0.6)
        ax.set(xlim=(-2.5, 2.5), ylim=(-2.5, 2.5), aspect="equal", title=title)
    draw_loss_curve(axes[-1], losses, "training loss (ε-prediction MSE)")
    return save_figure(fig, path)
