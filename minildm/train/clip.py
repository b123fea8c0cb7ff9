"""Recipe 1 of 3: a miniature CLIP, whose text tower becomes the text encoder of the diffusion model.

CLIP (Radford et al. 2021, "Learning Transferable Visual Models From Natural Language Supervision") trains an
image encoder and a text encoder together. In a batch of B (image, caption) pairs, each image should be most similar
to its own caption among all B captions, and each caption to its own image:

    I = normalise(vision(images) )             (B, P)      image embeddings on the unit sphere
    T = normalise(text_projection(text(ids)))  (B, P)      caption embeddings (text = the pooled end-of-text state)
    logits = exp(s) · I Tᵀ                     (B, B)      cosine similarities times a learned temperature
    loss = ½ [CE(logits, targets) + CE(logitsᵀ, targets)]  InfoNCE in both directions (CLIP, Figure 3)

The temperature exp(s) starts at 1/0.07 and is clamped at 100, as in CLIP (sec. 2.5), so the logits cannot grow
without bound. Our world is small: a batch of 128 often holds the *same* caption twice, and then the "wrong"
caption is exactly as right as the "right" one. So the targets are not one-hot: row i spreads its mass evenly over
every caption identical to caption i (``multi_positive_targets``), and CE is the cross-entropy with those soft
targets, −Σ_j targets_ij log softmax(logits_i)_j.

The tokenizer is trained first with ``train_bpe`` on the training captions. The vocabulary is closed (23 words), so
BPE keeps merging until every word is one token; the vocabulary is the 512 byte symbols, the merges, BOS and EOS.

    result = train_clip("shapes", "runs/shapes/clip")     # writes text_encoder/, tokenizer/, vision_model/, ...
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import backend, io, nn
from ..autograd import Tensor, no_grad
from ..data import DataLoader, SHAPES, SIZES, COLOURS, POSITIONS, ShapeObject, caption_for, parse_caption
from ..models import CLIPTextModel, CLIPTokenizer, train_bpe
from ..models.clip_vision import CLIPVisionCNN
from ..nn import functional as F
from ..optim import AdamW
from .loop import train
from .presets import get_preset
from .recipe_common import batches, decay_groups, lr_schedule, make_dataset

LOG_MAX_SCALE = math.log(100.0)   # CLIP clamps the temperature exp(s) at 100
INITIAL_SCALE = 1 / 0.07          # CLIP's initial temperature (sec. 2.5)
HEADS_FILE = "clip_heads.safetensors"


# -- the tokenizer ------------------------------------------------------------------------------------------------
def build_tokenizer(captions, max_length: int) -> CLIPTokenizer:
    """A BPE tokenizer trained on ``captions`` until every word is a single token, padding to ``max_length``.

    ``train_bpe`` stops by itself once no two symbols are left to merge (every word whole), so the vocabulary size
    we ask for is only an upper bound; the check below makes sure no word of the grammar is split.
    """
    vocab, merges = train_bpe(list(captions), vocab_size=4096, min_frequency=1)
    tokenizer = CLIPTokenizer(vocab, merges, model_max_length=max_length)
    from ..data import vocabulary
    split = tokenizer.unknown_words(" ".join(vocabulary()))
    if split:
        raise ValueError(f"build_tokenizer: words not seen in the captions, so split into pieces: {split}")
    longest = max(len(tokenizer.encode(c)) for c in captions)
    if longest > max_length:
        raise ValueError(f"build_tokenizer: a caption has {longest} tokens (with BOS/EOS), more than max_length="
                         f"{max_length}")
    return tokenizer


# -- the model ----------------------------------------------------------------------------------------------------
class CLIPDualEncoder(nn.Module):
    """Both CLIP towers, the text projection and the temperature.

    Args:
        text_model: a ``CLIPTextModel`` (width D).  vision_model: a ``CLIPVisionCNN`` (output width P).
        projection_dim: P.  generator: seed for the text projection.
    forward(images (B, 3, S, S), input_ids (B, T)) -> logits (B, B): row i scores image i against every caption.
    """

    def __init__(self, text_model: CLIPTextModel, vision_model: CLIPVisionCNN, projection_dim: int, generator=0):
        super().__init__()
        width = text_model.config["hidden_size"]
        self.text_model = text_model
        self.vision_model = vision_model
        self.text_projection = nn.Linear(width, projection_dim, bias=False, generator=generator)  # CLIP: no bias
        xp = backend.xp()
        self.logit_scale = nn.Parameter(xp.full((1,), math.log(INITIAL_SCALE), dtype=backend.DEFAULT_DTYPE))

    def encode_text(self, input_ids) -> Tensor:
        """(B, T) ids -> (B, P) unit vectors, from the pooled (end-of-text) state of the text model."""
        return _unit(self.text_projection(self.text_model(input_ids).pooler_output))

    def encode_image(self, images) -> Tensor:
        """(B, 3, S, S) -> (B, P) unit vectors."""
        return _unit(self.vision_model(images))

    def scale(self) -> Tensor:
        """exp(s), clamped at 100: the clamp sits in the forward pass, so s gets no gradient while it is above."""
        return self.logit_scale.clip(max=LOG_MAX_SCALE).exp()

    def forward(self, images, input_ids) -> Tensor:
        return self.scale() * (self.encode_image(images) @ self.encode_text(input_ids).T)


def _unit(x: Tensor) -> Tensor:
    """Each row divided by its length: (B, P) -> (B, P) on the unit sphere (cosine similarity = dot product)."""
    return x / ((x * x).sum(axis=-1, keepdims=True) + 1e-12).sqrt()


# -- the loss -----------------------------------------------------------------------------------------------------
def multi_positive_targets(captions):
    """(B, B) targets: row i is uniform over the captions equal to caption i (itself included), 0 elsewhere.

    With all captions different it is the identity matrix, CLIP's one-hot targets. It is symmetric (two equal
    captions have the same number of twins), so the same matrix serves both directions of the loss.
    """
    xp = backend.xp()
    index = {}
    ids = xp.asarray([index.setdefault(c, len(index)) for c in captions])
    same = (ids[:, None] == ids[None, :]).astype(backend.DEFAULT_DTYPE)
    return same / same.sum(axis=1, keepdims=True)


def clip_loss(logits: Tensor, targets) -> Tensor:
    """Symmetric InfoNCE with soft targets: ½ [CE(images -> captions) + CE(captions -> images)], a scalar."""
    targets = Tensor(targets)
    image_to_text = -(targets * F.log_softmax(logits, axis=1)).sum(axis=1).mean()
    text_to_image = -(targets * F.log_softmax(logits.T, axis=1)).sum(axis=1).mean()
    return 0.5 * (image_to_text + text_to_image)


# -- the recipe ---------------------------------------------------------------------------------------------------
@dataclass
class CLIPResult:
    """Files and numbers of a CLIP run. ``retrieval``: zero-shot caption accuracy (see ``caption_retrieval``)."""
    folder: Path
    loss_curve: Path | None
    losses: list
    seconds: float
    retrieval: dict


def build_clip(config, tokenizer: CLIPTokenizer, seed: int) -> CLIPDualEncoder:
    """A freshly initialised ``CLIPDualEncoder`` for ``CLIPConfig`` and the tokenizer's vocabulary."""
    text = CLIPTextModel(vocab_size=tokenizer.vocab_size, hidden_size=config.hidden_size,
                         intermediate_size=4 * config.hidden_size, projection_dim=config.projection_dim,
                         num_hidden_layers=config.num_hidden_layers, num_attention_heads=config.num_attention_heads,
                         max_position_embeddings=config.max_length, hidden_act="quick_gelu",
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, generator=seed)
    vision = CLIPVisionCNN(image_size=32, channels=tuple(config.vision_channels),
                           projection_dim=config.projection_dim, norm_num_groups=config.vision_norm_groups,
                           generator=seed + 1)
    return CLIPDualEncoder(text, vision, config.projection_dim, generator=seed + 2)


