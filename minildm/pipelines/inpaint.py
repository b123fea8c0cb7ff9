"""``StableDiffusionInpaintPipeline``: repaint the masked part of an image, keep the rest — with the plain
text-to-image U-Net (4 input channels), no inpainting-specific training.

The idea (RePaint, Lugmayr et al. 2022, eq. 8; the "legacy" inpainting of diffusers): the known region is never
generated, it is *imposed*. After every sampling step the latents outside the mask are replaced by the original
image's latents noised to the level the step has just reached, so the model only has to fill in the hole in a way
that fits its surroundings at every noise level:

    x_t' ← m ⊙ x_t'  +  (1 − m) ⊙ q_sample(z_0, t')          q_sample(z_0, t') = √ᾱ_t' z_0 + √(1 − ᾱ_t') ε

    m     the mask at latent resolution, (N, 1, h, w): 1 = repaint, 0 = keep (RePaint's m is our 1 − m)
    z_0   the image's latents (a VAE posterior sample · scaling_factor)
    t'    the next grid point; after the last step there is none and z_0 itself is imposed (no noise)
    ε     one fixed noise, the same that started the sampling, as diffusers does (with DDIM η = 0 a perfect model
          would follow exactly this path in the known region; RePaint draws fresh noise each step instead)

Conventions, as in diffusers' StableDiffusionInpaintPipeline for a 4-channel U-Net (tested equal to it):
- mask_image: white / 1 / True = repaint, black / 0 = keep; binarised at 0.5.
- The mask goes to latent resolution by nearest-neighbour sampling (``mask[:, :, ::f, ::f]``: each f×f cell of
  pixels follows its top-left pixel), as torch's ``interpolate(mask, size)`` does. Partly masked cells are thus
  either repainted or kept whole: make masks a little larger than the object, and aligned to f if you can.
- The kept region's latents end exactly equal to z_0, but the output is decoded from all the latents, so there it
  is (close to) the *VAE reconstruction* of the input — the decoder also sees the neighbouring repainted latents —
  not the input pixels themselves; paste the original pixels back yourself if they must be exact.
- strength = 1 (default) starts from pure noise, exactly as text-to-image does, so with an all-ones mask the result
  equals ``StableDiffusionPipeline`` from the same noise; strength < 1 starts from the noised image instead
  (as image-to-image).
"""
from __future__ import annotations

from ..autograd import no_grad
from .base import StableDiffusionBase
from .guidance import negative_prompt_list, prompt_list
from .images import images_to_model, masks_to_model


class StableDiffusionInpaintPipeline(StableDiffusionBase):
    """Inpainting by re-imposing the known region at every step (see the module docstring)."""

    def __call__(self, prompt, image, mask_image, strength: float = 1.0, negative_prompt=None,
                 num_inference_steps: int = 50, guidance_scale: float | None = None, generator=None, noise=None,
                 num_images_per_prompt: int = 1, eta: float = 0.0, output_type: str = "uint8", callback=None):
        """Repaint where ``mask_image`` is white, following ``prompt``.

        Args:
            prompt, negative_prompt, num_inference_steps, guidance_scale, num_images_per_prompt, eta, output_type,
                callback: as in ``StableDiffusionPipeline``.
            image: as in ``StableDiffusionImg2ImgPipeline``: (H, W, 3) / (B, H, W, 3) uint8 or float in [0, 1], or
                PIL image(s), once for all prompts or once per prompt.
            mask_image: (H, W) or (B, H, W) uint8 / float in [0, 1] / bool, or PIL image(s); 1 = repaint.
            strength: in [0, 1]; 1 (default) samples the hole from pure noise, less starts from the noised image.
            generator: int seed or ``backend.rng(seed)``: draws the VAE posterior sample, then ε.
            noise: ε itself, (N, C, H/f, W/f), instead of drawing it; it starts the sampling and noises the known
                region at every step.
        Returns:
            N images (see ``output_type``).
        """
        guidance_scale = self.guidance_scale if guidance_scale is None else guidance_scale
        self.check_common(num_inference_steps, guidance_scale, num_images_per_prompt, output_type, eta)
        prompts = prompt_list(prompt)
        negatives = negative_prompt_list(negative_prompt, len(prompts))
        pixels = images_to_model(image, "image")            # (b, 3, H, W) in [-1, 1]
        masks = masks_to_model(mask_image, "mask_image")   # (b', 1, H, W) in {0, 1}
        self.check_batch(masks.shape[0], len(prompts), "mask_image")
        if masks.shape[2:] != pixels.shape[2:]:
            raise ValueError(f"{type(self).__name__}: mask_image is {masks.shape[2]}x{masks.shape[3]} but image is "
                             f"{pixels.shape[2]}x{pixels.shape[3]}; they must have the same height and width")
        timesteps, step_kwargs, context, z0, eps = self.start_from_image(
            pixels, prompts, negatives, num_images_per_prompt, num_inference_steps, strength, guidance_scale,
            generator, noise, eta)
        with no_grad():
            if strength == 1.0:
                x = eps * self.scheduler.init_noise_sigma           # pure noise, as text-to-image
            else:
                x = self.scheduler.add_noise(z0, eps, timesteps[0])  # the noised image, as image-to-image
            f = self.vae_scale_factor
            m = self.per_image(masks[:, :, ::f, ::f], len(prompts), num_images_per_prompt, "mask_image")
            m = m.astype(self.dtype, copy=False)  # (N, 1, h, w), nearest-neighbour downsampling

            def impose_known_region(i, t, x):
                # z_0 noised to the level just reached, t' = the next grid point; after the last step, z_0 itself
                known = self.scheduler.add_noise(z0, eps, timesteps[i + 1]) if i + 1 < len(timesteps) else z0
                return m * x + (1 - m) * known  # RePaint eq. 8 (its mask marks the *known* region: 1 − m here)

            x = self.denoise(x, timesteps, context, guidance_scale, step_kwargs, callback, impose_known_region)
            return self.decode_latents(x, output_type)
