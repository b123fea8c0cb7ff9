"""What the three Stable Diffusion pipelines share: the five components, the checks, and the sampling loop.

    prompt ──► tokenizer ──► text encoder ──► context ─────────────┐
    noise (or a noised image) ──► [ U-Net (guided) ──► scheduler.step ] × steps ──► latents ──► VAE decoder ──► image

A pipeline is only its components, held as plain attributes — ``unet``, ``vae``, ``text_encoder``, ``tokenizer``,
``scheduler`` — so any of them can be swapped, e.g. the sampler:

    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)

Latents: the U-Net works on z = (VAE latent − shift_factor) · scaling_factor (Rombach et al. 2022, sec. 4.3.2 and
appendix D.1: rescaled to roughly unit variance; shift_factor is None, i.e. 0, for Stable Diffusion 1.x/2.x), so
decoding divides by scaling_factor first. Everything runs under ``no_grad`` on the active backend (NumPy or CuPy);
only ``images.postprocess`` copies the final images to the host.
"""
from __future__ import annotations

import inspect
import json
import numbers
from pathlib import Path

from tqdm import tqdm

from .. import backend
from ..autograd import Tensor, no_grad
from ..io import atomic_write
from ..models import load_components, save_components
from .guidance import classifier_free_guidance, encode_prompts, is_guided
from .images import OUTPUT_TYPES, postprocess

COMPONENTS = ("vae", "text_encoder", "tokenizer", "unet", "scheduler")
DEFAULT_GUIDANCE_SCALE = 7.5  # Stable Diffusion v1's; a trained model's folder may record its own (see __init__)


