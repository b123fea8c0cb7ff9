"""Fused ops against PyTorch: values and gradients on golden fixtures (scripts/fixtures/functional.py).

Every case runs in float64 (must agree to 1e-10, relative to the largest expected magnitude) and in float32 (1e-5).
"""
import json

import numpy as np
import pytest
from helpers import FIXTURES, assert_close, load_fixture, to_backend

from minildm.autograd import Tensor
from minildm.nn import functional as F

TOLERANCE = {"float64": 1e-10, "float32": 1e-5}


def _cases():
    for path in sorted(FIXTURES.glob("functional_*.npz")):
        op = path.stem[len("functional_"):]
        with np.load(path, allow_pickle=False) as f:
            cases = json.loads(str(f["cases"]))
        for case in cases:
            for dtype in TOLERANCE:
                yield pytest.param(op, case, dtype, id=f"{op}-{case}-{dtype}")


@pytest.mark.parametrize("op, case, dtype", list(_cases()))
def test_matches_torch(op, case, dtype):
    data = load_fixture(f"functional_{op}.npz")
    meta = json.loads(str(data["cases"]))[case]
    args = {}
    for name in meta["args"]:
        value = data[f"{case}.in.{name}"]
        if value.dtype == np.float32:  # float inputs run in the dtype under test; masks and targets stay as they are
            args[name] = Tensor(to_backend(value, dtype), requires_grad=name in meta["grads"])
        else:
            args[name] = to_backend(value)
    out = getattr(F, op)(**args, **meta["kwargs"])
    assert out.dtype == np.dtype(dtype), f"{op} changed the dtype to {out.dtype}"
    out.backward(to_backend(data[f"{case}.gout"], dtype))

    rtol = TOLERANCE[dtype]
    assert_close(out, data[f"{case}.{dtype}.out"], rtol, what=f"{op}/{case} output")
    for name in meta["grads"]:
        assert args[name].grad.dtype == np.dtype(dtype), f"{op}: d/d{name} has dtype {args[name].grad.dtype}"
        assert_close(args[name].grad, data[f"{case}.{dtype}.grad.{name}"], rtol, what=f"{op}/{case} d/d{name}")
