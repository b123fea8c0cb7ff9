"""Gradients flow through the text encoder: a few Adam steps regressing the pooled output onto targets lower the
loss, and a finite-difference check confirms the gradient of one attention weight."""
import numpy as np

from helpers import host, to_backend
from minildm import no_grad
from minildm.nn import functional as F
from minildm.models.text_encoder import CLIPTextModel
from minildm.optim import Adam

CONFIG = dict(vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
              max_position_embeddings=8, hidden_act="quick_gelu", bos_token_id=38, eos_token_id=39, pad_token_id=39)
IDS = np.array([[38, 3, 4, 39, 39, 39], [38, 7, 8, 9, 10, 39], [38, 12, 39, 39, 39, 39]])


def test_a_few_steps_lower_the_pooled_regression_loss():
    model = CLIPTextModel.from_config(CONFIG, generator=0)
    ids = to_backend(IDS)
    target = to_backend(np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32))
    mask = to_backend((IDS != 39) | (np.arange(6) == (IDS == 39).argmax(axis=1)[:, None]))  # through the first EOS
    optimizer = Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(12):
        optimizer.zero_grad()
        loss = F.mse_loss(model(ids, attention_mask=mask).pooler_output, target)
        loss.backward()
        assert all(p.grad is not None for p in model.parameters())
        optimizer.step()
        losses.append(loss.item())
    with no_grad():
        final = F.mse_loss(model(ids, attention_mask=mask).pooler_output, target).item()
    assert final < 0.5 * losses[0], losses


def test_gradient_of_one_weight_matches_finite_differences():
    model = CLIPTextModel.from_config(CONFIG, generator=1).to("float64")
    ids = to_backend(IDS)
    rng = np.random.default_rng(0)  # random weights: a LayerNorm'd output's plain sum would be nearly constant
    weights, pooled_weights = to_backend(rng.standard_normal((3, 6, 16))), to_backend(rng.standard_normal((3, 16)))

    def loss():
        out = model(ids)
        return (out.last_hidden_state * weights).sum() + (out.pooler_output * pooled_weights).sum()

    loss().backward()
    weight = model.text_model.encoder.layers[0].self_attn.k_proj.weight
    analytic = host(weight.grad)[1, 2]
    eps, original = 1e-6, weight.data.copy()
    values = []
    for sign in (1, -1):
        weight.data = original.copy()
        weight.data[1, 2] += sign * eps
        with no_grad():
            values.append(loss().item())
    weight.data = original
    numeric = (values[0] - values[1]) / (2 * eps)
    assert abs(numeric) > 1e-3 and abs(analytic - numeric) <= 1e-5 * abs(numeric), (analytic, numeric)
