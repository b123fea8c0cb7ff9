"""Gradients flow through the whole autoencoder: a few Adam steps on recon MSE + a small KL lower the loss, and a
finite-difference check confirms the gradient of one encoder weight."""
import numpy as np

from helpers import host, to_backend
from minildm import no_grad
from minildm.nn import functional as F
from minildm.models.vae import AutoencoderKL
from minildm.optim import Adam

CONFIG = {"block_out_channels": [8, 16], "down_block_types": ["DownEncoderBlock2D"] * 2,
          "up_block_types": ["UpDecoderBlock2D"] * 2, "norm_num_groups": 4, "latent_channels": 2}
KL_WEIGHT = 1e-4  # small, as in LDM's KL-regularised autoencoders (there 1e-6, with a perceptual loss as well)


def _images(n=4, size=8):
    """Smooth images in [-1, 1]: one colour blob each, so a small model can reconstruct them."""
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        cy, cx = rng.uniform(0.2, 0.8, 2)
        blob = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 0.05)
        out.append(rng.uniform(-1, 1, (3, 1, 1)) * blob)
    return to_backend(np.stack(out).astype(np.float32))


def _loss(vae, images, generator):
    posterior = vae.encode(images)
    reconstruction = vae.decode(posterior.sample(generator))
    return F.mse_loss(reconstruction, images) + KL_WEIGHT * posterior.kl().mean()


def test_a_few_steps_lower_recon_plus_kl():
    vae = AutoencoderKL.from_config(CONFIG, generator=0)
    images = _images()
    optimizer = Adam(vae.parameters(), lr=3e-3)
    with no_grad():
        before = _loss(vae, images, generator=0).item()
    for step in range(15):
        optimizer.zero_grad()
        loss = _loss(vae, images, generator=step)
        loss.backward()
        assert all(p.grad is not None for p in vae.parameters()), "every parameter receives a gradient"
        optimizer.step()
    with no_grad():
        after = _loss(vae, images, generator=0).item()
    assert np.isfinite(after) and after < 0.7 * before, (before, after)


def test_gradient_of_one_weight_matches_finite_differences():
    vae = AutoencoderKL.from_config(CONFIG, generator=1).to("float64")
    images = _images(n=2).astype(np.float64)

    def loss():  # deterministic: the posterior mean, no sampling
        posterior = vae.encode(images)
        return ((vae.decode(posterior.mean) - images) ** 2).mean() + posterior.kl().mean()

    loss().backward()
    weight = vae.encoder.down_blocks[0].resnets[0].conv1.weight
    analytic = host(weight.grad)[0, 0, 1, 1]
    eps, original = 1e-6, weight.data.copy()
    values = []
    for sign in (1, -1):
        weight.data = original.copy()
        weight.data[0, 0, 1, 1] += sign * eps
        with no_grad():
            values.append(loss().item())
    weight.data = original
    numeric = (values[0] - values[1]) / (2 * eps)
    assert abs(numeric) > 1e-3 and abs(analytic - numeric) <= 1e-5 * abs(numeric), (analytic, numeric)
