"""The pipelines against diffusers, end to end: the same folder, the same starting noise, the same images.

The references (scripts/fixtures/pipeline.py) are diffusers' StableDiffusionPipeline, StableDiffusionImg2ImgPipeline
and StableDiffusionInpaintPipeline (4-channel U-Net) run on tests/fixtures/pipeline_tiny/ with DDIM (η = 0),
negative prompts and guidance > 1, output_type="np". Where diffusers drew from a torch generator, the recorded draws
are replayed, in the same order, through a stand-in generator (or passed as ``noise``).
"""
import json
import shutil

import numpy as np
import pytest
from pipeline_support import FOLDER, ReplayGenerator, case, load_pipeline

from minildm.pipelines import StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline, StableDiffusionPipeline

ATOL = 1e-4  # on images in [0, 1]; measured ~1e-6 (float32 through 4 guided steps and the VAE decoder)


def max_error(actual, expected):
    return float(np.abs(np.asarray(actual, dtype=np.float64) - expected).max())


@pytest.fixture(scope="module")
def pipe():
    return load_pipeline()


def test_text_to_image_matches_diffusers_with_negative_prompts_and_guidance(pipe):
    c = case("text_to_image")
    images = pipe(c["prompt"], negative_prompt=c["negative_prompt"], num_images_per_prompt=c["num_images_per_prompt"],
                  num_inference_steps=c["num_inference_steps"], guidance_scale=c["guidance_scale"],
                  latents=c["latents"], output_type="np")
    assert images.shape == (4, 16, 16, 3) and images.dtype == np.float32
    assert max_error(images, c["images"]) <= ATOL


def test_text_to_image_without_guidance_matches_diffusers(pipe):
    c = case("text_to_image")
    images = pipe(c["prompt"], num_images_per_prompt=c["num_images_per_prompt"], guidance_scale=1.0,
                  num_inference_steps=c["num_inference_steps"], latents=c["latents"], output_type="np")
    assert max_error(images, c["images_unguided"]) <= ATOL


def test_uint8_output_is_the_rounded_reference(pipe):
    c = case("text_to_image")
    images = pipe(c["prompt"], negative_prompt=c["negative_prompt"], num_images_per_prompt=c["num_images_per_prompt"],
                  num_inference_steps=c["num_inference_steps"], guidance_scale=c["guidance_scale"],
                  latents=c["latents"])
    assert images.dtype == np.uint8 and images.shape == (4, 16, 16, 3)
    expected = np.round(c["images"] * 255)  # diffusers' numpy_to_pil rounds the same way
    assert np.abs(images.astype(np.int16) - expected).max() <= 1  # ±1 only where a value sits on a .5 boundary


def test_image_to_image_matches_diffusers(pipe):
    c = case("image_to_image")
    img2img = StableDiffusionImg2ImgPipeline(**pipe.components)
    img2img.show_progress = False
    kwargs = dict(strength=c["strength"], negative_prompt=c["negative_prompt"], guidance_scale=c["guidance_scale"],
                  num_inference_steps=c["num_inference_steps"], output_type="np")
    # diffusers drew the VAE posterior sample, then the forward-process noise, from one generator
    replayed = img2img(c["prompt"], c["image"], generator=ReplayGenerator(c["posterior_eps"], c["noise"]), **kwargs)
    assert max_error(replayed, c["images"]) <= ATOL
    # the same with the noise injected explicitly
    injected = img2img(c["prompt"], c["image"], generator=ReplayGenerator(c["posterior_eps"]), noise=c["noise"],
                       **kwargs)
    np.testing.assert_array_equal(injected, replayed)


@pytest.mark.parametrize("strength, key", [(1.0, "images"), (0.6, "images_strength_0_6")])
def test_inpaint_with_a_plain_unet_matches_diffusers(pipe, strength, key):
    c = case("inpaint")
    inpaint = StableDiffusionInpaintPipeline(**pipe.components)
    inpaint.show_progress = False
    images = inpaint(c["prompt"], c["image"], c["mask"], strength=strength, negative_prompt=c["negative_prompt"],
                     num_inference_steps=c["num_inference_steps"], guidance_scale=c["guidance_scale"],
                     generator=ReplayGenerator(c["posterior_eps"], c["noise"]), output_type="np")
    assert max_error(images, c[key]) <= ATOL


def test_saved_and_reloaded_pipeline_gives_the_same_images(pipe, tmp_path):
    c = case("text_to_image")
    kwargs = dict(negative_prompt=c["negative_prompt"], num_images_per_prompt=2, num_inference_steps=2,
                  guidance_scale=3.0, latents=c["latents"], output_type="np")
    pipe.save_pretrained(tmp_path / "copy")
    index = json.loads((tmp_path / "copy" / "model_index.json").read_text())
    assert index["unet"] == ["diffusers", "UNet2DConditionModel"] and "guidance_scale" not in index  # 7.5: implicit
    copy = StableDiffusionPipeline.from_pretrained(tmp_path / "copy")
    copy.show_progress = False
    np.testing.assert_array_equal(copy(c["prompt"], **kwargs), pipe(c["prompt"], **kwargs))


def test_a_non_default_guidance_scale_is_saved_with_the_folder(pipe, tmp_path):
    custom = StableDiffusionPipeline(**pipe.components, guidance_scale=3.0)
    custom.save_pretrained(tmp_path / "custom", dtype="float16")
    assert json.loads((tmp_path / "custom" / "model_index.json").read_text())["guidance_scale"] == 3.0
    assert StableDiffusionPipeline.from_pretrained(tmp_path / "custom").guidance_scale == 3.0


def test_default_guidance_scale_is_read_from_the_folder(tmp_path):
    shutil.copytree(FOLDER, tmp_path / "model")
    index_path = tmp_path / "model" / "model_index.json"
    assert "guidance_scale" not in json.loads(index_path.read_text())  # diffusers' folder: the default applies
    assert StableDiffusionPipeline.from_pretrained(tmp_path / "model").guidance_scale == 7.5
    index = json.loads(index_path.read_text())
    index["guidance_scale"] = 3.0
    index_path.write_text(json.dumps(index))
    pipe = StableDiffusionPipeline.from_pretrained(tmp_path / "model")
    assert pipe.guidance_scale == 3.0
    pipe.show_progress = False
    c = case("text_to_image")
    by_default = pipe(c["prompt"], num_images_per_prompt=2, num_inference_steps=2, latents=c["latents"])
    explicit = pipe(c["prompt"], num_images_per_prompt=2, num_inference_steps=2, latents=c["latents"],
                    guidance_scale=3.0)
    np.testing.assert_array_equal(by_default, explicit)


def test_shipped_model_matches_diffusers_loading_the_same_folder():
    """diffusers loads minildm/weights/shapes (written by minildm) as it is and makes the same images."""
    from minildm.weights import SHAPES

    c = case("shipped")
    pipe = StableDiffusionPipeline.from_pretrained(SHAPES)
    pipe.show_progress = False
    images = pipe(c["prompt"], negative_prompt=[""] * len(c["prompt"]), latents=c["latents"],
                  num_inference_steps=c["num_inference_steps"], guidance_scale=c["guidance_scale"], output_type="np")
    assert images.shape == (4, 32, 32, 3)
    assert max_error(images, c["images"]) <= 1e-3  # the bound on [0, 1]; measured 3e-5
