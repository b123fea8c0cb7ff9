"""Folders on disk: ModelMixin's config recording and from_config / save_pretrained / from_pretrained, and a whole
pipeline folder (model_index.json + one subfolder per component) saved and loaded as one."""
import json
import shutil

import numpy as np
import pytest

from helpers import FIXTURES, assert_close, host, to_backend
from minildm import no_grad
from minildm.models.modeling_utils import ModelMixin
from minildm.models.pipeline_folder import load_components, save_components
from minildm.models.text_encoder import CLIPTextModel
from minildm.models.tokenizer import CLIPTokenizer
from minildm.models.vae import AutoencoderKL
from minildm.nn import Linear, Module
from minildm.schedulers import DDIMScheduler, DDPMScheduler


class Tiny(ModelMixin, Module):
    def __init__(self, features=(2, 3), bias: bool = True, generator=None):
        super().__init__()
        self.proj = Linear(features[0], features[1], bias=bias, generator=generator)

    def forward(self, x):
        return self.proj(x)


class Wider(Tiny):
    def __init__(self, features=(2, 5), extra: int = 1, generator=None):
        super().__init__(features, generator=generator)


# -- ModelMixin -----------------------------------------------------------------------------------------------------
def test_config_records_the_outermost_constructor_with_defaults():
    assert Tiny().config == {"features": [2, 3], "bias": True}  # tuples become lists (JSON), generator is dropped
    assert Tiny(features=(4, 1), bias=False, generator=3).config == {"features": [4, 1], "bias": False}
    assert Wider(extra=7).config == {"features": [2, 5], "extra": 7}  # not the parent's view of it
    config = Tiny().config
    config["bias"] = False
    assert Tiny().config["bias"] is True  # .config is a copy


def test_from_config_skips_private_keys_and_warns_about_unknown_ones(recwarn):
    model = Tiny.from_config({"features": [3, 2], "_class_name": "Tiny", "_diffusers_version": "0.30"}, generator=1)
    assert model.proj.weight.shape == (2, 3) and not recwarn.list
    with pytest.warns(UserWarning, match="unknown_key"):
        Tiny.from_config({"unknown_key": 1})
    same = Tiny.from_config({"features": [3, 2]}, generator=1)
    assert np.array_equal(host(same.proj.weight), host(model.proj.weight))  # seeded


