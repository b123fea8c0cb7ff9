"""``sample``, ``img2img`` and ``inpaint``: a model folder + a prompt (+ an image, + a mask) -> a PNG grid.

    python -m minildm sample "a red circle at the top left" -n 8 --out grid.png
    python -m minildm img2img "a blue square" --image in.png --strength 0.6
    python -m minildm inpaint "a green triangle" --image in.png --mask mask.png

The three share their options and their run: check what the user typed (cheap checks first, before the model is
loaded), load the pipeline, warn about prompt words the tokenizer does not know, call it, save the grid. The work
itself is the pipelines' (``minildm.pipelines``); this file only translates between them and the user.
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

from .common import (UsageError, non_negative_float, non_negative_int, paragraphs, positive_int, unit_fraction,
                     warn, writable_file)
from ..weights import SHAPES

SHIPPED_MODEL = SHAPES
SCHEDULERS = ("ddim", "dpm", "ddpm")
FALLBACK_STEPS = 30  # when the model folder does not record its own num_inference_steps
GRID_PADDING = 2     # white pixels between the images of the grid
EXAMPLE_PROMPT = "a red circle at the top left"
SAMPLER_NAMES = {"DDIMScheduler": "DDIM", "DPMSolverMultistepScheduler": "DPM-Solver++", "DDPMScheduler": "DDPM"}


# -- options --------------------------------------------------------------------------------------------------------
def _add_parser(subparsers, name: str, summary: str, description: list, example: str):
    return subparsers.add_parser(name, help=summary, description=paragraphs(*description),
                                 epilog=f"example:\n  {example}",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)


def _add_common_options(p, default_out: str, default_images: int) -> None:
    p.add_argument("prompt", help=f'what to draw, in the words of the training captions, e.g. "{EXAMPLE_PROMPT}"')
    p.add_argument("-n", "--num-images", type=positive_int, default=default_images, metavar="N",
                   help=f"how many images to generate, all from the same prompt (default {default_images})")
    p.add_argument("--steps", type=positive_int, metavar="N",
                   help="denoising steps: more is slower and usually cleaner (default: the model folder's "
                        f"num_inference_steps, else {FALLBACK_STEPS})")
    p.add_argument("--guidance", type=non_negative_float, metavar="G",
                   help="classifier-free guidance scale s >= 0: 1 = the plain conditional model, larger follows the "
                        "prompt more closely at the cost of variety (default: the model folder's, else 7.5)")
    p.add_argument("--scheduler", choices=SCHEDULERS,
                   help="the sampler: ddim (deterministic), dpm (DPM-Solver++, good in ~20 steps) or ddpm "
                        "(ancestral, wants many steps) (default: the model folder's)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="random seed: the same seed and options give the same images (default 0)")
    p.add_argument("--negative-prompt", metavar="TEXT",
                   help="what the images should NOT look like, e.g. \"a blue square\" (used when guidance > 1)")
    p.add_argument("--model", type=Path, default=SHIPPED_MODEL, metavar="FOLDER",
                   help="a pipeline folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/), "
                        "as `python -m minildm train all` writes (default: the shipped model, "
                        "minildm/weights/shapes)")
    p.add_argument("--out", type=Path, default=Path(default_out), metavar="FILE.png",
                   help=f"the PNG to write, all images in one grid (default {default_out})")
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")


def add_sample(subparsers) -> None:
    p = _add_parser(subparsers, "sample", "generate images from a text prompt (text to image)",
                    ["Generate images from a text prompt with a Stable Diffusion model folder and save them as "
                     "one PNG grid.", "Without --model, the model that ships with minildm (trained on captioned "
                     "shapes) is used: prompts are best in the words of its captions, e.g. \"a small blue "
                     "triangle at the bottom right\"."],
                    f'python -m minildm sample "{EXAMPLE_PROMPT}" -n 8 --out grid.png')
    _add_common_options(p, "grid.png", 8)
    p.set_defaults(run=run_sample)


def add_img2img(subparsers) -> None:
    p = _add_parser(subparsers, "img2img", "redraw an image following a text prompt (image to image)",
                    ["Noise an input image part of the way, then denoise it following the prompt (SDEdit). "
                     "--strength sets how far: low keeps the layout and colours, 1 keeps almost nothing."],
                    'python -m minildm img2img "a blue square at the bottom right" --image in.png --strength 0.6')
    p.add_argument("--image", type=Path, required=True, metavar="IN.png",
                   help="the image to start from (PNG, JPEG... any size the model takes; its own size is best)")
    p.add_argument("--strength", type=unit_fraction, default=0.6, metavar="S",
                   help="in (0, 1]: the share of the denoising steps to re-run; 0.2 barely changes the image, "
                        "1 redraws it from (almost) pure noise (default 0.6)")
    _add_common_options(p, "img2img.png", 8)
    p.set_defaults(run=run_img2img)


def add_inpaint(subparsers) -> None:
    p = _add_parser(subparsers, "inpaint", "repaint the masked part of an image following a text prompt",
                    ["Repaint where the mask is white, keep where it is black: the kept part is imposed at "
                     "every denoising step, so the model only fills the hole, in a way that fits its "
                     "surroundings."],
                    'python -m minildm inpaint "a green triangle at the top left" --image in.png --mask mask.png')
    p.add_argument("--image", type=Path, required=True, metavar="IN.png", help="the image to repaint")
    p.add_argument("--mask", type=Path, required=True, metavar="MASK.png",
                   help="same size as --image; white = repaint, black = keep (grey is rounded at 50%%)")
    p.add_argument("--strength", type=unit_fraction, default=1.0, metavar="S",
                   help="in (0, 1]: 1 paints the hole from pure noise; less starts from the noised image, so the "
                        "old content shows through (default 1)")
    _add_common_options(p, "inpaint.png", 8)
    p.set_defaults(run=run_inpaint)


# -- running --------------------------------------------------------------------------------------------------------
def run_sample(args) -> int:
    from ..pipelines import StableDiffusionPipeline
    return _generate(args, StableDiffusionPipeline)


def run_img2img(args) -> int:
    from ..pipelines import StableDiffusionImg2ImgPipeline
    image = load_image(args.image, "RGB", "--image")
    return _generate(args, StableDiffusionImg2ImgPipeline, image=image, strength=args.strength)


def run_inpaint(args) -> int:
    from ..pipelines import StableDiffusionInpaintPipeline
    image = load_image(args.image, "RGB", "--image")
    mask = load_image(args.mask, "L", "--mask")
    if mask.size != image.size:
        raise UsageError(f"--mask {args.mask} is {_wxh(mask.size)} pixels but --image {args.image} is "
                         f"{_wxh(image.size)}; they must be the same size")
    if mask.getextrema()[1] < 128:
        warn(f"the mask {args.mask} is all black, so nothing will be repainted (white = repaint, black = keep)")
    return _generate(args, StableDiffusionInpaintPipeline, image=image, mask_image=mask, strength=args.strength)


def _generate(args, pipeline_class, **inputs) -> int:
    if not args.prompt.strip():
        raise UsageError(f'the prompt is empty; describe the image, e.g. "{EXAMPLE_PROMPT}"')
    out = writable_file(args.out, ".png")
    pipe, settings = load_pipeline(pipeline_class, args.model)
    pipe.show_progress = not args.no_progress
    if args.scheduler:
        pipe.scheduler = _scheduler(args.scheduler, pipe.scheduler.config)
    steps = args.steps or settings.get("num_inference_steps") or FALLBACK_STEPS
    guidance = pipe.guidance_scale if args.guidance is None else args.guidance
    if "image" in inputs:
        check_image_size(pipe, inputs["image"], args.image)
        if int(steps * args.strength) < 1:
            raise UsageError(f"--strength {args.strength} of {steps} steps re-runs int({steps} x {args.strength}) = 0 "
                             "steps, so nothing would change; raise --strength or --steps")
    for text in (args.prompt, args.negative_prompt or ""):
        warn_unknown_words(pipe.tokenizer, text)

    began = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:  # a prompt too long for the text encoder, ...
        warnings.simplefilter("always", UserWarning)  # every time, even for the same prompt twice in one process
        try:
            images = pipe(args.prompt, negative_prompt=args.negative_prompt, num_inference_steps=steps,
                          guidance_scale=guidance, generator=args.seed, num_images_per_prompt=args.num_images,
                          **inputs)
        except ValueError as e:  # the pipeline checks its arguments and says what is wrong in the user's terms
            raise UsageError(str(e)) from None
    for w in caught:  # one line each, not Python's "file:line: UserWarning" form
        warn(str(w.message))
    seconds = time.perf_counter() - began

    from ..pipelines import save_image_grid
    save_image_grid(images, out, padding=GRID_PADDING)
    n, height, width = images.shape[:3]
    sampler = SAMPLER_NAMES.get(type(pipe.scheduler).__name__, type(pipe.scheduler).__name__)
    strength = f" at strength {inputs['strength']:g}" if "strength" in inputs else ""
    print(f"wrote {out}  ({n} image(s) of {width}x{height}, {steps} {sampler} steps{strength}, guidance "
          f"{guidance:g}, seed {args.seed}) in {seconds:.1f} s")
    return 0


# -- the pieces -----------------------------------------------------------------------------------------------------
def load_pipeline(pipeline_class, folder: Path):
    """The pipeline in ``folder`` and its model_index.json (for the settings it records), or a UsageError saying
    what is missing and where a model comes from."""
    train_hint = "train one with `python -m minildm train all --preset shapes`"
    if not folder.exists():
        where = ("the shipped model should be there, but this copy of minildm has none"
                 if folder.resolve() == SHIPPED_MODEL else f"the shipped model lives in {SHIPPED_MODEL}")
        raise UsageError(f"model folder {folder} not found; {where}; {train_hint} "
                         "(it writes runs/shapes/pipeline: pass that with --model)")
    index = folder / "model_index.json"
    if not index.is_file() and (folder / "pipeline" / "model_index.json").is_file():  # a `train` run folder
        raise UsageError(f"{folder} is a training run, not a model folder; its model is {folder / 'pipeline'}: "
                         f"pass --model {folder / 'pipeline'}")
    if not index.is_file():
        raise UsageError(f"{folder} is not a model folder: it has no model_index.json (a pipeline folder holds "
                         "model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/); "
                         f"{train_hint}")
    try:
        settings = json.loads(index.read_text(encoding="utf-8"))
        return pipeline_class.from_pretrained(folder), settings
    except (OSError, ValueError, KeyError, TypeError) as e:  # missing parts, broken JSON, mismatched configs
        raise UsageError(f"cannot load the model in {folder}: {e}") from None


def _scheduler(name: str, config: dict):
    """The sampler ``name`` on the model's noise schedule (its betas come from the folder's scheduler config)."""
    from ..schedulers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler
    cls = {"ddim": DDIMScheduler, "dpm": DPMSolverMultistepScheduler, "ddpm": DDPMScheduler}[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # keys only another scheduler knows: expected when switching samplers
        return cls.from_config(config)


def warn_unknown_words(tokenizer, text: str) -> None:
    """Warn, once per word, about words the tokenizer cuts into pieces: the model has likely never seen them."""
    for word, pieces in tokenizer.unknown_words(text):
        warn(f"{word!r} is not in the model's vocabulary; the tokenizer splits it into "
             f"{' '.join(repr(p) for p in pieces)}, so the model has likely never seen it")


def load_image(path: Path, mode: str, option: str):
    """The image file at ``path`` as a PIL image in ``mode`` ("RGB" or "L"), or a UsageError saying why not."""
    from PIL import Image, UnidentifiedImageError
    if not path.exists():
        raise UsageError(f"{option}: image file {path} not found")
    if path.is_dir():
        raise UsageError(f"{option}: {path} is a folder, not an image file")
    try:
        with Image.open(path) as picture:
            return picture.convert(mode)  # reads the pixels; an RGBA image loses its alpha channel
    except UnidentifiedImageError:
        raise UsageError(f"{option}: {path} is not an image file that Pillow can read (PNG, JPEG, ...)") from None
    except (OSError, ValueError) as e:  # truncated or corrupt file
        raise UsageError(f"{option}: cannot read the image {path}: {e}") from None


def check_image_size(pipe, image, path: Path) -> None:
    """The pipeline takes sides that are multiples of ``size_multiple``; the model knows its training size best."""
    width, height = image.size
    sample_size = pipe.unet.config.get("sample_size") or 0
    rows, cols = (sample_size, sample_size) if isinstance(sample_size, int) else sample_size
    f, m = pipe.vae_scale_factor, pipe.size_multiple
    native = (cols * f, rows * f)  # (width, height)
    if width % m or height % m or width < m or height < m:
        expected = f"{_wxh(native)} (its training size)" if sample_size else f"a size in multiples of {m}"
        raise UsageError(f"--image {path} is {_wxh(image.size)} pixels; this model expects {expected}; other sizes "
                         f"work only if width and height are multiples of {m}: resize the image first")
    if sample_size and (width, height) != native:
        warn(f"--image {path} is {_wxh(image.size)} pixels but the model was trained on {_wxh(native)} images; "
             "expect poor results at other sizes")


def _wxh(size) -> str:
    return f"{size[0]}x{size[1]}"
