"""UNet2DConditionModel against diffusers: tiny random diffusers U-Nets (scripts/fixtures/unet.py) load from their
own folders with strict=True and give the same noise prediction, mask handling and gradients."""
import numpy as np
import pytest

from helpers import FIXTURES, assert_close, host, load_fixture, to_backend
from minildm import Tensor, no_grad
from minildm.models.unet import UNet2DConditionModel
from minildm.nn import functional as F

RTOL = 1e-4  # float32 through ~40 layers: measured errors are ~1e-6 relative


@pytest.fixture(scope="module")
def unet_a():
    return UNet2DConditionModel.from_pretrained(FIXTURES / "unet_a")


@pytest.fixture(scope="module")
def unet_b():
    return UNet2DConditionModel.from_pretrained(FIXTURES / "unet_b")


def _inputs(f):
    return to_backend(f["sample"]), to_backend(f["encoder_hidden_states"])


def test_a_three_levels_two_layers_matches_diffusers(unet_a):
    f = load_fixture("unet_a.npz")
    sample, context = _inputs(f)
    with no_grad():
        out = unet_a(sample, int(f["timestep"]), context)  # one Python int for the whole batch
    assert isinstance(out, Tensor)
    assert_close(out, f["out"], RTOL, what="unet_a noise prediction")


def test_b_mid_block_heads_per_level_per_sample_timesteps_match_diffusers(unet_b):
    f = load_fixture("unet_b.npz")
    sample, context = _inputs(f)
    with no_grad():
        out = unet_b(sample, to_backend(f["timestep"]), context)
    assert_close(out, f["out"], RTOL, what="unet_b noise prediction")
    # SD v1 quirk: attention_head_dim=(2, 4) means 2 and 4 heads, each channels // heads wide
    attn = unet_b.mid_block.attentions[0].transformer_blocks[0].attn1
    assert (attn.heads, attn.dim_head) == (4, 6)


def test_b_encoder_attention_mask_matches_diffusers(unet_b):
    f = load_fixture("unet_b.npz")
    sample, context = _inputs(f)
    with no_grad():
        out = unet_b(sample, to_backend(f["timestep"]), context, to_backend(f["encoder_attention_mask"]))
    assert_close(out, f["out_masked"], RTOL, what="unet_b with encoder_attention_mask")
    assert np.abs(f["out_masked"] - f["out"]).max() > 1e-2  # the mask really changes the answer


def test_b_gradients_match_torch_autograd(unet_b):
    f = load_fixture("unet_b.npz")
    unet_b.zero_grad()
    x = Tensor(to_backend(f["sample"]), requires_grad=True)
    out = unet_b(x, to_backend(f["timestep"]), to_backend(f["encoder_hidden_states"]))
    loss = F.mse_loss(out, to_backend(f["target"]))
    loss.backward()
    assert_close(loss, f["loss"], RTOL, what="loss")
    params = dict(unet_b.named_parameters())
    for key in (k for k in f if k.startswith("grad.")):
        name = key[len("grad."):]
        grad = x.grad if name == "sample" else params[name].grad
        assert_close(grad, f[key], 1e-4, what=f"d loss / d {name}")
    unet_b.zero_grad()


def test_float16_folder_loads_into_float32_model():
    """The same model saved by diffusers in float16: minildm reads it into float32 and matches torch run in
    float32 on the identical float16-rounded weights (so the tolerance stays the float32 one)."""
    f = load_fixture("unet_b.npz")
    model = UNet2DConditionModel.from_pretrained(FIXTURES / "unet_b_fp16")
    assert all(p.dtype == np.float32 for p in model.parameters())
    sample, context = _inputs(f)
    with no_grad():
        out = model(sample, to_backend(f["timestep"]), context)
    assert_close(out, f["out_fp16_weights"], RTOL, what="float16 weights")
    assert_close(out, f["out"], 1e-2, what="float16 weights vs float32 weights")  # rounding costs ~1e-3


def test_timestep_forms_agree(unet_a):
    """A Python int or float, a 0-d or (1,) array, a (B,) array or Tensor: the same timestep, the same output."""
    f = load_fixture("unet_a.npz")
    sample, context = _inputs(f)
    forms = [537, 537.0, np.array(537), np.array([537]), np.array([537, 537], dtype=np.int64),
             Tensor(to_backend(np.array([537.0, 537.0], dtype=np.float32)))]
    with no_grad():
        outs = [host(unet_a(sample, t, context)) for t in forms]
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])


def test_per_sample_timesteps_are_independent(unet_b):
    """Sample i of a batch with timesteps (t0, t1) equals running sample i alone with t_i."""
    f = load_fixture("unet_b.npz")
    sample, context = _inputs(f)
    with no_grad():
        both = host(unet_b(sample, to_backend(f["timestep"]), context))
        for i in range(2):
            alone = unet_b(sample[i:i + 1], float(f["timestep"][i]), context[i:i + 1])
            assert_close(alone, both[i:i + 1], 1e-5, what=f"sample {i} alone")


def test_save_pretrained_roundtrip(unet_a, tmp_path):
    f = load_fixture("unet_a.npz")
    unet_a.save_pretrained(tmp_path / "unet")
    again = UNet2DConditionModel.from_pretrained(tmp_path / "unet")
    assert again.config == unet_a.config
    sample, context = _inputs(f)
    with no_grad():
        np.testing.assert_array_equal(host(again(sample, 537, context)), host(unet_a(sample, 537, context)))


def test_seeded_construction_is_deterministic():
    config = {"block_out_channels": [8, 16], "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
              "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "norm_num_groups": 4,
              "cross_attention_dim": 8, "attention_head_dim": 2, "layers_per_block": 1}
    a, b = (UNet2DConditionModel.from_config(config, generator=7) for _ in range(2))
    c = UNet2DConditionModel.from_config(config, generator=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert not np.array_equal(sa["conv_in.weight"], sc["conv_in.weight"])
