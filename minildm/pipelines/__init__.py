"""The Stable Diffusion pipelines: the components put together into text → image, image → image, and inpainting.

    base.py            the five components, from_pretrained / save_pretrained, checks, the sampling loop
    guidance.py        prompts → context, classifier-free guidance (Ho & Salimans 2022)
    images.py          host-side image I/O: user images and masks in, uint8 / float images out, PNG grids
    text_to_image.py   StableDiffusionPipeline
    image_to_image.py  StableDiffusionImg2ImgPipeline (SDEdit)
    inpaint.py         StableDiffusionInpaintPipeline (the known region re-imposed at every step, RePaint-style)

    from minildm.pipelines import StableDiffusionPipeline, save_image_grid
    pipe = StableDiffusionPipeline.from_pretrained("minildm/weights/shapes")
    save_image_grid(pipe(["a red circle", "a blue square"], num_images_per_prompt=4, generator=0), "grid.png", 4)

The pipelines sit on top of everything else: nothing in minildm imports them except the command line.
"""
from .base import DEFAULT_GUIDANCE_SCALE, StableDiffusionBase
from .guidance import classifier_free_guidance
from .image_to_image import StableDiffusionImg2ImgPipeline
from .images import image_grid, save_image_grid
from .inpaint import StableDiffusionInpaintPipeline
from .text_to_image import StableDiffusionPipeline

__all__ = ["StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline", "StableDiffusionInpaintPipeline",
           "StableDiffusionBase", "DEFAULT_GUIDANCE_SCALE", "classifier_free_guidance", "save_image_grid",
           "image_grid"]
