"""Looking inside attention: the probabilities P = softmax(Q K^T / sqrt(d) + mask), recorded per layer on request.

``Attention`` computes P inside one fused op and throws it away, as it should. To *see* where each pixel of the
U-Net looks in the prompt (Hertz et al. 2022, *Prompt-to-Prompt*, sec. 3.1: the cross-attention maps), open a
``record_attention`` block around any forward passes; while it is open, each selected ``Attention`` layer hands
its Q, K and mask to the recorder, which computes P a second time, with the same formula, outside the autograd
graph:

    with record_attention(pipe.unet) as rec:               # default: the cross-attention layers (``attn2``)
        images = pipe("a red circle", num_inference_steps=10, generator=0)
    rec.maps["down_blocks.0.attentions.0.transformer_blocks.0.attn2"]   # one (B, heads, T, S) array per U-Net call
    rec.token_maps(size=32)                                # (calls, B, S, 32, 32): all layers and heads averaged

T is the number of queries (pixels of the feature map, H * W) and S the number of keys (prompt tokens for
cross-attention). Outside the block nothing is recorded and ``Attention.forward`` runs exactly as before: its only
cost is one ``is None`` test per call. The recording is used by notebooks/04_cross_attention.ipynb.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

from .. import backend
from ..autograd import Tensor


def _array(x):
    """A Tensor's array, or the array itself (NumPy arrays have a ``.data`` of their own: a memoryview)."""
    return x.data if isinstance(x, Tensor) else x


def attention_probs(q, k, scale: float | None = None, mask=None):
    """P = softmax(Q K^T · scale + mask) along the keys (Vaswani et al. 2017, eq. 1, without the "· V").

    Args:
        q: (..., T, d) queries, k: (..., S, d) keys: arrays (NumPy/CuPy) or Tensors (their data is used).
        scale: default 1 / sqrt(d).
        mask: broadcastable to (..., T, S); boolean (True = may attend) or additive float (0 = attend).
    Returns:
        (..., T, S) array: row t is query t's probability distribution over the S keys (each row sums to 1; a row
        with every key masked is all zeros, as in the fused ``scaled_dot_product_attention``).
    """
    q, k = _array(q), _array(k)
    xp = backend.get_array_module(q)
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ xp.swapaxes(k, -1, -2)) * scale  # (..., T, S): how well query t matches key s
    if mask is not None:
        mask = _array(mask)
        scores = xp.where(mask, scores, -xp.inf) if mask.dtype == bool else scores + mask
    top = scores.max(axis=-1, keepdims=True)
    top = xp.where(xp.isfinite(top), top, 0)  # a fully masked row: exp(-inf) = 0 everywhere, not NaN
    weights = xp.exp(scores - top)  # shifting by the row maximum changes nothing and cannot overflow
    total = weights.sum(axis=-1, keepdims=True)
    return weights / xp.where(total == 0, 1, total)


