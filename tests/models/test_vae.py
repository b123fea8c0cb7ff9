"""AutoencoderKL against diffusers: tiny random VAEs saved by diffusers (tests/fixtures/vae_*/, written by
scripts/fixtures/vae.py) load with strict=True and encode/decode to the same numbers."""
import json
import shutil

import numpy as np
import pytest

from helpers import FIXTURES, assert_close, host, load_fixture, to_backend
from minildm import no_grad
from minildm.io import load_safetensors, save_safetensors
from minildm.models.vae import AutoencoderKL, DiagonalGaussianDistribution

RTOL = 1e-4  # float32 against PyTorch float32; the observed error is ~1e-6


def _outputs(vae, ref):
    with no_grad():
        posterior = vae.encode(to_backend(ref["image"]))
        return {"mean": posterior.mean, "logvar": posterior.logvar, "kl": posterior.kl(),
                "decoded": vae.decode(to_backend(ref["z"])), "reconstruction": vae.decode(posterior.mean)}


@pytest.mark.parametrize("name", ["tiny", "deep_noattn", "tiny_fp16"])
def test_matches_diffusers(name):
    ref = load_fixture(f"vae_{name}.npz")
    vae = AutoencoderKL.from_pretrained(FIXTURES / f"vae_{name}")  # strict: every key present and used
    assert vae.encoder.conv_in.weight.dtype == np.float32  # float16 on disk still gives a float32 model
    for key, value in _outputs(vae, ref).items():
        assert_close(value, ref[key], rtol=RTOL, what=f"vae_{name} {key}")


def test_config_and_state_dict_names_are_diffusers():
    vae = AutoencoderKL.from_pretrained(FIXTURES / "vae_tiny")
    reference = json.loads((FIXTURES / "vae_tiny" / "config.json").read_text())
    for key, value in vae.config.items():
        assert reference[key] == value, key
    assert set(vae.state_dict()) == set(load_safetensors(FIXTURES / "vae_tiny" / "diffusion_pytorch_model.safetensors"))


def test_save_and_reload_float16(tmp_path):
    vae = AutoencoderKL.from_pretrained(FIXTURES / "vae_tiny")
    vae.save_pretrained(tmp_path / "vae", dtype="float16")
    config = json.loads((tmp_path / "vae" / "config.json").read_text())
    assert config["_class_name"] == "AutoencoderKL" and config["block_out_channels"] == [8, 16]
    weights = load_safetensors(tmp_path / "vae" / "diffusion_pytorch_model.safetensors")
    assert all(w.dtype == np.float16 for w in weights.values())
    ref = load_fixture("vae_tiny_fp16.npz")  # the reference model after the same float16 rounding
    again = AutoencoderKL.from_pretrained(tmp_path / "vae")
    for key, value in _outputs(again, ref).items():
        assert_close(value, ref[key], rtol=RTOL, what=f"reloaded {key}")
    half = AutoencoderKL.from_pretrained(tmp_path / "vae", dtype="float16")
    assert half.decoder.conv_out.weight.dtype == np.float16


