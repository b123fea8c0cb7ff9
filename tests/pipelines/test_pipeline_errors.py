"""Wrong inputs fail early, with a message in the user's terms."""
import json
import shutil

import numpy as np
import pytest
from pipeline_support import FOLDER, SIZE, case, load_pipeline

from minildm.models import AutoencoderKL
from minildm.pipelines import StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline, StableDiffusionPipeline
from minildm.schedulers import DDPMScheduler

FAST = dict(num_inference_steps=2, guidance_scale=2.0)


@pytest.fixture(scope="module")
def pipe():
    return load_pipeline()


@pytest.fixture(scope="module")
def image():
    return case("image_to_image")["image"][0]  # (16, 16, 3) uint8


def test_missing_model_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="model folder .*nowhere.* not found"):
        StableDiffusionPipeline.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="model_index.json"):
        StableDiffusionPipeline.from_pretrained(tmp_path)


def test_folder_missing_a_component(tmp_path):
    shutil.copytree(FOLDER, tmp_path / "model")
    index_path = tmp_path / "model" / "model_index.json"
    index = json.loads(index_path.read_text())
    del index["vae"]
    index_path.write_text(json.dumps(index))
    with pytest.raises(ValueError, match=r"lists no \['vae'\]"):
        StableDiffusionPipeline.from_pretrained(tmp_path / "model")


def test_unet_and_vae_channels_must_match(pipe):
    vae = AutoencoderKL(block_out_channels=(8, 16), down_block_types=["DownEncoderBlock2D"] * 2,
                        up_block_types=["UpDecoderBlock2D"] * 2, norm_num_groups=4, latent_channels=3)
    with pytest.raises(ValueError, match="U-Net takes 4 input channels but the VAE makes 3-channel latents"):
        StableDiffusionPipeline(**{**pipe.components, "vae": vae})


@pytest.mark.parametrize("prompt, error, match", [
    ([], ValueError, "empty list"),
    (None, ValueError, "a prompt is required"),
    (["a red circle", 3], TypeError, "must be a string"),
    (42, TypeError, "a string or a list of strings"),
])
def test_bad_prompts(pipe, prompt, error, match):
    with pytest.raises(error, match=match):
        pipe(prompt, **FAST)


def test_negative_prompts_must_match_the_prompts(pipe):
    with pytest.raises(ValueError, match="2 negative prompts for 3 prompts"):
        pipe(["a", "b", "c"], negative_prompt=["x", "y"], **FAST)


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_inference_steps=0), "num_inference_steps must be an int >= 1"),
    (dict(num_inference_steps=2.5), "num_inference_steps must be an int >= 1"),
    (dict(guidance_scale=-1.0), "guidance_scale must be a number >= 0"),
    (dict(num_images_per_prompt=0), "num_images_per_prompt must be an int >= 1"),
    (dict(output_type="pil"), "output_type='pil'; valid"),
    (dict(eta=-0.5), "eta must be >= 0"),
    (dict(height=18, width=16), "multiples of 4 .* got 18x16"),
    (dict(height=16, width=2), "multiples of 4"),
    (dict(latents=np.zeros((2, 4, 8, 8), np.float32)), r"latents must have shape \(1, 4, 8, 8\)"),
])
def test_bad_arguments(pipe, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pipe("a red circle", **{**FAST, **kwargs})


def test_negative_guidance_scale_in_the_constructor(pipe):
    with pytest.raises(ValueError, match="guidance_scale must be a number >= 0"):
        StableDiffusionPipeline(**pipe.components, guidance_scale=-2)


def test_eta_needs_a_scheduler_that_has_it():
    pipe = load_pipeline()
    pipe.scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    with pytest.raises(ValueError, match="eta=0.5 is a DDIMScheduler option; DDPMScheduler takes no eta"):
        pipe("a red circle", eta=0.5, **FAST)


@pytest.fixture(scope="module")
def img2img(pipe):
    return StableDiffusionImg2ImgPipeline(**pipe.components)


@pytest.mark.parametrize("strength", [-0.1, 1.5])
def test_strength_out_of_range(img2img, image, strength):
    with pytest.raises(ValueError, match=r"strength must be in \[0, 1\]"):
        img2img("a red circle", image, strength=strength, **FAST)


def test_strength_that_leaves_no_step(img2img, image):
    with pytest.raises(ValueError, match="leaves no step to run"):
        img2img("a red circle", image, strength=0.2, num_inference_steps=4)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((3, SIZE, SIZE), np.uint8), r"expected an RGB image \(H, W, 3\)"),
    (np.zeros((1, 3, SIZE, SIZE), np.uint8), r"channels go last"),
    (np.zeros((SIZE, SIZE), np.uint8), r"got shape \(16, 16\)"),
    (np.full((SIZE, SIZE, 3), 2.0, np.float32), r"float images must lie in \[0, 1\]"),
    (np.full((SIZE, SIZE, 3), -1.0, np.float32), r"\[-1, 1\] data"),
    (np.zeros((SIZE, SIZE, 3), np.int64), "dtype int64 is not supported"),
    (np.zeros((SIZE, 18, 3), np.uint8), "multiples of 4"),
    (np.zeros((3, SIZE, SIZE, 3), np.uint8), "got 3 images for 1 prompt"),
    ("image.png", TypeError),
])
def test_bad_images(img2img, bad, match):
    if match is TypeError:
        with pytest.raises(TypeError, match="expected a PIL image, an array"):
            img2img("a red circle", bad, **FAST)
        return
    with pytest.raises(ValueError, match=match):
        img2img("a red circle", bad, **FAST)


@pytest.mark.parametrize("mask, match", [
    (np.zeros((SIZE, 8), np.uint8), "mask_image is 16x8 but image is 16x16"),
    (np.zeros((2, 3, SIZE, SIZE), np.uint8), r"expected a mask \(H, W\)"),
    (np.full((SIZE, SIZE), 3.0), r"float images must lie in \[0, 1\]"),
    (np.zeros((2, SIZE, SIZE), np.uint8), "got 2 mask_images for 1 prompt"),
])
def test_bad_masks(pipe, image, mask, match):
    inpaint = StableDiffusionInpaintPipeline(**pipe.components)
    with pytest.raises(ValueError, match=match):
        inpaint("a red circle", image, mask, **FAST)
