"""Measuring generated images, honestly: distribution distance, text alignment, attribute accuracy.

    frechet.py        FD_minildm: the Fréchet distance of FID (Heusel et al. 2017) on our own features, in float64
    kid.py            KID_minildm: unbiased MMD² with the cubic kernel (Bińkowski et al. 2018), beside FD
    clip_score.py     CLIP score 100 · max(cos, 0) (Hessel et al. 2021) and R-precision (Xu et al. 2018)
    attributes.py     the deterministic checker's accuracy, split seen / held-out pairs and one / two objects
    eval_networks.py  the judges: a feature network and an evaluation CLIP, trained apart from every generator
    eval_training.py  how the judges are trained (``bash scripts/train_eval_networks.sh``)
    evaluate.py       ``python -m minildm evaluate``: generate, measure, table, JSON, trade-off plot

The metrics are host code: NumPy in float64 on (N, d) feature arrays. Only the networks' forward passes run on the
active backend. ``evaluate`` and the networks are not imported here, so ``from minildm.metrics import
frechet_distance_features`` stays light.
"""
from .attributes import attribute_table, caption_group
from .clip_score import clip_score, clip_scores, draw_distractors, r_precision, same_scene, scene_key
from .frechet import (check_sample_size, feature_statistics, frechet_distance, frechet_distance_features,
                      sqrtm_psd, trace_sqrt_product)
from .kid import kernel_distance, mmd2_unbiased, polynomial_kernel

__all__ = ["frechet_distance", "frechet_distance_features", "feature_statistics", "check_sample_size", "sqrtm_psd",
           "trace_sqrt_product", "kernel_distance", "mmd2_unbiased", "polynomial_kernel", "clip_score",
           "clip_scores", "r_precision", "draw_distractors", "same_scene", "scene_key", "attribute_table",
           "caption_group"]
