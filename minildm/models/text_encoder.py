"""``CLIPTextModel``: the text encoder of Stable Diffusion, CLIP's text transformer (Radford et al. 2021, sec. 2.4).

A caption, already turned into token ids by the tokenizer (<|startoftext|> ... <|endoftext|>, padded to 77), becomes
one vector per token; the U-Net cross-attends to all of them (Rombach et al. 2022, sec. 3.3):

    ids (B, T) ─► token embedding + position embedding ─► (B, T, D)
               ─► num_hidden_layers x [ x + attn(LN1(x)), then x + MLP(LN2(x)) ]      pre-LN transformer blocks
               ─► final LayerNorm ─► last_hidden_state (B, T, D)         the context Stable Diffusion uses
                                     pooler_output (B, D)                the vector at the end-of-text token

The attention is *causal*: token t sees only tokens 0..t, as in a GPT-style language model (CLIP's text encoder
was built that way, sec. 2.4), so the end-of-text token is the first one to have read the whole caption — which is
why CLIP pools there. Config keys and state-dict names are those of transformers' ``CLIPTextConfig`` and
``CLIPTextModel`` ("text_model.encoder.layers.0.self_attn.q_proj.weight", ...), so its checkpoints load unchanged.

Which position is "the end-of-text token"? transformers has two rules, chosen by ``eos_token_id``, and we follow it:
- ``eos_token_id == 2``, the value of old configs (Stable Diffusion 1.x/2.x): the position of the *largest id* in
  each row. In CLIP's vocabulary <|endoftext|> = 49407 is the largest id, so this finds the first end-of-text
  token — but only there; it is kept because those checkpoints say 2.
- any other ``eos_token_id``: the *first* position holding that id (padding may repeat it). A row without it pools
  position 0, as transformers does (argmax of an all-False row).
"""
from __future__ import annotations

from typing import NamedTuple

from .. import backend, nn
from ..autograd import Tensor
from ..nn import functional as F
from ..nn import init
from .modeling_utils import ModelMixin

_ACTIVATIONS = {"quick_gelu": F.quick_gelu,  # x * sigmoid(1.702 x), the original CLIP's approximation
                "gelu": F.gelu,  # exact, x * Phi(x)
                "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
                "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh")}
LEGACY_EOS_TOKEN_ID = 2  # configs written before transformers PR #24773 carry this value; see the module docstring


class CLIPTextOutput(NamedTuple):
    """What ``CLIPTextModel`` returns; also a tuple, so ``text_encoder(ids)[0]`` is the context, as in diffusers.

    last_hidden_state: (B, T, D) after the final LayerNorm.  pooler_output: (B, D), its end-of-text row.
    hidden_states: with ``output_hidden_states=True``, the (B, T, D) input of every layer and the last layer's
        output before the final LayerNorm (num_hidden_layers + 1 Tensors; SD 2 "clip skip" uses [-2]); else None.
    """
    last_hidden_state: Tensor
    pooler_output: Tensor
    hidden_states: tuple | None = None


def _normal_init(linear: nn.Linear, std: float, g) -> None:
    """CLIP's initialisation of a projection: weight ~ N(0, std^2), bias = 0."""
    linear.weight.data = init.normal(linear.weight.shape, std, g)
    linear.bias.data = init.zeros(linear.bias.shape)


class CLIPAttention(nn.Module):
    """Multi-head self-attention with q_proj, k_proj, v_proj, out_proj (D -> D each, with biases).
    forward(x (B, T, D), mask broadcastable to (B, heads, T, T), True = may attend) -> (B, T, D)."""

    def __init__(self, dim: int, heads: int, generator=None):
        super().__init__()
        g = init.host_generator(generator)
        self.heads, self.head_dim = heads, dim // heads
        self.k_proj = nn.Linear(dim, dim, generator=g)  # transformers' order of definition
        self.v_proj = nn.Linear(dim, dim, generator=g)
        self.q_proj = nn.Linear(dim, dim, generator=g)
        self.out_proj = nn.Linear(dim, dim, generator=g)

    def forward(self, x, mask):
        b, t, d = x.shape

        def split_heads(y):  # (B, T, D) -> (B, heads, T, head_dim)
            return y.reshape(b, t, self.heads, self.head_dim).permute(0, 2, 1, 3)

        out = F.scaled_dot_product_attention(split_heads(self.q_proj(x)), split_heads(self.k_proj(x)),
                                             split_heads(self.v_proj(x)), mask=mask)  # scale 1/sqrt(head_dim)
        return self.out_proj(out.permute(0, 2, 1, 3).reshape(b, t, d))


