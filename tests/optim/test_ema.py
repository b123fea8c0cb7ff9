"""EMA: the averaging formula, the decay warmup, copy_to / average_parameters, save and resume."""
import numpy as np
import pytest
from helpers import host, to_backend

import minildm
from minildm.optim import EMA


class TinyModel:
    """Duck-typed stand-in for minildm.nn.Module: all EMA needs is named_parameters()."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.params = {"lin.weight": rng.standard_normal((3, 2)), "lin.bias": rng.standard_normal(3)}
        self.params = {k: minildm.Tensor(to_backend(v.astype(np.float32)), requires_grad=True)
                       for k, v in self.params.items()}

    def named_parameters(self):
        return iter(self.params.items())


def nudge(model, t):
    for p in model.params.values():
        p.data += np.float32(0.1 * (t + 1))


def test_update_formula_with_warmup():
    model = TinyModel()
    ema = EMA(model, decay=0.75)
    expected = {k: host(p).astype(np.float64) for k, p in model.params.items()}
    for n in range(30):
        nudge(model, n)
        d = min(0.75, (1 + n) / (10 + n))
        assert ema.current_decay() == d
        ema.update(model)
        for k, p in model.params.items():
            expected[k] = d * expected[k] + (1 - d) * host(p).astype(np.float64)
            np.testing.assert_allclose(host(ema.shadow[k]), expected[k], rtol=1e-6, atol=1e-6)
    assert ema.num_updates == 30 and ema.current_decay() == 0.75  # capped since n = 26: (1+n)/(10+n) >= 0.75


def test_update_without_warmup_is_exact_float32():
    model = TinyModel()
    ema = EMA(model, decay=0.99, warmup=False)
    before = {k: host(s).copy() for k, s in ema.shadow.items()}
    nudge(model, 0)
    ema.update(model)
    for k, p in model.params.items():
        expected = np.float32(0.99) * before[k] + np.float32(1 - 0.99) * host(p)
        assert np.array_equal(host(ema.shadow[k]), expected)
        assert ema.shadow[k].dtype == np.float32


def test_copy_to_and_average_parameters():
    model = TinyModel()
    ema = EMA(model, decay=0.5, warmup=False)
    nudge(model, 3)
    ema.update(model)
    live = {k: host(p).copy() for k, p in model.params.items()}
    arrays = {k: p.data for k, p in model.params.items()}
    with ema.average_parameters(model):
        for k, p in model.params.items():
            assert np.array_equal(host(p), host(ema.shadow[k]))
    for k, p in model.params.items():
        assert np.array_equal(host(p), live[k]) and p.data is arrays[k]
    ema.copy_to(model)
    for k, p in model.params.items():
        assert np.array_equal(host(p), host(ema.shadow[k])) and p.data is arrays[k]
    ema.shadow["lin.bias"][...] = 7  # the model holds a copy, not the shadow itself
    assert not np.any(host(model.params["lin.bias"]) == 7)


def test_state_dict_round_trip_and_errors():
    model = TinyModel()
    ema = EMA(model, decay=0.95)
    for n in range(5):
        nudge(model, n)
        ema.update(model)
    sd = ema.state_dict()
    assert sd["num_updates"] == 5 and isinstance(sd["shadow"]["lin.weight"], np.ndarray)
    other = EMA(TinyModel(seed=1), decay=0.5, warmup=False)
    other.load_state_dict(sd)
    assert (other.decay, other.warmup, other.num_updates) == (0.95, True, 5)
    for k in ema.shadow:
        assert np.array_equal(host(other.shadow[k]), host(ema.shadow[k]))
    nudge(model, 5)
    ema.update(model), other.update(model)
    for k in ema.shadow:
        assert np.array_equal(host(other.shadow[k]), host(ema.shadow[k]))

    del model.params["lin.bias"]
    with pytest.raises(ValueError, match=r"missing from the model: \['lin.bias'\]"):
        ema.update(model)
    bad = dict(sd, shadow={**sd["shadow"], "lin.weight": np.zeros((2, 3), np.float32)})
    with pytest.raises(ValueError, match=r"'lin.weight' has shape \(2, 3\)"):
        ema.load_state_dict(bad)
    with pytest.raises(ValueError, match="decay must be in"):
        EMA(TinyModel(), decay=1.5)


def test_with_real_module():
    nn = pytest.importorskip("minildm.nn.module", reason="minildm.nn.Module not written yet")
    model = nn.Module()
    model.weight = nn.Parameter(to_backend(np.ones((2, 2), np.float32)))
    ema = EMA(model, decay=0.5, warmup=False)
    model.weight.data += np.float32(2.0)
    ema.update(model)
    assert np.array_equal(host(ema.shadow["weight"]), np.full((2, 2), 2.0, np.float32))
