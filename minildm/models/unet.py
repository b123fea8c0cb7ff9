"""``UNet2DConditionModel``: the noise predictor of Stable Diffusion (Rombach et al. 2022, "High-Resolution Image
Synthesis with Latent Diffusion Models"), with diffusers' config keys and parameter names, so a diffusers
``unet/`` folder (config.json + weights) loads with ``strict=True``.

Given noisy latents x_t, the timestep t and the text encoder's states (the context), it predicts the noise
eps_theta(x_t, t, context) that was added (Ho et al. 2020, eq. 14 trains it with ||eps - eps_theta||^2):

    temb = time_embedding(sinusoids(t))                     (B, 4 C0)  how noisy; added in every ResNet block
    h    = conv_in(x_t)                                      (B, C0, H, W)         skips = [h]
    for each level:  h, s = down_block(h, temb, context)     resolution halves      skips += s
    h    = mid_block(h, temb, context)                       (optional) the bottleneck
    for each level:  h = up_block(h, skips.pop() ..., temb, context)   resolution doubles, skips consumed
    eps  = conv_out(SiLU(conv_norm_out(h)))                  (B, out_channels, H, W)

The skip connections are the U of the U-Net (Ronneberger et al. 2015): the way up sees the fine detail of the way
down. The context enters only through cross-attention in the transformer blocks (sec. 3.3 of the LDM paper).
The blocks themselves are in ``unet_blocks.py``.

Config quirk kept for compatibility: in Stable Diffusion v1 configs ``attention_head_dim`` is really the *number*
of heads (diffusers: ``num_attention_heads = num_attention_heads or attention_head_dim``); each head is then
``channels // heads`` wide. ``num_attention_heads``, when given, means the number of heads, as its name says.
"""
from __future__ import annotations

from .. import backend
from ..autograd import Tensor
from ..nn import Conv2d, GroupNorm, Module, ModuleList, SiLU, TimestepEmbedding, Timesteps, init
from ..nn.module import as_tensor
from .modeling_utils import ModelMixin
from .unet_blocks import CrossAttnDownBlock2D, CrossAttnUpBlock2D, DownBlock2D, UNetMidBlock2DCrossAttn, UpBlock2D

DOWN_BLOCKS = {"CrossAttnDownBlock2D": CrossAttnDownBlock2D, "DownBlock2D": DownBlock2D}
UP_BLOCKS = {"CrossAttnUpBlock2D": CrossAttnUpBlock2D, "UpBlock2D": UpBlock2D}
MID_BLOCKS = {"UNetMidBlock2DCrossAttn": UNetMidBlock2DCrossAttn}  # or mid_block_type=None: no mid block

# diffusers options minildm does not implement, with the values that mean "off". diffusers writes every option to
# config.json, so a config may carry them at those values; any other value raises a ValueError naming the option.
UNSUPPORTED_OPTIONS = {
    "class_embed_type": (None,), "num_class_embeds": (None,), "class_embeddings_concat": (False,),
    "projection_class_embeddings_input_dim": (None,), "addition_embed_type": (None,),
    "addition_time_embed_dim": (None,), "encoder_hid_dim": (None,), "encoder_hid_dim_type": (None,),
    "time_embedding_type": ("positional",), "time_embedding_act_fn": (None,), "timestep_post_act": (None,),
    "time_cond_proj_dim": (None,), "resnet_time_scale_shift": ("default",), "resnet_skip_time_act": (False,),
    "resnet_out_scale_factor": (1.0,), "dual_cross_attention": (False,), "cross_attention_norm": (None,),
    "attention_type": ("default",), "reverse_transformer_layers_per_block": (None,),
    "mid_block_only_cross_attention": (None, False),  # only read by a mid block type we do not build
}
# Read by diffusers only together with an unsupported option above, so harmless on its own: dropped silently.
IGNORED_OPTIONS = ("addition_embed_type_num_heads",)


def _per_level(value, name: str, levels: int) -> list:
    """An option given once for all levels, or once per level, as a list of ``levels`` values."""
    if isinstance(value, (list, tuple)):
        if len(value) != levels:
            raise ValueError(f"UNet2DConditionModel: {name} has {len(value)} entries but there are {levels} "
                             f"levels (down_block_types)")
        return list(value)
    return [value] * levels


