"""SGD / Adam / AdamW (+ clip_grad_norm_, + a changing lr) follow PyTorch's 20-step parameter trajectories.

Fixtures: scripts/fixtures/optim.py (``python scripts/make_fixtures.py optim``). Gradients of the least-squares
objective are computed on the host in float64 from the current float32 parameters, exactly as the fixture script
does, so both sides see identical gradients for identical parameters.
"""
import json

import numpy as np
import pytest
from helpers import assert_close, host, load_fixture, to_backend

import minildm
from minildm import optim

FIX = load_fixture("optim_trajectories.npz")
CONFIGS = json.loads(str(FIX["configs"]))


def gradients(X, Y, W, c):
    """Same as scripts/fixtures/optim.py: dL/dW, dL/dc of Σ (X W + c - Y)² in float64, rounded to float32."""
    X, Y, W, c = (np.asarray(a, dtype=np.float64) for a in (X, Y, W, c))
    R = X @ W + c - Y
    return (2 * X.T @ R).astype(np.float32), (2 * R.sum(axis=0)).astype(np.float32)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_trajectory_matches_torch(name):
    config = CONFIGS[name]
    W = minildm.Tensor(to_backend(FIX["W0"].copy()), requires_grad=True)
    c = minildm.Tensor(to_backend(FIX["c0"].copy()), requires_grad=True)
    frozen = minildm.Tensor(to_backend(FIX["frozen0"].copy()), requires_grad=True)  # never gets a gradient
    opt = getattr(optim, config["optimizer"])([W, c, frozen], **config["kwargs"])
    base_lr = config["kwargs"]["lr"]
    for t in range(len(FIX["lrs"])):
        if config.get("schedule"):
            opt.lr = base_lr * float(FIX["lrs"][t])
        gW, gc = gradients(FIX["X"], FIX["Y"], host(W), host(c))
        W.grad, c.grad = to_backend(gW), to_backend(gc)
        if config.get("max_norm") is not None:
            norm = optim.clip_grad_norm_([W, c, frozen], config["max_norm"])
            assert norm == pytest.approx(FIX[f"{name}.norms"][t], rel=1e-6)
        opt.step()
        assert_close(W, FIX[f"{name}.W"][t + 1], rtol=1e-6, what=f"{name} W after step {t + 1}")
        assert_close(c, FIX[f"{name}.c"][t + 1], rtol=1e-6, what=f"{name} c after step {t + 1}")
    assert np.array_equal(host(frozen), FIX["frozen0"]), "a parameter without grad must not move"
    assert opt.state[2] == {}, "a parameter without grad must get no optimizer state"


def test_clipping_was_exercised():
    """The clip configurations really clip at some steps (max_norm below the gradient norm) and not at others."""
    for name, config in CONFIGS.items():
        if config.get("max_norm") is not None:
            norms = FIX[f"{name}.norms"]
            assert (norms > config["max_norm"]).any(), name
