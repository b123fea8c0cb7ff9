"""Pretrained-model folders in the diffusers layout: ``config.json`` beside ``diffusion_pytorch_model.safetensors``.

    my_unet/
      config.json                              constructor arguments, e.g. {"in_channels": 4, ...}
      diffusion_pytorch_model.safetensors      the state dict (parameter name → array)

Keeping the architecture (config) apart from the numbers (weights) means a model is rebuilt by calling its
constructor with the config and then loading the weights — no pickled Python objects, no code run on load:

    save_pretrained_weights(unet, "my_unet", config={"in_channels": 4, "block_out_channels": [32, 64]})
    unet = load_pretrained_weights(UNet2DConditionModel(**load_config("my_unet")), "my_unet")

A module here is anything with ``state_dict()`` (name → host array) and ``load_state_dict(d, strict)`` that casts
and checks, i.e. a ``minildm.nn.Module``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy

from .atomic import atomic_write
from .safetensors import load_safetensors, save_safetensors

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
_DTYPES = {"float32": numpy.float32, "float16": numpy.float16}


def save_config(folder, config: dict) -> Path:
    """Write ``config`` as ``folder/config.json`` (indented, keys sorted), atomically; returns the path."""
    if not isinstance(config, dict):
        raise TypeError(f"save_config: config must be a dict, got {type(config).__name__}")
    try:
        text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    except TypeError as e:
        raise ValueError(f"save_config: config is not JSON-serializable: {e}") from None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_write(folder / CONFIG_NAME, mode="w") as f:
        f.write(text)
    return folder / CONFIG_NAME


def load_config(folder) -> dict:
    """Read ``folder/config.json`` into a dict."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"load_config: {path} not found (a pretrained folder holds {CONFIG_NAME} "
                                "next to its weights)")
    return read_json_object(path, "load_config")


def read_json_object(path, owner: str) -> dict:
    """A JSON file that must hold an object, as a dict; a ValueError names ``owner`` and the file otherwise."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{owner}: {path} is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{owner}: {path} holds a JSON {type(value).__name__}, expected an object")
    return value


def save_pretrained_weights(module, folder, config: dict | None, weights_name: str = WEIGHTS_NAME,
                            dtype: str = "float32") -> Path:
    """Save ``module.state_dict()`` as ``folder/weights_name`` (and ``config`` as ``folder/config.json``).

    Args:
        module: the model to save.
        folder: created if missing.
        config: the constructor arguments that rebuild the module (None: write no config.json).
        weights_name: file name of the weights.
        dtype: ``"float32"`` or ``"float16"`` — floating-point tensors are stored in this dtype (float16 halves the
            file; loading casts back to the model's dtype). Integer buffers are stored as they are.
    Returns:
        The path of the weights file.
    """
    if dtype not in _DTYPES:
        raise ValueError(f"save_pretrained_weights: dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    state = {name: (a.astype(_DTYPES[dtype]) if a.dtype.kind == "f" else a)
             for name, a in module.state_dict().items()}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_safetensors(state, folder / weights_name, metadata={"format": "pt"})  # "pt": what diffusers expects
    if config is not None:
        save_config(folder, config)
    return folder / weights_name


def load_pretrained_weights(module, folder, weights_name: str = WEIGHTS_NAME, strict: bool = True):
    """Load ``folder/weights_name`` into ``module``; returns the module.

    ``module.load_state_dict(weights, strict=strict)`` does the work: it casts every array to the dtype of the
    parameter it fills (so float16 files load into float32 models) and refuses missing or unexpected keys (when
    ``strict``) and wrong shapes. Its error comes back here prefixed with the file's path.
    """
    path = Path(folder) / weights_name
    if not path.is_file():
        found = sorted(p.name for p in Path(folder).glob("*.safetensors")) if Path(folder).is_dir() else []
        raise FileNotFoundError(f"load_pretrained_weights: {path} not found"
                                + (f"; the folder holds {found}" if found else ""))
    weights = load_safetensors(path)
    try:
        module.load_state_dict(weights, strict=strict)
    except (KeyError, ValueError) as e:
        raise ValueError(f"load_pretrained_weights: {path}: {e}") from e
    return module
