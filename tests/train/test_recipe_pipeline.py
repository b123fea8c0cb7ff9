"""`train all --preset tiny`: the three recipes run end to end, their losses fall, and the pipeline folder loads."""
import json

import numpy as np
import pytest

from minildm import backend, io
from minildm.models import AutoencoderKL
from minildm.train.all import train_all
from minildm.train.autoencoder import encode_moments
from minildm.train.presets import TINY, get_preset
from minildm.train.recipe_common import make_dataset


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    return out, train_all("tiny", out, progress=False)


def _falls(losses, k=3):
    return np.mean(losses[-k:]) < np.mean(losses[:k])


def test_every_part_learns(tiny_run):
    _, result = tiny_run
    for part in (result.clip, result.vae, result.unet):
        assert len(part.losses) == 12 and all(np.isfinite(part.losses))
        assert _falls(part.losses), part.losses
    for part in ("clip", "vae", "unet"):
        assert (tiny_run[0] / part / "loss.png").stat().st_size > 0


def test_pipeline_folder_is_diffusers_layout_in_float16_and_loads(tiny_run):
    from minildm.pipelines import StableDiffusionPipeline

    _, result = tiny_run
    folder = result.pipeline
    index = json.loads((folder / "model_index.json").read_text())
    assert {k: v[1] for k, v in index.items() if isinstance(v, list)} == {
        "unet": "UNet2DConditionModel", "vae": "AutoencoderKL", "text_encoder": "CLIPTextModel",
        "tokenizer": "CLIPTokenizer", "scheduler": "DDIMScheduler"}
    for weights in folder.glob("*/*.safetensors"):
        assert {a.dtype for a in io.load_safetensors(weights).values()} == {np.dtype("float16")}, weights
    unet_config = json.loads((folder / "unet" / "config.json").read_text())
    text_config = json.loads((folder / "text_encoder" / "config.json").read_text())
    assert unet_config["cross_attention_dim"] == text_config["hidden_size"]  # context = last_hidden_state

    pipe = StableDiffusionPipeline.from_pretrained(folder)
    assert pipe.guidance_scale == TINY.unet.guidance_scale
    images = pipe("a red circle at the top left", num_inference_steps=2, generator=0)
    assert images.shape == (1, 32, 32, 3) and images.dtype == np.uint8


def test_tokenizer_keeps_every_word_whole(tiny_run):
    from minildm.data import vocabulary
    from minildm.models import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(tiny_run[1].pipeline / "tokenizer")
    assert tokenizer.unknown_words(" ".join(vocabulary())) == []
    assert tokenizer.model_max_length == TINY.clip.max_length


def test_scaling_factor_is_one_over_the_std_of_the_training_latents(tiny_run):
    out, result = tiny_run
    vae = AutoencoderKL.from_pretrained(out / "vae" / "vae")
    assert vae.config["scaling_factor"] == pytest.approx(result.vae.scaling_factor)
    mean, std = encode_moments(vae, make_dataset(TINY.data).images)
    # Fresh posterior samples (another seed than the recipe's): scaled, they have unit standard deviation.
    z = mean + std * backend.rng(123).standard_normal(mean.shape, dtype=mean.dtype)
    assert float(z.std()) * vae.config["scaling_factor"] == pytest.approx(1.0, rel=0.02)
    assert vae.config["scaling_factor"] != 0.18215  # our own autoencoder's value, not Stable Diffusion's


def test_unet_resume_after_interruption_reproduces_the_losses(tiny_run, tmp_path, monkeypatch):
    from minildm.train import unet as recipe

    out, result = tiny_run
    preset = get_preset("tiny", unet={"steps": 8, "checkpoint_every": 3})
    dirs = dict(clip_dir=out / "clip", vae_dir=out / "vae", progress=False)
    full = recipe.train_unet(preset, tmp_path / "full", **dirs)

    calls = {"n": 0}
    original = recipe.drop_captions

    def crash_at_step_5(*args):  # the process "dies" inside step 5; the checkpoint of step 3 survives
        calls["n"] += 1
        if calls["n"] == 6:
            raise RuntimeError("crash")
        return original(*args)
    monkeypatch.setattr(recipe, "drop_captions", crash_at_step_5)
    with pytest.raises(RuntimeError, match="crash"):
        recipe.train_unet(preset, tmp_path / "crashed", **dirs)
    monkeypatch.setattr(recipe, "drop_captions", original)
    resumed = recipe.train_unet(preset, tmp_path / "crashed", resume=True, **dirs)
    assert resumed.losses == full.losses  # bit for bit
    a = io.load_safetensors(tmp_path / "full" / "unet" / "diffusion_pytorch_model.safetensors")
    b = io.load_safetensors(tmp_path / "crashed" / "unet" / "diffusion_pytorch_model.safetensors")
    assert all(np.array_equal(a[k], b[k]) for k in a)  # the same EMA weights


def test_caption_dropout_rate_is_ten_percent(tiny_run):
    from minildm.train.unet import UNCONDITIONAL, drop_captions

    assert TINY.unet.caption_dropout == get_preset("shapes").unet.caption_dropout == 0.1
    rows = backend.xp().arange(1, 20_001)
    dropped = drop_captions(rows, backend.rng(0), 0.1) == UNCONDITIONAL
    assert abs(float(dropped.mean()) - 0.1) < 0.006   # 3 standard deviations of a 20 000-draw rate
    kept = ~dropped
    assert bool((drop_captions(rows, backend.rng(0), 0.1)[kept] == rows[kept]).all())

