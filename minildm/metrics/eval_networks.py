"""The evaluation networks: the judges that look at generated images, kept apart from everything they judge.

FID (Heusel et al. 2017) measures images in the feature space of Inception-v3, a network trained on ImageNet, not
on anything the generator learned from; CLIP score (Hessel et al. 2021) uses a CLIP that did not condition the
generator. Our pictures are 32x32 coloured shapes that Inception never saw, so minildm trains its own judges, on
images the generators never saw (splits "eval" and "heldout", seed ``EVAL_SEED``; the generators train on split
"train", seed 0), with architectures and seeds unlike the generator's parts:

    EvalFeatureNet   the feature network of FD_minildm and KID: a small VGG-style CNN that classifies each image's
                     colours, shapes, sizes, positions and object count. Its penultimate layer (64 numbers) is the
                     feature vector, as Inception's pool3 layer is FID's.
    evaluation CLIP  ``CLIPDualEncoder`` (from ``minildm.train.clip``, whose loss we reuse) with an
                     ``EvalImageEncoder`` (the same VGG-style trunk) and a 2-layer GELU ``CLIPTextModel``; the CLIP
                     that conditions the generators has a strided-conv SiLU image tower and 3 quick-GELU layers.

The trunk, shared by design (not by weights) of both:

    images (B, 3, 32, 32) in [-1, 1]
      ─► [3x3 conv ─► GroupNorm ─► ReLU ─► 2x2 average pool] x 3     (B, 64, 4, 4)
      ─► 3x3 conv ─► GroupNorm ─► ReLU ─► flatten                     (B, 1024)

Flattening the last 4x4 grid, rather than averaging it away, keeps *where* things are: the captions say "at the top
left", and FD should notice a model that puts objects in the wrong places.

Held-out colour-shape pairs (a blue circle...) are in the judges' training data on purpose: a judge has to know what
a blue circle looks like to say whether a generator drew one. The generators never see those pairs.

Training is in ``eval_training.py``; the trained networks ship in ``minildm/weights/eval`` (float16).

    nets = load_eval_networks()                 # minildm/weights/eval
    nets.features(images)                       # (N, 64) float64 host array, for FD and KID
    nets.image_embeddings(images), nets.text_embeddings(captions)    # (N, 64) unit vectors, for CLIP score
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import backend, io, nn
from ..autograd import no_grad
from ..models import CLIPTextModel, CLIPTokenizer
from ..models.modeling_utils import ModelMixin
from ..nn import functional as F
from ..nn import init
from ..weights import EVAL

EVAL_WEIGHTS = EVAL
EVAL_SEED = 2024   # seeds the judges' training data and weights; the generators use seed 0 on split "train"
HEADS = {"colour": 6, "shape": 3, "size": 2, "position": 9, "count": 2}  # classes of each attribute head
CLIP_HEADS_FILE = "clip_heads.safetensors"
TRAINING_RECORD = "training.json"


# -- the networks ---------------------------------------------------------------------------------------------------
class ConvTrunk(nn.Module):
    """VGG-style feature extractor: (B, 3, S, S) -> (B, channels[-1] * (S / 2 ** (len(channels) - 1)) ** 2).

    Each of the first len(channels) - 1 stages halves the resolution with a 2x2 average pool after its conv; the
    last stage keeps it. GroupNorm keeps the activations at a steady scale, so the default (small) init trains.
    """

    def __init__(self, image_size: int, channels, norm_num_groups: int, generator=None):
        super().__init__()
        g = init.host_generator(generator)
        channels = [int(c) for c in channels]
        if image_size % 2 ** (len(channels) - 1):
            raise ValueError(f"ConvTrunk: image_size={image_size} is not divisible by 2 ** {len(channels) - 1}")
        bad = [c for c in channels if c % norm_num_groups]
        if bad:
            raise ValueError(f"ConvTrunk: norm_num_groups={norm_num_groups} does not divide channels {bad}")
        self.image_size = image_size
        self.convs = nn.ModuleList([nn.Conv2d(c_in, c_out, 3, padding=1, generator=g)
                                    for c_in, c_out in zip([3] + channels[:-1], channels)])
        self.norms = nn.ModuleList([nn.GroupNorm(norm_num_groups, c) for c in channels])
        self.out_features = channels[-1] * (image_size // 2 ** (len(channels) - 1)) ** 2

    def forward(self, images):
        x = nn.module.as_tensor(images)
        if x.ndim != 4 or x.shape[1:] != (3, self.image_size, self.image_size):
            raise ValueError(f"{type(self).__name__}: expected images (B, 3, {self.image_size}, {self.image_size}) "
                             f"in [-1, 1], got shape {x.shape}")
        last = len(self.convs) - 1
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = norm(conv(x)).relu()
            if i < last:  # 2x2 average pool: (B, C, H, W) -> (B, C, H/2, W/2)
                b, c, h, w = x.shape
                x = x.reshape(b, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))
        return x.flatten(1)


class EvalFeatureNet(ModelMixin, nn.Module):
    """The feature network of FD_minildm / KID: an attribute classifier whose penultimate layer is the feature.

    Args:
        image_size: side of the square input images.  channels: of the trunk's stages.
        feature_dim: width of the feature vector (the penultimate layer).  norm_num_groups: GroupNorm groups.
        generator: int seed or host Generator for the initial weights.
    forward(images (B, 3, S, S)) -> dict attribute -> logits (B, HEADS[attribute]).
    features(images) -> (B, feature_dim) Tensor: h / feature_scale with h = SiLU(Linear(trunk(images))), what the
        heads read. SiLU, not ReLU, in this one layer: a ReLU unit that never fires is a feature that is always 0,
        a dimension FD and KID cannot use (a first version lost 9 of 64 that way).

    ``feature_scale`` (a saved buffer) is one number fixed after training so that real images have mean xᵀx / d = 1.
    FD only scales with it, but KID's kernel (xᵀy / d + 1)³ is not scale-free: at that scale its data term and its
    constant weigh alike, rather than the data term's cube swamping everything.
    """
    weights_name = "model.safetensors"

    def __init__(self, image_size: int = 32, channels=(16, 32, 64, 64), feature_dim: int = 64,
                 norm_num_groups: int = 8, generator=None):
        super().__init__()
        g = init.host_generator(generator)
        self.trunk = ConvTrunk(image_size, channels, norm_num_groups, generator=g)
        self.feature = nn.Linear(self.trunk.out_features, feature_dim, generator=g)
        self.heads = nn.ModuleList([nn.Linear(feature_dim, k, generator=g) for k in HEADS.values()])
        self.register_buffer("feature_scale", backend.xp().ones((1,), dtype=backend.DEFAULT_DTYPE))

    def hidden(self, images):
        """(B, feature_dim): the penultimate layer before the fixed rescaling."""
        return F.silu(self.feature(self.trunk(images)))

    def features(self, images):
        return self.hidden(images) / self.feature_scale

    def forward(self, images) -> dict:
        h = self.hidden(images)
        return {name: head(h) for name, head in zip(HEADS, self.heads)}


class EvalImageEncoder(ModelMixin, nn.Module):
    """The image tower of the evaluation CLIP: the trunk, then a linear map to the joint space.

    forward(images (B, 3, S, S)) -> (B, projection_dim), not normalised (``CLIPDualEncoder`` normalises).
    """
    weights_name = "model.safetensors"

    def __init__(self, image_size: int = 32, channels=(16, 32, 64, 64), projection_dim: int = 64,
                 norm_num_groups: int = 8, generator=None):
        super().__init__()
        g = init.host_generator(generator)
        self.trunk = ConvTrunk(image_size, channels, norm_num_groups, generator=g)
        self.visual_projection = nn.Linear(self.trunk.out_features, projection_dim, generator=g)

    def forward(self, images):
        return self.visual_projection(self.trunk(images))


# -- the judges, loaded ---------------------------------------------------------------------------------------------
class EvalNetworks:
    """The feature network and the evaluation CLIP, in eval mode, with batched host-side outputs.

    Every method takes images (N, 3, S, S) in [-1, 1] (host or device array) and returns a float64 host array:
    metrics are computed on the host in float64 (``frechet.py``), whatever the backend. Either network may be None
    (while training the other one); asking a missing one for its output is an error.
    """

    def __init__(self, feature_net: EvalFeatureNet | None = None, clip=None, tokenizer: CLIPTokenizer | None = None,
                 folder=None):
        self.feature_net, self.clip, self.tokenizer, self.folder = feature_net, clip, tokenizer, folder
        for model in (feature_net, clip):
            if model is not None:
                model.eval()

    def _need(self, name: str):
        model = getattr(self, name)
        if model is None:
            raise ValueError(f"EvalNetworks: no {name} was given")
        return model

    @property
    def feature_dim(self) -> int:
        return self._need("feature_net").config["feature_dim"]

    def _batched(self, fn, items, batch_size: int) -> np.ndarray:
        rows = []
        with no_grad():
            for start in range(0, len(items), batch_size):
                rows.append(backend.to_host(fn(items[start:start + batch_size]).data).astype(np.float64))
        return np.concatenate(rows)

    def _images(self, images):
        return backend.to_device(getattr(images, "data", images), backend.DEFAULT_DTYPE)

    def features(self, images, batch_size: int = 500) -> np.ndarray:
        """(N, feature_dim): the penultimate layer of the feature network."""
        return self._batched(self._need("feature_net").features, self._images(images), batch_size)

    def predictions(self, images, batch_size: int = 500) -> dict:
        """attribute -> (N,) index of the most likely class of each head (for checking the network itself)."""
        logits = {name: [] for name in HEADS}
        with no_grad():
            images = self._images(images)
            for start in range(0, len(images), batch_size):
                for name, z in self._need("feature_net")(images[start:start + batch_size]).items():
                    logits[name].append(backend.to_host(z.data).argmax(axis=1))
        return {name: np.concatenate(rows) for name, rows in logits.items()}

    def image_embeddings(self, images, batch_size: int = 500) -> np.ndarray:
        """(N, P) unit vectors: the evaluation CLIP's image embeddings."""
        return self._batched(self._need("clip").encode_image, self._images(images), batch_size)

    def text_embeddings(self, captions, batch_size: int = 500) -> np.ndarray:
        """(N, P) unit vectors: the evaluation CLIP's caption embeddings."""
        clip, tokenizer = self._need("clip"), self._need("tokenizer")

        def encode(chunk):
            return clip.encode_text(backend.to_device(tokenizer(list(chunk)).input_ids))
        return self._batched(encode, list(captions), batch_size)