def train_clip(preset="shapes", out_dir="runs/shapes/clip", resume: bool = False, progress: bool = True,
               dataset=None) -> CLIPResult:
    """Train the tokenizer and the miniature CLIP; write them to ``out_dir``.

    ``out_dir`` receives checkpoint.safetensors and loss.png (the shared loop), then text_encoder/ and tokenizer/
    (what the diffusion model uses), vision_model/ and clip_heads.safetensors (the rest of CLIP, for scoring).
    ``dataset``: the (images, captions) to train on; default the preset's training set.
    """
    preset = get_preset(preset)
    c, seed = preset.clip, preset.data.seed
    out_dir = Path(out_dir)
    data = make_dataset(preset.data) if dataset is None else dataset
    tokenizer = build_tokenizer(data.captions, c.max_length)
    model = build_clip(c, tokenizer, seed)
    optimizer = AdamW(decay_groups(model, c.weight_decay), lr=c.lr, betas=(0.9, 0.98), eps=1e-6)  # CLIP's betas
    loader = DataLoader(data, c.batch_size, shuffle=True, seed=seed)
    next_batch = batches(loader)

    def step_fn(step, rng):
        images, captions = next_batch()
        ids = backend.to_device(tokenizer(captions).input_ids)
        return clip_loss(model(images, ids), multi_positive_targets(captions))

    began = time.perf_counter()
    run = train(step_fn, model=model, optimizer=optimizer, total_steps=c.steps, out_dir=out_dir, seed=seed,
                state={"data": loader}, lr_at=lr_schedule(c), max_grad_norm=c.max_grad_norm,
                checkpoint_every=c.checkpoint_every, resume=resume, progress=progress, desc="clip",
                meta={"recipe": "clip", "preset": preset.name, "config": asdict(c)})
    save_clip(out_dir, model, tokenizer)
    retrieval = caption_retrieval(model, tokenizer, preset, c.eval_images) if c.eval_images else {}
    if progress and retrieval:
        print("clip: zero-shot caption retrieval " + ", ".join(f"{k} {v:.3f}" for k, v in retrieval.items()))
    return CLIPResult(out_dir, run.loss_curve, run.losses, time.perf_counter() - began, retrieval)


