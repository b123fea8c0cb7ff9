"""What the pipelines promise beyond parity: output types, seeds, one U-Net call per step, scheduler swaps, batch
order, callbacks, image-to-image strength and the inpainting invariants."""
import numpy as np
import pytest
from pipeline_support import LATENT, SIZE, ReplayGenerator, case, load_pipeline

from minildm import backend
from minildm.pipelines import (StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline,
                               classifier_free_guidance)
from minildm.schedulers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

FAST = dict(num_inference_steps=2, guidance_scale=4.0)


@pytest.fixture(scope="module")
def pipe():
    return load_pipeline()


@pytest.fixture
def counted(pipe, monkeypatch):
    """The pipeline with its U-Net's forward wrapped: records the batch size of every call."""
    calls, forward = [], pipe.unet.forward

    def counting_forward(sample, timestep, encoder_hidden_states, *args, **kwargs):
        calls.append(sample.shape[0])
        return forward(sample, timestep, encoder_hidden_states, *args, **kwargs)

    monkeypatch.setattr(pipe.unet, "forward", counting_forward)
    return pipe, calls


def test_output_types_shapes_and_ranges(pipe):
    images = pipe("a red circle", generator=0, **FAST)
    assert isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.shape == (1, SIZE, SIZE, 3)
    floats = pipe("a red circle", generator=0, output_type="np", **FAST)
    assert floats.dtype == np.float32 and floats.shape == (1, SIZE, SIZE, 3)
    assert 0 <= floats.min() and floats.max() <= 1
    np.testing.assert_array_equal(images, np.round(floats * 255).astype(np.uint8))
    latents = pipe("a red circle", generator=0, output_type="latent", **FAST)
    assert latents.shape == (1, *LATENT) and type(latents) is type(backend.xp().zeros(1))  # stays on the backend


def test_non_square_size(pipe):
    assert pipe("a red circle", height=16, width=32, generator=0, **FAST).shape == (1, 16, 32, 3)


def test_a_seed_fixes_the_images_and_a_generator_object_is_the_same_as_its_seed(pipe):
    a = pipe(["a red circle", "a blue square"], generator=3, **FAST)
    np.testing.assert_array_equal(a, pipe(["a red circle", "a blue square"], generator=3, **FAST))
    np.testing.assert_array_equal(a, pipe(["a red circle", "a blue square"], generator=backend.rng(3), **FAST))
    assert not np.array_equal(a, pipe(["a red circle", "a blue square"], generator=4, **FAST))


def test_guidance_runs_both_branches_in_one_unet_call_per_step(counted):
    pipe, calls = counted
    pipe(["a red circle", "a blue square"], num_images_per_prompt=3, num_inference_steps=3, guidance_scale=5.0,
         generator=0)
    assert calls == [2 * 6] * 3  # 3 steps, one call each, unconditional and conditional stacked: 2 x (2 prompts x 3)
    calls.clear()
    pipe(["a red circle", "a blue square"], num_images_per_prompt=3, num_inference_steps=3, guidance_scale=1.0,
         generator=0)
    assert calls == [6] * 3  # s <= 1: the conditional branch alone


def test_guidance_equals_the_formula_on_two_separate_unet_calls(pipe):
    """ε̃ = ε_u + s (ε_c − ε_u), with ε_u and ε_c computed by separate U-Net calls (Ho & Salimans 2022, eq. 6)."""
    from minildm import no_grad
    from minildm.pipelines.guidance import encode_text

    xp, s, t = backend.xp(), 4.0, 500
    x = backend.rng(0).standard_normal((1, *LATENT), dtype=xp.float32)
    with no_grad():
        cond = encode_text(pipe.tokenizer, pipe.text_encoder, ["a red circle"])
        uncond = encode_text(pipe.tokenizer, pipe.text_encoder, ["a blue square"])
        eps_c, eps_u = pipe.unet(x, t, cond).data, pipe.unet(x, t, uncond).data
        stacked = pipe.unet(xp.concatenate([x, x]), t, xp.concatenate([uncond, cond])).data
    expected = eps_u + s * (eps_c - eps_u)
    np.testing.assert_allclose(backend.to_host(classifier_free_guidance(stacked, s)), backend.to_host(expected),
                               rtol=1e-5, atol=1e-5)