class CLIPMLP(nn.Module):
    """fc1 (D -> intermediate), activation, fc2 (intermediate -> D). Shapes: (B, T, D) -> (B, T, D)."""

    def __init__(self, dim: int, intermediate_size: int, hidden_act: str, generator=None):
        super().__init__()
        g = init.host_generator(generator)
        self.activation = _ACTIVATIONS[hidden_act]
        self.fc1 = nn.Linear(dim, intermediate_size, generator=g)
        self.fc2 = nn.Linear(intermediate_size, dim, generator=g)

    def forward(self, x):
        return self.fc2(self.activation(self.fc1(x)))


class CLIPEncoderLayer(nn.Module):
    """A pre-LayerNorm transformer block: x + attn(LN1(x)), then x + MLP(LN2(x)). Shapes: (B, T, D) -> same."""

    def __init__(self, dim: int, heads: int, intermediate_size: int, hidden_act: str, eps: float, generator=None):
        super().__init__()
        g = init.host_generator(generator)
        self.self_attn = CLIPAttention(dim, heads, generator=g)
        self.layer_norm1 = nn.LayerNorm(dim, eps=eps)
        self.mlp = CLIPMLP(dim, intermediate_size, hidden_act, generator=g)
        self.layer_norm2 = nn.LayerNorm(dim, eps=eps)

    def forward(self, x, mask):
        x = x + self.self_attn(self.layer_norm1(x), mask)
        return x + self.mlp(self.layer_norm2(x))


class CLIPEncoder(nn.Module):
    """The stack of ``CLIPEncoderLayer``s, named ``layers.0``, ``layers.1``, ... as in transformers.
    forward(x (B, T, D), mask) -> every layer's input and the last output: num_layers + 1 Tensors (B, T, D)."""

    def __init__(self, layers: list):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x, mask) -> list:
        states = [x]
        for layer in self.layers:
            states.append(layer(states[-1], mask))
        return states


class CLIPTextEmbeddings(nn.Module):
    """token_embedding(ids) + position_embedding(0..T-1). Shapes: (B, T) ids -> (B, T, D).

    transformers also keeps the positions 0..max-1 as a buffer ``position_ids``, saved by old checkpoints; here
    they are made on the fly, and ``CLIPTextModel.convert_state_dict`` drops that key when a file has it.
    """

    def __init__(self, vocab_size: int, max_positions: int, dim: int, generator=None):
        super().__init__()
        g = init.host_generator(generator)
        self.token_embedding = nn.Embedding(vocab_size, dim, generator=g)
        self.position_embedding = nn.Embedding(max_positions, dim, generator=g)

    def forward(self, ids):
        positions = backend.get_array_module(ids).arange(ids.shape[1])
        return self.token_embedding(ids) + self.position_embedding(positions)


class CLIPTextTransformer(nn.Module):
    """embeddings -> encoder -> final_layer_norm (the module transformers calls ``text_model``).
    forward(ids (B, T), mask) -> (last_hidden_state (B, T, D), the encoder's list of hidden states)."""

    def __init__(self, vocab_size: int, max_positions: int, dim: int, layers: int, heads: int,
                 intermediate_size: int, hidden_act: str, eps: float, generator=None):
        super().__init__()
        g = init.host_generator(generator)
        self.embeddings = CLIPTextEmbeddings(vocab_size, max_positions, dim, generator=g)
        self.encoder = CLIPEncoder([CLIPEncoderLayer(dim, heads, intermediate_size, hidden_act, eps, generator=g)
                                    for _ in range(layers)])
        self.final_layer_norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, ids, mask):
        states = self.encoder(self.embeddings(ids), mask)
        return self.final_layer_norm(states[-1]), states