class StableDiffusionBase:
    """The components and the shared machinery of the pipelines (subclasses add ``__call__``).

    Args:
        vae: ``AutoencoderKL``.  text_encoder: ``CLIPTextModel``.  tokenizer: ``CLIPTokenizer``.
        unet: ``UNet2DConditionModel`` with as many input channels as the VAE has latent channels.
        scheduler: any minildm scheduler (DDPM, DDIM, DPM-Solver++).
        guidance_scale: the default s of classifier-free guidance when a call does not give one. 7.5 is Stable
            Diffusion's; a small model trained on a narrow domain may prefer less. ``save_pretrained`` stores it in
            model_index.json and ``from_pretrained`` reads it back.
    Attributes:
        vae_scale_factor: f = 2 ** (VAE levels − 1); images are f times larger than latents per side.
        show_progress: show a progress bar over the denoising steps (default True).
    """

    def __init__(self, vae, text_encoder, tokenizer, unet, scheduler, guidance_scale: float = DEFAULT_GUIDANCE_SCALE):
        self.vae, self.text_encoder, self.tokenizer, self.unet, self.scheduler = (vae, text_encoder, tokenizer,
                                                                                  unet, scheduler)
        name = type(self).__name__
        if unet.config["in_channels"] != vae.config["latent_channels"]:
            raise ValueError(f"{name}: the U-Net takes {unet.config['in_channels']} input channels but the VAE makes "
                             f"{vae.config['latent_channels']}-channel latents; they must match (inpainting U-Nets "
                             "with 9 input channels are not supported)")
        check_guidance_scale(name, guidance_scale)
        self.guidance_scale = float(guidance_scale)
        self.vae_scale_factor = 2 ** (len(vae.config["block_out_channels"]) - 1)
        self.show_progress = True

    # -- folders ----------------------------------------------------------------------------------------------------
    @property
    def components(self) -> dict:
        """The five components by name: ``StableDiffusionImg2ImgPipeline(**pipe.components)`` shares them."""
        return {name: getattr(self, name) for name in COMPONENTS}

    @classmethod
    def from_pretrained(cls, folder, dtype=None):
        """Load a diffusers-layout folder: model_index.json + unet/ vae/ text_encoder/ tokenizer/ scheduler/.

        Args:
            dtype: of the models' weights (default float32).
        Raises:
            FileNotFoundError: the folder, its model_index.json, or a component's subfolder is missing.
            ValueError: model_index.json lacks one of the five components.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{cls.__name__}.from_pretrained: model folder {folder} not found (expected a "
                                    "diffusers-layout folder: model_index.json, unet/, vae/, text_encoder/, "
                                    "tokenizer/, scheduler/)")
        components = load_components(folder, dtype=dtype)
        missing = [name for name in COMPONENTS if name not in components]
        if missing:
            raise ValueError(f"{cls.__name__}.from_pretrained: {folder / 'model_index.json'} lists no {missing}; a "
                             f"Stable Diffusion pipeline needs {list(COMPONENTS)}")
        for name in ("vae", "text_encoder", "unet"):
            components[name].eval()  # sampling, not training: no dropout
        settings = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
        guidance = settings.get("guidance_scale", DEFAULT_GUIDANCE_SCALE)
        return cls(**{name: components[name] for name in COMPONENTS}, guidance_scale=guidance)

    def save_pretrained(self, folder, dtype: str = "float32") -> Path:
        """Write the five components and model_index.json in the layout ``from_pretrained`` (and diffusers) read.
        Weights in ``dtype`` ("float32" or "float16"). A ``guidance_scale`` other than 7.5 is recorded in
        model_index.json as ``"guidance_scale"`` (diffusers ignores it, with a warning, so 7.5 is left implicit)."""
        folder = save_components(folder, self.components, pipeline_class=type(self).__name__, dtype=dtype)
        if self.guidance_scale != DEFAULT_GUIDANCE_SCALE:
            index_path = folder / "model_index.json"
            index = json.loads(index_path.read_text(encoding="utf-8"))
            index["guidance_scale"] = self.guidance_scale  # a setting, not a component
            with atomic_write(index_path, mode="w") as f:
                f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
        return folder

    # -- checks -----------------------------------------------------------------------------------------------------
    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this: the VAE divides them by f, then the U-Net halves the latents
        once per level below the first (its skip connections need every halving to be exact)."""
        return self.vae_scale_factor * 2 ** (len(self.unet.config["block_out_channels"]) - 1)

    def check_size(self, height: int, width: int) -> None:
        m, name = self.size_multiple, type(self).__name__
        if height % m or width % m or height < m or width < m:
            raise ValueError(f"{name}: height and width must be positive multiples of {m} (the VAE shrinks images "
                             f"{self.vae_scale_factor}x and the U-Net halves its latents "
                             f"{len(self.unet.config['block_out_channels']) - 1} more time(s)), got {height}x{width}")

    def check_common(self, num_inference_steps, guidance_scale, num_images_per_prompt, output_type, eta) -> None:
        """The arguments every pipeline takes, checked before any work is done."""
        name = type(self).__name__
        if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, numbers.Integral) \
                or num_inference_steps < 1:
            raise ValueError(f"{name}: num_inference_steps must be an int >= 1, got {num_inference_steps!r}")
        check_guidance_scale(name, guidance_scale)
        if isinstance(num_images_per_prompt, bool) or not isinstance(num_images_per_prompt, numbers.Integral) \
                or num_images_per_prompt < 1:
            raise ValueError(f"{name}: num_images_per_prompt must be an int >= 1, got {num_images_per_prompt!r}")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"{name}: output_type={output_type!r}; valid: {', '.join(map(repr, OUTPUT_TYPES))}")
        if eta < 0:
            raise ValueError(f"{name}: eta must be >= 0 (0 = deterministic DDIM, 1 = DDPM-like), got {eta}")

    # -- the pieces of a call ---------------------------------------------------------------------------------------
    @property
    def dtype(self):
        """The U-Net's dtype: latents and context are kept in it."""
        return self.unet.conv_in.weight.dtype

    @property
    def vae_dtype(self):
        """The VAE's dtype (it may differ from the U-Net's): its inputs are cast to it."""
        return self.vae.decoder.conv_in.weight.dtype

    def latent_shape(self, batch: int, height: int, width: int) -> tuple:
        f = self.vae_scale_factor
        return (batch, self.vae.config["latent_channels"], height // f, width // f)

    def check_latents(self, latents, shape: tuple, what: str):
        """A user-given latents/noise array, moved to the backend in the pipeline's dtype, with its shape checked."""
        array = backend.to_device(latents.data if isinstance(latents, Tensor) else latents, self.dtype)
        if tuple(array.shape) != tuple(shape):
            raise ValueError(f"{type(self).__name__}: {what} must have shape {tuple(shape)} (images, latent "
                             f"channels, height / {self.vae_scale_factor}, width / {self.vae_scale_factor}), got "
                             f"{tuple(array.shape)}")
        return array

    def check_batch(self, count: int, prompts: int, what: str) -> None:
        """An image or mask input must come once for all prompts or once per prompt."""
        if count not in (1, prompts):
            raise ValueError(f"{type(self).__name__}: got {count} {what}s for {prompts} prompt(s); pass one {what} "
                             "for all prompts or one per prompt")

    def per_image(self, array, prompts: int, num_images_per_prompt: int, what: str):
        """An input given once or once per prompt, (1 or B, ...), repeated to one row per image: (B n, ...),
        in the order of the latents (p0's n images, then p1's ...)."""
        self.check_batch(array.shape[0], prompts, what)
        repeats = prompts * num_images_per_prompt // array.shape[0]  # B n for a shared input, n for one per prompt
        return backend.get_array_module(array).repeat(array, repeats, axis=0)

    def draw_noise(self, rng, shape: tuple):
        """ε ~ N(0, I) of ``shape`` from the pipeline's generator, drawn in float32 (so a seed gives the same
        numbers whatever the model's dtype), then cast."""
        return rng.standard_normal(shape, dtype=backend.xp().float32).astype(self.dtype, copy=False)

    def step_kwargs(self, rng, eta: float) -> dict:
        """The extra arguments this scheduler's ``step`` takes: the generator (DDPM, DDIM with η > 0) and η (DDIM).
        Asking for η > 0 from a scheduler without it is an error rather than silently ignored."""
        parameters = inspect.signature(self.scheduler.step).parameters
        kwargs = {"generator": rng} if "generator" in parameters else {}
        if "eta" in parameters:
            kwargs["eta"] = eta
        elif eta:
            raise ValueError(f"{type(self).__name__}: eta={eta} is a DDIMScheduler option; "
                             f"{type(self.scheduler).__name__} takes no eta")
        return kwargs

    def encode_images(self, pixels, rng):
        """Images (B, 3, H, W) in [-1, 1] → diffusion latents z_0 = (sample of q(z|x) − shift) · scaling_factor.

        The latent is *sampled* from the VAE posterior with the pipeline's generator, as diffusers does (its
        standard deviation is small for a trained VAE, so this is nearly its mean).
        """
        posterior = self.vae.encode(Tensor(pixels.astype(self.vae_dtype, copy=False)))
        z = posterior.sample(generator=rng).data
        c = self.vae.config
        return ((z - (c.get("shift_factor") or 0.0)) * c["scaling_factor"]).astype(self.dtype, copy=False)

    def decode_latents(self, latents, output_type: str):
        """Latents (N, C, h, w) → images per ``output_type`` (see ``images.postprocess``); "latent" returns them
        unchanged (a backend array, still on the device)."""
        if output_type == "latent":
            return latents
        c = self.vae.config
        z = latents / c["scaling_factor"] + (c.get("shift_factor") or 0.0)  # undo the scaling of encode_images
        pixels = self.vae.decode(Tensor(z.astype(self.vae_dtype, copy=False))).data
        return postprocess(pixels, output_type)

    def denoise(self, latents, timesteps: list[int], context, guidance_scale: float, step_kwargs: dict,
                callback=None, after_step=None):
        """The sampling loop: for each t, predict the (guided) noise, then let the scheduler step x_t → x_t'.

        Args:
            latents: x_t at the first timestep, (N, C, h, w).
            timesteps: the grid points still to visit, highest first (Python ints).
            context: (2N, 77, D) unconditional then conditional when guided, else (N, 77, D).
            after_step: ``after_step(i, t, latents) -> latents``, run after each scheduler step (inpainting
                re-imposes the known region there).
            callback: ``callback(i, t, latents)`` after each step; if it returns an array, that array replaces the
                latents (to record or edit the trajectory: diffusers' callback and callback_on_step_end in one).
        Returns the final latents x_0 (N, C, h, w).
        """
        for i, t in enumerate(tqdm(timesteps, desc=type(self).__name__, disable=not self.show_progress,
                                   leave=False)):
            noise_pred = self.predict_noise(latents, t, context, guidance_scale)
            latents = self.scheduler.step(noise_pred, t, latents, **step_kwargs).prev_sample
            if after_step is not None:
                latents = after_step(i, t, latents)
            if callback is not None:
                replaced = callback(i, t, latents)
                if replaced is not None:
                    latents = self.check_latents(replaced, latents.shape, "the latents a callback returns")
        return latents

    def predict_noise(self, latents, t: int, context, guidance_scale: float):
        """The noise prediction the sampler steps with at (x_t, t): guided, ε_u + s (ε_c − ε_u), when s > 1.

        latents: x_t (N, C, h, w); context: as in ``denoise``. Returns an array (N, C, h, w).
        """
        guided = is_guided(guidance_scale)
        xp = backend.get_array_module(latents)
        # one U-Net call for both branches: the latents twice, against [unconditional; conditional] contexts
        model_input = xp.concatenate([latents, latents]) if guided else latents
        model_input = self.scheduler.scale_model_input(model_input, t)  # x_t itself here; σ-samplers rescale
        with no_grad():
            noise_pred = self.unet(model_input, t, context).data
        return classifier_free_guidance(noise_pred, guidance_scale) if guided else noise_pred

    def start_from_image(self, pixels, prompts: list[str], negatives: list[str], num_images_per_prompt: int,
                         num_inference_steps: int, strength: float, guidance_scale: float, generator, noise, eta):
        """What image-to-image and inpainting share before their loops (SDEdit, Meng et al. 2022, sec. 3).

        pixels: (b, 3, H, W) in [-1, 1], one image for all prompts or one per prompt. Sets the scheduler's grid and
        returns (timesteps still to run, step_kwargs, context, z0 = the images' latents (N, C, h, w), eps), with
        N = len(prompts) · num_images_per_prompt. The generator draws the VAE posterior sample first, then ε
        (unless ``noise`` gives ε), as diffusers does.
        """
        self.check_batch(pixels.shape[0], len(prompts), "image")
        height, width = pixels.shape[2:]
        self.check_size(height, width)
        shape = self.latent_shape(len(prompts) * num_images_per_prompt, height, width)
        self.scheduler.set_timesteps(num_inference_steps)
        timesteps = self.strength_timesteps(num_inference_steps, strength)
        rng = backend.rng(generator)
        step_kwargs = self.step_kwargs(rng, eta)
        eps = None if noise is None else self.check_latents(noise, shape, "noise")
        with no_grad():
            context = encode_prompts(self.tokenizer, self.text_encoder, prompts, negatives, num_images_per_prompt,
                                     is_guided(guidance_scale)).astype(self.dtype, copy=False)
            z0 = self.per_image(self.encode_images(pixels, rng), len(prompts), num_images_per_prompt, "image")
        eps = self.draw_noise(rng, shape) if eps is None else eps  # drawn after the posterior sample
        return timesteps, step_kwargs, context, z0, eps

    def strength_timesteps(self, num_inference_steps: int, strength: float) -> list[int]:
        """The tail of the grid that image-to-image and inpainting denoise, as diffusers chooses it:

            init_timestep = min(int(steps · strength), steps),   t_start = steps − init_timestep,
            timesteps = grid[t_start · order :]

        so strength 1 runs the whole grid from its noisiest point and strength 0.5 the second half. Call after
        ``scheduler.set_timesteps``.
        """
        name = type(self).__name__
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"{name}: strength must be in [0, 1] (0 = keep the image, 1 = replace it), got {strength}")
        init_timestep = min(int(num_inference_steps * strength), num_inference_steps)
        t_start = max(num_inference_steps - init_timestep, 0)
        timesteps = self.scheduler.timesteps.tolist()[t_start * getattr(self.scheduler, "order", 1):]
        if not timesteps:
            raise ValueError(f"{name}: strength={strength} of num_inference_steps={num_inference_steps} leaves no "
                             "step to run (int(steps * strength) = 0); raise strength or num_inference_steps")
        return timesteps


def check_guidance_scale(owner: str, guidance_scale) -> None:
    if isinstance(guidance_scale, bool) or not isinstance(guidance_scale, numbers.Real) or not guidance_scale >= 0:
        raise ValueError(f"{owner}: guidance_scale must be a number >= 0 (1 = no guidance, 7.5 = Stable Diffusion's "
                         f"usual), got {guidance_scale!r}")