def test_guidance_at_most_one_is_the_conditional_model(pipe):
    a = pipe("a red circle", guidance_scale=1.0, num_inference_steps=2, generator=0, output_type="np")
    b = pipe("a red circle", guidance_scale=0.5, num_inference_steps=2, generator=0, output_type="np")
    np.testing.assert_array_equal(a, b)


def test_negative_prompt_replaces_the_empty_prompt(pipe):
    base = pipe("a red circle", generator=0, output_type="np", **FAST)
    np.testing.assert_array_equal(base, pipe("a red circle", negative_prompt="", generator=0, output_type="np", **FAST))
    assert not np.allclose(base, pipe("a red circle", negative_prompt="a blue square", generator=0, output_type="np",
                                      **FAST))


def test_images_are_ordered_prompt_by_prompt(pipe):
    """With n images per prompt, rows 2k, 2k+1 belong to prompt k: the same as sampling that prompt alone."""
    latents = case("text_to_image")["latents"]
    both = pipe(["a red circle", "a blue square"], negative_prompt=["a green square", "a star"],
                num_images_per_prompt=2, latents=latents, output_type="np", **FAST)
    second = pipe("a blue square", negative_prompt="a star", num_images_per_prompt=2, latents=latents[2:],
                  output_type="np", **FAST)
    np.testing.assert_allclose(both[2:], second, atol=1e-5)


@pytest.mark.parametrize("scheduler_class", [DDPMScheduler, DDIMScheduler, DPMSolverMultistepScheduler])
def test_any_scheduler_can_be_swapped_in(scheduler_class):
    pipe = load_pipeline()
    pipe.scheduler = scheduler_class.from_config(pipe.scheduler.config)
    assert pipe.scheduler.config["beta_schedule"] == "scaled_linear"  # the same noise schedule, another sampler
    a = pipe("a red circle", generator=1, output_type="np", **FAST)
    assert a.shape == (1, SIZE, SIZE, 3) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, pipe("a red circle", generator=1, output_type="np", **FAST))  # stochastic DDPM too


def test_schedulers_give_different_samples(pipe):
    latents = case("text_to_image")["latents"][:1]
    ddim = pipe("a red circle", latents=latents, output_type="np", **FAST)
    swapped = load_pipeline()
    swapped.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    assert not np.allclose(ddim, swapped("a red circle", latents=latents, output_type="np", **FAST))


def test_ddim_eta_adds_seeded_noise(pipe):
    a = pipe("a red circle", eta=1.0, generator=0, output_type="np", **FAST)
    np.testing.assert_array_equal(a, pipe("a red circle", eta=1.0, generator=0, output_type="np", **FAST))
    assert not np.allclose(a, pipe("a red circle", eta=0.0, generator=0, output_type="np", **FAST))


def test_callback_sees_every_step_and_can_replace_the_latents(pipe):
    seen = []
    pipe("a red circle", generator=0, num_inference_steps=3, callback=lambda i, t, x: seen.append((i, t, x.shape)))
    assert seen == [(i, t, (1, *LATENT)) for i, t in enumerate(pipe.scheduler.timesteps.tolist())]
    zeroed = pipe("a red circle", generator=0, output_type="latent", callback=lambda i, t, x: 0 * x, **FAST)
    assert float(abs(zeroed).max()) == 0.0


def test_image_to_image_strength_sets_the_number_of_steps(pipe, counted):
    _, calls = counted
    img2img = StableDiffusionImg2ImgPipeline(**pipe.components)
    img2img.show_progress = False
    image = case("image_to_image")["image"][0]
    img2img("a red circle", image, strength=0.5, num_inference_steps=10, guidance_scale=3.0, generator=0)
    assert len(calls) == 5  # init_timestep = int(10 * 0.5): the last 5 grid points


def test_image_to_image_accepts_uint8_float_and_pil_alike(pipe):
    from PIL import Image

    img2img = StableDiffusionImg2ImgPipeline(**pipe.components)
    img2img.show_progress = False
    image = case("image_to_image")["image"][0]
    kwargs = dict(strength=0.5, output_type="np", **FAST)
    a = img2img(["a red circle", "a star"], image, generator=0, **kwargs)  # one image for both prompts
    b = img2img(["a red circle", "a star"], image.astype(np.float32) / 255, generator=0, **kwargs)
    c = img2img(["a red circle", "a star"], Image.fromarray(image), generator=0, **kwargs)
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_array_equal(a, c)


