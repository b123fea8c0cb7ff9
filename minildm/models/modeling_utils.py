"""ModelMixin: what every minildm model shares — a config, and a folder on disk in the diffusers layout.

    my_vae/
      config.json                              {"_class_name": "AutoencoderKL", "in_channels": 3, ...}
      diffusion_pytorch_model.safetensors      the state dict (parameter name → array)

A model is *its constructor arguments* (the architecture) plus *its weights* (the numbers). So a subclass only
declares its configuration as the keyword arguments of ``__init__``, with defaults, exactly the way diffusers'
``@register_to_config`` works::

    class AutoencoderKL(ModelMixin, Module):
        def __init__(self, in_channels=3, latent_channels=4, ..., generator=None):
            ...

and ModelMixin records the arguments every construction was called with (defaults filled in) as ``model.config``.
That dict is what ``save_pretrained`` writes to ``config.json`` and what ``from_config`` feeds back to ``__init__``:

    vae = AutoencoderKL.from_config({"block_out_channels": [32, 64]}, generator=0)   # random init, seeded
    vae.save_pretrained("my_vae", dtype="float16")
    vae = AutoencoderKL.from_pretrained("my_vae")                                     # float32 again

Arguments named in ``ignore_for_config`` (``generator``: how to initialise, not what to build) are not recorded.
The mixin goes first in the bases so its ``__init_subclass__`` sees every subclass; the weights themselves go
through ``Module.state_dict`` / ``Module.load_state_dict`` (see ``minildm.nn``) and ``minildm.io``.
"""
from __future__ import annotations

import functools
import inspect
import warnings
from pathlib import Path

from .. import io
from ..nn import init


def _jsonable(value):
    """Tuples become lists (JSON has only lists), recursively, so a saved and reloaded config compares equal."""
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _config_parameters(init) -> dict:
    """The named keyword parameters of ``__init__`` (not ``self``, ``*args`` or ``**kwargs``): name → Parameter."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {name: p for name, p in inspect.signature(init).parameters.items() if name != "self" and p.kind in kinds}


def _recording_config(init):
    """Wrap a subclass's ``__init__`` so the arguments of the outermost construction are stored as ``_config``."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        # Only the outermost constructor records: when a subclass calls super().__init__(...), its own (larger)
        # config is already there and must not be replaced by the parent's view of it.
        if "_config" not in self.__dict__:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            skip = set(type(self).ignore_for_config)
            config = {name: _jsonable(bound.arguments[name]) for name in _config_parameters(init)
                      if name not in skip}
            object.__setattr__(self, "_config", config)  # plain attribute, before Module.__init__ runs
        init(self, *args, **kwargs)

    return __init__


