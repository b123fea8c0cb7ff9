"""Small pieces the three Stable Diffusion recipes (clip.py, autoencoder.py, unet.py) share.

    make_dataset(preset.data)          the training set, the same images for all three parts
    decay_groups(model, 1e-2)          AdamW parameter groups: weight decay on weight matrices only
    lr_schedule(config)                lr_at(step) for the shared loop: linear warmup, then cosine decay
    batches(loader)                    an endless batch iterator that starts where the loader stands
"""
from __future__ import annotations

from ..optim import warmup_cosine


def make_dataset(data_config, n: int | None = None, split: str = "train", max_objects: int = 2):
    """``ShapesDataset`` as ``DataConfig`` describes it: (n, 3, 32, 32) images in [-1, 1] and their captions."""
    from ..data import ShapesDataset
    return ShapesDataset(data_config.num_images if n is None else n, seed=data_config.seed, split=split,
                         max_objects=max_objects, two_object_fraction=data_config.two_object_fraction,
                         omit_size_fraction=data_config.omit_size_fraction)


def decay_groups(model, weight_decay: float) -> list[dict]:
    """Two AdamW groups: weight matrices and conv kernels (ndim >= 2) decay; biases, norm gains, CLIP's
    temperature do not. Decaying a gain or a bias pulls it towards 0, which is no simpler a model, only a worse
    one (Radford et al. 2021 and most transformer recipes exclude them the same way)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]


def lr_schedule(config):
    """``lr_at(step)``: ``config.lr`` after a linear warmup of ``config.warmup_steps``, cosine down to 10 % at the
    end (the last steps fine-tune rather than jump around, which also makes the final weights steadier)."""
    def lr_at(step: int) -> float:
        return config.lr * warmup_cosine(step, config.warmup_steps, config.steps, final_ratio=0.1)
    return lr_at


def batches(loader):
    """Batches without end from a ``DataLoader``, created at the first ``next``: so a loader whose state was just
    restored from a checkpoint (the loop does that before the first step) continues exactly where it stood."""
    iterator = None

    def next_batch():
        nonlocal iterator
        if iterator is None:
            iterator = loader.forever()
        return next(iterator)
    return next_batch
