"""The loop's small parts: per-step seeds, the smoothed loss of the progress bar, the loss-curve PNG."""
import numpy as np
import pytest

from minildm import backend
from minildm.train import SmoothedLoss, plot_loss_curve, step_generator, step_seed


def test_step_seeds_are_deterministic_and_distinct():
    assert step_seed(0, 5) == step_seed(0, 5)
    seeds = {step_seed(seed, step, stream) for seed in range(3) for step in range(50) for stream in range(3)}
    assert len(seeds) == 3 * 50 * 3  # (0, 1) and (1, 0) differ too, unlike seed + step
    a = backend.to_host(step_generator(4, 9).standard_normal(5, dtype=np.float32))
    b = backend.to_host(step_generator(4, 9).standard_normal(5, dtype=np.float32))
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match=">= 0"):
        step_seed(-1, 0)


def test_smoothed_loss_is_bias_corrected():
    smooth = SmoothedLoss(beta=0.9)
    assert smooth.update(2.0) == pytest.approx(2.0)  # not 0.2: the correction undoes the zero start
    for _ in range(200):
        value = smooth.update(1.0)
    assert value == pytest.approx(1.0, abs=1e-6)


def test_loss_curve_png(tmp_path):
    path = plot_loss_curve(list(np.linspace(1.0, 0.1, 300)), tmp_path / "loss.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["loss.png"]  # written atomically: no temporary file left