class ModelMixin:
    """Config recording + ``from_config`` / ``from_pretrained`` / ``save_pretrained`` for a ``Module`` subclass.

    Class attributes a subclass may change:
        config_name: file name of the config (``"config.json"``, as diffusers and transformers use).
        weights_name: file name of the weights (diffusers: ``"diffusion_pytorch_model.safetensors"``;
            transformers, e.g. ``CLIPTextModel``: ``"model.safetensors"``).
        ignore_for_config: ``__init__`` arguments that are not part of the architecture (never saved).
        ignored_config_keys: keys that reference configs carry but that do not change what we build (e.g. a
            version string); ``from_config`` drops them silently instead of warning.
    """

    config_name = io.CONFIG_NAME
    weights_name = io.WEIGHTS_NAME
    ignore_for_config = ("generator",)
    ignored_config_keys: tuple = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:  # each class that defines a constructor gets it recorded
            cls.__init__ = _recording_config(cls.__init__)

    # -- the config -----------------------------------------------------------------------------------------------
    @property
    def config(self) -> dict:
        """The constructor arguments this model was built with (defaults included), JSON-ready. A copy."""
        return dict(getattr(self, "_config", {}))

    @classmethod
    def from_config(cls, config: dict, generator=None):
        """A new model with random weights, built from a config dict (e.g. one read from ``config.json``).

        Args:
            config: constructor arguments. Keys starting with ``"_"`` (``"_class_name"``, ``"_diffusers_version"``)
                and the class's ``ignored_config_keys`` are skipped; any other unknown key triggers a warning
                (a config from a newer library version may carry options we do not know).
            generator: int seed or generator for the initial weights, passed to the constructor.
        """
        if not isinstance(config, dict):
            raise TypeError(f"{cls.__name__}.from_config: config must be a dict, got {type(config).__name__}")
        parameters = _config_parameters(cls.__init__)
        kwargs, unknown = {}, []
        for key, value in config.items():
            if key.startswith("_") or key in cls.ignored_config_keys or key in cls.ignore_for_config:
                continue
            if key in parameters:
                kwargs[key] = value
            else:
                unknown.append(key)
        if unknown:
            warnings.warn(f"{cls.__name__}.from_config: ignoring config keys it does not know: {unknown}",
                          stacklevel=2)
        if "generator" in parameters:
            kwargs["generator"] = generator
        return cls(**kwargs)

    # -- folders --------------------------------------------------------------------------------------------------
    @classmethod
    def load_config(cls, folder) -> dict:
        """Read ``folder/config.json``; a clear error names the path when the folder or the file is missing."""
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{cls.__name__}.from_pretrained: folder {folder} not found")
        if not (folder / cls.config_name).is_file():
            raise FileNotFoundError(f"{cls.__name__}.from_pretrained: {folder / cls.config_name} not found "
                                    f"(a pretrained folder holds {cls.config_name} next to {cls.weights_name})")
        config = io.load_config(folder)
        # diffusers names the class in "_class_name", transformers in "architectures": catch e.g. a unet/ folder
        # given to AutoencoderKL here, rather than with a list of every key in the weights file
        name = config.get("_class_name") or next(iter(config.get("architectures") or []), None)
        if name is not None and name != cls.__name__:
            raise ValueError(f"{cls.__name__}.from_pretrained: {folder / cls.config_name} describes class {name}, "
                             f"expected {cls.__name__}")
        return config

    @classmethod
    def from_pretrained(cls, folder, dtype=None):
        """Load a model saved by ``save_pretrained`` (or by diffusers/transformers, same layout).

        Args:
            folder: holds ``config.json`` and the weights file (float16 or float32 on disk).
            dtype: the model's dtype (``"float32"`` default, or ``"float16"`` …): weights are cast to it on load.
        Raises:
            FileNotFoundError: the folder, config or weights file is missing (the path is named).
            ValueError: the weights do not fit the config — every missing, unexpected and mis-shaped key listed.
        """
        config = cls.load_config(folder)
        path = Path(folder) / cls.weights_name
        if not path.is_file():
            found = sorted(p.name for p in Path(folder).glob("*.safetensors"))
            raise FileNotFoundError(f"{cls.__name__}.from_pretrained: {path} not found"
                                    + (f"; the folder holds {found}" if found else ""))
        weights = cls.convert_state_dict(io.load_safetensors(path))
        with init.skip_init():  # strict loading below replaces every weight: no random init to throw away
            model = cls.from_config(config, generator=0)
        if dtype is not None:
            model.to(dtype)  # before loading, so every weight is rounded once, from the file's values
        try:
            model.load_state_dict(weights, strict=True)
        except ValueError as e:
            raise ValueError(f"{cls.__name__}.from_pretrained: {path} does not fit the model that "
                             f"{Path(folder) / cls.config_name} describes: {e}") from None
        return model

    @classmethod
    def convert_state_dict(cls, state_dict: dict) -> dict:
        """Rename or drop keys of a loaded state dict before it is loaded (a hook; by default unchanged)."""
        return state_dict

    def config_to_save(self) -> dict:
        """What ``config.json`` holds: the config plus ``"_class_name"`` (how a pipeline folder knows the class)."""
        return {"_class_name": type(self).__name__, **self.config}

    def save_pretrained(self, folder, dtype: str = "float32") -> Path:
        """Write ``folder/config.json`` and ``folder/<weights_name>`` (each atomically); returns the folder.

        Args:
            dtype: ``"float32"`` or ``"float16"`` on disk (float16 halves the file; loading casts back).
        """
        io.save_pretrained_weights(self, folder, self.config_to_save(), weights_name=self.weights_name, dtype=dtype)
        return Path(folder)