class CLIPTextModel(ModelMixin, nn.Module):
    """CLIP's text encoder. Arguments are transformers' ``CLIPTextConfig`` keys (and its defaults).

    Args:
        vocab_size: number of token ids.  hidden_size: D.  intermediate_size: width of each MLP.
        num_hidden_layers, num_attention_heads: depth, and heads per layer (must divide D).
        max_position_embeddings: the longest sequence (77).
        hidden_act: "quick_gelu" (CLIP, SD 1.x), "gelu" (OpenCLIP, SD 2.x), "gelu_new" or "gelu_pytorch_tanh".
        layer_norm_eps: LayerNorm epsilon.
        projection_dim: width of CLIP's text projection (used by ``CLIPTextModelWithProjection``; stored only).
        attention_dropout: must be 0 (minildm's fused attention has no dropout).
        initializer_factor: scales CLIP's initial weight standard deviations.
        pad_token_id, bos_token_id: stored only.  eos_token_id: decides the pooled position (module docstring).
        generator: int seed or host Generator for the random initialisation.
    forward(input_ids (B, T) ints, attention_mask (B, T) of 1/0 or None) -> ``CLIPTextOutput``.
    """

    weights_name = "model.safetensors"  # transformers' file name
    # keys in transformers' config.json that do not change the model we build
    ignored_config_keys = ("architectures", "model_type", "torch_dtype", "dtype", "transformers_version", "dropout",
                           "initializer_range")

    def __init__(self, vocab_size: int = 49408, hidden_size: int = 512, intermediate_size: int = 2048,
                 projection_dim: int = 512, num_hidden_layers: int = 12, num_attention_heads: int = 8,
                 max_position_embeddings: int = 77, hidden_act: str = "quick_gelu", layer_norm_eps: float = 1e-5,
                 attention_dropout: float = 0.0, initializer_factor: float = 1.0, pad_token_id: int = 1,
                 bos_token_id: int = 49406, eos_token_id: int = 49407, generator=None):
        super().__init__()
        if hidden_act not in _ACTIVATIONS:
            raise ValueError(f"CLIPTextModel: unsupported hidden_act {hidden_act!r}; supported: {list(_ACTIVATIONS)}")
        if hidden_size % num_attention_heads:
            raise ValueError(f"CLIPTextModel: hidden_size={hidden_size} is not divisible by "
                             f"num_attention_heads={num_attention_heads}")
        if attention_dropout:
            raise ValueError(f"CLIPTextModel: unsupported attention_dropout={attention_dropout}; only 0.0")
        g = init.host_generator(generator)
        self.vocab_size, self.max_positions, self.eos_token_id = vocab_size, max_position_embeddings, eos_token_id
        self.text_model = CLIPTextTransformer(vocab_size, max_position_embeddings, hidden_size, num_hidden_layers,
                                              num_attention_heads, intermediate_size, hidden_act, layer_norm_eps,
                                              generator=g)
        self._init_weights(initializer_factor, g)

    def _init_weights(self, factor: float, g) -> None:
        """CLIP's initialisation (as in transformers): embeddings N(0, 0.02^2); projections N(0, std^2) with
        std ~ 1/sqrt(fan-in), the ones feeding the residual stream shrunk by 1/sqrt(2 * layers) (as GPT-2 does,
        so the stream's variance does not grow with depth); biases 0."""
        tm = self.text_model
        for embedding in (tm.embeddings.token_embedding, tm.embeddings.position_embedding):
            embedding.weight.data = init.normal(embedding.weight.shape, 0.02 * factor, g)
        width = tm.final_layer_norm.weight.shape[0]
        depth_scale = (2 * max(len(tm.encoder.layers), 1)) ** -0.5
        for layer in tm.encoder.layers:
            attn = layer.self_attn
            for proj in (attn.q_proj, attn.k_proj, attn.v_proj):
                _normal_init(proj, width ** -0.5 * depth_scale * factor, g)
            _normal_init(attn.out_proj, width ** -0.5 * factor, g)
            _normal_init(layer.mlp.fc1, (2 * width) ** -0.5 * factor, g)
            _normal_init(layer.mlp.fc2, width ** -0.5 * depth_scale * factor, g)

    # -- forward ----------------------------------------------------------------------------------------------------
    def _check_ids(self, input_ids, attention_mask):
        """Token ids (and mask) as backend int arrays, with errors in the user's terms."""
        ids = input_ids.data if isinstance(input_ids, Tensor) else backend.asarray(input_ids)
        if ids.ndim != 2 or ids.dtype.kind not in "iu":
            raise ValueError(f"CLIPTextModel: input_ids must be integers of shape (B, T), got shape "
                             f"{tuple(ids.shape)} and dtype {ids.dtype} (for one caption, pass ids[None])")
        if ids.shape[1] > self.max_positions:
            raise ValueError(f"CLIPTextModel: input_ids has T={ids.shape[1]} tokens, more than "
                             f"max_position_embeddings={self.max_positions}")
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size):
            raise ValueError(f"CLIPTextModel: input_ids must lie in [0, {self.vocab_size}) (vocab_size), got "
                             f"values in [{int(ids.min())}, {int(ids.max())}]")
        if attention_mask is None:
            return ids, None
        mask = attention_mask.data if isinstance(attention_mask, Tensor) else backend.asarray(attention_mask)
        if tuple(mask.shape) != tuple(ids.shape):
            raise ValueError(f"CLIPTextModel: attention_mask has shape {tuple(mask.shape)}, expected the shape of "
                             f"input_ids {tuple(ids.shape)}")
        return ids, mask

    def forward(self, input_ids, attention_mask=None, output_hidden_states: bool = False) -> CLIPTextOutput:
        """input_ids: (B, T) token ids.  attention_mask: (B, T), 1 for tokens and 0 for padding that no token
        may attend to (Stable Diffusion passes none: its padding is attended to, and the U-Net reads it too).
        Returns ``CLIPTextOutput(last_hidden_state (B, T, D), pooler_output (B, D), hidden_states)``."""
        ids, padding = self._check_ids(input_ids, attention_mask)
        xp = backend.get_array_module(ids)
        b, t = ids.shape
        allowed = xp.tril(xp.ones((t, t), dtype=bool))[None, None]  # (1, 1, T, T): query i sees keys j <= i
        if padding is not None:
            allowed = allowed & (padding != 0)[:, None, None, :]  # (B, 1, T, T): and never a padding key

        x, hidden_states = self.text_model(ids, allowed)

        if self.eos_token_id == LEGACY_EOS_TOKEN_ID:
            eos_positions = ids.argmax(axis=-1)  # the largest id: <|endoftext|> in CLIP's vocabulary
        else:
            eos_positions = (ids == self.eos_token_id).argmax(axis=-1)  # the first <|endoftext|> (0 if none)
        pooled = x[xp.arange(b), eos_positions]
        return CLIPTextOutput(x, pooled, tuple(hidden_states) if output_hidden_states else None)

    # -- transformers' folder layout ------------------------------------------------------------------------------
    @classmethod
    def convert_state_dict(cls, state_dict: dict) -> dict:
        """Accept both layouts of transformers' files: "text_model.embeddings..." (transformers 4, and every
        Stable Diffusion checkpoint) and "embeddings..." (transformers 5); drop the old ``position_ids`` buffer."""
        state = {k: v for k, v in state_dict.items() if not k.endswith("embeddings.position_ids")}
        if not any(k.startswith("text_model.") for k in state):
            state = {f"text_model.{k}": v for k, v in state.items()}
        return state

    def config_to_save(self) -> dict:
        """transformers' config.json: the config plus "architectures" and "model_type" (no "_class_name")."""
        return {"architectures": [type(self).__name__], "model_type": "clip_text_model", **self.config}
