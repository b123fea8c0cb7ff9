"""Optimizer frame: exact save/resume, skipping, in-place updates, param groups, lr, and clear errors."""
import json

import numpy as np
import pytest
from helpers import host, to_backend

import minildm
from minildm import backend, optim

MAKERS = {
    "sgd_nesterov_wd": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "sgd_momentum_dampening": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.5, dampening=0.2),
    "adam_wd": lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.1),
    "adamw": lambda ps: optim.AdamW(ps, lr=0.01, betas=(0.8, 0.95)),
}


def make_params(seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(3, 4), (4,), (2, 2, 2)]
    return [minildm.Tensor(to_backend(rng.standard_normal(s).astype(np.float32)), requires_grad=True)
            for s in shapes]


def set_grads(params, step):
    """A deterministic, parameter-dependent gradient (feedback, like a real loss); the last param gets none
    on odd steps, so its step count falls behind the others'."""
    for i, p in enumerate(params):
        xp = backend.get_array_module(p.data)
        p.grad = None if (i == 2 and step % 2) else (xp.sin(p.data) * 3 + 0.1 * (i + 1)).astype(p.dtype)


def train(opt, params, start, stop):
    for step in range(start, stop):
        opt.lr = 0.01 * (1 + np.cos(step))  # a schedule: lr changes every step
        set_grads(params, step)
        opt.step()
        opt.zero_grad()


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_state_dict_round_trip_continues_bit_identically(kind):
    reference = make_params()
    opt = MAKERS[kind](reference)
    train(opt, reference, 0, 20)

    params = make_params()
    opt = MAKERS[kind](params)
    train(opt, params, 0, 9)
    saved = opt.state_dict()
    saved_params = [host(p).copy() for p in params]
    json.dumps(_without_arrays(saved))  # everything but the arrays is plain JSON

    # as in a fresh process: new parameters from the saved values, a new optimizer (whose lr load must restore)
    resumed = [minildm.Tensor(to_backend(a), requires_grad=True) for a in saved_params]
    opt2 = MAKERS[kind](resumed)
    opt2.lr = 123.0
    opt2.load_state_dict(saved)
    assert opt2.lr == saved["param_groups"][0]["lr"] != 123.0
    train(opt2, resumed, 9, 20)
    for p, r in zip(resumed, reference):
        assert np.array_equal(host(p), host(r)), f"{kind}: resumed training differs from uninterrupted training"


def _without_arrays(tree):
    if isinstance(tree, dict):
        return {k: _without_arrays(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_without_arrays(v) for v in tree]
    assert not hasattr(tree, "__cuda_array_interface__"), "state_dict must hold host arrays only"
    return None if isinstance(tree, np.ndarray) else tree


def test_state_dict_is_a_host_copy_with_steps():
    params = make_params()
    opt = optim.Adam(params, lr=0.01)
    train(opt, params, 0, 3)
    sd = opt.state_dict()
    assert [s["step"] for s in sd["state"]] == [3, 3, 2]  # the last param had no grad at step 1
    m = sd["state"][0]["exp_avg"]
    assert isinstance(m, np.ndarray) and m.dtype == np.float32
    before = host(opt.state[0]["exp_avg"]).copy()
    m[...] = 1e9  # editing the saved copy must not touch the live optimizer
    assert np.array_equal(host(opt.state[0]["exp_avg"]), before)
    assert sd["param_groups"] == [{"lr": opt.lr, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0,
                                   "params": [0, 1, 2]}]


def test_load_state_dict_rejects_mismatched_parameters():
    params = make_params()
    opt = optim.Adam(params)
    train(opt, params, 0, 2)
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="covers 3 parameters, expected 2|group 0 has 3 parameters"):
        optim.Adam(params[:2]).load_state_dict(sd)
    with pytest.raises(ValueError, match="different optimizer"):
        optim.SGD(params, lr=0.1).load_state_dict(sd)
    other = [minildm.Tensor(to_backend(np.zeros(s, np.float32)), requires_grad=True) for s in [(4, 3), (4,), (8,)]]
    with pytest.raises(ValueError, match=r"state\[0\]\['exp_avg'\] has shape \(3, 4\).*shape \(4, 3\)"):
        optim.Adam(other).load_state_dict(sd)


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_updates_in_place_and_leaves_grads_alone(kind):
    params = make_params()
    arrays = [p.data for p in params]
    opt = MAKERS[kind](params)
    set_grads(params, 0)
    grads = [host(p.grad).copy() for p in params]
    with minildm.no_grad():  # step must also work (and record nothing) inside no_grad
        opt.step()
    for p, a, g in zip(params, arrays, grads):
        assert p.data is a, "the update must change param.data in place"
        assert np.array_equal(host(p.grad), g), "the optimizer must not modify the gradient"
        assert p.data.dtype == np.float32
    for s in opt.state:
        for v in s.values():
            assert not hasattr(v, "dtype") or v.dtype == np.float32, "float32 state for float32 params"


def test_float64_params_get_float64_state():
    p = minildm.Tensor(to_backend(np.ones(3)), requires_grad=True)
    assert p.dtype == np.float64
    opt = optim.AdamW([p], lr=0.1)
    p.grad = to_backend(np.array([1.0, -2.0, 3.0]))
    opt.step()
    assert p.dtype == np.float64 and opt.state[0]["exp_avg"].dtype == np.float64


def test_zero_grad_sets_none():
    params = make_params()
    opt = optim.SGD(params, lr=0.1)
    set_grads(params, 0)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_param_groups_equal_separate_optimizers():
    a, b = make_params(), make_params()
    grouped = optim.AdamW([{"params": a[:2]}, {"params": a[2:], "weight_decay": 0.0, "lr": 0.5}], lr=0.01)
    first, second = optim.AdamW(b[:2], lr=0.01), optim.AdamW(b[2:], lr=0.5, weight_decay=0.0)
    for step in range(5):
        set_grads(a, step), set_grads(b, step)
        grouped.step(), first.step(), second.step()
    for p, q in zip(a, b):
        assert np.array_equal(host(p), host(q))
    with pytest.raises(ValueError, match="different learning rates"):
        grouped.lr
    grouped.lr = 0.2
    assert [g["lr"] for g in grouped.param_groups] == [0.2, 0.2] and grouped.lr == 0.2


def test_hyperparameter_and_argument_errors():
    params = make_params()
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([params[0], params[0]], lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        optim.Adam(params[0])
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(params, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam(params, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="lr must be >= 0"):
        optim.AdamW(params, lr=-1.0)
    with pytest.raises(ValueError, match="unknown options"):
        optim.Adam([{"params": params, "momentum": 0.9}])
    params[0].grad = to_backend(np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"parameter 0 has shape \(3, 4\) but its grad has shape \(4, 3\)"):
        optim.SGD(params, lr=0.1).step()
