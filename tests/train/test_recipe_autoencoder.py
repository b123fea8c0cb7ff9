"""The autoencoder recipe: exact resume after a crash, and the NaN guard on a poisoned batch."""
import math

import numpy as np
import pytest

from minildm import io
from minildm.data import DataLoader
from minildm.train import CHECKPOINT_NAME, NonFiniteLossError, load_training_state
from minildm.train.autoencoder import build_vae, train_autoencoder
from minildm.train.presets import get_preset
from minildm.train.recipe_common import make_dataset

PRESET = get_preset("tiny", vae={"steps": 8, "checkpoint_every": 3, "eval_images": 0})


class CrashingImages:
    """The training images, except that fetching batch number ``crash_at`` raises (a process that dies mid-run)."""

    def __init__(self, images, crash_at: int):
        self.images, self.crash_at, self.fetches = images, crash_at, 0

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        self.fetches += 1
        if self.fetches == self.crash_at + 1:
            raise RuntimeError("crash")
        return self.images[index]


def _dataset():
    return make_dataset(PRESET.data)


def test_resume_after_crash_reproduces_the_uninterrupted_run(tmp_path):
    full = train_autoencoder(PRESET, tmp_path / "full", progress=False)

    crashing = _dataset()
    crashing.images = CrashingImages(crashing.images, crash_at=7)  # dies in step 7; checkpoint at step 6 survives
    with pytest.raises(RuntimeError, match="crash"):
        train_autoencoder(PRESET, tmp_path / "crashed", progress=False, dataset=crashing)
    step, _, _ = load_training_state(tmp_path / "crashed" / CHECKPOINT_NAME, {})
    assert step == 6

    resumed = train_autoencoder(PRESET, tmp_path / "crashed", resume=True, progress=False, dataset=_dataset())
    assert resumed.losses == full.losses  # bit for bit, including the 6 steps before the crash
    assert resumed.scaling_factor == full.scaling_factor
    a = io.load_safetensors(tmp_path / "full" / "vae" / "diffusion_pytorch_model.safetensors")
    b = io.load_safetensors(tmp_path / "crashed" / "vae" / "diffusion_pytorch_model.safetensors")
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_nan_guard_stops_on_a_poisoned_batch_and_keeps_the_last_checkpoint(tmp_path):
    poisoned = _dataset()
    b = PRESET.vae.batch_size
    step_5 = DataLoader(poisoned, b, seed=PRESET.data.seed).order(0)[5 * b:6 * b]  # the batch of step 5
    poisoned.images = poisoned.images.copy()
    poisoned.images[step_5[0], 0, 0, 0] = np.nan
    with pytest.raises(NonFiniteLossError) as caught:
        train_autoencoder(PRESET, tmp_path, progress=False, dataset=poisoned)
    error = caught.value
    assert error.step == 5 and error.checkpoint_step == 3 and math.isnan(error.value)

    # The checkpoint written before the poisoned step loads, and holds finite weights.
    vae = build_vae(PRESET.vae, PRESET.data.seed)
    step, losses, _ = load_training_state(tmp_path / CHECKPOINT_NAME, {"model": vae})
    assert step == 3 and len(losses) == 3 and all(map(math.isfinite, losses))
    assert all(np.isfinite(p.data).all() for p in vae.parameters())
    # ... and training continues from it once the data is clean.
    resumed = train_autoencoder(PRESET, tmp_path, resume=True, progress=False, dataset=_dataset())
    assert len(resumed.losses) == PRESET.vae.steps and all(map(math.isfinite, resumed.losses))
