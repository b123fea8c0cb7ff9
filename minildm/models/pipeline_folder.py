"""A whole Stable Diffusion checkpoint as one folder, in diffusers' layout, loaded and saved in one call.

    my_pipeline/
      model_index.json    {"_class_name": "StableDiffusionPipeline",
                           "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
                           "text_encoder": ["transformers", "CLIPTextModel"],
                           "tokenizer": ["transformers", "CLIPTokenizer"],
                           "scheduler": ["diffusers", "DDIMScheduler"]}
      unet/  vae/  text_encoder/  tokenizer/  scheduler/       one folder per component, each in its own layout

``model_index.json`` names each component's class (with the library that defines it in the Python ecosystem), so
the folder says what to build; ``load_components`` maps those names onto minildm's classes:

    components = load_components("my_pipeline")     # {"unet": UNet2DConditionModel, "vae": AutoencoderKL, ...}
    save_components("copy", components)

Modules are imported only when a folder needs them, so a missing or broken one is reported by name. Entries we do
not implement (a safety checker, a feature extractor) are skipped with a warning, so real checkpoints still load;
a scheduler class minildm lacks (PNDM, LMS, Euler...) becomes a ``DDIMScheduler`` with the same noise schedule
(the scheduler is only the sampler; the trained model does not depend on it), also with a warning.
"""
from __future__ import annotations

import importlib
import json
import warnings
from pathlib import Path

from ..io import atomic_write, read_json_object

MODEL_INDEX = "model_index.json"
DEFAULT_PIPELINE = "StableDiffusionPipeline"

# class name in model_index.json -> (minildm module, class, the library diffusers records for it)
COMPONENT_CLASSES = {
    "UNet2DConditionModel": ("minildm.models.unet", "UNet2DConditionModel", "diffusers"),
    "AutoencoderKL": ("minildm.models.vae", "AutoencoderKL", "diffusers"),
    "CLIPTextModel": ("minildm.models.text_encoder", "CLIPTextModel", "transformers"),
    "CLIPTokenizer": ("minildm.models.tokenizer", "CLIPTokenizer", "transformers"),
    "CLIPTokenizerFast": ("minildm.models.tokenizer", "CLIPTokenizer", "transformers"),  # same vocab.json/merges.txt
    "DDPMScheduler": ("minildm.schedulers", "DDPMScheduler", "diffusers"),
    "DDIMScheduler": ("minildm.schedulers", "DDIMScheduler", "diffusers"),
    "DPMSolverMultistepScheduler": ("minildm.schedulers", "DPMSolverMultistepScheduler", "diffusers"),
}
FALLBACK_SCHEDULER = "DDIMScheduler"


def _import_class(class_name: str):
    module_name, attribute, _ = COMPONENT_CLASSES[class_name]
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as e:
        raise ImportError(f"load_components: a {class_name} needs {module_name}.{attribute}, which could not be "
                          f"imported: {e}") from e


def read_model_index(folder) -> dict:
    """``folder/model_index.json`` as {component name: class name, or None for a component left out}."""
    path = Path(folder) / MODEL_INDEX
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"load_components: pipeline folder {folder} not found")
    if not path.is_file():
        raise FileNotFoundError(f"load_components: {path} not found (a pipeline folder holds {MODEL_INDEX} "
                                "and one subfolder per component)")
    index = read_json_object(path, "load_components")
    # components are [library, class name] pairs; anything else is a pipeline setting, e.g.
    # "requires_safety_checker": true, or metadata such as "_class_name"
    return {name: value[1] for name, value in index.items()
            if not name.startswith("_") and isinstance(value, list) and len(value) == 2}


def load_components(folder, dtype=None) -> dict:
    """Every component of a pipeline folder, built from minildm's classes: {"unet": ..., "vae": ..., ...}.

    Args:
        folder: holds ``model_index.json`` and one subfolder per component.
        dtype: dtype of the models' weights (default float32); tokenizer and scheduler have none.
    Raises:
        FileNotFoundError: the folder, ``model_index.json`` or a listed component's subfolder is missing.
        ImportError: the minildm module for a listed class cannot be imported (it is named).
    """
    folder = Path(folder)
    components, skipped = {}, []
    for name, class_name in read_model_index(folder).items():
        if class_name is None:  # diffusers writes [null, null] for a component left out (e.g. no safety checker)
            continue
        if class_name not in COMPONENT_CLASSES:
            if not class_name.endswith("Scheduler"):
                skipped.append(f"{name} ({class_name})")
                continue
            warnings.warn(f"load_components: minildm has no {class_name}; using {FALLBACK_SCHEDULER} with the same "
                          "noise schedule", stacklevel=2)
            class_name = FALLBACK_SCHEDULER
        subfolder = folder / name
        if not subfolder.is_dir():
            raise FileNotFoundError(f"load_components: {folder / MODEL_INDEX} lists {name!r} ({class_name}), but "
                                    f"the folder {subfolder} does not exist")
        cls = _import_class(class_name)
        is_model = hasattr(cls, "weights_name")  # a ModelMixin: has weights, hence a dtype
        components[name] = cls.from_pretrained(subfolder, dtype=dtype) if is_model else cls.from_pretrained(subfolder)
    if skipped:
        warnings.warn(f"load_components: skipping components minildm does not implement: {', '.join(skipped)}",
                      stacklevel=2)
    return components


def _library(component) -> str:
    """The library diffusers expects for a component's class in model_index.json."""
    entry = COMPONENT_CLASSES.get(type(component).__name__)
    return entry[2] if entry else "diffusers"


def save_components(folder, components: dict, pipeline_class: str = DEFAULT_PIPELINE, dtype: str = "float32") -> Path:
    """Write every component to ``folder/<name>/`` with its own ``save_pretrained``, then ``model_index.json``.

    The index is written last (atomically): a folder with an index is complete. Model weights are stored in
    ``dtype`` ("float32" or "float16"). Returns the folder.
    """
    folder = Path(folder)
    for name, component in components.items():
        if not name.isidentifier() or name.startswith("_"):
            raise ValueError(f"save_components: component name {name!r} must be an identifier not starting with _")
        if not hasattr(component, "save_pretrained"):
            raise TypeError(f"save_components: {name!r} is a {type(component).__name__}, which has no "
                            "save_pretrained")
    folder.mkdir(parents=True, exist_ok=True)
    index = {"_class_name": pipeline_class}
    for name, component in components.items():
        if hasattr(component, "weights_name"):
            component.save_pretrained(folder / name, dtype=dtype)
        else:
            component.save_pretrained(folder / name)
        index[name] = [_library(component), type(component).__name__]
    with atomic_write(folder / MODEL_INDEX, mode="w") as f:
        f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return folder