def save_eval_networks(folder, feature_net=None, clip=None, tokenizer=None, record: dict | None = None,
                       dtype: str = "float16") -> Path:
    """Write the networks given into ``folder``: features/, clip/{text_encoder,tokenizer,vision_model,heads}.

    ``record`` (settings, timings, accuracies) goes to ``<part>/training.json`` of each part written.
    """
    folder = Path(folder)
    parts = []
    if feature_net is not None:
        feature_net.save_pretrained(folder / "features", dtype=dtype)
        parts.append("features")
    if clip is not None:
        clip.text_model.save_pretrained(folder / "clip" / "text_encoder", dtype=dtype)
        tokenizer.save_pretrained(folder / "clip" / "tokenizer")
        clip.vision_model.save_pretrained(folder / "clip" / "vision_model", dtype=dtype)
        heads = {"text_projection.weight": clip.text_projection.weight.data, "logit_scale": clip.logit_scale.data}
        io.save_safetensors({k: backend.to_host(v).astype(dtype) for k, v in heads.items()},
                            folder / "clip" / CLIP_HEADS_FILE)
        parts.append("clip")
    for part in parts:
        with io.atomic_write(folder / part / TRAINING_RECORD, mode="w") as f:
            f.write(json.dumps(record or {}, indent=2) + "\n")
    return folder


