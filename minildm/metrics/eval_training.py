"""Training the evaluation networks (``eval_networks.py``) with the shared loop: about 3 minutes on 2 CPU cores.

    bash scripts/train_eval_networks.sh          # both networks, one process each, into minildm/weights/eval

Data: ``num_images`` fresh images of the splits the generators never train on, seed ``EVAL_SEED``: 75 % "eval"
(seen colour-shape pairs) and 25 % "heldout" (every scene holds a pair that training of the generators never shows),
so each held-out pair is about as common as each seen one. Batches are drawn with replacement by the step's own
generator, so a run resumes exactly without any loader state.

The feature network learns every head at once. A two-object scene has two right answers per head (two colours,
perhaps), so the target of each head is a distribution, 1/2 on each object's class (1 on a class both share), and
the loss is the cross-entropy with these soft targets, −Σ_k target_k log softmax(z)_k, summed over the five heads.

The evaluation CLIP reuses the conditioning CLIP's recipe pieces (``minildm.train.clip``): the BPE tokenizer
(``build_tokenizer``), ``CLIPDualEncoder`` and the symmetric InfoNCE loss with multi-positive targets
(``clip_loss``, ``multi_positive_targets``) — with its own towers, seed and data.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from .. import backend
from ..autograd import Tensor
from ..data import COLOURS, POSITIONS, SHAPES, SIZES, ShapesDataset
from ..models import CLIPTextModel
from ..nn import functional as F
from ..optim import AdamW, warmup_cosine
from ..train import CHECKPOINT_NAME, train
from ..train.clip import CLIPDualEncoder, build_tokenizer, clip_loss, multi_positive_targets
from ..train.recipe_common import decay_groups
from .eval_networks import EVAL_SEED, EVAL_WEIGHTS, HEADS, EvalFeatureNet, EvalImageEncoder, EvalNetworks
from .eval_networks import save_eval_networks


@dataclass(frozen=True)
class EvalTrainingConfig:
    """Settings of the evaluation networks' training (plain values; saved in each part's training.json)."""
    seed: int = EVAL_SEED
    num_images: int = 10_000
    heldout_fraction: float = 0.25
    two_object_fraction: float = 0.3       # ShapesDataset's default: the judges see plenty of two-object scenes
    batch_size: int = 128
    lr: float = 2e-3
    warmup_steps: int = 30
    weight_decay: float = 1e-2
    max_grad_norm: float = 1.0
    feature_steps: int = 400
    clip_steps: int = 500
    channels: tuple = (16, 32, 64, 64)
    norm_num_groups: int = 8
    feature_dim: int = 64
    projection_dim: int = 64
    text_hidden_size: int = 64
    text_layers: int = 2
    text_heads: int = 4
    max_length: int = 20
    check_images: int = 1000               # fresh images for the accuracy check at the end
    checkpoint_every: int = 100


TINY = EvalTrainingConfig(num_images=600, batch_size=32, lr=3e-3, warmup_steps=2, feature_steps=40, clip_steps=40,
                          channels=(8, 16, 16, 16), norm_num_groups=4, projection_dim=16, text_hidden_size=16,
                          text_layers=1, text_heads=2, check_images=200, checkpoint_every=20)


# -- data -----------------------------------------------------------------------------------------------------------
CLASSES = {"colour": COLOURS, "shape": SHAPES, "size": SIZES, "position": tuple(POSITIONS)}  # class names per head


@dataclass
class EvalTrainingSet:
    """images (N, 3, 32, 32) float32 in [-1, 1] (host), captions (N strings), targets: head -> (N, K) float32."""
    images: np.ndarray
    captions: list
    targets: dict


def attribute_targets(scenes) -> dict:
    """Soft targets of each head: head -> (N, K), each object's class weighted 1 / (number of objects).

    ``count`` is one-hot over (one object, two objects).
    """
    targets = {name: np.zeros((len(scenes), k), dtype=np.float32) for name, k in HEADS.items()}
    for i, scene in enumerate(scenes):
        for obj in scene:
            for name, names in CLASSES.items():
                targets[name][i, names.index(getattr(obj, name))] += 1.0 / len(scene)
        targets["count"][i, len(scene) - 1] = 1.0
    return targets


def eval_training_set(config: EvalTrainingConfig, n: int | None = None, seed_offset: int = 0) -> EvalTrainingSet:
    """``n`` (default ``config.num_images``) images of the eval and heldout splits, seeded ``config.seed +
    seed_offset`` (offset 1 gives fresh images for checking)."""
    n = config.num_images if n is None else n
    n_heldout = round(n * config.heldout_fraction)
    parts = [ShapesDataset(count, seed=config.seed + seed_offset, split=split,
                           two_object_fraction=config.two_object_fraction)
             for split, count in (("eval", n - n_heldout), ("heldout", n_heldout))]
    scenes = [s for p in parts for s in p.scenes]
    return EvalTrainingSet(np.concatenate([p.images for p in parts]), [c for p in parts for c in p.captions],
                           attribute_targets(scenes))


def _lr_at(config: EvalTrainingConfig, steps: int):
    return lambda step: config.lr * warmup_cosine(step, config.warmup_steps, steps, final_ratio=0.1)


def _batch_rows(rng, n: int, batch_size: int) -> np.ndarray:
    """batch_size random rows (with replacement), drawn by the step's generator, as host indices."""
    return backend.to_host(rng.integers(0, n, size=batch_size))