def test_from_config_is_seeded_and_shapes_follow_the_levels():
    config = {"block_out_channels": [8, 16, 16], "down_block_types": ["DownEncoderBlock2D"] * 3,
              "up_block_types": ["UpDecoderBlock2D"] * 3, "norm_num_groups": 4, "latent_channels": 3}
    a, b = AutoencoderKL.from_config(config, generator=3), AutoencoderKL.from_config(config, generator=3)
    c = AutoencoderKL.from_config(config, generator=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert not np.array_equal(sa["encoder.conv_in.weight"], sc["encoder.conv_in.weight"])
    x = to_backend(np.zeros((1, 3, 20, 12), np.float32))
    with no_grad():
        posterior = a.encode(x)
        assert posterior.mean.shape == (1, 3, 5, 3)  # two halvings
        assert a.decode(posterior.sample(generator=0)).shape == (1, 3, 20, 12)
        assert a(x).shape == (1, 3, 20, 12)


# -- the posterior ------------------------------------------------------------------------------------------------
def _gaussian(seed=0, logvar_scale=1.0):
    rng = np.random.default_rng(seed)
    params = rng.standard_normal((2, 6, 3, 4)).astype(np.float32)
    params[:, 3:] *= logvar_scale
    from minildm import Tensor
    return params, DiagonalGaussianDistribution(Tensor(to_backend(params)))


def test_gaussian_moments_and_kl_formulas():
    params, dist = _gaussian()
    mean, logvar = params[:, :3].astype(np.float64), params[:, 3:].astype(np.float64)
    assert_close(dist.mean, mean, 1e-6)
    assert_close(dist.std, np.exp(0.5 * logvar), 1e-6)
    assert_close(dist.var, np.exp(logvar), 1e-6)
    assert dist.mode() is dist.mean
    kl = 0.5 * (mean ** 2 + np.exp(logvar) - 1 - logvar).sum(axis=(1, 2, 3))
    assert_close(dist.kl(), kl, 1e-6, what="KL to N(0, I)")
    _, other = _gaussian(seed=1)
    m2, lv2 = host(other.mean).astype(np.float64), host(other.logvar).astype(np.float64)
    kl2 = 0.5 * ((mean - m2) ** 2 / np.exp(lv2) + np.exp(logvar - lv2) - 1 - logvar + lv2).sum(axis=(1, 2, 3))
    assert_close(dist.kl(other), kl2, 1e-5, what="KL between two Gaussians")
    assert_close(dist.kl(dist), np.zeros(2), 0, atol=1e-5)
    x = np.random.default_rng(2).standard_normal(mean.shape)
    nll = 0.5 * (np.log(2 * np.pi) + logvar + (x - mean) ** 2 / np.exp(logvar)).sum(axis=(1, 2, 3))
    assert_close(dist.nll(to_backend(x.astype(np.float32))), nll, 1e-5, what="nll")


def test_logvar_is_clamped_as_in_ldm():
    _, dist = _gaussian(logvar_scale=100.0)
    logvar = host(dist.logvar)
    assert logvar.min() >= -30 and logvar.max() <= 20 and (logvar == 20).any() and (logvar == -30).any()
    assert np.isfinite(host(dist.var)).all() and np.isfinite(host(dist.kl())).all()


def test_sample_is_seeded_and_has_the_right_statistics():
    from minildm import Tensor
    mean, logvar = np.full((1, 1, 200, 200), 2.0, np.float32), np.full((1, 1, 200, 200), np.log(0.25), np.float32)
    dist = DiagonalGaussianDistribution(Tensor(to_backend(np.concatenate([mean, logvar], axis=1))))
    a, b, c = host(dist.sample(generator=5)), host(dist.sample(generator=5)), host(dist.sample(generator=6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert abs(a.mean() - 2.0) < 0.01 and abs(a.std() - 0.5) < 0.01
    point = DiagonalGaussianDistribution(Tensor(to_backend(np.concatenate([mean, logvar], axis=1))),
                                         deterministic=True)
    assert np.array_equal(host(point.sample(generator=0)), mean)
    assert np.array_equal(host(point.kl()), np.zeros(1))


def test_gradients_reach_mean_and_logvar_through_a_sample():
    from minildm import Tensor
    params = Tensor(to_backend(np.random.default_rng(0).standard_normal((1, 4, 2, 2)).astype(np.float32)),
                    requires_grad=True)
    dist = DiagonalGaussianDistribution(params)
    (dist.sample(generator=0).sum() + dist.kl().sum()).backward()
    grad = host(params.grad)
    assert np.all(grad[:, :2] != 0) and np.all(grad[:, 2:] != 0)


# -- errors -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("change, words", [
    ({"down_block_types": ["DownEncoderBlock2D", "AttnDownEncoderBlock2D"]}, ["AttnDownEncoderBlock2D"]),
    ({"up_block_types": ["UpDecoderBlock2D", "AttnUpDecoderBlock2D"]}, ["AttnUpDecoderBlock2D"]),
    ({"act_fn": "mish"}, ["act_fn", "mish"]),
    ({"block_out_channels": [8, 16, 32]}, ["block_out_channels"]),
])
def test_unsupported_config_raises_naming_it(change, words):
    config = {"block_out_channels": [8, 16], "down_block_types": ["DownEncoderBlock2D"] * 2,
              "up_block_types": ["UpDecoderBlock2D"] * 2, "norm_num_groups": 4, **change}
    with pytest.raises(ValueError) as info:
        AutoencoderKL.from_config(config)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_wrong_input_shapes_name_the_module_and_the_shapes():
    vae = AutoencoderKL.from_pretrained(FIXTURES / "vae_tiny")
    with pytest.raises(ValueError, match=r"AutoencoderKL.encode.*\(B, 3, H, W\).*\(2, 4, 16, 16\)"):
        vae.encode(to_backend(np.zeros((2, 4, 16, 16), np.float32)))
    with pytest.raises(ValueError, match=r"AutoencoderKL.decode.*\(B, 4, h, w\).*\(2, 3, 8, 8\)"):
        vae.decode(to_backend(np.zeros((2, 3, 8, 8), np.float32)))
    with pytest.raises(ValueError, match="AutoencoderKL.encode"):
        vae.encode(to_backend(np.zeros((3, 16, 16), np.float32)))


def test_a_state_dict_that_does_not_fit_lists_every_problem(tmp_path):
    folder = tmp_path / "vae"
    shutil.copytree(FIXTURES / "vae_tiny", folder)
    weights = load_safetensors(folder / "diffusion_pytorch_model.safetensors")
    del weights["encoder.conv_in.bias"], weights["decoder.mid_block.attentions.0.to_q.weight"]
    weights["decoder.extra.weight"] = np.zeros(3, np.float32)
    weights["quant_conv.weight"] = np.zeros((8, 8, 3, 3), np.float32)
    save_safetensors(weights, folder / "diffusion_pytorch_model.safetensors")
    with pytest.raises(ValueError) as info:
        AutoencoderKL.from_pretrained(folder)
    message = str(info.value)
    for key in ["encoder.conv_in.bias", "decoder.mid_block.attentions.0.to_q.weight", "decoder.extra.weight",
                "quant_conv.weight", str(folder / "diffusion_pytorch_model.safetensors")]:
        assert key in message, key


def test_missing_folder_or_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        AutoencoderKL.from_pretrained(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        AutoencoderKL.from_pretrained(tmp_path / "empty")
    shutil.copy(FIXTURES / "vae_tiny" / "config.json", tmp_path / "empty" / "config.json")
    with pytest.raises(FileNotFoundError, match="diffusion_pytorch_model.safetensors"):
        AutoencoderKL.from_pretrained(tmp_path / "empty")


def test_a_folder_of_another_class_is_refused():
    with pytest.raises(ValueError, match="describes class CLIPTextModel, expected AutoencoderKL"):
        AutoencoderKL.from_pretrained(FIXTURES / "text_encoder_gelu")