def load_eval_networks(folder=EVAL_WEIGHTS) -> EvalNetworks:
    """The evaluation networks saved in ``folder`` (default: the shipped ones, minildm/weights/eval)."""
    from ..train.clip import CLIPDualEncoder  # the recipe module, imported only when a CLIP is loaded
    folder = Path(folder)
    needed = [folder / "features" / "config.json", folder / "clip" / CLIP_HEADS_FILE]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"load_eval_networks: {', '.join(missing)} not found; train the evaluation networks "
                                "with `bash scripts/train_eval_networks.sh` (about 3 minutes on 2 CPU cores)")
    feature_net = EvalFeatureNet.from_pretrained(folder / "features")
    text = CLIPTextModel.from_pretrained(folder / "clip" / "text_encoder")
    vision = EvalImageEncoder.from_pretrained(folder / "clip" / "vision_model")
    heads = io.load_safetensors(folder / "clip" / CLIP_HEADS_FILE)
    clip = CLIPDualEncoder(text, vision, heads["text_projection.weight"].shape[0])
    clip.text_projection.load_state_dict({"weight": heads["text_projection.weight"]})  # cast to float32 on load
    clip.logit_scale.data = backend.to_device(heads["logit_scale"], backend.DEFAULT_DTYPE)
    return EvalNetworks(feature_net, clip, CLIPTokenizer.from_pretrained(folder / "clip" / "tokenizer"), folder)
