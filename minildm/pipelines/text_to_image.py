"""``StableDiffusionPipeline``: text → image (Rombach et al. 2022), with classifier-free guidance.

    pipe = StableDiffusionPipeline.from_pretrained("minildm/weights/shapes")
    images = pipe("a red circle at the top left", num_inference_steps=30, generator=0)   # (1, H, W, 3) uint8
    save_image_grid(images, "circle.png")

One call, step by step:
  1. prompts (and negative prompts) → context (2N, 77, D), unconditional half first   (guidance.encode_prompts)
  2. x_T ~ N(0, σ_T² I), (N, 4, H/f, W/f), σ_T = scheduler.init_noise_sigma (1 for DDPM/DDIM/DPM-Solver)
  3. for t in the scheduler's grid:  ε̃ = guided U-Net prediction;  x_t' = scheduler.step(ε̃, t, x_t)
  4. image = clip((VAE.decode(x_0 / scaling_factor) + 1) / 2, 0, 1)  →  uint8 (N, H, W, 3) on the host

Randomness comes only from ``generator`` (an int seed or ``backend.rng(seed)``): it draws x_T first, then any noise
the scheduler's steps add (DDPM; DDIM with η > 0), so a seed fixes the images. Given the same ``latents``, the result
equals diffusers' ``StableDiffusionPipeline`` on the same folder (tested on a tiny random model).
"""
from __future__ import annotations

from .. import backend
from ..autograd import no_grad
from .base import StableDiffusionBase
from .guidance import encode_prompts, is_guided, negative_prompt_list, prompt_list


class StableDiffusionPipeline(StableDiffusionBase):
    """Text-to-image sampling. Build with ``from_pretrained(folder)`` or from the five components (see
    ``StableDiffusionBase``); swap the sampler by assigning ``pipe.scheduler``."""

    def __call__(self, prompt, negative_prompt=None, num_inference_steps: int = 50, guidance_scale: float | None = None,
                 generator=None, latents=None, num_images_per_prompt: int = 1, height: int | None = None,
                 width: int | None = None, eta: float = 0.0, output_type: str = "uint8", callback=None):
        """Generate N = len(prompts) · num_images_per_prompt images.

        Args:
            prompt: a string or a list of B strings ("" is the unconditional prompt).
            negative_prompt: replaces "" in the unconditional branch of guidance: one string for all prompts, or one
                per prompt. Used only when guidance is on (guidance_scale > 1).
            num_inference_steps: denoising steps (≥ 1); the scheduler spreads them over its training timesteps.
            guidance_scale: s in ε̃ = ε_u + s (ε_c − ε_u), ≥ 0; s ≤ 1 runs the conditional branch only (half the
                work). Default: the pipeline's ``guidance_scale`` (7.5 unless the model folder says otherwise).
            generator: int seed, ``backend.rng(seed)`` or None (fresh randomness).
            latents: the starting noise (N, C, H/f, W/f) instead of drawing it (multiplied by init_noise_sigma);
                rows are ordered prompt by prompt: p0's images first.
            num_images_per_prompt: n, images per prompt.
            height, width: of the images, multiples of ``size_multiple``; default: the U-Net's sample_size · f.
            eta: DDIM's η (0 = deterministic); an error for schedulers without it.
            output_type: "uint8" (default): (N, H, W, 3) uint8 host array, ready for PNG;
                "np": (N, H, W, 3) float32 in [0, 1] (diffusers' "np"); "latent": the final latents (N, C, h, w),
                left on the backend.
            callback: ``callback(i, t, latents)`` after every step; may return replacement latents.
        Returns:
            the images (see ``output_type``).
        """
        guidance_scale = self.guidance_scale if guidance_scale is None else guidance_scale
        self.check_common(num_inference_steps, guidance_scale, num_images_per_prompt, output_type, eta)
        prompts = prompt_list(prompt)
        negatives = negative_prompt_list(negative_prompt, len(prompts))
        height, width = self.default_size(height, width)
        self.check_size(height, width)
        shape = self.latent_shape(len(prompts) * num_images_per_prompt, height, width)

        rng = backend.rng(generator)
        step_kwargs = self.step_kwargs(rng, eta)
        noise = self.draw_noise(rng, shape) if latents is None else self.check_latents(latents, shape, "latents")
        with no_grad():
            context = encode_prompts(self.tokenizer, self.text_encoder, prompts, negatives, num_images_per_prompt,
                                     is_guided(guidance_scale)).astype(self.dtype, copy=False)
            self.scheduler.set_timesteps(num_inference_steps)
            x = noise * self.scheduler.init_noise_sigma  # x_T ~ N(0, σ_T² I)
            x = self.denoise(x, self.scheduler.timesteps.tolist(), context, guidance_scale, step_kwargs, callback)
            return self.decode_latents(x, output_type)

    def default_size(self, height, width) -> tuple[int, int]:
        """(height, width), each defaulting to the U-Net's training size in pixels: sample_size · f (diffusers)."""
        if height is None or width is None:
            sample_size = self.unet.config.get("sample_size")
            if sample_size is None:
                raise ValueError(f"{type(self).__name__}: the U-Net's config has no sample_size; pass height and "
                                 "width")
            rows, cols = (sample_size, sample_size) if isinstance(sample_size, int) else sample_size
            height = rows * self.vae_scale_factor if height is None else height
            width = cols * self.vae_scale_factor if width is None else width
        return int(height), int(width)
