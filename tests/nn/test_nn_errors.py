"""Wrong shapes are rejected by the module that received them, in the user's terms (module, expected, actual)."""
import re

import numpy as np
import pytest
from helpers import to_backend

from minildm import nn


def zeros(*shape, dtype=np.float32):
    return to_backend(np.zeros(shape, dtype))


def raises(message, fn, *args, **kwargs):
    with pytest.raises(ValueError, match=re.escape(message)):
        fn(*args, **kwargs)


def test_layers():
    raises("Linear: expected input with last dimension 4 (in_features), got shape (2, 3)", nn.Linear(4, 2), zeros(2, 3))
    raises("Conv2d: expected input (N, 3, H, W), got shape (2, 4, 5, 5)", nn.Conv2d(3, 8, 3), zeros(2, 4, 5, 5))
    raises("Conv2d: expected input (N, 3, H, W), got shape (3, 5, 5)", nn.Conv2d(3, 8, 3), zeros(3, 5, 5))
    raises("GroupNorm: expected input (N, 8, ...), got shape (2, 6, 4, 4)", nn.GroupNorm(2, 8), zeros(2, 6, 4, 4))
    raises("LayerNorm: expected input with last dimension 8, got shape (2, 7)", nn.LayerNorm(8), zeros(2, 7))
    raises("Embedding: ids must be integers", nn.Embedding(5, 2), zeros(3))
    raises("Embedding: ids must be in [0, 5), got values in [0, 5]", nn.Embedding(5, 2),
           to_backend(np.array([0, 5])))
    raises("Upsample2D: expected input with 4 channels (N, 4, H, W), got (2, 3, 4, 4)", nn.Upsample2D(4),
           zeros(2, 3, 4, 4))
    raises("Downsample2D: expected input with 4 channels (N, 4, H, W), got (2, 4, 4)", nn.Downsample2D(4),
           zeros(2, 4, 4))
    raises("TimestepEmbedding: expected input (N, 8), got shape (2, 6)", nn.TimestepEmbedding(8, 16), zeros(2, 6))
    raises("get_timestep_embedding: timesteps must be 1-D", nn.get_timestep_embedding, zeros(2, 1), 8)


def test_constructor_arguments():
    raises("GroupNorm: num_channels=6 is not divisible by num_groups=4", nn.GroupNorm, 4, 6)
    raises("Dropout: p must be in [0, 1], got 1.5", nn.Dropout, 1.5)
    raises("GELU: approximate must be 'none' or 'tanh'", nn.GELU, "fast")
    raises("FeedForward: activation_fn must be", nn.FeedForward, 8, activation_fn="relu")
    raises("TimestepEmbedding: unknown activation 'relu'", nn.TimestepEmbedding, 4, 8, act_fn="relu")
    raises("ResnetBlock2D: time_embedding_norm must be", nn.ResnetBlock2D, 4, time_embedding_norm="ada_group")
    raises("Downsample2D: out_channels=8 needs use_conv=True", nn.Downsample2D, 4, use_conv=False, out_channels=8)
    raises("Transformer2DModel: the residual needs out_channels == in_channels", nn.Transformer2DModel, 2, 4, 8,
           out_channels=4, norm_num_groups=2)


def test_resnet_block():
    block = nn.ResnetBlock2D(64, temb_channels=16, groups=8)
    raises("ResnetBlock2D: expected input with 64 channels (B, 64, H, W), got (2, 32, 8, 8)", block,
           zeros(2, 32, 8, 8), zeros(2, 16))
    raises("ResnetBlock2D: expected temb of shape (2, 16) (batch, temb_channels), got (2, 12)", block,
           zeros(2, 64, 4, 4), zeros(2, 12))
    raises("ResnetBlock2D: temb is required (built with temb_channels=16)", block, zeros(2, 64, 4, 4))
    vae_block = nn.ResnetBlock2D(8, temb_channels=None, groups=4)
    raises("ResnetBlock2D: got temb, but the block was built with temb_channels=None", vae_block,
           zeros(1, 8, 2, 2), zeros(1, 4))


def test_attention():
    attn = nn.Attention(32, cross_attention_dim=64, heads=2, dim_head=8)
    raises("Attention: expected hidden_states (B, T, 32) or (B, 32, H, W), got (2, 5, 16)", attn, zeros(2, 5, 16),
           zeros(2, 3, 64))
    raises("Attention: expected input with 32 channels (B, 32, H, W), got (2, 16, 4, 4)", attn, zeros(2, 16, 4, 4))
    raises("Attention: encoder_hidden_states has dim 32, expected cross_attention_dim=64", attn, zeros(2, 5, 32),
           zeros(2, 3, 32))
    raises("Attention: encoder_hidden_states must be (B=2, S, 64), got (3, 3, 64)", attn, zeros(2, 5, 32),
           zeros(3, 3, 64))
    raises("Attention: encoder_hidden_states is required", attn, zeros(2, 5, 32))
    raises("Attention: attention_mask has shape (2, 4), expected (B, S), (B, 1, S), (B, T, S) or (B, heads, T, S) "
           "with B=2, heads=2, T=5, S=3", attn, zeros(2, 5, 32), zeros(2, 3, 64), zeros(2, 4))


def test_transformer_blocks():
    block = nn.BasicTransformerBlock(16, 2, 8, cross_attention_dim=24)
    raises("BasicTransformerBlock: expected hidden_states (B, T, 16), got (2, 16, 4, 4)", block, zeros(2, 16, 4, 4))
    raises("Attention: encoder_hidden_states has dim 16, expected cross_attention_dim=24", block, zeros(2, 5, 16),
           encoder_hidden_states=zeros(2, 3, 16))
    model = nn.Transformer2DModel(2, 8, 16, norm_num_groups=4, cross_attention_dim=24)
    raises("Transformer2DModel: expected input with 16 channels (B, 16, H, W), got (2, 8, 4, 4)", model,
           zeros(2, 8, 4, 4), zeros(2, 3, 24))
    raises("Transformer2DModel: expected input with 16 channels (B, 16, H, W), got (2, 16, 4)", model,
           zeros(2, 16, 4), zeros(2, 3, 24))