class UNet2DConditionModel(ModelMixin, Module):
    """The conditional U-Net. Arguments are diffusers' config keys (defaults: Stable Diffusion v1's):

    Args:
        sample_size: latent height/width it was trained at (recorded only; any divisible size works).
        in_channels, out_channels: of the latents (4 for SD) and of the prediction.
        center_input_sample: map the input x to 2x - 1 first.
        flip_sin_to_cos, freq_shift: layout of the sinusoidal timestep embedding (see ``get_timestep_embedding``).
        down_block_types, up_block_types: one per level, from {"CrossAttnDownBlock2D", "DownBlock2D"} and
            {"CrossAttnUpBlock2D", "UpBlock2D"}; up blocks are listed from the lowest resolution up.
        mid_block_type: "UNetMidBlock2DCrossAttn" or None (no bottleneck block).
        only_cross_attention: bool or one per level: the first attention also attends to the text.
        block_out_channels: channels per level (C0 = block_out_channels[0]).
        layers_per_block: ResNet blocks per down level (int or one per level); up levels have one more.
        downsample_padding: padding of the stride-2 downsampling convs.
        mid_block_scale_factor: output_scale_factor of the mid block's ResNet blocks.
        dropout: in the ResNet blocks.  act_fn: "silu" (or its alias "swish"), the only activation SD uses.
        norm_num_groups, norm_eps: of the GroupNorms (transformers use eps 1e-6, as in diffusers).
        cross_attention_dim: width D of the context (B, S, D); an int, or one (equal) value per level.
        transformer_layers_per_block: transformer blocks per attention (int or one per level).
        attention_head_dim: see the module docstring — the number of heads in SD configs (int or per level).
        num_attention_heads: the number of heads (int or per level); overrides attention_head_dim.
        use_linear_projection: transformer proj_in/proj_out as Linear (SD 2) instead of 1x1 convs (SD 1).
        upcast_attention: accepted (SD 2.1 sets it); attention runs in the model's dtype.
        time_embedding_dim: width of the time embedding (default 4 * C0).
        conv_in_kernel, conv_out_kernel: kernel sizes of conv_in / conv_out ("same" padding).
        generator: int seed or host Generator for the initial weights (not part of the config).
    Options of diffusers that are not implemented (``UNSUPPORTED_OPTIONS``) are accepted by ``from_config`` /
    ``from_pretrained`` only at their default values.
    """

    ignored_config_keys = tuple(UNSUPPORTED_OPTIONS) + IGNORED_OPTIONS

    def __init__(self, sample_size=None, in_channels: int = 4, out_channels: int = 4,
                 center_input_sample: bool = False, flip_sin_to_cos: bool = True, freq_shift: int = 0,
                 down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                   "DownBlock2D"),
                 mid_block_type: str | None = "UNetMidBlock2DCrossAttn",
                 up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
                 only_cross_attention=False, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
                 downsample_padding: int = 1, mid_block_scale_factor: float = 1.0, dropout: float = 0.0,
                 act_fn: str = "silu", norm_num_groups: int = 32, norm_eps: float = 1e-5, cross_attention_dim=1280,
                 transformer_layers_per_block=1, attention_head_dim=8, num_attention_heads=None,
                 use_linear_projection: bool = False, upcast_attention: bool = False, time_embedding_dim=None,
                 conv_in_kernel: int = 3, conv_out_kernel: int = 3, generator=None):
        super().__init__()
        levels = len(block_out_channels)
        self._check_config(down_block_types, up_block_types, mid_block_type, levels, act_fn, norm_num_groups)
        # The SD v1 quirk (module docstring): without num_attention_heads, attention_head_dim holds the head count.
        heads = _per_level(num_attention_heads or attention_head_dim, "attention_head_dim", levels)
        layers = _per_level(layers_per_block, "layers_per_block", levels)
        depths = _per_level(transformer_layers_per_block, "transformer_layers_per_block", levels)
        only_cross = _per_level(only_cross_attention, "only_cross_attention", levels)
        context_dims = set(_per_level(cross_attention_dim, "cross_attention_dim", levels))
        if len(context_dims) != 1:  # one context feeds every block, so one width fits all
            raise ValueError(f"UNet2DConditionModel: cross_attention_dim must be the same at every level, got "
                             f"{cross_attention_dim}")
        self.cross_attention_dim = context_dims.pop()
        self.in_channels, self.levels = in_channels, levels
        self.center_input_sample = center_input_sample
        g = init.host_generator(generator)
        c0 = block_out_channels[0]
        temb_dim = time_embedding_dim or 4 * c0
        common = dict(temb_channels=temb_dim, resnet_eps=norm_eps, resnet_groups=norm_num_groups, dropout=dropout)
        attention = dict(cross_attention_dim=self.cross_attention_dim, use_linear_projection=use_linear_projection,
                         upcast_attention=upcast_attention)

        self.conv_in = Conv2d(in_channels, c0, conv_in_kernel, padding=(conv_in_kernel - 1) // 2, generator=g)
        self.time_proj = Timesteps(c0, flip_sin_to_cos, freq_shift)
        self.time_embedding = TimestepEmbedding(c0, temb_dim, act_fn="silu", generator=g)

        # Down path: level i maps block_out_channels[i-1] -> [i] channels and halves H, W (except the last level).
        down_blocks, channels = [], c0
        for i, kind in enumerate(down_block_types):
            extra = dict(transformer_layers_per_block=depths[i], num_attention_heads=heads[i],
                         only_cross_attention=only_cross[i], **attention) if kind.startswith("CrossAttn") else {}
            down_blocks.append(DOWN_BLOCKS[kind](
                channels, block_out_channels[i], num_layers=layers[i], add_downsample=i < levels - 1,
                downsample_padding=downsample_padding, generator=g, **common, **extra))
            channels = block_out_channels[i]
        self.down_blocks = ModuleList(down_blocks)

        self.mid_block = None if mid_block_type is None else MID_BLOCKS[mid_block_type](
            block_out_channels[-1], num_layers=1, transformer_layers_per_block=depths[-1],
            num_attention_heads=heads[-1], output_scale_factor=mid_block_scale_factor, generator=g, **common,
            **attention)

        # Up path, from the lowest resolution: up block i works at the resolution of down level r = levels-1-i.
        up_blocks, prev = [], block_out_channels[-1]
        for i, kind in enumerate(up_block_types):
            r = levels - 1 - i
            extra = dict(transformer_layers_per_block=depths[r], num_attention_heads=heads[r],
                         only_cross_attention=only_cross[r], **attention) if kind.startswith("CrossAttn") else {}
            up_blocks.append(UP_BLOCKS[kind](
                block_out_channels[max(r - 1, 0)], prev, block_out_channels[r], num_layers=layers[r] + 1,
                add_upsample=r > 0, generator=g, **common, **extra))
            prev = block_out_channels[r]
        self.up_blocks = ModuleList(up_blocks)

        self.conv_norm_out = GroupNorm(norm_num_groups, c0, eps=norm_eps)
        self.conv_act = SiLU()
        self.conv_out = Conv2d(c0, out_channels, conv_out_kernel, padding=(conv_out_kernel - 1) // 2, generator=g)

    @staticmethod
    def _check_config(down_block_types, up_block_types, mid_block_type, levels, act_fn, norm_num_groups):
        """Block types and options this implementation knows, with the offending values named."""
        if len(down_block_types) != levels or len(up_block_types) != levels:
            raise ValueError(f"UNet2DConditionModel: block_out_channels has {levels} levels, but there are "
                             f"{len(down_block_types)} down_block_types and {len(up_block_types)} up_block_types")
        unknown = [k for k in down_block_types if k not in DOWN_BLOCKS] + \
                  [k for k in up_block_types if k not in UP_BLOCKS] + \
                  ([mid_block_type] if mid_block_type is not None and mid_block_type not in MID_BLOCKS else [])
        if unknown:
            raise ValueError(f"UNet2DConditionModel: unsupported block types {unknown}; supported: down "
                             f"{sorted(DOWN_BLOCKS)}, up {sorted(UP_BLOCKS)}, mid ['UNetMidBlock2DCrossAttn', None]")
        if act_fn not in ("silu", "swish"):
            raise ValueError(f"UNet2DConditionModel: act_fn={act_fn!r} is not supported (only 'silu')")
        if not isinstance(norm_num_groups, int):
            raise ValueError(f"UNet2DConditionModel: norm_num_groups must be an int, got {norm_num_groups!r}")

    @classmethod
    def from_config(cls, config: dict, generator=None):
        """Build from a config dict, e.g. a diffusers ``unet/config.json`` (see ``ModelMixin.from_config``).

        diffusers options that minildm does not implement may appear at their default values (diffusers writes
        them all); a non-default value raises a ValueError that names every such option.
        """
        if isinstance(config, dict):
            bad = {k: config[k] for k, off in UNSUPPORTED_OPTIONS.items() if k in config and config[k] not in off}
            if bad:
                allowed = {k: UNSUPPORTED_OPTIONS[k][0] for k in bad}
                raise ValueError(f"UNet2DConditionModel: unsupported options {bad}; minildm implements only "
                                 f"{allowed}")
        return super().from_config(config, generator=generator)

    # -- forward ----------------------------------------------------------------------------------------------------
    def _timesteps(self, timestep, batch: int):
        """A Python number, 0-d array, (1,) or (B,) array/Tensor -> (B,) backend array (one timestep per sample)."""
        t = timestep.data if isinstance(timestep, Tensor) else backend.to_device(timestep)
        if t.ndim == 0 or t.shape == (1,):
            return backend.xp().broadcast_to(t.reshape(1), (batch,))
        if t.shape != (batch,):
            raise ValueError(f"UNet2DConditionModel: timestep must be a scalar or have shape ({batch},) (one per "
                             f"sample), got shape {tuple(t.shape)}")
        return t

    def _check_inputs(self, sample: Tensor, context: Tensor, mask) -> None:
        name = "UNet2DConditionModel"
        if sample.ndim != 4 or sample.shape[1] != self.in_channels:
            raise ValueError(f"{name}: sample must be (B, in_channels={self.in_channels}, H, W), got shape "
                             f"{sample.shape}")
        if context.ndim != 3:
            raise ValueError(f"{name}: encoder_hidden_states must be (B, S, {self.cross_attention_dim}), got shape "
                             f"{context.shape}")
        if context.shape[2] != self.cross_attention_dim:
            raise ValueError(f"{name}: encoder_hidden_states has dim {context.shape[2]}, expected "
                             f"cross_attention_dim={self.cross_attention_dim}")
        if context.shape[0] != sample.shape[0]:
            raise ValueError(f"{name}: batch sizes differ: sample has {sample.shape[0]}, encoder_hidden_states "
                             f"has {context.shape[0]}")
        factor = 2 ** (self.levels - 1)
        if sample.shape[2] % factor or sample.shape[3] % factor:
            raise ValueError(f"{name}: sample height and width must be divisible by {factor} = 2 ** "
                             f"{self.levels - 1} (one halving per downsampling), got {sample.shape[2]}x"
                             f"{sample.shape[3]}")
        if mask is not None and tuple(mask.shape) != context.shape[:2]:
            raise ValueError(f"{name}: encoder_attention_mask must be (B, S) = {context.shape[:2]}, got shape "
                             f"{tuple(mask.shape)}")

    def forward(self, sample, timestep, encoder_hidden_states, encoder_attention_mask=None) -> Tensor:
        """Predict the noise in ``sample``.

        Args:
            sample: noisy latents x_t, (B, in_channels, H, W), H and W divisible by 2 ** (levels - 1).
            timestep: a Python int/float, a 0-d array, or one per sample (B,) (array or Tensor).
            encoder_hidden_states: the context, (B, S, cross_attention_dim).
            encoder_attention_mask: optional (B, S) keep-mask (1/True = a real token, 0/False = padding); masked
                tokens get diffusers' additive bias -10000 in every cross-attention.
        Returns:
            the prediction, a Tensor (B, out_channels, H, W) — not diffusers' output object, so no ``.sample``.
        """
        sample, context = as_tensor(sample), as_tensor(encoder_hidden_states)
        mask = None if encoder_attention_mask is None else as_tensor(encoder_attention_mask)
        self._check_inputs(sample, context, mask)
        temb = self.time_proj(self._timesteps(timestep, sample.shape[0]))
        if temb.dtype != sample.dtype:  # the sinusoids are float32; a float16 model works in float16
            temb = temb.astype(sample.dtype)
        temb = self.time_embedding(temb)  # (B, time_embedding_dim), 4 C0 by default
        if self.center_input_sample:
            sample = 2 * sample - 1.0

        h = self.conv_in(sample)
        skips = [h]  # a stack: the down path pushes, the up path pops
        for block in self.down_blocks:
            h, block_skips = block(h, temb, context, mask)
            skips.extend(block_skips)
        if self.mid_block is not None:
            h = self.mid_block(h, temb, context, mask)
        for block in self.up_blocks:
            block_skips = [skips.pop() for _ in block.resnets]  # the most recent (same resolution) first
            h = block(h, block_skips, temb, context, mask)
        return self.conv_out(self.conv_act(self.conv_norm_out(h)))
