"""Attribute accuracy split the ways that matter: seen vs held-out colour-shape pairs, one vs two objects.

The deterministic checker (``minildm.data.checker``: no learning, 100 % on clean and noisy real images) reads each
image's colours, shapes, sizes, positions and count back; this module only groups its verdicts:

    seen      every object's (colour, shape) pair is one the generators trained on
    heldout   some object has a pair from ``HELDOUT_PAIRS`` (a blue circle...): the compositional test
    one, two  how many objects the caption describes

    table = attribute_table(images, captions)
    table["heldout"]["all"]         # share of held-out-pair images with every attribute right
    table["seen/two"]["position"]   # ... of two-object seen-pair images with every position right
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..data import HELDOUT_PAIRS, parse_caption
from ..data.checker import score

GROUPS = ("all", "seen", "heldout", "one", "two", "seen/one", "seen/two", "heldout/one", "heldout/two")


def caption_group(caption) -> tuple[str, str]:
    """("seen" or "heldout", "one" or "two") of a caption."""
    scene = parse_caption(caption)
    pairs = "heldout" if any((o.colour, o.shape) in HELDOUT_PAIRS for o in scene) else "seen"
    return pairs, "one" if len(scene) == 1 else "two"


def attribute_table(images, captions) -> dict:
    """The checker's rates per group: group -> {colour, shape, size, position, count, all: float, n: int}.

    Args:
        images: (N, 3, H, W) floats in [-1, 1] (host or device), as the checker reads them.
        captions: the N captions the images were made for.
    Groups with no images are left out (a set of seen pairs only has no "heldout" row).
    """
    images = backend.to_host(getattr(images, "data", images))
    if len(images) != len(captions):
        raise ValueError(f"attribute_table: {len(images)} images but {len(captions)} captions")
    verdicts = [score(image, caption) for image, caption in zip(images, captions)]
    members = {group: [] for group in GROUPS}
    for i, caption in enumerate(captions):
        pairs, count = caption_group(caption)
        for group in ("all", pairs, count, f"{pairs}/{count}"):
            members[group].append(i)
    table = {}
    for group, rows in members.items():
        if rows:
            table[group] = {key: float(np.mean([verdicts[i][key] for i in rows])) for key in verdicts[0]}
            table[group]["n"] = len(rows)
    return table
