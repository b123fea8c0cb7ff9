"""A tiny but complete training setup for the loop tests: an MLP with dropout, AdamW, EMA, a stateful data loader,
an LR schedule and gradient clipping — every kind of state a real recipe has, so resume is tested on all of it."""
import numpy as np

from minildm import backend
from minildm.nn import Dropout, Linear, Module
from minildm.nn import functional as F
from minildm.optim import EMA, AdamW, warmup_cosine
from minildm.train import train


class TinyNet(Module):
    def __init__(self):
        super().__init__()
        self.fc1 = Linear(3, 16, generator=1)
        self.drop = Dropout(0.2, generator=2)
        self.fc2 = Linear(16, 3, generator=3)

    def forward(self, x):
        return self.fc2(self.drop(F.silu(self.fc1(x))))


class ShuffledLoader:
    """Batches of a fixed host data set, reshuffled every epoch; remembers its place (``state_dict``)."""

    def __init__(self, data: np.ndarray, batch_size: int, seed: int = 0):
        self.data, self.batch_size, self.seed = data, batch_size, seed
        self.epoch, self.position = 0, 0

    def next_batch(self):
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.data))
        if self.position + self.batch_size > len(self.data):
            self.epoch, self.position = self.epoch + 1, 0
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.data))
        batch = self.data[order[self.position:self.position + self.batch_size]]
        self.position += self.batch_size
        return backend.to_device(batch)

    def state_dict(self):
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state):
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


def make_run(poison_step=None, crash_step=None):
    """Fresh objects built from fixed seeds, and the step function that trains them.

    poison_step: at this step the batch holds a NaN.  crash_step: at this step the step function raises
    RuntimeError("crash"), standing in for a killed process.
    """
    model = TinyNet()
    optimizer = AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    ema = EMA(model, decay=0.9)
    data = np.random.default_rng(0).standard_normal((40, 3)).astype(np.float32)
    loader = ShuffledLoader(data, batch_size=8)

    def step_fn(step, rng):
        if step == crash_step:
            raise RuntimeError("crash")
        x = loader.next_batch()
        if step == poison_step:
            x = x.copy()
            x[0, 0] = np.nan
        noise = rng.standard_normal(x.shape, dtype=x.dtype)  # per-step randomness, as a diffusion loss draws
        return F.mse_loss(model(x + noise * x.dtype.type(0.1)), x)

    return model, optimizer, ema, loader, step_fn


def train_run(run, out_dir, total_steps, resume=False, checkpoint_every=5, plot=False):
    """Train the objects of ``run`` (from ``make_run``) with the loop's full set of options."""
    model, optimizer, ema, loader, step_fn = run
    return train(step_fn, model=model, optimizer=optimizer, ema=ema, state={"data": loader},
                 total_steps=total_steps, out_dir=out_dir, seed=7, checkpoint_every=checkpoint_every,
                 resume=resume, progress=False, max_grad_norm=1.0, plot=plot,
                 lr_at=lambda k: 1e-2 * warmup_cosine(k, 3, 20))


def run_training(out_dir, total_steps, resume=False, poison_step=None, crash_step=None, checkpoint_every=5,
                 plot=False):
    """A fresh run (as a new process would build it), trained; returns (result, model, optimizer, ema, loader)."""
    run = make_run(poison_step, crash_step)
    result = train_run(run, out_dir, total_steps, resume, checkpoint_every, plot)
    return (result, *run[:4])


def host_state(model, optimizer, ema):
    """Every number of the training state, on the host, for exact comparisons."""
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "ema": ema.state_dict()}