@pytest.fixture(scope="module")
def inpaint(pipe):
    p = StableDiffusionInpaintPipeline(**pipe.components)
    p.show_progress = False
    return p


def test_inpaint_with_an_all_ones_mask_is_text_to_image_from_the_same_noise(pipe, inpaint):
    c = case("inpaint")
    noise = case("text_to_image")["latents"][:1]
    ones = np.full((SIZE, SIZE), 255, dtype=np.uint8)
    repainted = inpaint("a red circle", c["image"], ones, noise=noise, generator=0, output_type="np", **FAST)
    generated = pipe("a red circle", latents=noise, output_type="np", **FAST)
    np.testing.assert_array_equal(repainted, generated)


def test_inpaint_keeps_the_known_region_exactly_in_latent_space(pipe, inpaint):
    c = case("inpaint")
    z0 = _image_latents(pipe, c)
    latents = inpaint(c["prompt"], c["image"], c["mask"], generator=ReplayGenerator(c["posterior_eps"], c["noise"]),
                      output_type="latent", **FAST)
    keep = backend.to_host(latents)[:, :, c["mask"][0, ::2, ::2] < 128]  # latent cells whose top-left pixel is black
    np.testing.assert_array_equal(keep, z0[:, :, c["mask"][0, ::2, ::2] < 128])


def test_inpaint_with_an_all_zeros_mask_returns_the_vae_reconstruction(pipe, inpaint):
    c = case("inpaint")
    zeros = np.zeros((SIZE, SIZE), dtype=bool)
    images = inpaint(c["prompt"], c["image"], zeros, generator=ReplayGenerator(c["posterior_eps"], c["noise"]),
                     output_type="np", **FAST)
    reconstruction = pipe.decode_latents(backend.to_device(_image_latents(pipe, c)), "np")
    np.testing.assert_array_equal(images, reconstruction)
    assert np.abs(images - c["image"] / 255).mean() < 0.5  # (a random VAE reconstructs only roughly)


def test_inpaint_changes_the_masked_region_more_than_the_rest(pipe, inpaint):
    c = case("inpaint")
    reconstruction = inpaint(c["prompt"], c["image"], np.zeros((SIZE, SIZE), np.uint8), generator=0,
                             output_type="np", **FAST)
    images = inpaint(c["prompt"], c["image"], c["mask"], generator=0, output_type="np", **FAST)
    change = np.abs(images - reconstruction).mean(axis=-1)[0]
    repaint = c["mask"][0] > 128
    # The latents of the kept region are exact (test above); in pixels the decoder mixes neighbouring latents (and
    # this tiny VAE's mid-block attention mixes all of them), so the kept region moves too, but less.
    assert change[repaint].mean() > 1.2 * change[~repaint].mean()


def _image_latents(pipe, c):
    """z_0 = scaling_factor · (mean + std · eps) for the recorded posterior draw, on the host."""
    from minildm import no_grad
    from minildm.pipelines.images import images_to_model

    with no_grad():
        return backend.to_host(pipe.encode_images(images_to_model(c["image"]), ReplayGenerator(c["posterior_eps"])))


def test_predict_noise_is_the_guided_combination_of_one_batched_unet_call(pipe):
    from minildm import no_grad
    from minildm.pipelines.guidance import encode_prompts

    rng = np.random.default_rng(3)
    x = backend.to_device(rng.standard_normal((2, *LATENT)).astype(np.float32))
    with no_grad():
        context = encode_prompts(pipe.tokenizer, pipe.text_encoder, ["a", "b"], ["", ""], 1, guided=True)
        eps_u = backend.to_host(pipe.unet(x, 500, context[:2]).data)
        eps_c = backend.to_host(pipe.unet(x, 500, context[2:]).data)
    guided = backend.to_host(pipe.predict_noise(x, 500, context, 4.0))
    np.testing.assert_allclose(guided, eps_u + 4.0 * (eps_c - eps_u), rtol=1e-4, atol=1e-5)
    unguided = backend.to_host(pipe.predict_noise(x, 500, context[2:], 1.0))
    np.testing.assert_allclose(unguided, eps_c, rtol=1e-5, atol=1e-6)
