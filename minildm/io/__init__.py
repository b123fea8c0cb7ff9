"""Files: safetensors weights, config.json, pretrained folders, training checkpoints, .npz — host-side, never pickled.

    safetensors.py  the safetensors format, read and written by hand (+ SafetensorsError for invalid files)
    atomic.py       atomic_write: temp file + fsync + os.replace, so a crash never leaves half a file
    pretrained.py   save_config / load_config, save_pretrained_weights / load_pretrained_weights (diffusers layout)
    checkpoint.py   save_checkpoint / load_checkpoint: a whole training state, restored exactly
    npz.py          load_npz / save_npz without pickles

Everything here works on host NumPy arrays (CuPy arrays are copied to the host when saved); models move loaded
weights to the active backend in ``load_state_dict``.
"""
from .atomic import atomic_write
from .checkpoint import load_checkpoint, save_checkpoint
from .npz import load_npz, save_npz
from .pretrained import (CONFIG_NAME, WEIGHTS_NAME, load_config, load_pretrained_weights, read_json_object,
                         save_config, save_pretrained_weights)
from .safetensors import SafetensorsError, load_safetensors, load_safetensors_metadata, save_safetensors

__all__ = ["save_safetensors", "load_safetensors", "load_safetensors_metadata", "SafetensorsError", "atomic_write",
           "save_config", "load_config", "read_json_object", "save_pretrained_weights", "load_pretrained_weights",
           "CONFIG_NAME", "WEIGHTS_NAME", "save_checkpoint", "load_checkpoint", "load_npz", "save_npz"]
