"""Checkpoints are replaced atomically: a save that fails half-way leaves the previous checkpoint intact."""
import os

import pytest
from loop_helpers import make_run, run_training

from minildm.train import CHECKPOINT_NAME, load_training_state


def test_failed_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    first, *_ = run_training(tmp_path, 10)  # checkpoints at steps 5 and 10
    checkpoint = tmp_path / CHECKPOINT_NAME
    saved_bytes = checkpoint.read_bytes()

    # The disk fills up while the step-15 checkpoint is being written (after its bytes went to the temp file).
    def disk_full(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        run_training(tmp_path, 20, resume=True)
    monkeypatch.undo()

    assert checkpoint.read_bytes() == saved_bytes                    # the old file, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME]  # and no temporary file left behind
    model, optimizer, ema, loader, _ = make_run()
    step, losses, _ = load_training_state(checkpoint, {"model": model, "optimizer": optimizer, "ema": ema,
                                                       "data": loader})
    assert step == 10 and losses == first.losses

    # ... and training goes on from it once the disk has room again.
    resumed, *_ = run_training(tmp_path, 20, resume=True)
    full, *_ = run_training(tmp_path / "full", 20)
    assert resumed.losses == full.losses
