"""UNet2DConditionModel configs (a real SD v1.5 config.json, unsupported options and block types) and the
errors a user meets when the inputs do not fit."""
import json
import warnings

import numpy as np
import pytest

from helpers import FIXTURES, to_backend
from minildm import no_grad
from minildm.models.unet import UNet2DConditionModel

TINY = {"block_out_channels": [8, 16], "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "norm_num_groups": 4, "cross_attention_dim": 12,
        "attention_head_dim": 2, "layers_per_block": 1}


@pytest.fixture(scope="module")
def tiny():
    return UNet2DConditionModel.from_config(TINY, generator=0)


def test_sd_v15_config_gives_the_real_checkpoint_names_and_shapes():
    """The SD v1.5 unet/config.json as published, ten times narrower (32 instead of 320 channels) so that it builds
    in a test: the parameter names are exactly those of the real 860M-parameter checkpoint, and every shape is the
    real one with each channel count divided by ten (768, the text width, and kernel sizes stay)."""
    reference = json.loads((FIXTURES / "unet_sd15_keys.json").read_text())
    config = dict(reference["config"], block_out_channels=[32, 64, 128, 128])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "_class_name", "_diffusers_version" are metadata, not unknown keys
        unet = UNet2DConditionModel.from_config(config, generator=0)
    shapes = {name: p.shape for name, p in unet.named_parameters()}
    assert sorted(shapes) == sorted(reference["shapes"])
    for name, full in reference["shapes"].items():
        assert shapes[name] == tuple(d // 10 if d % 10 == 0 else d for d in full), name
    attn = unet.down_blocks[0].attentions[0].transformer_blocks[0].attn2
    assert (attn.heads, attn.dim_head) == (8, 4)  # attention_head_dim=8 means 8 heads (the SD v1 quirk)
    rng = np.random.default_rng(0)
    with no_grad():
        out = unet(to_backend(rng.standard_normal((1, 4, 16, 16)).astype(np.float32)), 999,
                   to_backend(rng.standard_normal((1, 5, 768)).astype(np.float32)))
    assert out.shape == (1, 4, 16, 16) and np.isfinite(out.numpy()).all()


def test_unknown_keys_warn_and_unsupported_defaults_pass():
    config = dict(TINY, some_future_option=3, class_embed_type=None, time_cond_proj_dim=None,
                  resnet_time_scale_shift="default", addition_embed_type_num_heads=64)
    with pytest.warns(UserWarning, match="some_future_option"):
        UNet2DConditionModel.from_config(config)


@pytest.mark.parametrize("options", [
    {"class_embed_type": "timestep"},
    {"addition_embed_type": "text_time", "time_cond_proj_dim": 32},
    {"cross_attention_norm": "group_norm"},
    {"resnet_time_scale_shift": "scale_shift"},
])
def test_unsupported_options_raise_naming_them(options):
    with pytest.raises(ValueError, match="unsupported options") as info:
        UNet2DConditionModel.from_config(dict(TINY, **options))
    for key in options:
        assert key in str(info.value)


@pytest.mark.parametrize("change, named", [
    ({"down_block_types": ["SimpleCrossAttnDownBlock2D", "DownBlock2D"]}, "SimpleCrossAttnDownBlock2D"),
    ({"up_block_types": ["UpBlock2D", "AttnUpBlock2D"]}, "AttnUpBlock2D"),
    ({"mid_block_type": "UNetMidBlock2DSimpleCrossAttn"}, "UNetMidBlock2DSimpleCrossAttn"),
    ({"down_block_types": ["DownBlock2D"]}, "levels"),
    ({"layers_per_block": [1, 2, 3]}, "layers_per_block"),
    ({"cross_attention_dim": [12, 16]}, "cross_attention_dim"),
    ({"act_fn": "gelu"}, "act_fn"),
])
def test_bad_configs_raise_value_errors(change, named):
    with pytest.raises(ValueError, match=named):
        UNet2DConditionModel.from_config(dict(TINY, **change))


def test_num_attention_heads_overrides_the_quirk():
    unet = UNet2DConditionModel.from_config(dict(TINY, attention_head_dim=8, num_attention_heads=[4, 2]))
    attn = unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1
    assert (attn.heads, attn.dim_head) == (4, 2)


def _inputs(batch=2, channels=4, size=(8, 8), tokens=3, dim=12):
    rng = np.random.default_rng(0)
    return (to_backend(rng.standard_normal((batch, channels) + size).astype(np.float32)),
            to_backend(rng.standard_normal((batch, tokens, dim)).astype(np.float32)))


@pytest.mark.parametrize("kwargs, message", [
    (dict(channels=3), r"sample must be \(B, in_channels=4, H, W\), got shape \(2, 3, 8, 8\)"),
    (dict(dim=32), "encoder_hidden_states has dim 32, expected cross_attention_dim=12"),
    (dict(size=(8, 7)), r"must be divisible by 2 = 2 \*\* 1 \(one halving per downsampling\), got 8x7"),
])
def test_input_errors_speak_the_users_language(tiny, kwargs, message):
    sample, context = _inputs(**kwargs)
    with pytest.raises(ValueError, match=message):
        tiny(sample, 10, context)


def test_batch_and_timestep_mismatches(tiny):
    sample, context = _inputs()
    with pytest.raises(ValueError, match="batch sizes differ"):
        tiny(sample, 10, context[:1])
    with pytest.raises(ValueError, match=r"timestep must be a scalar or have shape \(2,\)"):
        tiny(sample, np.array([1, 2, 3]), context)
    with pytest.raises(ValueError, match=r"encoder_attention_mask must be \(B, S\)"):
        tiny(sample, 10, context, encoder_attention_mask=np.ones((2, 4), dtype=bool))
