"""Scheduler configs: every scheduler is fully described by its constructor arguments.

    ddpm = DDPMScheduler(beta_schedule="scaled_linear")
    ddpm.config                                   # {"num_train_timesteps": 1000, "beta_schedule": "scaled_linear", ...}
    ddim = DDIMScheduler.from_config(ddpm.config) # same noise schedule, another sampler
    ddim.save_pretrained("out/scheduler")         # writes out/scheduler/scheduler_config.json
    DDIMScheduler.from_pretrained("out/scheduler")

The JSON file is the one diffusers writes (``scheduler_config.json`` with a ``"_class_name"`` entry), so real Stable
Diffusion scheduler folders load. Keys starting with ``_`` are metadata and are skipped silently; a key that no
minildm scheduler understands (``skip_prk_steps`` of PNDM, say) is ignored with a warning, and a key that only a
sibling scheduler understands (DDPM's ``variance_type`` given to DDIM) is ignored silently, as in diffusers.
"""
from __future__ import annotations

import inspect
import json
import os
import tempfile
import warnings
from pathlib import Path

from .. import backend

CONFIG_NAME = "scheduler_config.json"


class SchedulerConfig(dict):
    """A plain ``dict`` of constructor arguments that can also be read as attributes: ``config.beta_schedule``."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"scheduler config has no key {name!r}") from None


class ConfigMixin:
    """Gives a scheduler ``.config``, ``from_config``, ``save_pretrained`` and ``from_pretrained``."""

    _all_schedulers: dict = {}  # class name -> class, for every scheduler defined (filled by __init_subclass__)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:  # a concrete scheduler (shared base classes define no constructor)
            ConfigMixin._all_schedulers[cls.__name__] = cls

    def register_to_config(self, arguments: dict) -> None:
        """Store the constructor's arguments (call as ``self.register_to_config(locals())``) as ``self.config``."""
        config = SchedulerConfig((k, v) for k, v in arguments.items() if k not in ("self", "__class__"))
        if config.get("trained_betas") is not None:  # an array becomes a list, so the config is plain JSON
            config["trained_betas"] = [float(b) for b in backend.to_host(config["trained_betas"]).ravel()]
        self.config = config

    @classmethod
    def config_keys(cls) -> list[str]:
        """The constructor arguments of this class: exactly the keys of its ``.config``."""
        return [name for name in inspect.signature(cls.__init__).parameters if name != "self"]

    @classmethod
    def from_config(cls, config: dict, **overrides):
        """Build this scheduler from any scheduler's config (plus ``overrides``), ignoring keys it does not take."""
        config = {**config, **overrides}
        own = set(cls.config_keys())
        known_elsewhere = {key for other in ConfigMixin._all_schedulers.values() for key in other.config_keys()}
        unknown = sorted(k for k in config if k not in own and k not in known_elsewhere and not k.startswith("_"))
        if unknown:
            warnings.warn(f"{cls.__name__}.from_config: ignoring unknown config keys: {', '.join(unknown)}",
                          stacklevel=2)
        return cls(**{k: v for k, v in config.items() if k in own})

    def save_pretrained(self, folder) -> Path:
        """Write ``folder/scheduler_config.json`` atomically (temp file + rename: never a half-written config)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        data = {"_class_name": type(self).__name__, **self.config}
        path = folder / CONFIG_NAME
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{CONFIG_NAME}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=2, sort_keys=True)
                f.write("\n")
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path

    @classmethod
    def from_pretrained(cls, folder, subfolder: str | None = None):
        """Load ``folder[/subfolder]/scheduler_config.json`` into this class (whatever its ``_class_name`` says)."""
        path = Path(folder) / (subfolder or "") / CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{cls.__name__}.from_pretrained: no {CONFIG_NAME} in {path.parent}")
        with open(path, encoding="utf-8") as f:
            return cls.from_config(json.load(f))
