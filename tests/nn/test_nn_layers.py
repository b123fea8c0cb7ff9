"""Properties of the layers beyond the golden values: mask forms, equivalent layouts, formulas spelled out."""
import numpy as np
from helpers import assert_close, host, to_backend

from minildm import Tensor, nn
from minildm.nn import functional as F


def randn(*shape, seed=0):
    return to_backend(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def test_attention_mask_forms_agree_and_masked_keys_are_ignored():
    attn = nn.Attention(8, cross_attention_dim=6, heads=2, dim_head=4, generator=1)
    x, context = randn(2, 3, 8), randn(2, 5, 6, seed=1)
    keep = np.ones((2, 5), bool)
    keep[0, 3:] = False
    keep[1, 0] = False
    bias = np.where(keep, 0.0, -np.inf).astype(np.float32)
    outs = [attn(x, context, to_backend(keep)),                                             # (B, S) bool
            attn(x, context, to_backend(bias[:, None, :])),                                 # (B, 1, S) additive
            attn(x, context, to_backend(np.broadcast_to(keep[:, None, :], (2, 3, 5)))),     # (B, T, S)
            attn(x, context, to_backend(np.broadcast_to(keep[:, None, None], (2, 2, 3, 5))))]  # (B, heads, T, S)
    for out in outs[1:]:
        assert_close(out, host(outs[0]), rtol=1e-6)
    changed = host(context).copy()
    changed[~keep] = 100.0  # whatever the masked tokens hold, the output does not change
    assert_close(attn(x, to_backend(changed), to_backend(keep)), host(outs[0]), rtol=1e-6)


def test_transformer2d_keep_mask_is_diffusers_bias():
    model = nn.Transformer2DModel(2, 4, 8, norm_num_groups=2, cross_attention_dim=6, generator=3)
    x, context = randn(2, 8, 2, 3), randn(2, 4, 6, seed=1)
    keep = np.array([[1, 1, 0, 0], [1, 1, 1, 0]], np.float32)
    bias = ((1 - keep) * -10000.0)[:, None, :]
    assert_close(model(x, context, encoder_attention_mask=to_backend(keep.astype(bool))),
                 host(model(x, context, encoder_attention_mask=to_backend(bias))), rtol=1e-6)


def test_spatial_attention_is_token_attention_plus_residual():
    """The VAE's mid-block attention on (B, C, H, W) is attention over the H*W pixels as tokens."""
    vae_attn = nn.Attention(8, heads=1, dim_head=8, norm_num_groups=4, eps=1e-6, residual_connection=True,
                            bias=True, rescale_output_factor=2.0, generator=2)
    x = randn(2, 8, 3, 4)
    tokens = host(x).reshape(2, 8, 12).transpose(0, 2, 1)
    normed = F.group_norm(to_backend(tokens.transpose(0, 2, 1)), 4, vae_attn.group_norm.weight,
                          vae_attn.group_norm.bias, eps=1e-6).swapaxes(1, 2)
    q, k, v = (host(layer(normed)) for layer in (vae_attn.to_q, vae_attn.to_k, vae_attn.to_v))
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(8)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    attended = host(vae_attn.to_out[0](to_backend(p @ v)))
    expected = (attended.transpose(0, 2, 1).reshape(2, 8, 3, 4) + host(x)) / 2.0
    assert_close(vae_attn(x), expected, rtol=1e-5)


def test_linear_and_conv_projections_are_the_same_map():
    """use_linear_projection (SD 2.x) vs 1x1 convs (SD 1.x): the same weights, stored as (O, I) or (O, I, 1, 1)."""
    conv = nn.Transformer2DModel(2, 4, 8, norm_num_groups=2, cross_attention_dim=6, generator=4)
    linear = nn.Transformer2DModel(2, 4, 8, norm_num_groups=2, cross_attention_dim=6, use_linear_projection=True)
    state = conv.state_dict()
    for name in ("proj_in.weight", "proj_out.weight"):
        state[name] = state[name][:, :, 0, 0]
    linear.load_state_dict(state)
    x, context = randn(2, 8, 3, 2), randn(2, 4, 6, seed=1)
    assert_close(linear(x, context), host(conv(x, context)), rtol=1e-5)


def test_geglu_is_value_times_gelu_of_gate():
    geglu = nn.GEGLU(6, 4, generator=5)
    x = randn(3, 6)
    h = host(geglu.proj(x))
    expected = h[:, :4] * host(F.gelu(to_backend(h[:, 4:])))
    assert_close(geglu(x), expected, rtol=1e-6)


def test_resnet_scale_shift():
    block = nn.ResnetBlock2D(4, 8, temb_channels=5, groups=2, time_embedding_norm="scale_shift", generator=6)
    assert block.time_emb_proj.out_features == 16
    x, temb = randn(2, 4, 3, 3), randn(2, 5, seed=1)
    h = block.conv1(F.silu(block.norm1(x)))
    scale, shift = (host(block.time_emb_proj(F.silu(temb)))[:, :, None, None][:, i * 8:(i + 1) * 8] for i in (0, 1))
    h = host(block.norm2(h)) * (1 + scale) + shift
    expected = host(block.conv2(F.silu(to_backend(h)))) + host(block.conv_shortcut(x))
    assert_close(block(x, temb), expected, rtol=1e-5)


def test_upsample_output_size():
    up = nn.Upsample2D(3, use_conv=False)
    x = randn(1, 3, 2, 3)
    assert np.array_equal(host(up(x, output_size=(4, 6))), host(up(x)))  # the fast path
    out = host(up(x, output_size=(5, 7)))  # nearest: output pixel (i, j) copies (floor(i * 2/5), floor(j * 3/7))
    rows, cols = np.floor(np.arange(5) * 2 / 5).astype(int), np.floor(np.arange(7) * 3 / 7).astype(int)
    assert np.array_equal(out, host(x)[:, :, rows][:, :, :, cols])


def test_timestep_embedding_inputs_and_odd_width():
    emb = nn.get_timestep_embedding([0, 10], 7)
    assert emb.shape == (2, 7) and (host(emb)[:, -1] == 0).all()  # odd width: one zero column appended
    assert_close(emb, host(nn.get_timestep_embedding(Tensor(to_backend(np.array([0, 10]))), 7)), rtol=0)
    first = host(nn.get_timestep_embedding(to_backend(np.array([0.0])), 8, flip_sin_to_cos=True))
    assert np.array_equal(first, [[1, 1, 1, 1, 0, 0, 0, 0]])  # t = 0: cos = 1 first, then sin = 0


def test_dropout_extremes_and_feedforward_dropout():
    x = randn(4, 8)
    assert (host(nn.Dropout(1.0)(x)) == 0).all()
    assert np.array_equal(host(nn.Dropout(0.0)(x)), host(x))
    ff = nn.FeedForward(8, dropout=0.5, generator=7)
    assert not np.array_equal(host(ff(x)), host(ff(x)))  # training: fresh masks
    ff.eval()
    assert np.array_equal(host(ff(x)), host(ff(x)))


def test_downsample_padding_zero_pads_bottom_right():
    down = nn.Downsample2D(2, padding=0, generator=8)
    x = randn(1, 2, 4, 4)
    padded = np.pad(host(x), ((0, 0), (0, 0), (0, 1), (0, 1)))
    expected = F.conv2d(to_backend(padded), down.conv.weight, down.conv.bias, stride=2)
    assert down(x).shape == (1, 2, 2, 2)
    assert_close(down(x), host(expected), rtol=1e-6)
