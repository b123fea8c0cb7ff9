"""``StableDiffusionImg2ImgPipeline``: image + text → image (SDEdit, Meng et al. 2022).

Instead of starting from pure noise, start from the given image noised part of the way, then denoise with the
prompt. How far is ``strength`` ∈ (0, 1]: the fraction of the sampling grid that is re-run.

  1. z_0 = scaling_factor · (a sample of the VAE posterior q(z | image))                (base.encode_images)
  2. the grid of num_inference_steps timesteps is cut as diffusers does (base.strength_timesteps):
         init_timestep = min(int(steps · strength), steps),  t_start = steps − init_timestep
     and sampling runs the last init_timestep grid points, from t_1 = grid[t_start] down
  3. x_{t_1} = √ᾱ_{t_1} z_0 + √(1 − ᾱ_{t_1}) ε                                      (DDPM eq. 4, add_noise)
  4. the text-to-image loop from t_1; decode

Low strength keeps the composition and colours of the image; strength 1 starts from (nearly) pure noise and keeps
little. Randomness: ``generator`` draws the posterior sample first, then ε (unless ``noise`` gives it), then any
noise of the scheduler's steps — the order diffusers uses, so with the same draws the images are the same.
"""
from __future__ import annotations

from ..autograd import no_grad
from .base import StableDiffusionBase
from .guidance import negative_prompt_list, prompt_list
from .images import images_to_model


class StableDiffusionImg2ImgPipeline(StableDiffusionBase):
    """Image-to-image sampling with the components of a text-to-image model (no extra training)."""

    def __call__(self, prompt, image, strength: float = 0.8, negative_prompt=None, num_inference_steps: int = 50,
                 guidance_scale: float | None = None, generator=None, noise=None, num_images_per_prompt: int = 1,
                 eta: float = 0.0, output_type: str = "uint8", callback=None):
        """Re-imagine ``image`` following ``prompt``.

        Args:
            prompt, negative_prompt, num_inference_steps, guidance_scale, num_images_per_prompt, eta, output_type,
                callback: as in ``StableDiffusionPipeline``.
            image: (H, W, 3) or (B, H, W, 3) uint8 (0..255) or float ([0, 1]), or PIL image(s); one image for all
                prompts or one per prompt. H and W must be multiples of ``size_multiple``; the output has its size.
            strength: in [0, 1], how much of the grid to re-run: 0.8 (default) runs the last 80 % of the steps.
            generator: int seed or ``backend.rng(seed)``: draws the VAE posterior sample, then ε.
            noise: ε itself, (N, C, H/f, W/f) with N = B · num_images_per_prompt, instead of drawing it.
        Returns:
            N images (see ``output_type``), in the order p0's images first.
        """
        guidance_scale = self.guidance_scale if guidance_scale is None else guidance_scale
        self.check_common(num_inference_steps, guidance_scale, num_images_per_prompt, output_type, eta)
        prompts = prompt_list(prompt)
        negatives = negative_prompt_list(negative_prompt, len(prompts))
        pixels = images_to_model(image, "image")  # (b, 3, H, W) in [-1, 1]
        timesteps, step_kwargs, context, z0, eps = self.start_from_image(
            pixels, prompts, negatives, num_images_per_prompt, num_inference_steps, strength, guidance_scale,
            generator, noise, eta)
        with no_grad():
            x = self.scheduler.add_noise(z0, eps, timesteps[0])  # x_{t_1} = √ᾱ z_0 + √(1-ᾱ) ε     DDPM eq. 4
            x = self.denoise(x, timesteps, context, guidance_scale, step_kwargs, callback)
            return self.decode_latents(x, output_type)
