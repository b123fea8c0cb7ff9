"""Gradients flow through the whole U-Net: a few AdamW steps on the epsilon-prediction loss lower it."""
import numpy as np

from helpers import to_backend
from minildm import no_grad
from minildm.models.unet import UNet2DConditionModel
from minildm.nn import functional as F
from minildm.optim import AdamW

CONFIG = {"block_out_channels": [8, 16], "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
          "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "norm_num_groups": 4, "cross_attention_dim": 8,
          "attention_head_dim": 2, "layers_per_block": 1}


def _batch(n=4, size=8):
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps  (Ho et al. 2020, eq. 4), linear betas 1e-4 .. 0.02."""
    rng = np.random.default_rng(0)
    alpha_bar = np.cumprod(1 - np.linspace(1e-4, 0.02, 1000))
    x0 = rng.standard_normal((n, 4, 1, 1)) * np.ones((1, 1, size, size))  # one colour per latent: learnable
    eps = rng.standard_normal((n, 4, size, size))
    t = rng.integers(0, 1000, n)
    a = alpha_bar[t].reshape(n, 1, 1, 1)
    x_t = np.sqrt(a) * x0 + np.sqrt(1 - a) * eps
    context = rng.standard_normal((n, 3, 8))
    return [to_backend(v.astype(np.float32)) for v in (x_t, eps, context)] + [to_backend(t)]


def test_a_few_adamw_steps_lower_the_epsilon_loss():
    unet = UNet2DConditionModel.from_config(CONFIG, generator=0)
    x_t, eps, context, t = _batch()
    optimizer = AdamW(unet.parameters(), lr=3e-3, weight_decay=1e-2)

    def loss():
        return F.mse_loss(unet(x_t, t, context), eps)  # Ho et al. 2020, eq. 14: ||eps - eps_theta(x_t, t)||^2

    with no_grad():
        before = loss().item()
    for _ in range(10):
        optimizer.zero_grad()
        value = loss()
        value.backward()
        assert all(p.grad is not None for p in unet.parameters()), "every parameter receives a gradient"
        optimizer.step()
    with no_grad():
        after = loss().item()
    assert np.isfinite(after) and after < 0.8 * before, (before, after)
