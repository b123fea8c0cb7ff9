"""Finite-difference gradient checks (float64) of every fused op, on small shapes and their edge cases."""
import numpy as np
import pytest
from helpers import to_backend

from minildm import backend
from minildm.autograd import Tensor, gradcheck
from minildm.nn import functional as F

TOL = dict(atol=1e-6, rtol=1e-6)


def tensor(*shape, seed=0, scale=1.0, loc=0.0, grad=True):
    values = loc + scale * np.random.default_rng(seed).standard_normal(shape)
    return Tensor(to_backend(values, np.float64), requires_grad=grad)


@pytest.mark.parametrize("x_shape, bias", [((2, 3, 4), True), ((4,), True), ((3, 4), False), ((1, 1, 4), True)])
def test_linear(x_shape, bias):
    x, w = tensor(*x_shape), tensor(5, 4, seed=1)
    b = tensor(5, seed=2) if bias else None
    assert gradcheck(lambda x, w, b: F.linear(x, w, b), [x, w, b], **TOL)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", [
    ((1, 1, 1, 1), (1, 1, 1, 1), 1, 0),             # everything size 1
    ((2, 3, 5, 4), (2, 3, 3, 3), 1, 1),             # 'same' 3x3 (the transposed-convolution backward)
    ((1, 2, 7, 5), (3, 2, 3, 3), 2, 1),             # stride 2 on odd sizes (the general backward)
    ((1, 2, 5, 6), (2, 2, 1, 3), (1, 2), (0, 1)),   # non-square kernel, per-axis stride and padding
    ((2, 3, 4, 4), (4, 3, 1, 1), 1, 0),             # 1x1: the pointwise path (no gather)
    ((2, 5, 2, 2), (3, 5, 1, 1), 1, 0),             # 1x1 with C > H*W
    ((1, 2, 3, 3), (3, 2, 1, 1), 1, 1),             # 1x1 with padding (the general backward)
    ((1, 1, 3, 3), (2, 1, 2, 2), 1, 2),             # padding wider than kernel - 1
    ((1, 2, 6, 5), (2, 2, 2, 2), 3, 0),             # stride larger than the kernel: some pixels are never read
])
def test_conv2d(x_shape, w_shape, stride, padding):
    x, w, b = tensor(*x_shape), tensor(*w_shape, seed=1), tensor(w_shape[0], seed=2)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=padding), [x, w, b], **TOL)


@pytest.mark.parametrize("x_shape, groups", [((2, 4, 3, 3), 1), ((2, 4, 3, 3), 2), ((2, 4, 3, 3), 4),
                                             ((2, 4, 1, 1), 2), ((3, 6, 5), 3), ((1, 2, 2, 3), 1)])
def test_group_norm(x_shape, groups):
    c = x_shape[1]
    x, w, b = tensor(*x_shape, loc=2.0, scale=3.0), tensor(c, seed=1), tensor(c, seed=2)
    assert gradcheck(lambda x, w, b: F.group_norm(x, groups, w, b), [x, w, b], **TOL)
    assert gradcheck(lambda x: F.group_norm(x, groups), [x], **TOL)


@pytest.mark.parametrize("x_shape", [(3, 5), (2, 1, 4), (6,)])
def test_layer_norm(x_shape):
    d = x_shape[-1]
    x, w, b = tensor(*x_shape, loc=-1.0, scale=2.0), tensor(d, seed=1), tensor(d, seed=2)
    assert gradcheck(lambda x, w, b: F.layer_norm(x, w, b), [x, w, b], **TOL)
    assert gradcheck(lambda x, b: F.layer_norm(x, None, b), [x, b], **TOL)


@pytest.mark.parametrize("activation", [F.silu, F.quick_gelu, F.gelu, lambda x: F.gelu(x, approximate="tanh")],
                         ids=["silu", "quick_gelu", "gelu", "gelu_tanh"])
