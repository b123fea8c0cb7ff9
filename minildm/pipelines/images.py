"""Images in and out of the pipelines: what people hold (PIL images, uint8 or float arrays) ⇄ what the models take.

    user image  (H, W, 3) or (B, H, W, 3), uint8 in 0..255 or float in [0, 1], or PIL image(s)
        ──► images_to_model ──► (B, 3, H, W) float32 in [-1, 1] on the backend       the VAE encoder's input
    user mask   (H, W) or (B, H, W), uint8 / float / bool, or PIL image(s); white (1) = repaint
        ──► masks_to_model  ──► (B, 1, H, W) float32 in {0, 1} on the backend
    VAE output  (B, 3, H, W), roughly in [-1, 1]
        ──► postprocess ──► (B, H, W, 3): uint8 (default) or float32 in [0, 1], on the host

Why this file imports NumPy, when the rest of minildm.pipelines only uses the backend: images come from and go to
the host — files, PIL, matplotlib all live there. Inputs are checked and converted on the host, then moved to the
device once; outputs are computed on the device and copied to the host once, as the very last step. Keeping that
boundary in one file makes every host ⇄ device copy of a pipeline visible here.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend


def _is_pil(obj) -> bool:
    # checked by module name, so that PIL is imported only when an image really is one
    return type(obj).__module__.startswith("PIL.")


def _host_array(value, name: str, pil_mode: str) -> np.ndarray:
    """A PIL image, a list of them, or an array (NumPy or CuPy) as one host array; PIL images in ``pil_mode``."""
    if _is_pil(value):
        return np.asarray(value.convert(pil_mode))
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"{name}: got an empty list of images")
        parts = [_host_array(v, name, pil_mode) for v in value]
        if len({p.shape for p in parts}) != 1:
            raise ValueError(f"{name}: the images of a list must all have the same shape, got "
                             f"{sorted({p.shape for p in parts})}")
        return np.stack(parts)
    if hasattr(value, "__array__") or backend.is_device_array(value):
        return backend.to_host(value)
    raise TypeError(f"{name}: expected a PIL image, an array or a list of them, got {type(value).__name__}")


def _to_unit_range(array: np.ndarray, name: str) -> np.ndarray:
    """uint8 0..255 -> float32 [0, 1]; bool -> {0, 1}; floats must already lie in [0, 1]."""
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if array.dtype.kind != "f":
        raise ValueError(f"{name}: dtype {array.dtype} is not supported; use uint8 (0..255) or float (0..1)")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    low, high = float(array.min()), float(array.max())
    if low < 0 or high > 1:
        raise ValueError(f"{name}: float images must lie in [0, 1], got values in [{low:.3g}, {high:.3g}] "
                         "(for 0..255 data pass uint8; for [-1, 1] data pass (x + 1) / 2)")
    return array.astype(np.float32)


def images_to_model(image, name: str = "image", dtype=None):
    """Images as the VAE encoder takes them: a backend array (B, 3, H, W) in [-1, 1].

    Args:
        image: one image (H, W, 3) or a batch (B, H, W, 3), channels last as PIL and matplotlib store them:
            uint8 in 0..255 or float in [0, 1]; or a PIL image (converted to RGB), or a list of PIL images/arrays.
        dtype: of the result (default float32).
    Raises:
        ValueError: wrong number of dimensions or channels, unsupported dtype, floats outside [0, 1].
    """
    array = _host_array(image, name, "RGB")
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != 3:
        hint = " (channels go last: (B, H, W, 3), not (B, 3, H, W))" if array.ndim == 4 and array.shape[1] == 3 else ""
        raise ValueError(f"{name}: expected an RGB image (H, W, 3) or a batch (B, H, W, 3), got shape "
                         f"{tuple(array.shape)}{hint}")
    unit = _to_unit_range(array, name)
    pixels = unit.transpose(0, 3, 1, 2) * 2 - 1  # [0, 1] -> [-1, 1], the range the VAE was trained on
    return backend.to_device(np.ascontiguousarray(pixels), dtype or backend.DEFAULT_DTYPE)


def masks_to_model(mask_image, name: str = "mask_image", dtype=None):
    """Masks as a backend array (B, 1, H, W) of exactly 0 and 1: 1 (white) = repaint, 0 (black) = keep.

    Args:
        mask_image: (H, W) or (B, H, W), optionally with a trailing channel axis of size 1; uint8 (255 = white),
            float in [0, 1] or bool; or PIL image(s) (converted to grayscale). Values are binarised at 0.5, as
            diffusers does: a pixel is repainted when it is at least half white.
    """
    array = _host_array(mask_image, name, "L")
    if array.ndim in (3, 4) and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"{name}: expected a mask (H, W) or a batch of masks (B, H, W), got shape "
                         f"{tuple(array.shape)}")
    binary = (_to_unit_range(array, name) >= 0.5).astype(np.float32)
    return backend.to_device(binary[:, None], dtype or backend.DEFAULT_DTYPE)


OUTPUT_TYPES = ("uint8", "np", "latent")


def postprocess(images, output_type: str = "uint8"):
    """The VAE decoder's output (B, 3, H, W) on the backend -> host images (B, H, W, 3).

    image = clip((x + 1) / 2, 0, 1): the decoder works in [-1, 1]. Then ``output_type``:
        "uint8"  round(255 · image) as uint8 — ready for PIL, PNG files and ``save_image_grid``
        "np"     the float32 values in [0, 1] (what diffusers' output_type="np" gives)
    Both are computed on the device and copied to the host in one transfer at the end.
    """
    xp = backend.get_array_module(images)
    unit = xp.clip((images + 1) / 2, 0, 1).transpose(0, 2, 3, 1)
    if output_type == "uint8":
        return backend.to_host(xp.round(unit * 255).astype(xp.uint8))
    if output_type == "np":
        return backend.to_host(unit.astype(xp.float32))
    raise ValueError(f"postprocess: output_type={output_type!r}; valid: 'uint8', 'np'")


def image_grid(images, ncols: int | None = None, padding: int = 0) -> np.ndarray:
    """Tile images (N, H, W, 3) into one uint8 image, row by row; ``ncols`` defaults to ⌈√N⌉.

    Accepts uint8 or float in [0, 1] images (host or device arrays); ``padding`` pixels of white between tiles.
    """
    array = _host_array(images, "image_grid", "RGB")
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3):
        raise ValueError(f"image_grid: expected images (N, H, W, 3), got shape {tuple(array.shape)}")
    tiles = np.round(_to_unit_range(array, "image_grid") * 255).astype(np.uint8)
    n, h, w, c = tiles.shape
    ncols = ncols or math.ceil(math.sqrt(n))
    if ncols < 1:
        raise ValueError(f"image_grid: ncols must be at least 1, got {ncols}")
    nrows = math.ceil(n / ncols)
    grid = np.full((nrows * (h + padding) - padding, ncols * (w + padding) - padding, c), 255, dtype=np.uint8)
    for k in range(n):
        r, q = divmod(k, ncols)
        grid[r * (h + padding):r * (h + padding) + h, q * (w + padding):q * (w + padding) + w] = tiles[k]
    return grid


def save_image_grid(images, path, ncols: int | None = None, padding: int = 0):
    """Save images (N, H, W, 3) as one PNG (or any format Pillow infers from ``path``); returns the PIL image."""
    from PIL import Image

    grid = image_grid(images, ncols, padding)
    picture = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    picture.save(path)
    return picture
