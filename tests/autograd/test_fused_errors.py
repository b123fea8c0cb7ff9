"""Fused ops reject bad shapes and arguments with a ValueError that names the op and the shapes involved."""
import numpy as np
import pytest
from helpers import to_backend

from minildm import backend
from minildm.autograd import Tensor
from minildm.nn import functional as F


def t(*shape, dtype=np.float32):
    return Tensor(to_backend(np.ones(shape), dtype))


def test_linear_errors():
    with pytest.raises(ValueError, match=r"linear: input of shape \(2, 3\) does not match weight of shape \(4, 5\)"):
        F.linear(t(2, 3), t(4, 5))
    with pytest.raises(ValueError, match=r"linear: bias has shape \(3,\), expected \(4,\)"):
        F.linear(t(2, 5), t(4, 5), t(3))


def test_conv2d_errors():
    with pytest.raises(ValueError, match=r"conv2d: input has C=3 channels .* but weight expects 4"):
        F.conv2d(t(1, 3, 8, 8), t(2, 4, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: input must be 4-D \(N, C, H, W\), got shape \(3, 8, 8\)"):
        F.conv2d(t(3, 8, 8), t(2, 3, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: weight must be 4-D"):
        F.conv2d(t(1, 3, 8, 8), t(2, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: bias has shape \(3,\), expected \(2,\)"):
        F.conv2d(t(1, 3, 8, 8), t(2, 3, 3, 3), t(3))
    with pytest.raises(ValueError, match=r"conv2d: kernel 5x5 is larger than the padded input 4x4"):
        F.conv2d(t(1, 1, 4, 4), t(1, 1, 5, 5))
    with pytest.raises(ValueError, match=r"conv2d: stride must be >= 1"):
        F.conv2d(t(1, 1, 4, 4), t(1, 1, 3, 3), stride=0)
    with pytest.raises(ValueError, match=r"conv2d: padding must be an int or a pair of ints"):
        F.conv2d(t(1, 1, 4, 4), t(1, 1, 3, 3), padding=(1, 1, 1))


def test_norm_errors():
    with pytest.raises(ValueError, match=r"group_norm: C=6 channels \(input shape \(2, 6, 4, 4\)\) are not divisible "
                                         r"by num_groups=4"):
        F.group_norm(t(2, 6, 4, 4), 4)
    with pytest.raises(ValueError, match=r"group_norm: input must have shape \(N, C, \*\), got \(6,\)"):
        F.group_norm(t(6), 2)
    with pytest.raises(ValueError, match=r"group_norm: weight has shape \(4,\), expected \(6,\)"):
        F.group_norm(t(2, 6, 4, 4), 3, weight=t(4))
    with pytest.raises(ValueError, match=r"layer_norm: bias has shape \(3,\), expected \(8,\)"):
        F.layer_norm(t(2, 8), bias=t(3))


def test_attention_errors():
    q = t(2, 4, 5, 8)
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: q has d=8 but k has d=6"):
        F.scaled_dot_product_attention(q, t(2, 4, 7, 6), t(2, 4, 7, 8))
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: k has S=7 keys but v has 6 values"):
        F.scaled_dot_product_attention(q, t(2, 4, 7, 8), t(2, 4, 6, 8))
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: batch axes differ"):
        F.scaled_dot_product_attention(q, t(2, 3, 7, 8), t(2, 3, 7, 8))
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: q, k, v must have the same number of axes"):
        F.scaled_dot_product_attention(q, t(4, 7, 8), t(4, 7, 8))
    mask = to_backend(np.ones((5, 6), dtype=bool))
    with pytest.raises(ValueError, match=r"mask of shape \(5, 6\) does not broadcast to the attention scores "
                                         r"\(\.\.\., T, S\) = \(2, 4, 5, 7\)"):
        F.scaled_dot_product_attention(q, t(2, 4, 7, 8), t(2, 4, 7, 8), mask=mask)
    with pytest.raises(ValueError, match=r"mask must be boolean \(True = attend\) or floating .* got dtype int"):
        F.scaled_dot_product_attention(q, t(2, 4, 7, 8), t(2, 4, 7, 8), mask=to_backend(np.ones((5, 7), dtype=int)))
    with pytest.raises(ValueError, match=r"mask of shape \(3, 4, 5, 7\) does not broadcast"):
        F.scaled_dot_product_attention(q, t(2, 4, 7, 8), t(2, 4, 7, 8), mask=t(3, 4, 5, 7))


def test_activation_resampling_and_dropout_errors():
    with pytest.raises(ValueError, match=r"gelu: approximate must be 'none' or 'tanh', got 'erf'"):
        F.gelu(t(3), approximate="erf")
    with pytest.raises(ValueError, match=r"interpolate: only mode='nearest' is implemented, got 'bilinear'"):
        F.interpolate(t(1, 1, 2, 2), mode="bilinear")
    with pytest.raises(ValueError, match=r"interpolate: scale_factor must be a positive integer"):
        F.interpolate(t(1, 1, 2, 2), scale_factor=1.5)
    with pytest.raises(ValueError, match=r"interpolate: input must be 4-D"):
        F.interpolate(t(2, 2))
    with pytest.raises(ValueError, match=r"pad: padding \(1, 1, 1\) must be non-negative"):
        F.pad(t(2, 2), (1, 1, 1))
    with pytest.raises(ValueError, match=r"dropout: p must be in \[0, 1\], got 1.5"):
        F.dropout(t(3), 1.5, training=True, generator=backend.rng(0))
    with pytest.raises(ValueError, match=r"dropout: training with p > 0 needs an explicit generator"):
        F.dropout(t(3), 0.5, training=True)


def test_loss_errors():
    with pytest.raises(ValueError, match=r"mse_loss: input has shape \(3, 4\) but target has shape \(4,\)"):
        F.mse_loss(t(3, 4), t(4))
    with pytest.raises(ValueError, match=r"mse_loss: reduction must be one of mean, sum, none; got 'avg'"):
        F.mse_loss(t(3), t(3), reduction="avg")
    targets = to_backend(np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"cross_entropy: targets must be \(N,\) = \(4,\) integer class indices for "
                                         r"logits of shape \(4, 5\), got shape \(3,\)"):
        F.cross_entropy(t(4, 5), targets)
    with pytest.raises(ValueError, match=r"cross_entropy: targets must be .* dtype float"):
        F.cross_entropy(t(3, 5), to_backend(np.zeros(3)))
    with pytest.raises(ValueError, match=r"cross_entropy: logits must be \(N, C\), got shape \(2, 3, 5\)"):
        F.cross_entropy(t(2, 3, 5), targets)
    if not backend.is_device_array(targets):  # the range check is skipped on the GPU (it would need a sync)
        with pytest.raises(ValueError, match=r"cross_entropy: targets must lie in \[0, 2\), got values from 0 to 2"):
            F.cross_entropy(t(3, 2), targets)
