"""Behaviour of the fused ops beyond matching PyTorch: erf accuracy, dropout, masked attention rows, graph shape."""
import math

import numpy as np
import pytest
from helpers import assert_close, host, to_backend

from minildm import backend
from minildm.autograd import Tensor, gradcheck, no_grad
from minildm.autograd.activations import erf, erfc
from minildm.nn import functional as F


def test_erf_matches_math_erf_to_double_precision():
    x = np.concatenate([np.linspace(-7, 7, 4001), [0.0, 1e-300, -1e-12, 0.46875, 4.0, -4.0, 27.0, np.inf, -np.inf]])
    expected_erf = np.array([math.erf(v) for v in x])
    expected_erfc = np.array([math.erfc(v) for v in x])
    got_erf, got_erfc = host(erf(to_backend(x, np.float64))), host(erfc(to_backend(x, np.float64)))
    np.testing.assert_allclose(got_erf, expected_erf, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(got_erfc, expected_erfc, rtol=1e-13, atol=1e-300)  # relative, even deep in the tail
    assert np.isnan(host(erf(to_backend([np.nan], np.float64)))).all()
    assert erf(to_backend(x, np.float32)).dtype == np.float32


def test_gelu_keeps_relative_accuracy_in_the_negative_tail():
    # gelu(-10) = -10 * Phi(-10) ~ -7.6e-23: computed via erfc, not 1 + erf (which would round to 0)
    x = Tensor(to_backend([-10.0, -20.0], np.float64))
    expected = [v * 0.5 * math.erfc(-v / math.sqrt(2)) for v in (-10.0, -20.0)]
    np.testing.assert_allclose(host(F.gelu(x)), expected, rtol=1e-13)


def test_dropout_semantics():
    x = Tensor(to_backend(np.ones((200, 100)), np.float32), requires_grad=True)
    y = F.dropout(x, 0.25, training=True, generator=backend.rng(0))
    values = host(y)
    kept = values != 0
    assert y.dtype == np.float32
    assert abs(kept.mean() - 0.75) < 0.01  # about 1 - p survive ...
    np.testing.assert_allclose(values[kept], 1 / 0.75, rtol=1e-6)  # ... scaled by 1/(1-p), so E[y] = x
    y.backward(to_backend(np.ones((200, 100)), np.float32))
    np.testing.assert_array_equal(host(x.grad), values)  # the gradient uses the same mask and scale
    same = F.dropout(x, 0.25, training=True, generator=backend.rng(0))
    np.testing.assert_array_equal(host(same), values)  # same seed, same mask
    assert F.dropout(x, 0.25, training=False) is x  # evaluation: the identity
    assert F.dropout(x, 0.0, training=True) is x
    assert not host(F.dropout(x, 1.0, training=True, generator=backend.rng(0))).any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mask_kind", ["bool", "additive"])
def test_fully_masked_query_gives_zeros_and_finite_gradients(dtype, mask_kind):
    rng = np.random.default_rng(0)
    q, k, v = (Tensor(to_backend(rng.standard_normal(s), dtype), requires_grad=True)
               for s in [(1, 2, 3, 4), (1, 2, 5, 4), (1, 2, 5, 4)])
    allowed = np.ones((3, 5), dtype=bool)
    allowed[1] = False  # query 1 may attend to no key
    mask = to_backend(allowed) if mask_kind == "bool" else to_backend(np.where(allowed, 0.0, -np.inf), dtype)
    out = F.scaled_dot_product_attention(q, k, v, mask=mask)
    out.backward(to_backend(np.ones(out.shape), dtype))
    assert not host(out)[:, :, 1].any()
    for grad in (q.grad, k.grad, v.grad):
        assert np.isfinite(host(grad)).all()
    assert not host(q.grad)[:, :, 1].any()  # the masked query receives no gradient


def test_fused_ops_are_one_graph_node():
    rng = np.random.default_rng(0)
    x = Tensor(to_backend(rng.standard_normal((2, 4, 6, 6)), np.float32), requires_grad=True)
    w = Tensor(to_backend(rng.standard_normal((4, 4, 3, 3)), np.float32), requires_grad=True)
    for out, op in [(F.conv2d(x, w, padding=1), "conv2d"), (F.group_norm(x, 2), "group_norm"),
                    (F.layer_norm(x), "layer_norm"), (F.silu(x), "silu"), (F.gelu(x), "gelu"),
                    (F.softmax(x), "softmax"), (F.scaled_dot_product_attention(x, x, x), "attention")]:
        assert out._op == op
        assert all(p is x or p is w for p in out._parents), f"{op} recorded an intermediate node"


def test_no_graph_under_no_grad():
    x = Tensor(to_backend(np.ones((1, 2, 4, 4)), np.float32), requires_grad=True)
    w = Tensor(to_backend(np.ones((3, 2, 3, 3)), np.float32), requires_grad=True)
    with no_grad():
        y = F.conv2d(x, w, padding=1)
    assert not y.requires_grad and y._backward is None


def test_conv2d_accepts_non_contiguous_input_and_frozen_parts():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((2, 5, 6, 3))
    x_view = Tensor(to_backend(base, np.float64).transpose(0, 3, 1, 2))  # (2, 3, 5, 6), a strided view
    x_copy = Tensor(to_backend(np.ascontiguousarray(base.transpose(0, 3, 1, 2)), np.float64))
    w = Tensor(to_backend(rng.standard_normal((4, 3, 3, 3)), np.float64), requires_grad=True)
    out_view = F.conv2d(x_view, w, padding=1)
    assert_close(out_view, host(F.conv2d(x_copy, w, padding=1)), 1e-14)
    out_view.sum().backward()  # only the weight needs a gradient here
    assert w.grad.shape == w.shape and x_view.grad is None


def test_interpolate_repeats_pixels():
    x = Tensor(to_backend(np.arange(4.0).reshape(1, 1, 2, 2), np.float32))
    expected = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]], dtype=np.float32)
    np.testing.assert_array_equal(host(F.interpolate(x))[0, 0], expected)