# -- the feature network --------------------------------------------------------------------------------------------
def soft_cross_entropy(logits: Tensor, targets) -> Tensor:
    """Mean over the batch of −Σ_k targets_k log softmax(logits)_k; logits (B, K), targets (B, K) rows summing to 1."""
    return -(Tensor(targets) * F.log_softmax(logits, axis=1)).sum(axis=1).mean()


def train_feature_network(config: EvalTrainingConfig = EvalTrainingConfig(), run_dir="runs/eval_networks/features",
                          data: EvalTrainingSet | None = None, progress: bool = True, resume: bool = False):
    """Train ``EvalFeatureNet``; returns (network, record) with the training time and per-head accuracy."""
    cpu = time.process_time()
    data = eval_training_set(config) if data is None else data
    net = EvalFeatureNet(channels=config.channels, feature_dim=config.feature_dim,
                         norm_num_groups=config.norm_num_groups, generator=config.seed + 11)
    images = backend.to_device(data.images, backend.DEFAULT_DTYPE)
    targets = {name: backend.to_device(t) for name, t in data.targets.items()}
    optimizer = AdamW(decay_groups(net, config.weight_decay), lr=config.lr)

    def step_fn(step, rng):
        rows = backend.to_device(_batch_rows(rng, len(data.captions), config.batch_size))
        logits = net(images[rows])
        return sum(soft_cross_entropy(logits[name], targets[name][rows]) for name in HEADS)  # five heads, one loss

    run = train(step_fn, model=net, optimizer=optimizer, total_steps=config.feature_steps, out_dir=run_dir,
                seed=config.seed, lr_at=_lr_at(config, config.feature_steps), max_grad_norm=config.max_grad_norm,
                checkpoint_every=config.checkpoint_every, resume=resume, progress=progress, desc="eval features",
                meta={"recipe": "eval_features", "config": asdict(config)})
    net.eval()
    set_feature_scale(net, data.images)
    record = {"config": asdict(config), "train_seconds": run.seconds, "cpu_seconds": time.process_time() - cpu,
              "final_loss": float(np.mean(run.losses[-20:])), "feature_scale": float(net.feature_scale[0]),
              "check": feature_accuracy(net, config)}
    return net, record


def set_feature_scale(net: EvalFeatureNet, images, n: int = 2000) -> None:
    """Fix ``net.feature_scale`` so that the first ``n`` images have mean xᵀx / d = 1 (see ``EvalFeatureNet``)."""
    net.feature_scale[...] = 1.0
    h = EvalNetworks(feature_net=net).features(images[:n])       # (n, d) host float64, at scale 1
    net.feature_scale[...] = np.sqrt(np.mean(np.sum(h * h, axis=1)) / h.shape[1])


def feature_accuracy(net: EvalFeatureNet, config: EvalTrainingConfig) -> dict:
    """Accuracy of each head on fresh single-object images (where every head has one right answer)."""
    check = ShapesDataset(config.check_images, seed=config.seed + 1, split="eval", max_objects=1)
    nets = EvalNetworks(feature_net=net)
    predicted = nets.predictions(check.images)
    truth = {name: np.array([names.index(getattr(s[0], name)) for s in check.scenes]) for name, names in
             CLASSES.items()}
    return {name: float(np.mean(predicted[name] == truth[name])) for name in CLASSES}


# -- the evaluation CLIP --------------------------------------------------------------------------------------------
def build_eval_clip(config: EvalTrainingConfig, tokenizer) -> CLIPDualEncoder:
    """The evaluation CLIP: VGG-style image tower, 2-layer GELU text tower, seeds unlike the generator's CLIP."""
    seed = config.seed + 21
    text = CLIPTextModel(vocab_size=tokenizer.vocab_size, hidden_size=config.text_hidden_size,
                         intermediate_size=4 * config.text_hidden_size, projection_dim=config.projection_dim,
                         num_hidden_layers=config.text_layers, num_attention_heads=config.text_heads,
                         max_position_embeddings=config.max_length, hidden_act="gelu",
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, generator=seed)
    vision = EvalImageEncoder(channels=config.channels, projection_dim=config.projection_dim,
                              norm_num_groups=config.norm_num_groups, generator=seed + 1)
    return CLIPDualEncoder(text, vision, config.projection_dim, generator=seed + 2)


