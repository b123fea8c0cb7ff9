"""Does the image show its caption? CLIP score and R-precision, measured by the *evaluation* CLIP.

**CLIP score** (Hessel et al. 2021, "CLIPScore", eq. 1, with the weight 100 instead of 2.5, as torchmetrics'
``CLIPScore`` writes it, so a cosine of 0.3 reads 30): for an image embedding E_I and a caption embedding E_T,

    CLIPScore(I, T) = 100 · max(cos(E_I, E_T), 0)

averaged over the (image, caption) pairs. The absolute number depends entirely on the CLIP that computes it; compare
generated images with *real* images of the same captions (``evaluate`` reports both).

**R-precision** (Xu et al. 2018, "AttnGAN", sec. 5.1, with R = 1): put the true caption among K distractor captions
and ask whether it ranks first by cosine similarity with the image. Chance is 1 / (K + 1); AttnGAN uses K = 99, we
use K = 31 (our evaluation sets are small). Distractors are drawn from the other captions of the same evaluation set,
as AttnGAN draws mismatched descriptions from its test set, with one care that our closed world needs: a caption that
is *also true* of the image is not a distractor. "a red circle at the top" is true of a picture captioned "a large
red circle at the top", and so is "a blue square on the right and a red circle on the left" of "a red circle on the
left and a blue square on the right"; ``same_scene`` spots both. A tie with a distractor counts as a miss.

Embeddings come from ``EvalNetworks.image_embeddings`` / ``text_embeddings`` (unit vectors, host float64).
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..data import parse_caption

R_PRECISION_DISTRACTORS = 31


def clip_scores(image_embeds, text_embeds) -> np.ndarray:
    """(N,) per-pair CLIP scores 100 · max(cos, 0) of row i of each (N, P) array (normalised here, to be safe)."""
    i, t = _unit(image_embeds), _unit(text_embeds)
    if i.shape != t.shape:
        raise ValueError(f"clip_scores: image embeddings {i.shape} and caption embeddings {t.shape} must match")
    return 100.0 * np.maximum((i * t).sum(axis=1), 0.0)


def clip_score(image_embeds, text_embeds) -> float:
    """The mean CLIP score of N (image, caption) pairs, embeddings (N, P)."""
    return float(clip_scores(image_embeds, text_embeds).mean())


def scene_key(caption) -> dict:
    """position -> (colour, shape, size or None): a caption's scene, independent of the order it names objects."""
    return {obj.position: (obj.colour, obj.shape, obj.size) for obj in parse_caption(caption)}


def same_scene(a: dict, b: dict) -> bool:
    """Could one image be captioned by both ``scene_key``s? Same objects in the same places; a left-out size word
    agrees with any size."""
    if a.keys() != b.keys():
        return False
    return all(a[p][:2] == b[p][:2] and (a[p][2] is None or b[p][2] is None or a[p][2] == b[p][2]) for p in a)


def draw_distractors(captions, k: int = R_PRECISION_DISTRACTORS, seed: int = 0) -> np.ndarray:
    """(N, k) row indices into ``captions``: for each caption, k others (distinct rows) that are false of its scene.

    Raises:
        ValueError: some caption has fewer than k captions in the set that could serve as distractors.
    """
    keys = [scene_key(c) for c in captions]
    rng = np.random.default_rng(seed)
    out = np.empty((len(captions), k), dtype=np.int64)
    for i, key in enumerate(keys):
        chosen = []
        for j in rng.permutation(len(captions)):  # random order; take the first k that are false of scene i
            if not same_scene(key, keys[j]):
                chosen.append(j)
                if len(chosen) == k:
                    break
        if len(chosen) < k:
            raise ValueError(f"draw_distractors: only {len(chosen)} of the {len(captions)} captions are false of "
                             f"{captions[i]!r}, need {k}; evaluate more (and more varied) captions")
        out[i] = chosen
    return out


def r_precision(image_embeds, text_embeds, captions, k: int = R_PRECISION_DISTRACTORS, seed: int = 0) -> float:
    """Share of images whose own caption beats all k distractors (``draw_distractors``) in cosine similarity.

    Args:
        image_embeds, text_embeds: (N, P); row i of text_embeds is the embedding of captions[i].
        captions: the N captions (to choose distractors that are really false).
    """
    i, t = _unit(image_embeds), _unit(text_embeds)
    if i.shape != t.shape or len(captions) != i.shape[0]:
        raise ValueError(f"r_precision: need N image and N caption embeddings and N captions, got {i.shape}, "
                         f"{t.shape} and {len(captions)}")
    similarity = i @ t.T                                      # (N, N): image i against caption j
    own = np.diag(similarity)                                 # (N,)
    rivals = np.take_along_axis(similarity, draw_distractors(captions, k, seed), axis=1)   # (N, k)
    return float(np.mean(own > rivals.max(axis=1)))


def _unit(x) -> np.ndarray:
    x = backend.to_host(x).astype(np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
