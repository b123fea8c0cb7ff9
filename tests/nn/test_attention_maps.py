"""record_attention / attention_probs: the recorded probabilities are softmax(Q K^T / sqrt(d) + mask), computed
here independently (float64, from the layer's own weights); rows sum to 1; recording changes no output; outside
the block nothing is recorded."""
import numpy as np
import pytest
from helpers import assert_close, host, to_backend

from minildm import nn
from minildm.nn import AttentionRecorder, attention_probs, record_attention


def randn(*shape, seed=0):
    return to_backend(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def reference_probs(attn, x, context, keep=None):
    """softmax(Q_h K_h^T / sqrt(d)) per head, in float64 with NumPy, from the layer's weights: (B, heads, T, S)."""
    x64, c64 = host(x).astype(np.float64), host(context).astype(np.float64)
    q = x64 @ host(attn.to_q.weight.data).astype(np.float64).T
    k = c64 @ host(attn.to_k.weight.data).astype(np.float64).T
    b, t, s, h, d = x64.shape[0], x64.shape[1], c64.shape[1], attn.heads, attn.dim_head
    q = q.reshape(b, t, h, d).transpose(0, 2, 1, 3)
    k = k.reshape(b, s, h, d).transpose(0, 2, 1, 3)
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)
    if keep is not None:
        scores = np.where(keep[:, None, None, :], scores, -np.inf)
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_attention_probs_is_softmax_of_scaled_scores():
    q, k = randn(3, 5, 8), randn(3, 7, 8, seed=1)
    p = host(attention_probs(q, k))
    q64, k64 = host(q).astype(np.float64), host(k).astype(np.float64)
    scores = q64 @ k64.transpose(0, 2, 1) / np.sqrt(8)
    expected = np.exp(scores) / np.exp(scores).sum(axis=-1, keepdims=True)
    assert p.shape == (3, 5, 7)
    np.testing.assert_allclose(p, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=0, atol=1e-6)
    # an explicit scale, and a boolean mask: masked keys get exactly 0, the rest renormalise
    keep = np.ones((3, 1, 7), bool)
    keep[:, :, 4:] = False
    masked = host(attention_probs(q, k, scale=0.5, mask=to_backend(keep)))
    scores = q64 @ k64.transpose(0, 2, 1) * 0.5
    e = np.exp(scores[..., :4] - scores[..., :4].max(axis=-1, keepdims=True))
    np.testing.assert_allclose(masked[..., :4], e / e.sum(axis=-1, keepdims=True), rtol=1e-5, atol=1e-7)
    assert np.all(masked[..., 4:] == 0)
    none_kept = host(attention_probs(q, k, mask=to_backend(np.zeros((3, 1, 7), bool))))
    assert np.all(none_kept == 0)  # a fully masked row: zeros, as the fused attention gives, not NaN


def test_recorded_cross_attention_equals_independent_softmax_and_output_is_unchanged():
    attn = nn.Attention(8, cross_attention_dim=6, heads=2, dim_head=4, generator=1)
    x, context = randn(2, 9, 8), randn(2, 5, 6, seed=1)
    before = host(attn(x, context))
    with record_attention(attn, layers=None) as rec:
        during = host(attn(x, context))
        attn(x, context)
    after = host(attn(x, context))  # outside the block: not recorded
    np.testing.assert_array_equal(during, before)  # recording does not touch the computation
    np.testing.assert_array_equal(after, before)
    assert rec.layers == [""] and len(rec.maps[""]) == 2  # two calls inside the block, the one after not recorded
    probs = host(rec.maps[""][0])
    assert probs.shape == (2, 2, 9, 5)  # (B, heads, T, S)
    np.testing.assert_allclose(probs, reference_probs(attn, x, context), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=0, atol=1e-6)
    # the layer's output is P V, heads concatenated, then to_out: the recorded P reproduces it
    v = (host(context).astype(np.float64) @ host(attn.to_v.weight.data).astype(np.float64).T)
    v = v.reshape(2, 5, 2, 4).transpose(0, 2, 1, 3)
    heads = (probs.astype(np.float64) @ v).transpose(0, 2, 1, 3).reshape(2, 9, 8)
    out = heads @ host(attn.to_out[0].weight.data).T + host(attn.to_out[0].bias.data)
    np.testing.assert_allclose(out, before, rtol=1e-4, atol=1e-5)
    assert attn.recorder is None
    assert rec.queries[""] == [] and rec.keys[""] == []  # kept only on request


