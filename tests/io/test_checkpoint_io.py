"""Training checkpoints: a whole training state (model, AdamW, EMA, step, RNG) saved mid-run and restored makes
the rest of the run bit-identical to a run that never stopped; the tree of values comes back exactly."""
import math

import numpy as np
import pytest
from helpers import host, to_backend

import minildm
from minildm import backend, optim
from minildm.io import load_checkpoint, save_checkpoint, save_safetensors
from minildm.nn.module import Module, Parameter


class TinyModel(Module):
    """A linear layer y = x Wᵀ + b, as a real minildm Module."""

    def __init__(self, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.lin = Module()
        self.lin.weight = Parameter(to_backend(rng.standard_normal((5, 3)).astype(np.float32)))
        self.lin.bias = Parameter(to_backend(rng.standard_normal(5).astype(np.float32)))

    @property
    def params(self):
        return dict(self.named_parameters())


def make_ema(model):
    return optim.EMA(model, decay=0.9)


def train(model, opt, ema, rng, start, stop):
    """A few steps of a noisy regression: the batch comes from the host RNG, so RNG state matters."""
    for step in range(start, stop):
        x = rng.standard_normal((4, 3)).astype(np.float32)
        w, b = model.params["lin.weight"], model.params["lin.bias"]
        y = x @ host(w).T + host(b)
        err = y - 1.0                                   # loss = Σ (x Wᵀ + b - 1)²
        opt.lr = 0.05 * optim.warmup_cosine(step, 3, 20, final_ratio=0.1)
        w.grad, b.grad = to_backend(2 * err.T @ x), to_backend(2 * err.sum(0))
        optim.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        ema.update(model)


def test_resume_from_file_is_bit_identical(tmp_path):
    model, rng = TinyModel(), np.random.default_rng(42)
    opt, ema = optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1), make_ema(model)
    train(model, opt, ema, rng, 0, 20)
    reference = {k: host(p) for k, p in model.params.items()}
    reference_ema = {k: host(s) for k, s in ema.shadow.items()}

    model, rng = TinyModel(), np.random.default_rng(42)
    opt, ema = optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1), make_ema(model)
    train(model, opt, ema, rng, 0, 8)
    save_checkpoint(tmp_path / "ckpt.safetensors",
                    {"model": model.state_dict(), "optimizer": opt.state_dict(), "ema": ema.state_dict()},
                    meta={"step": 8, "rng": rng.bit_generator.state})
    del model, opt, ema, rng

    state, meta = load_checkpoint(tmp_path / "ckpt.safetensors")
    model = TinyModel(seed=123)  # different initial weights: everything must come from the checkpoint
    opt, ema = optim.AdamW(model.parameters(), lr=1.0), make_ema(model)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    ema.load_state_dict(state["ema"])
    rng = np.random.default_rng()
    rng.bit_generator.state = meta["rng"]
    train(model, opt, ema, rng, meta["step"], 20)

    for k, p in model.params.items():
        assert np.array_equal(host(p), reference[k]), f"{k}: resumed run differs"
        assert np.array_equal(host(ema.shadow[k]), reference_ema[k]), f"EMA {k}: resumed run differs"


def test_tree_round_trip_is_exact(tmp_path):
    state = {
        "floats": [0.1, 1 / 3, 1e-300, -0.0, math.pi, float("inf")],
        "ints": [0, -1, 2**127 + 12345, True, False, None],
        "text": "ünï",
        "nested": {"a": {"b": [np.arange(3, dtype=np.int64), {"c": np.float32(2.5)}]}, "empty": {}, "none": []},
        "tuple": (1, np.ones((2, 2), np.float16)),
        "weights": {"conv.weight": np.full((2, 3), 0.1, np.float32), "device": to_backend(np.ones(2, np.float64))},
    }
    meta = {"step": 7, "config": {"lr": 1e-4, "betas": [0.9, 0.999]}, "nan": float("nan")}
    save_checkpoint(tmp_path / "c.safetensors", state, meta)
    loaded, loaded_meta = load_checkpoint(tmp_path / "c.safetensors")

    assert loaded["floats"] == state["floats"] and math.copysign(1, loaded["floats"][3]) == -1
    assert loaded["ints"] == state["ints"] and [type(v) for v in loaded["ints"]] == [int, int, int, bool, bool,
                                                                                     type(None)]
    assert loaded["text"] == "ünï" and loaded["nested"]["empty"] == {} and loaded["nested"]["none"] == []
    arange, scalar = loaded["nested"]["a"]["b"][0], loaded["nested"]["a"]["b"][1]["c"]
    assert arange.dtype == np.int64 and np.array_equal(arange, np.arange(3))
    assert scalar.shape == () and scalar.dtype == np.float32 and scalar == np.float32(2.5)  # NumPy scalar → 0-d
    assert isinstance(loaded["tuple"], list) and loaded["tuple"][0] == 1 and loaded["tuple"][1].dtype == np.float16
    assert loaded["weights"]["conv.weight"].tobytes() == state["weights"]["conv.weight"].tobytes()
    assert isinstance(loaded["weights"]["device"], np.ndarray) and loaded["weights"]["device"].dtype == np.float64
    assert loaded_meta["step"] == 7 and loaded_meta["config"] == meta["config"] and math.isnan(loaded_meta["nan"])


def test_refuses_what_it_cannot_restore_exactly(tmp_path):
    path = tmp_path / "c.safetensors"
    with pytest.raises(ValueError, match="key 0 under 'optimizer/state' must be a string"):
        save_checkpoint(path, {"optimizer": {"state": {0: np.ones(2)}}})
    with pytest.raises(ValueError, match="key 'a/b' under '<root>' must be a string without '/'"):
        save_checkpoint(path, {"a/b": np.ones(2)})
    with pytest.raises(TypeError, match="'model/w' holds a set"):
        save_checkpoint(path, {"model": {"w": {1, 2}}})
    with pytest.raises(ValueError, match="meta is not JSON-serializable"):
        save_checkpoint(path, {"w": np.ones(2)}, meta={"dtype": np.float32})
    assert not path.exists()
    save_safetensors({"w": np.ones(2)}, path)
    with pytest.raises(ValueError, match="not a minildm checkpoint.*use load_safetensors"):
        load_checkpoint(path)


def test_optimizer_state_survives_the_file_on_any_backend(tmp_path):
    p = minildm.Tensor(to_backend(np.ones(4, np.float32)), requires_grad=True)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = to_backend(np.arange(4, dtype=np.float32))
    opt.step()
    save_checkpoint(tmp_path / "c.safetensors", {"optimizer": opt.state_dict()})
    state, _ = load_checkpoint(tmp_path / "c.safetensors")
    opt2 = optim.SGD([p], lr=0.5, momentum=0.9)
    opt2.load_state_dict(state["optimizer"])
    buf = opt2.state[0]["momentum_buffer"]
    assert backend.get_array_module(buf) is backend.xp() and np.array_equal(host(buf), np.arange(4))
    assert opt2.lr == 0.1
