"""End to end: layers + autograd + optimizer learn toy problems in a fixed number of seeded steps."""
import numpy as np
from helpers import host, to_backend

from minildm import backend, nn
from minildm.nn import functional as F
from minildm.optim import Adam


def xor_data(n, seed):
    """Points in [-1, 1]^2, labelled by which pair of opposite quadrants they lie in (not linearly separable)."""
    x = np.random.default_rng(seed).uniform(-1, 1, (n, 2)).astype(np.float32)
    return to_backend(x), ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(np.int64)


def bar_images(n, seed):
    """8x8 noisy images holding one bar: label 1 for a horizontal bar, 0 for a vertical one, anywhere."""
    rng = np.random.default_rng(seed)
    images = 0.1 * rng.standard_normal((n, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 2, n)
    for image, label, k in zip(images, labels, rng.integers(1, 7, n)):
        if label:
            image[0, k, 1:7] += 1
        else:
            image[0, 1:7, k] += 1
    return to_backend(images), labels


def test_mlp_learns_xor():
    x, y = xor_data(128, seed=0)
    g = backend.host_rng(0)
    model = nn.Sequential(nn.Linear(2, 32, generator=g), nn.SiLU(), nn.Linear(32, 32, generator=g), nn.SiLU(),
                          nn.Linear(32, 2, generator=g))
    optimizer = Adam(model.parameters(), lr=0.02)
    first = None
    for _ in range(300):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = first if first is not None else loss.item()
    assert first > 0.6 and loss.item() < 0.01  # observed: 0.69 -> 5e-4
    x_test, y_test = xor_data(256, seed=1)
    accuracy = (host(model(x_test)).argmax(axis=1) == y_test).mean()
    assert accuracy > 0.95  # observed ~0.98: only points near the axes are ambiguous


def test_cnn_learns_bar_orientation():
    images, labels = bar_images(64, seed=1)
    g = backend.host_rng(0)
    features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, generator=g), nn.GroupNorm(2, 8), nn.SiLU(),
                             nn.Downsample2D(8, out_channels=16, generator=g), nn.SiLU())
    head = nn.Linear(16, 2, generator=g)
    params = features.parameters() + head.parameters()
    optimizer = Adam(params, lr=0.01)

    def logits(x):
        return head(features(x).mean(axis=(2, 3)))  # global average pooling: orientation, not position

    for _ in range(60):
        loss = F.cross_entropy(logits(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.01  # observed: 0.72 -> 6e-5
    test_images, test_labels = bar_images(128, seed=2)
    features.eval()
    assert (host(logits(test_images)).argmax(axis=1) == test_labels).mean() == 1.0
