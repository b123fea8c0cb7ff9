"""Neural-network layers and blocks (Module, Linear, Conv2d, ...). ``functional`` is the op library (import as F).

    module.py       Parameter, Module (registration, names, state dicts, train/eval, devices)
    containers.py   Sequential, ModuleList
    init.py         seeded PyTorch-style initialisation
    linear.py conv.py norm.py activations.py embedding.py dropout.py      the layers
    sampling.py     Upsample2D, Downsample2D
    embeddings.py   sinusoidal timestep embeddings, TimestepEmbedding
    resnet.py       ResnetBlock2D
    attention.py    Attention (self, cross, and the VAE's spatial attention)
    attention_maps.py  record_attention: the attention probabilities of chosen layers, recorded on request
    transformer.py  FeedForward, BasicTransformerBlock, Transformer2DModel

Parameter names match diffusers', so diffusers state dicts load with ``strict=True``.
"""
from . import functional, init
from .activations import GEGLU, GELU, LinearGELU, SiLU
from .attention import Attention
from .attention_maps import AttentionRecorder, attention_probs, record_attention
from .containers import ModuleList, Sequential
from .conv import Conv2d
from .dropout import Dropout
from .embedding import Embedding
from .embeddings import TimestepEmbedding, Timesteps, get_timestep_embedding
from .linear import Identity, Linear
from .module import Module, Parameter
from .norm import GroupNorm, LayerNorm
from .resnet import ResnetBlock2D
from .sampling import Downsample2D, Upsample2D
from .transformer import BasicTransformerBlock, FeedForward, Transformer2DModel

__all__ = ["functional", "init", "Module", "Parameter", "Sequential", "ModuleList", "Linear", "Identity", "Conv2d",
           "GroupNorm", "LayerNorm", "Embedding", "Dropout", "SiLU", "GELU", "GEGLU", "LinearGELU", "Upsample2D",
           "Downsample2D", "get_timestep_embedding", "Timesteps", "TimestepEmbedding", "ResnetBlock2D", "Attention",
           "AttentionRecorder", "attention_probs", "record_attention",
           "FeedForward", "BasicTransformerBlock", "Transformer2DModel"]