def test_save_and_load_round_trip(tmp_path):
    model = Tiny(features=(3, 4), generator=5)
    model.save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config == {"_class_name": "Tiny", "features": [3, 4], "bias": True}
    again = Tiny.from_pretrained(tmp_path / "m")
    assert all(np.array_equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    model.save_pretrained(tmp_path / "h", dtype="float16")
    half_on_disk = Tiny.from_pretrained(tmp_path / "h")
    assert half_on_disk.proj.weight.dtype == np.float32
    assert_close(half_on_disk.proj.weight, host(model.proj.weight), 1e-3)
    assert Tiny.from_pretrained(tmp_path / "h", dtype="float16").proj.weight.dtype == np.float16
    with pytest.raises(ValueError, match="describes class Tiny, expected Wider"):
        Wider.from_pretrained(tmp_path / "m")


# -- pipeline folders ---------------------------------------------------------------------------------------------
def _components(with_unet: bool) -> dict:
    components = {"vae": AutoencoderKL.from_pretrained(FIXTURES / "vae_tiny"),
                  "text_encoder": CLIPTextModel.from_pretrained(FIXTURES / "text_encoder_quick_gelu"),
                  "tokenizer": CLIPTokenizer.from_pretrained(FIXTURES / "tokenizer"),
                  "scheduler": DDIMScheduler(beta_schedule="scaled_linear", clip_sample=False)}
    if with_unet:
        from minildm.models.unet import UNet2DConditionModel
        components["unet"] = UNet2DConditionModel.from_config(
            dict(sample_size=8, in_channels=4, out_channels=4, block_out_channels=[8, 16], layers_per_block=1,
                 down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
                 up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"], cross_attention_dim=32, attention_head_dim=4,
                 norm_num_groups=4), generator=0)
    return components


def _outputs(components: dict) -> dict:
    """What each model computes on fixed inputs: the tokenizer's ids -> text encoder -> U-Net -> VAE decoder."""
    ids = np.array(components["tokenizer"](["a red circle", "two blue squares"])["input_ids"])
    with no_grad():
        context = components["text_encoder"](to_backend(ids)).last_hidden_state
        latents = to_backend(np.random.default_rng(0).standard_normal((2, 4, 8, 8)).astype(np.float32))
        out = {"ids": ids, "context": host(context), "image": host(components["vae"].decode(latents))}
        if "unet" in components:
            out["noise"] = host(components["unet"](latents, 10, context))
    return out


@pytest.mark.parametrize("with_unet", [False, True], ids=["without_unet", "with_unet"])
def test_pipeline_folder_round_trip(tmp_path, with_unet):
    if with_unet:
        pytest.importorskip("minildm.models.unet")
    components = _components(with_unet)
    save_components(tmp_path / "pipe", components)
    index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert index["vae"] == ["diffusers", "AutoencoderKL"] and index["tokenizer"] == ["transformers", "CLIPTokenizer"]
    assert index["text_encoder"] == ["transformers", "CLIPTextModel"]
    assert index["scheduler"] == ["diffusers", "DDIMScheduler"]

    loaded = load_components(tmp_path / "pipe")
    assert {k: type(v).__name__ for k, v in loaded.items()} == {k: type(v).__name__ for k, v in components.items()}
    assert loaded["scheduler"].config == components["scheduler"].config
    expected, actual = _outputs(components), _outputs(loaded)
    for key in expected:
        assert np.array_equal(actual[key], expected[key]), key  # float32 on disk: bit for bit


def test_float16_folder_and_dtype(tmp_path):
    save_components(tmp_path / "pipe", _components(with_unet=False), dtype="float16")
    loaded = load_components(tmp_path / "pipe", dtype="float16")
    assert loaded["vae"].decoder.conv_out.weight.dtype == np.float16
    assert loaded["text_encoder"].text_model.final_layer_norm.weight.dtype == np.float16


def test_missing_pieces_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_components(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="model_index.json"):
        load_components(tmp_path / "empty")
    save_components(tmp_path / "pipe", _components(with_unet=False))
    shutil.rmtree(tmp_path / "pipe" / "vae")
    with pytest.raises(FileNotFoundError, match=r"lists 'vae' \(AutoencoderKL\).*pipe/vae"):
        load_components(tmp_path / "pipe")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model_index.json").write_text("[1, 2", encoding="utf-8")
    with pytest.raises(ValueError, match="load_components: .*model_index.json is not valid JSON"):
        load_components(tmp_path / "broken")
    (tmp_path / "broken" / "model_index.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ValueError, match="load_components: .*holds a JSON list, expected an object"):
        load_components(tmp_path / "broken")


def test_real_checkpoint_indexes_load_with_warnings(tmp_path):
    """SD 1.x folders list a PNDM scheduler, a safety checker and a feature extractor, which minildm lacks."""
    folder = tmp_path / "pipe"
    save_components(folder, {"scheduler": DDPMScheduler(beta_schedule="scaled_linear"),
                             "tokenizer": CLIPTokenizer.from_pretrained(FIXTURES / "tokenizer")})
    index = json.loads((folder / "model_index.json").read_text())
    index.update(scheduler=["diffusers", "PNDMScheduler"], _diffusers_version="0.6.0",
                 safety_checker=["stable_diffusion", "StableDiffusionSafetyChecker"],
                 feature_extractor=["transformers", "CLIPImageProcessor"], image_encoder=[None, None],
                 requires_safety_checker=True)
    (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.warns(UserWarning) as record:
        loaded = load_components(folder)
    messages = " ".join(str(w.message) for w in record)
    assert "PNDMScheduler" in messages and "safety_checker" in messages and "feature_extractor" in messages
    assert isinstance(loaded["scheduler"], DDIMScheduler) and set(loaded) == {"scheduler", "tokenizer"}
    assert loaded["scheduler"].config["beta_schedule"] == "scaled_linear"


def test_save_components_refuses_what_it_cannot_save(tmp_path):
    with pytest.raises(TypeError, match="'vae' is a str"):
        save_components(tmp_path / "p", {"vae": "not a model"})
    with pytest.raises(ValueError, match="component name"):
        save_components(tmp_path / "p", {"_private": DDIMScheduler()})
