"""Exact resume: a run that crashes and resumes from its checkpoint computes exactly what an uninterrupted run does."""
import numpy as np
import pytest
from loop_helpers import host_state, make_run, run_training

from minildm.train import CHECKPOINT_NAME, LOSS_CURVE_NAME, ResumeError, load_training_state, train


def assert_trees_equal(a, b, where="state"):
    """Bit-exact equality of two nested dicts/lists of arrays and plain values."""
    if isinstance(a, dict):
        assert set(a) == set(b), where
        for key in a:
            assert_trees_equal(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_trees_equal(x, y, f"{where}/{i}")
    elif hasattr(a, "shape"):
        assert np.array_equal(np.asarray(a), np.asarray(b)), f"{where} differs"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_resume_after_crash_is_bit_exact(tmp_path):
    # The reference: 20 steps without interruption.
    full, *full_objects, full_loader = run_training(tmp_path / "full", 20)
    assert len(full.losses) == 20 and full.start_step == 0

    # The same run "crashes" at step 13 (checkpoints at 5 and 10; steps 10-12 are lost with the process) ...
    with pytest.raises(RuntimeError, match="crash"):
        run_training(tmp_path / "crashed", 20, crash_step=13)
    # ... and a new process (fresh objects, nothing shared) resumes from the step-10 checkpoint.
    resumed, *resumed_objects, resumed_loader = run_training(tmp_path / "crashed", 20, resume=True,
                                                                 plot=True)

    assert resumed.start_step == 10
    assert resumed.losses == full.losses  # floats compared exactly: the trajectory is the same, bit for bit
    assert_trees_equal(host_state(*full_objects), host_state(*resumed_objects))
    assert resumed_loader.state_dict() == full_loader.state_dict()
    assert (tmp_path / "crashed" / LOSS_CURVE_NAME).stat().st_size > 0


def test_stopping_and_extending_a_run_matches_one_long_run(tmp_path):
    # Training to 10 and then extending to 20 is the same as training to 20 (the LR schedule depends on the step
    # only), and the checkpoint written at the end of the short run resumes it.
    full, *full_objects, _ = run_training(tmp_path / "full", 20)
    short, *_ = run_training(tmp_path / "two_parts", 10)
    assert short.losses == full.losses[:10]
    extended, *extended_objects, _ = run_training(tmp_path / "two_parts", 20, resume=True)
    assert extended.losses == full.losses
    assert_trees_equal(host_state(*full_objects), host_state(*extended_objects))


def test_checkpoint_holds_everything_needed(tmp_path):
    result, model, optimizer, ema, loader = run_training(tmp_path, 10)
    fresh_model, fresh_opt, fresh_ema, fresh_loader, _ = make_run()
    step, losses, _ = load_training_state(tmp_path / CHECKPOINT_NAME, {"model": fresh_model,
                                          "optimizer": fresh_opt, "ema": fresh_ema, "data": fresh_loader})
    assert step == 10 and losses == result.losses
    assert_trees_equal(host_state(model, optimizer, ema), host_state(fresh_model, fresh_opt, fresh_ema))
    assert fresh_loader.state_dict() == loader.state_dict()


def test_resume_refuses_another_seed_and_a_missing_checkpoint(tmp_path):
    run_training(tmp_path, 5)
    model, optimizer, ema, loader, step_fn = make_run()
    with pytest.raises(ResumeError, match="seed 7.*seed 8"):
        train(step_fn, model=model, optimizer=optimizer, ema=ema, state={"data": loader}, total_steps=10,
              out_dir=tmp_path, seed=8, resume=True, progress=False)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(step_fn, model=model, optimizer=optimizer, total_steps=10, out_dir=tmp_path / "empty", resume=True,
              progress=False)


def test_step_function_must_return_a_scalar_loss(tmp_path):
    model, optimizer, _, _, _ = make_run()
    with pytest.raises(TypeError, match="step 0 it returned shape"):
        train(lambda step, rng: model(np.ones((2, 3), np.float32)), model=model, optimizer=optimizer,
              total_steps=1, out_dir=tmp_path, progress=False)