def train_eval_clip(config: EvalTrainingConfig = EvalTrainingConfig(), run_dir="runs/eval_networks/clip",
                    data: EvalTrainingSet | None = None, progress: bool = True, resume: bool = False):
    """Train the evaluation CLIP; returns (model, tokenizer, record) with the training time and retrieval check."""
    cpu = time.process_time()
    data = eval_training_set(config) if data is None else data
    tokenizer = build_tokenizer(data.captions, config.max_length)
    model = build_eval_clip(config, tokenizer)
    images = backend.to_device(data.images, backend.DEFAULT_DTYPE)
    ids = backend.to_device(tokenizer(data.captions).input_ids)   # all captions tokenised once: (N, T)
    optimizer = AdamW(decay_groups(model, config.weight_decay), lr=config.lr, betas=(0.9, 0.98), eps=1e-6)

    def step_fn(step, rng):
        rows = _batch_rows(rng, len(data.captions), config.batch_size)
        logits = model(images[backend.to_device(rows)], ids[backend.to_device(rows)])
        return clip_loss(logits, multi_positive_targets([data.captions[i] for i in rows]))

    run = train(step_fn, model=model, optimizer=optimizer, total_steps=config.clip_steps, out_dir=run_dir,
                seed=config.seed, lr_at=_lr_at(config, config.clip_steps), max_grad_norm=config.max_grad_norm,
                checkpoint_every=config.checkpoint_every, resume=resume, progress=progress, desc="eval clip",
                meta={"recipe": "eval_clip", "config": asdict(config)})
    model.eval()
    record = {"config": asdict(config), "train_seconds": run.seconds, "cpu_seconds": time.process_time() - cpu,
              "final_loss": float(np.mean(run.losses[-20:])),
              "check": clip_check(model, tokenizer, config)}
    return model, tokenizer, record


def clip_check(model, tokenizer, config: EvalTrainingConfig) -> dict:
    """CLIP score and R-precision (31 distractors) of fresh real images with their own captions."""
    from .clip_score import clip_score, r_precision
    check = eval_training_set(config, n=config.check_images, seed_offset=1)
    nets = EvalNetworks(clip=model, tokenizer=tokenizer)
    image = nets.image_embeddings(check.images)
    text = nets.text_embeddings(check.captions)
    return {"clip_score": clip_score(image, text), "r_precision": r_precision(image, text, check.captions)}


# -- both -----------------------------------------------------------------------------------------------------------
def train_eval_networks(parts=("features", "clip"), config: EvalTrainingConfig = EvalTrainingConfig(),
                        run_dir="runs/eval_networks", weights_dir=EVAL_WEIGHTS, progress: bool = True,
                        resume: bool = False) -> dict:
    """Train the given parts and write them to ``weights_dir`` (float16); returns part -> record.

    ``resume``: continue each part from its checkpoint in ``run_dir/<part>`` when it has one.

    The two parts share nothing but the data, so ``scripts/train_eval_networks.sh`` runs them as two processes,
    one per core.
    """
    data, records = eval_training_set(config), {}
    for part in parts:
        began = time.perf_counter()
        part_resume = resume and (Path(run_dir) / part / CHECKPOINT_NAME).is_file()
        if part == "features":
            net, record = train_feature_network(config, Path(run_dir) / "features", data, progress, part_resume)
            save_eval_networks(weights_dir, feature_net=net, record=record)
        elif part == "clip":
            model, tokenizer, record = train_eval_clip(config, Path(run_dir) / "clip", data, progress, part_resume)
            save_eval_networks(weights_dir, clip=model, tokenizer=tokenizer, record=record)
        else:
            raise ValueError(f"train_eval_networks: unknown part {part!r}; parts: features, clip")
        record["total_seconds"] = time.perf_counter() - began  # + data, checks, saving (not in training.json)
        records[part] = record
        print(f"eval {part}: trained in {record['train_seconds']:.0f} s ({record['cpu_seconds']:.0f} s of CPU); "
              f"check on fresh images: {record['check']}", flush=True)
    return records


def tiny_config(**changes) -> EvalTrainingConfig:
    """The ``TINY`` settings (for tests), with fields replaced."""
    return replace(TINY, **changes)