# -- saving and loading -------------------------------------------------------------------------------------------
def save_clip(folder, model: CLIPDualEncoder, tokenizer: CLIPTokenizer) -> Path:
    """Write text_encoder/, tokenizer/, vision_model/ and clip_heads.safetensors into ``folder``."""
    folder = Path(folder)
    model.text_model.save_pretrained(folder / "text_encoder")
    tokenizer.save_pretrained(folder / "tokenizer")
    model.vision_model.save_pretrained(folder / "vision_model")
    io.save_safetensors({"text_projection.weight": model.text_projection.weight.data,
                         "logit_scale": model.logit_scale.data}, folder / HEADS_FILE)
    return folder


def load_clip(folder) -> tuple[CLIPDualEncoder, CLIPTokenizer]:
    """The ``CLIPDualEncoder`` and tokenizer that ``save_clip`` wrote to ``folder``."""
    folder = Path(folder)
    text = CLIPTextModel.from_pretrained(folder / "text_encoder")
    vision = CLIPVisionCNN.from_pretrained(folder / "vision_model")
    heads = io.load_safetensors(folder / HEADS_FILE)
    model = CLIPDualEncoder(text, vision, heads["text_projection.weight"].shape[0])
    model.text_projection.load_state_dict({"weight": heads["text_projection.weight"]})
    model.logit_scale.data = backend.to_device(heads["logit_scale"], backend.DEFAULT_DTYPE)
    return model, CLIPTokenizer.from_pretrained(folder / "tokenizer")


# -- how good is it? ------------------------------------------------------------------------------------------------
@no_grad()
def caption_retrieval(model: CLIPDualEncoder, tokenizer: CLIPTokenizer, preset, n: int = 512) -> dict:
    """Zero-shot caption accuracy on single-object images the model never saw.

    Each image is matched against all 324 single-object captions with a size word; the best-scoring caption must
    name the right colour, shape, size and position. "seen": the eval split (seen colour-shape pairs); "heldout":
    pairs that training never showed (a blue circle...), CLIP's own compositional test.
    """
    model.eval()
    candidates = [caption_for((ShapeObject(col, shp, size, pos),)) for col in COLOURS for shp in SHAPES
                  for size in SIZES for pos in POSITIONS]
    text = model.encode_text(backend.to_device(tokenizer(candidates).input_ids)).data   # (324, P)
    out = {}
    for split in ("eval", "heldout"):
        data = make_dataset(preset.data, n=n, split=split, max_objects=1)
        images = backend.to_device(data.images, backend.DEFAULT_DTYPE)
        best = (model.encode_image(images).data @ text.T).argmax(axis=1)
        predicted = [parse_caption(candidates[int(i)])[0] for i in backend.to_host(best)]
        truth = [scene[0] for scene in data.scenes]
        out[split] = sum(p.attributes() == t.attributes() for p, t in zip(predicted, truth)) / n
    model.train()
    return out
