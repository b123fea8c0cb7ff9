"""The NaN guard: a non-finite loss or gradient stops training, names the step, and harms nothing."""
import numpy as np
import pytest
from loop_helpers import host_state, make_run, run_training, train_run

from minildm.autograd import sqrt
from minildm.train import CHECKPOINT_NAME, NonFiniteLossError, load_training_state, train


def test_poisoned_batch_stops_training_and_keeps_the_last_checkpoint(tmp_path):
    with pytest.raises(NonFiniteLossError) as info:
        run_training(tmp_path, 20, poison_step=13)  # checkpoints at steps 5 and 10
    error = info.value
    checkpoint = tmp_path / CHECKPOINT_NAME
    assert str(error) == f"loss is nan at step 13; last good checkpoint: {checkpoint} (step 10)"
    assert (error.what, error.step, error.checkpoint, error.checkpoint_step) == ("loss", 13, checkpoint, 10)

    # The checkpoint is the clean step-10 state: it loads, and it equals a clean run's state at step 10.
    model, optimizer, ema, loader, _ = make_run()
    step, losses, _ = load_training_state(checkpoint, {"model": model, "optimizer": optimizer, "ema": ema,
                                                       "data": loader})
    clean, *clean_objects = run_training(tmp_path / "clean", 10)
    assert step == 10 and losses == clean.losses
    assert all(np.isfinite(w).all() for w in model.state_dict().values())
    for key, value in host_state(*clean_objects[:3])["model"].items():
        assert np.array_equal(model.state_dict()[key], value), key


def test_nothing_is_updated_or_saved_at_the_bad_step(tmp_path):
    run = make_run(poison_step=3)
    with pytest.raises(NonFiniteLossError, match="^loss is nan at step 3; no checkpoint was written yet$"):
        train_run(run, tmp_path / "poisoned", 20, checkpoint_every=100)
    assert not (tmp_path / "poisoned" / CHECKPOINT_NAME).exists()

    # model, optimizer and EMA hold exactly the state after steps 0-2, as in a clean 3-step run
    _, *clean_objects = run_training(tmp_path / "clean", 3)
    poisoned_state, clean_state = host_state(*run[:3]), host_state(*clean_objects[:3])
    for part in ("model", "ema"):
        tree_a = poisoned_state[part] if part == "model" else poisoned_state[part]["shadow"]
        tree_b = clean_state[part] if part == "model" else clean_state[part]["shadow"]
        for key, value in tree_b.items():
            assert np.array_equal(tree_a[key], value), f"{part}/{key}"
    assert [s["step"] for s in poisoned_state["optimizer"]["state"]] == [3] * 4


def test_non_finite_gradient_is_caught_before_the_update(tmp_path):
    model, optimizer, _, _, _ = make_run()
    before = model.state_dict()

    def step_fn(step, rng):
        # d/dw sqrt(0 * w) = 0 / (2 sqrt(0)) = nan, while the loss itself is a finite 0
        return sqrt((model.fc1.weight * 0.0).sum())

    with pytest.raises(NonFiniteLossError, match="gradient norm is nan at step 0"), np.errstate(all="ignore"):
        train(step_fn, model=model, optimizer=optimizer, total_steps=5, out_dir=tmp_path, progress=False)
    for key, value in before.items():
        assert np.array_equal(model.state_dict()[key], value), key
