"""Every layer and block against PyTorch / diffusers (fixtures from scripts/fixtures/nn.py).

For each case the diffusers state dict is loaded with strict=True (so the parameter names match exactly), the
forward runs on the fixture's inputs, and the backward of L = sum(out * w) gives the parameter and input
gradients. The reference was computed by PyTorch in float64, so:

- in float64 minildm must agree to 1e-12 (relative to the largest reference value): the same mathematics
  (observed: <= 5e-15);
- in float32 it must agree to 1e-5: float32 rounding alone (observed: <= 2e-7 for outputs, <= 2e-6 for the
  gradients of the deepest blocks).

The timestep embedding is computed in float32 by diffusers itself; see test_timestep_embedding for its tolerance.
"""
import json

import numpy as np
import pytest
from helpers import assert_close, host, load_fixture, to_backend

from minildm import Tensor
from minildm import nn

# case -> (minildm class, {diffusers kwarg: minildm kwarg} renames)
CASES = {
    "linear": (nn.Linear, {}),
    "linear_nobias": (nn.Linear, {}),
    "conv2d": (nn.Conv2d, {}),
    "conv2d_stride2": (nn.Conv2d, {}),
    "group_norm": (nn.GroupNorm, {}),
    "layer_norm": (nn.LayerNorm, {"normalized_shape": "dim"}),
    "embedding": (nn.Embedding, {"embedding_dim": "dim"}),
    "geglu": (nn.GEGLU, {}),
    "feedforward_gelu": (nn.FeedForward, {}),
    "upsample": (nn.Upsample2D, {}),
    "upsample_size": (nn.Upsample2D, {}),
    "downsample": (nn.Downsample2D, {}),
    "downsample_pad0": (nn.Downsample2D, {}),
    "downsample_avg": (nn.Downsample2D, {}),
    "timestep_embedding": (nn.TimestepEmbedding, {}),
    "resnet": (nn.ResnetBlock2D, {}),
    "resnet_channels": (nn.ResnetBlock2D, {}),
    "resnet_vae": (nn.ResnetBlock2D, {}),
    "attention_self": (nn.Attention, {}),
    "attention_cross_mask": (nn.Attention, {}),
    "attention_vae": (nn.Attention, {}),
    "transformer_block": (nn.BasicTransformerBlock, {}),
    "transformer2d": (nn.Transformer2DModel, {}),
    "transformer2d_linear": (nn.Transformer2DModel, {}),
}


def run_case(name, dtype):
    """Build, load (strict), run forward and backward; returns (fixture, module, output, input tensors)."""
    cls, renames = CASES[name]
    fx = load_fixture(f"nn_{name}.npz")
    spec = json.loads(str(fx["spec"]))
    module = cls(**{renames.get(k, k): v for k, v in spec["kwargs"].items()})
    state = {k[len("state."):]: v for k, v in fx.items() if k.startswith("state.")}
    module.load_state_dict(state, strict=True)
    module.to(dtype)

    inputs = {}
    for key in spec["inputs"] + spec["forward_kwargs"]:
        value = fx.get(f"in.{key}")
        if value is None or key == "output_size":
            inputs[key] = None if value is None else tuple(int(s) for s in value)
        elif value.dtype == np.float32 and not key.endswith("mask"):
            inputs[key] = Tensor(to_backend(value, dtype), requires_grad=True)
        elif value.dtype == np.float32:
            inputs[key] = to_backend(value, dtype)  # an additive mask: a constant
        else:
            inputs[key] = to_backend(value)  # token ids, boolean masks
    out = module(*[inputs[k] for k in spec["inputs"]], **{k: inputs[k] for k in spec["forward_kwargs"]})
    (out * Tensor(to_backend(fx["w"], dtype))).sum().backward()
    return fx, module, out, inputs


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matches_reference(name, dtype):
    fx, module, out, inputs = run_case(name, dtype)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    assert out.dtype == np.dtype(dtype)
    assert_close(out, fx["out"], rtol=rtol, what=f"{name} output")
    grads = dict(module.named_parameters())
    expected = [k for k in fx if k.startswith("grad.") and not k.startswith("grad.in.")]
    assert sorted(k[len("grad."):] for k in expected) == sorted(grads), "every parameter has a reference gradient"
    # Some gradients are exactly zero by symmetry (to_k.bias: softmax ignores a shift shared by a row of
    # scores), so a relative test against them is meaningless; they get an absolute floor of rtol times the
    # case's largest gradient.
    floor = rtol * max(np.abs(fx[k]).max() for k in fx if k.startswith("grad."))
    for key in expected:
        assert_close(grads[key[len("grad."):]].grad, fx[key], rtol=rtol, atol=floor, what=f"{name} {key}")
    for key in [k for k in fx if k.startswith("grad.in.")]:
        assert_close(inputs[key[len("grad.in."):]].grad, fx[key], rtol=rtol, atol=floor, what=f"{name} {key}")


def test_state_dict_keys_are_diffusers_keys_in_diffusers_order():
    for name in CASES:
        fx, module, _, _ = run_case(name, "float32")
        reference = [k[len("state."):] for k in fx if k.startswith("state.")]
        assert list(module.state_dict()) == reference, name


def test_timestep_embedding():
    """diffusers computes in float32. The argument scale * t * freq is itself only known to a float32 rounding,
    about |scale * t| * 2^-23, and sin/cos pass that error on (their slope is <= 1). So each row (one timestep) is
    held to twice that bound plus 1e-6: 1e-6 at t = 0, ~2.5e-4 at t = 999."""
    fx = load_fixture("nn_timestep.npz")
    for i, case in enumerate(json.loads(str(fx["cases"]))):
        t, expected = fx[f"{i}.t"], fx[f"{i}.out"]
        out = nn.get_timestep_embedding(to_backend(t), **case)
        assert out.shape == expected.shape and out.dtype == np.float32
        bound = 2 * np.abs(t) * case["scale"] * 2.0 ** -23 + 1e-6
        err = np.abs(host(out).astype(np.float64) - expected).max(axis=1)
        assert (err <= bound).all(), f"timestep case {case}: errors {err} > bounds {bound}"
        if case["max_period"] == 10000:
            module = nn.Timesteps(case["embedding_dim"], case["flip_sin_to_cos"], case["downscale_freq_shift"],
                                  scale=case["scale"])
            assert np.array_equal(host(module(Tensor(to_backend(t)))), host(out))
