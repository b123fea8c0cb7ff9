"""conv2d has three ways to compute a convolution (pointwise 1x1, im2row, Winograd F(2x2, 3x3)) and two layout moves
(NCHW <-> NHWC). Each must give the numbers of the plain definition, written here as a loop over the kernel offsets
in float64: out[n, o, i, j] = b[o] + sum_{c, a, b} w[o, c, a, b] x_pad[n, c, i*s + a, j*s + b].

Tolerances: float64 1e-12 relative to the largest output (only rounding differs); float32 2e-6.
"""
import numpy as np
import pytest
from helpers import assert_close, host, to_backend

from minildm import backend
from minildm.autograd import Tensor, gradcheck, no_grad
from minildm.autograd import conv, winograd
from minildm.autograd.layout import channels_last_padded, to_channels_first
from minildm.nn import functional as F

host_only = pytest.mark.skipif(backend.name() != "numpy", reason="the Winograd path is taken on the host only")


def direct_conv(x, w, b, stride, padding):
    """The definition, one kernel offset at a time (NumPy, float64): the reference for every path."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho, wo = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    out = np.zeros((n, o, ho, wo)) + (0 if b is None else b[:, None, None])
    for a in range(kh):
        for bb in range(kw):
            window = x_pad[:, :, a:a + sh * (ho - 1) + 1:sh, bb:bb + sw * (wo - 1) + 1:sw]  # (N, C, Ho, Wo)
            out += np.einsum("oc,nchw->nohw", w[:, :, a, bb], window)
    return out


def random(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.fixture
def force_winograd(monkeypatch):
    """Every 3x3 stride-1 host convolution takes the Winograd path, whatever its size."""
    monkeypatch.setattr(conv, "WINOGRAD_MIN_CHANNELS", 1)
    monkeypatch.setattr(conv, "WINOGRAD_MIN_CHANNELS_LARGE", 1)


@pytest.fixture
def forbid_winograd(monkeypatch):
    monkeypatch.setattr(conv, "WINOGRAD_MIN_CHANNELS", 10 ** 9)
    monkeypatch.setattr(conv, "WINOGRAD_MIN_CHANNELS_LARGE", 10 ** 9)


# -- Winograd against the definition -------------------------------------------------------------------------------
@pytest.mark.parametrize("x_shape, padding", [
    ((2, 3, 8, 8), (1, 1)),      # whole tiles
    ((2, 3, 5, 4), (1, 1)),      # odd height: one extra row of zeros below, cropped away
    ((1, 2, 7, 6), (0, 0)),      # 'valid': output 5x4
    ((2, 4, 3, 5), (2, 1)),      # padding 2 on one axis
    ((1, 5, 1, 1), (1, 1)),      # a single pixel: one tile, mostly padding
])
def test_winograd_matches_the_definition_in_float64(x_shape, padding):
    x, w, b = random(x_shape, 0), random((6, x_shape[1], 3, 3), 1), random(6, 2)
    got = winograd.conv3x3(to_backend(x, np.float64), to_backend(w, np.float64), to_backend(b, np.float64), padding)
    assert_close(got, direct_conv(x, w, b, (1, 1), padding), 1e-12)


def test_winograd_transforms_are_those_of_the_paper():
    # the tile algebra itself: Y = A^T [(G g G^T) * (B^T d B)] A equals the 2x2 correlation of a 4x4 tile d by g
    d, g = random((4, 4), 3), random((3, 3), 4)
    bt = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=float)
    at = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=float)
    v = winograd.input_transform(to_backend(d[None, :, :, None], np.float64), 1, 1)  # (4, 4, 1 tile, 1 channel)
    u = winograd.filter_transform(to_backend(g[None, None], np.float64))                 # (4, 4, 1, 1)
    np.testing.assert_allclose(host(v)[:, :, 0, 0], bt @ d @ bt.T, rtol=1e-14, atol=1e-14)
    y = at @ (host(u)[:, :, 0, 0] * host(v)[:, :, 0, 0]) @ at.T
    expected = [[np.sum(d[i:i + 3, j:j + 3] * g) for j in range(2)] for i in range(2)]
    np.testing.assert_allclose(y, expected, rtol=1e-13)


@host_only
def test_conv2d_winograd_and_im2row_paths_agree_in_float32(monkeypatch):
    # the U-Net's own sizes: 96 channels on a 4x4 map (Winograd by default) against the same call through im2row
    x, w, b = (Tensor(to_backend(random(s, i) / 10, np.float32)) for i, s in enumerate([(8, 96, 4, 4), (96, 96, 3, 3),
                                                                                            (96,)]))
    assert conv._winograd_pays(x.data, w.data)
    with no_grad():
        fast = host(F.conv2d(x, w, b, padding=1))
        monkeypatch.setattr(conv, "WINOGRAD_MIN_CHANNELS_LARGE", 10 ** 9)
        monkeypatch.setattr(conv, "WINOGRAD_MIN_CHANNELS", 10 ** 9)
        slow = host(F.conv2d(x, w, b, padding=1))
    reference = direct_conv(*(host(t).astype(np.float64) for t in (x, w, b)), (1, 1), (1, 1))
    assert_close(fast, reference, 2e-6)
    assert_close(slow, reference, 2e-6)


@host_only
@pytest.mark.parametrize("x_shape, padding", [((2, 3, 5, 4), 1), ((1, 2, 4, 5), (0, 2))])
def test_conv2d_through_winograd_has_the_right_gradients(force_winograd, x_shape, padding):
    x, w, b = (Tensor(to_backend(random(s, i), np.float64), requires_grad=True)
               for i, s in enumerate([x_shape, (4, x_shape[1], 3, 3), (4,)]))
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=padding), [x, w, b], atol=1e-6, rtol=1e-6)


# -- im2row (general stride and padding) against the definition ----------------------------------------------------
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", [
    ((2, 3, 7, 6), (4, 3, 3, 3), (1, 1), (1, 1)),
    ((2, 3, 7, 6), (4, 3, 3, 3), (2, 2), (1, 1)),
    ((1, 2, 6, 5), (3, 2, 2, 3), (1, 2), (0, 1)),
    ((2, 4, 5, 5), (3, 4, 1, 1), (1, 1), (0, 0)),   # pointwise
])
def test_im2row_and_pointwise_match_the_definition(forbid_winograd, x_shape, w_shape, stride, padding):
    x, w, b = random(x_shape, 0), random(w_shape, 1), random(w_shape[0], 2)
    got = F.conv2d(*(Tensor(to_backend(a, np.float64)) for a in (x, w, b)), stride=stride, padding=padding)
    assert_close(got, direct_conv(x, w, b, stride, padding), 1e-12)


# -- the layout moves ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(2, 5, 4, 3), (1, 19, 32, 33)])  # the second is copied in groups of channels
def test_channels_last_padded_is_a_padded_transpose(shape):
    x = random(shape, 0).astype(np.float32)
    got = host(channels_last_padded(to_backend(x), 1, 2, 0, 3))
    expected = np.pad(x, ((0, 0), (0, 0), (1, 0), (2, 3))).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(got, expected)
    assert host(channels_last_padded(to_backend(x), 1, 1)).shape == (shape[0], shape[2] + 2, shape[3] + 2, shape[1])


def test_to_channels_first_adds_the_bias_on_the_way():
    y, b = random((2, 3, 4, 5), 0), random(5, 1)
    np.testing.assert_array_equal(host(to_channels_first(to_backend(y))), y.transpose(0, 3, 1, 2))
    got = host(to_channels_first(to_backend(y), to_backend(b)))
    np.testing.assert_allclose(got, y.transpose(0, 3, 1, 2) + b[:, None, None], rtol=1e-15)


@pytest.mark.parametrize("block_bytes", [1, 10 ** 9])  # one image per block, and the whole batch in one block
def test_stride1_forward_and_backward_do_not_depend_on_the_blocking(forbid_winograd, monkeypatch, block_bytes):
    monkeypatch.setattr(conv, "_BLOCK_BYTES", block_bytes)
    x, w, b = (Tensor(to_backend(random(s, i), np.float64), requires_grad=True)
               for i, s in enumerate([(3, 2, 5, 4), (4, 2, 3, 3), (4,)]))
    assert_close(F.conv2d(x, w, b, padding=1), direct_conv(*(host(t) for t in (x, w, b)), (1, 1), (1, 1)), 1e-12)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=1), [x, w, b], atol=1e-6, rtol=1e-6)