def test_activations(activation):
    # values on both sides of every erf region boundary (0.47 and 4 after dividing by sqrt 2) and far in the tails
    x = Tensor(to_backend([-12.0, -6.0, -3.0, -0.7, -0.2, 0.0, 0.3, 0.66, 1.5, 5.0, 6.0, 12.0], np.float64),
               requires_grad=True)
    assert gradcheck(activation, [x], **TOL)
    assert gradcheck(activation, [tensor(2, 3, 4, scale=3.0)], **TOL)


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("shape, axis", [((3, 5), -1), ((2, 3, 4), 1), ((2, 3, 4), 0), ((4, 1), -1)])
def test_softmax_family(fn, shape, axis):
    assert gradcheck(lambda x: fn(x, axis=axis), [tensor(*shape, scale=3.0)], **TOL)


def _bool_mask(shape, seed=0):
    mask = np.random.default_rng(seed).random(shape) > 0.4
    mask[..., 1, :] = False  # query 1 sees no key at all
    mask[..., 0, 0] = True
    return to_backend(mask)


@pytest.mark.parametrize("q_shape, kv_len, mask_kind", [
    ((2, 2, 3, 4), 3, None),             # self-attention
    ((1, 2, 3, 4), 5, None),             # cross-attention, T != S
    ((2, 3, 4), 5, None),                # no head axis: (B, T, d)
    ((1, 1, 1, 2), 1, None),             # a single query and key
    ((2, 2, 4, 3), 5, "bool"),           # boolean mask with a fully masked row
    ((1, 2, 4, 3), 5, "additive"),       # additive mask with -inf entries and a fully masked row
])
def test_attention(q_shape, kv_len, mask_kind):
    *batch, t, d = q_shape
    q, k, v = tensor(*q_shape), tensor(*batch, kv_len, d, seed=1), tensor(*batch, kv_len, d + 1, seed=2)
    mask = None
    if mask_kind == "bool":
        mask = _bool_mask((t, kv_len))
    elif mask_kind == "additive":
        mask = np.where(np.random.default_rng(3).random((1, 1, t, kv_len)) > 0.3, 0.5, -np.inf)
        mask[..., 2, :] = -np.inf
        mask = to_backend(mask, np.float64)
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, mask=mask), [q, k, v], **TOL)


def test_attention_learned_additive_bias_and_scale():
    q, k, v = tensor(2, 2, 3, 4), tensor(2, 2, 5, 4, seed=1), tensor(2, 2, 5, 2, seed=2)
    bias = tensor(2, 1, 5, seed=3)  # broadcast over batch and queries: its gradient must be summed back
    assert gradcheck(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, mask=m, scale=0.7), [q, k, v, bias],
                     **TOL)


@pytest.mark.parametrize("scale_factor", [2, (1, 3)])
def test_interpolate(scale_factor):
    assert gradcheck(lambda x: F.interpolate(x, scale_factor=scale_factor), [tensor(2, 2, 3, 2)], **TOL)


@pytest.mark.parametrize("pad", [(0, 1, 0, 1), (2, 0), (1, 1, 0, 2, 1, 0)])
def test_pad(pad):
    assert gradcheck(lambda x: F.pad(x, pad, value=0.3), [tensor(2, 3, 2)], **TOL)


def test_dropout_with_fixed_generator():
    # a fresh generator with the same seed on every call: the same mask for the forward and each finite difference
    assert gradcheck(lambda x: F.dropout(x, 0.4, training=True, generator=backend.rng(7)), [tensor(4, 5)], **TOL)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_losses(reduction):
    x, y = tensor(3, 4), tensor(3, 4, seed=1)
    assert gradcheck(lambda x, y: F.mse_loss(x, y, reduction=reduction), [x, y], **TOL)
    targets = to_backend(np.array([0, 3, 1, 1]))
    assert gradcheck(lambda z: F.cross_entropy(z, targets, reduction=reduction), [tensor(4, 5, scale=2.0)], **TOL)


def test_stacked_convolutions_share_the_workspace_safely():
    # stride-1 convs reuse one im2row buffer; forward A, forward B, backward B, backward A must not mix them up
    x, w1, w2 = tensor(2, 2, 5, 5), tensor(3, 2, 3, 3, seed=1), tensor(4, 3, 1, 2, seed=2)
    w3 = tensor(2, 4, 3, 3, seed=3)
    assert gradcheck(lambda x, w1, w2, w3: F.conv2d(F.conv2d(F.conv2d(x, w1, padding=1), w2, padding=(0, 1)),
                                                    w3, stride=2), [x, w1, w2, w3], **TOL)
