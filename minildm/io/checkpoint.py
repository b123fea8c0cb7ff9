"""Training checkpoints: model, optimizer, EMA, step and RNG state in one safetensors file, restored exactly.

A training state is a tree: dicts and lists whose leaves are arrays (weights, Adam moments, EMA shadows) or plain
values (step counts, learning rates, the RNG state). ``save_checkpoint`` splits it in two:

- every array becomes a tensor of the safetensors file, named by its path in the tree,
  e.g. ``optimizer/state/0/exp_avg``, keeping its dtype and every bit;
- the rest of the tree — with each array replaced by ``{"__tensor__": "optimizer/state/0/exp_avg"}`` — is stored as
  JSON in the file's metadata, next to a free-form ``meta`` dict. JSON writes floats with ``repr``, which reads back
  the identical float, and Python ints of any size (a PCG64 state is 128 bits) exactly.

    save_checkpoint("ckpt.safetensors",
                    {"model": model.state_dict(), "optimizer": opt.state_dict(), "ema": ema.state_dict()},
                    meta={"step": step, "rng": rng.bit_generator.state})
    state, meta = load_checkpoint("ckpt.safetensors")
    model.load_state_dict(state["model"]); opt.load_state_dict(state["optimizer"]); ...

Round-trip rules: dicts need string keys without "/"; tuples come back as lists; NumPy scalars come back as 0-d
arrays; arrays come back as host NumPy arrays. The write is atomic, so a crash never destroys the last checkpoint.
"""
from __future__ import annotations

import json

from .safetensors import _read, save_safetensors

FORMAT = "minildm-checkpoint"
_TENSOR = "__tensor__"


def save_checkpoint(path, arrays: dict, meta: dict | None = None) -> None:
    """Write a training state to ``path`` (one safetensors file), atomically.

    Args:
        arrays: a tree of dicts / lists / tuples whose leaves are arrays (NumPy or CuPy) or JSON values
            (None, bool, int, float, str) — e.g. ``{"model": ..., "optimizer": opt.state_dict()}``.
        meta: a JSON-serializable dict for everything else (step, RNG state, config, ...).
    """
    if not isinstance(arrays, dict):
        raise TypeError(f"save_checkpoint: arrays must be a dict, got {type(arrays).__name__}")
    tensors: dict = {}
    skeleton = _split(arrays, (), tensors)
    try:
        metadata = {"format": FORMAT, "version": "1", "tree": json.dumps(skeleton), "meta": json.dumps(meta or {})}
    except TypeError as e:
        raise ValueError(f"save_checkpoint: meta is not JSON-serializable: {e}") from None
    save_safetensors(tensors, path, metadata=metadata)


def load_checkpoint(path) -> tuple[dict, dict]:
    """Read a checkpoint written by ``save_checkpoint``; returns ``(arrays, meta)`` as they were saved."""
    tensors, metadata = _read(path, load_data=True)
    if metadata.get("format") != FORMAT:
        raise ValueError(f"load_checkpoint: {path} is a safetensors file but not a minildm checkpoint (no "
                         f"'format': '{FORMAT}' metadata); for plain weight files use load_safetensors")
    return _join(json.loads(metadata["tree"]), tensors), json.loads(metadata["meta"])


def _split(node, path: tuple, tensors: dict):
    """Move the arrays of ``node`` into ``tensors``; return the JSON skeleton that remembers where they were."""
    where = "/".join(path) or "<root>"
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if not isinstance(key, str) or "/" in key or key == _TENSOR:
                raise ValueError(f"save_checkpoint: key {key!r} under {where!r} must be a string without '/' "
                                 f"(and not {_TENSOR!r})")
            out[key] = _split(value, path + (key,), tensors)
        return out
    if isinstance(node, (list, tuple)):
        return [_split(value, path + (str(i),), tensors) for i, value in enumerate(node)]
    if hasattr(node, "shape") and hasattr(node, "dtype"):  # NumPy / CuPy array or NumPy scalar
        tensors[where] = node
        return {_TENSOR: where}
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    raise TypeError(f"save_checkpoint: {where!r} holds a {type(node).__name__}; a checkpoint holds arrays, dicts, "
                    "lists, numbers, strings and None")


def _join(node, tensors: dict):
    """Inverse of ``_split``: put the arrays back where the skeleton says."""
    if isinstance(node, dict):
        if set(node) == {_TENSOR}:
            return tensors[node[_TENSOR]]
        return {key: _join(value, tensors) for key, value in node.items()}
    if isinstance(node, list):
        return [_join(value, tensors) for value in node]
    return node