def test_stride1_conv2d_keeps_no_im2row_buffer_for_backward():
    # the stride-1 backward rebuilds what it needs from x and the output gradient: the graph holds no 9x copy of x
    x = Tensor(to_backend(np.ones((2, 3, 8, 8)), np.float32), requires_grad=True)
    w = Tensor(to_backend(np.ones((4, 3, 3, 3)), np.float32), requires_grad=True)
    out = F.conv2d(x, w, padding=1)
    held = [cell.cell_contents for cell in out._backward.__closure__]
    assert not [a for a in held if hasattr(a, "shape") and not isinstance(a, Tensor) and a.size > x.size]



@pytest.mark.parametrize("shape, padding", [((3, 5, 2, 2), 1), ((2, 7, 2, 3), (1, 0)), ((2, 20, 4, 4), 2),
                                            ((2, 3, 5, 4), 1), ((2, 4, 3, 3), (0, 1))])
def test_stride1_conv2d_backward_matches_the_general_backward(shape, padding):
    # the stride-1 backward (a transposed convolution of the output gradient) must equal the general backward
    # (row2im of the forward's rows), on small maps with many channels and large maps with few
    from minildm.autograd import conv
    from minildm.autograd.layout import channels_last_padded

    rng = np.random.default_rng(1)
    x = Tensor(to_backend(rng.standard_normal(shape), np.float64), requires_grad=True)
    w = Tensor(to_backend(rng.standard_normal((6, shape[1], 3, 3)), np.float64), requires_grad=True)
    b = Tensor(to_backend(rng.standard_normal(6), np.float64), requires_grad=True)
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    g = to_backend(rng.standard_normal(F.conv2d(x, w, b, padding=padding).shape), np.float64)
    rows, _ = conv._im2row(channels_last_padded(x.data, ph, pw), 3, 3, 1, 1)
    reference = conv._im2row_backward(x, w, b, rows, (1, 1), (ph, pw))(g)
    for got, want in zip(conv._stride1_backward(x, w, b, ph, pw)(g), reference):
        assert got.shape == want.shape
        assert_close(got, host(want), 1e-12)


def test_conv2d_gradcheck_many_channels_on_a_tiny_map():
    # C = 6 > H*W = 4, as in the inner levels of a U-Net, against finite differences
    rng = np.random.default_rng(2)
    x = Tensor(to_backend(rng.standard_normal((2, 6, 2, 2)), np.float64), requires_grad=True)
    w = Tensor(to_backend(rng.standard_normal((3, 6, 3, 3)), np.float64), requires_grad=True)
    b = Tensor(to_backend(rng.standard_normal(3), np.float64), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=1), (x, w, b), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_ops_compute_the_same_forward_with_and_without_a_graph(dtype):
    # norms and attention skip buffers that only their backward reads (x_hat, normalised P) when no graph is
    # recorded; the forward must not change by a single bit
    rng = np.random.default_rng(0)
    x = Tensor(to_backend(rng.standard_normal((2, 6, 5, 4)), dtype), requires_grad=True)
    w, b = (Tensor(to_backend(rng.standard_normal(6), dtype), requires_grad=True) for _ in range(2))
    q, k, v = (Tensor(to_backend(rng.standard_normal(s), dtype), requires_grad=True)
               for s in [(2, 3, 7, 4), (2, 3, 5, 4), (2, 3, 5, 4)])
    keep = to_backend(rng.random((2, 1, 7, 5)) > 0.3)
    ops = [lambda: F.group_norm(x, 3, w, b), lambda: F.group_norm(x, 2),
           lambda: F.layer_norm(x.permute(0, 2, 3, 1), w, b), lambda: F.layer_norm(x),
           lambda: F.scaled_dot_product_attention(q, k, v), lambda: F.scaled_dot_product_attention(q, k, v, keep)]
    for op in ops:
        recorded = op()
        with no_grad():
            plain = op()
        assert recorded.requires_grad and not plain.requires_grad
        np.testing.assert_array_equal(host(plain), host(recorded))