class AttentionRecorder:
    """What ``record_attention`` collects.

    Attributes:
        maps: layer name -> list of (B, heads, T, S) arrays, one per forward call of that layer, in call order
            (in a sampling loop: one per denoising step; with guidance the batch is [unconditional; conditional]).
        layers: the names of the layers being recorded, in the model's order.
        queries, keys: like ``maps``, the (B, heads, T, d) queries and (B, heads, S, d) keys P was computed from;
            filled only when ``record_attention(..., keep_qk=True)``.
    """

    def __init__(self, layers: list[str], keep_qk: bool = False):
        self.layers, self.keep_qk = list(layers), keep_qk
        self.maps = {name: [] for name in self.layers}
        self.queries = {name: [] for name in self.layers}
        self.keys = {name: [] for name in self.layers}

    def record(self, name: str, module, q, k, mask) -> None:
        """Called by ``Attention.forward`` with its split heads q (B, heads, T, d), k (B, heads, S, d)."""
        self.maps[name].append(attention_probs(q, k, module.scale, mask))
        if self.keep_qk:
            self.queries[name].append(q.copy())
            self.keys[name].append(k.copy())

    def clear(self) -> None:
        for records in (self.maps, self.queries, self.keys):
            for name in records:
                records[name] = []

    def token_maps(self, size: int, layers=None, calls=None):
        """The maps of every token as images: (calls, B, S, size, size), averaged over heads and ``layers``.

        Each layer's T queries are read as a square h x h feature map (h = sqrt(T)), enlarged to size x size by
        repeating pixels (size must be a multiple of h), then the layers are averaged (Prompt-to-Prompt, sec. 3.1,
        averages the maps of the layers at one resolution; averaging across resolutions after upsampling is the
        common "attention heatmap" of e.g. Tang et al. 2023, DAAM).
        Args:
            layers: names to average (default all recorded).  calls: indices of the calls (default all).
        """
        layers = self.layers if layers is None else list(layers)
        if not layers or not self.maps[layers[0]]:
            raise ValueError("AttentionRecorder.token_maps: nothing was recorded (run the model inside "
                             "record_attention)")
        count = len(self.maps[layers[0]])
        calls = range(count) if calls is None else calls
        total = None
        for name in layers:
            xp = backend.get_array_module(self.maps[name][0])
            probs = xp.stack([self.maps[name][c] for c in calls])  # (calls, B, heads, T, S)
            side = math.isqrt(probs.shape[3])
            if side * side != probs.shape[3] or size % side:
                raise ValueError(f"AttentionRecorder.token_maps: layer {name} has {probs.shape[3]} queries, not a "
                                 f"square map whose side divides size={size}")
            grid = probs.mean(axis=2)  # over heads: (calls, B, T, S)
            grid = xp.moveaxis(grid, -1, 2).reshape(*grid.shape[:2], grid.shape[-1], side, side)
            factor = size // side
            grid = grid.repeat(factor, axis=-2).repeat(factor, axis=-1)  # nearest upsampling to size x size
            total = grid if total is None else total + grid
        return total / len(layers)


def _selected(name: str, module, layers) -> bool:
    if layers is None:
        return True
    if callable(layers):
        return bool(layers(name, module))
    suffixes = (layers,) if isinstance(layers, str) else tuple(layers)
    return any(name == s or name.endswith("." + s) for s in suffixes)


@contextmanager
def record_attention(model, layers="attn2", keep_qk: bool = False):
    """Record the attention probabilities of the ``Attention`` layers of ``model`` while the block is open.

    Args:
        model: any Module (a U-Net, a transformer block, one ``Attention``).
        layers: which ``Attention`` layers: a name or the last part of one ("attn2", the default: every
            cross-attention of the U-Net's transformer blocks; "attn1": the self-attentions), a list of them, a
            predicate ``layers(name, module) -> bool``, or None for all of them.
        keep_qk: also keep each call's queries and keys (``recorder.queries``, ``recorder.keys``).
    Yields:
        an ``AttentionRecorder``; its ``maps`` fill up as the model runs. On exit the layers stop recording (also
        when an error leaves the block); the maps stay in the recorder.
    """
    from .attention import Attention  # attention.py imports nothing from here; this keeps it that way

    chosen = [(name, module) for name, module in model.named_modules()
              if isinstance(module, Attention) and _selected(name, module, layers)]
    if not chosen:
        raise ValueError(f"record_attention: no Attention layer of {type(model).__name__} matches layers={layers!r}")
    busy = [name for name, module in chosen if module.recorder is not None]
    if busy:
        raise RuntimeError(f"record_attention: layer {busy[0]!r} is already being recorded (nested blocks on the "
                           "same layer are not supported)")
    recorder = AttentionRecorder([name for name, _ in chosen], keep_qk=keep_qk)
    try:
        for name, module in chosen:
            module.recorder = (recorder, name)
        yield recorder
    finally:
        for _, module in chosen:
            module.recorder = None