def test_kept_queries_and_keys_are_the_projections_split_into_heads():
    attn = nn.Attention(8, cross_attention_dim=6, heads=2, dim_head=4, generator=4)
    x, context = randn(2, 9, 8), randn(2, 5, 6, seed=1)
    with record_attention(attn, layers=None, keep_qk=True) as rec:
        attn(x, context)
    q, k = host(rec.queries[""][0]), host(rec.keys[""][0])
    assert q.shape == (2, 2, 9, 4) and k.shape == (2, 2, 5, 4)  # (B, heads, T|S, d)
    q_ref = (host(x) @ host(attn.to_q.weight.data).T).reshape(2, 9, 2, 4).transpose(0, 2, 1, 3)
    k_ref = (host(context) @ host(attn.to_k.weight.data).T).reshape(2, 5, 2, 4).transpose(0, 2, 1, 3)
    np.testing.assert_allclose(q, q_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(k, k_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(host(attention_probs(q, k)), host(rec.maps[""][0]), rtol=1e-6, atol=1e-7)


def test_recording_with_a_mask():
    attn = nn.Attention(8, cross_attention_dim=6, heads=2, dim_head=4, generator=2)
    x, context = randn(2, 3, 8), randn(2, 5, 6, seed=3)
    keep = np.ones((2, 5), bool)
    keep[0, 3:] = False
    with record_attention(attn, layers=None) as rec:
        attn(x, context, to_backend(keep))
    probs = host(rec.maps[""][0])
    np.testing.assert_allclose(probs, reference_probs(attn, x, context, keep), rtol=1e-5, atol=1e-7)
    assert np.all(probs[0, :, :, 3:] == 0)


def test_record_attention_selects_layers_of_a_transformer_and_token_maps():
    model = nn.Transformer2DModel(2, 4, 8, norm_num_groups=2, cross_attention_dim=6, num_layers=2, generator=3)
    x, context = randn(2, 8, 4, 4), randn(2, 5, 6, seed=1)
    reference = host(model(x, context))
    with record_attention(model) as rec:  # default: the cross-attentions (attn2)
        out = host(model(x, context))
    np.testing.assert_array_equal(out, reference)
    assert rec.layers == ["transformer_blocks.0.attn2", "transformer_blocks.1.attn2"]
    for name in rec.layers:
        assert host(rec.maps[name][0]).shape == (2, 2, 16, 5)  # 4x4 pixels attend over 5 tokens
    with record_attention(model, layers="attn1") as self_rec:
        model(x, context)
    assert self_rec.layers == ["transformer_blocks.0.attn1", "transformer_blocks.1.attn1"]
    assert host(self_rec.maps["transformer_blocks.0.attn1"][0]).shape == (2, 2, 16, 16)
    assert all(block.attn1.recorder is None and block.attn2.recorder is None for block in model.transformer_blocks)

    maps = host(rec.token_maps(size=8))  # (calls, B, S, 8, 8): heads and the two layers averaged, 4x upsampled
    assert maps.shape == (1, 2, 5, 8, 8)
    by_hand = np.mean([host(rec.maps[name][0]).mean(axis=1) for name in rec.layers], axis=0)  # (B, T, S)
    by_hand = by_hand.transpose(0, 2, 1).reshape(2, 5, 4, 4).repeat(2, axis=-2).repeat(2, axis=-1)
    np.testing.assert_allclose(maps[0], by_hand, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(maps.sum(axis=2), 1.0, atol=1e-6)  # each pixel's distribution over tokens


def test_record_attention_errors_and_cleanup():
    attn = nn.Attention(8, cross_attention_dim=6, heads=2, dim_head=4, generator=1)
    with pytest.raises(ValueError, match="no Attention layer"):
        with record_attention(attn, layers="attn2"):
            pass
    with pytest.raises(RuntimeError, match="already being recorded"):
        with record_attention(attn, layers=None):
            with record_attention(attn, layers=None):
                pass
    with pytest.raises(KeyError):
        with record_attention(attn, layers=None):
            raise KeyError("boom")
    assert attn.recorder is None  # cleaned up after an error too
    with pytest.raises(ValueError, match="nothing was recorded"):
        AttentionRecorder(["a"]).token_maps(8)
