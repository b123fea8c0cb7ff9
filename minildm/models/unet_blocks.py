"""The five blocks of the Stable Diffusion U-Net, with diffusers' names (so its state dicts load as they are).

One *level* of the U-Net (Ronneberger et al. 2015) works at one resolution. On the way down a level runs
``num_layers`` ResNet blocks, each optionally followed by a transformer (self-attention over the pixels,
cross-attention to the text: Rombach et al. 2022, sec. 3.3), then halves the resolution. Every intermediate
result is kept as a *skip connection*. On the way up a level concatenates one skip to its input before every
ResNet block and finally doubles the resolution:

    DownBlock2D            [resnet] x num_layers                     -> downsample      (pushes num_layers + 1 skips)
    CrossAttnDownBlock2D   [resnet -> transformer] x num_layers      -> downsample
    UNetMidBlock2DCrossAttn  resnet -> [transformer -> resnet] x num_layers             (the bottleneck, no skips)
    UpBlock2D              [cat(h, skip) -> resnet] x num_layers     -> upsample        (pops num_layers skips)
    CrossAttnUpBlock2D     [cat(h, skip) -> resnet -> transformer] x num_layers -> upsample

A "Cross-attention" block is its plain twin plus a ``Transformer2DModel`` after each ResNet, so it is written as a
subclass that adds ``attentions``. Up blocks have one layer more than down blocks (the U-Net passes
``layers_per_block + 1``), which is exactly what it takes to consume every skip the down path pushed.

Every constructor takes ``generator`` (an int seed or host Generator) and hands ONE generator to all its children,
so a block is a deterministic function of its seed.
"""
from __future__ import annotations

from ..autograd import cat
from ..nn import Downsample2D, ModuleList, Module, ResnetBlock2D, Transformer2DModel, Upsample2D, init


def _transformers(channels: int, num_layers: int, transformer_layers, num_attention_heads: int,
                  cross_attention_dim: int, resnet_groups: int, use_linear_projection: bool,
                  only_cross_attention: bool, upcast_attention: bool, generator) -> ModuleList:
    """One Transformer2DModel per ResNet layer, ``channels // heads`` wide per head (diffusers' rule)."""
    if channels % num_attention_heads:
        raise ValueError(f"{channels} channels cannot be split into {num_attention_heads} attention heads")
    depths = [transformer_layers] * num_layers if isinstance(transformer_layers, int) else list(transformer_layers)
    return ModuleList([
        Transformer2DModel(num_attention_heads, channels // num_attention_heads, channels, num_layers=depth,
                           cross_attention_dim=cross_attention_dim, norm_num_groups=resnet_groups,
                           use_linear_projection=use_linear_projection, only_cross_attention=only_cross_attention,
                           upcast_attention=upcast_attention, generator=generator)
        for depth in depths])


class DownBlock2D(Module):
    """ResNet blocks at one resolution, then a stride-2 3x3 conv that halves it.

    Args:
        in_channels, out_channels: C_in of the first ResNet block, C_out of all of them.
        temb_channels: width of the time embedding.  num_layers: ResNet blocks.
        resnet_eps, resnet_groups: GroupNorm epsilon and groups.  dropout: inside the ResNet blocks.
        add_downsample: False for the last (lowest-resolution) level.  downsample_padding: of the stride-2 conv.
        generator: int seed or host Generator.
    forward(hidden_states (B, C_in, H, W), temb (B, temb_channels), encoder_hidden_states=None,
            encoder_attention_mask=None) -> (h, skips): h (B, C_out, H/2, W/2) (H, W without downsampling),
            skips: list of the num_layers (+1 with downsampling) intermediate states, in order.
    """

    has_cross_attention = False

    def __init__(self, in_channels: int, out_channels: int, temb_channels: int, num_layers: int = 1,
                 resnet_eps: float = 1e-6, resnet_groups: int = 32, dropout: float = 0.0,
                 add_downsample: bool = True, downsample_padding: int = 1, generator=None):
        super().__init__()
        g = init.host_generator(generator)
        self.resnets = ModuleList([
            ResnetBlock2D(in_channels if i == 0 else out_channels, out_channels, temb_channels, groups=resnet_groups,
                          eps=resnet_eps, dropout=dropout, generator=g)
            for i in range(num_layers)])
        self.attentions = None
        self.downsamplers = ModuleList([Downsample2D(out_channels, use_conv=True, out_channels=out_channels,
                                                     padding=downsample_padding, generator=g)]) \
            if add_downsample else None

    def forward(self, hidden_states, temb, encoder_hidden_states=None, encoder_attention_mask=None):
        h, skips = hidden_states, []
        for i, resnet in enumerate(self.resnets):
            h = resnet(h, temb)
            if self.attentions is not None:
                h = self.attentions[i](h, encoder_hidden_states, encoder_attention_mask=encoder_attention_mask)
            skips.append(h)
        if self.downsamplers is not None:
            h = self.downsamplers[0](h)
            skips.append(h)
        return h, skips


class CrossAttnDownBlock2D(DownBlock2D):
    """DownBlock2D with a Transformer2DModel after every ResNet block (same forward, same skips).

    Extra args: transformer_layers_per_block (int, or one per layer), num_attention_heads, cross_attention_dim
    (width of the text states), use_linear_projection, only_cross_attention, upcast_attention (see
    ``Transformer2DModel``). forward needs encoder_hidden_states (B, S, cross_attention_dim).
    """

    has_cross_attention = True

    def __init__(self, in_channels: int, out_channels: int, temb_channels: int, num_layers: int = 1,
                 transformer_layers_per_block=1, resnet_eps: float = 1e-6, resnet_groups: int = 32,
                 dropout: float = 0.0, num_attention_heads: int = 1, cross_attention_dim: int = 1280,
                 add_downsample: bool = True, downsample_padding: int = 1, use_linear_projection: bool = False,
                 only_cross_attention: bool = False, upcast_attention: bool = False, generator=None):
        g = init.host_generator(generator)
        super().__init__(in_channels, out_channels, temb_channels, num_layers=num_layers, resnet_eps=resnet_eps,
                         resnet_groups=resnet_groups, dropout=dropout, add_downsample=add_downsample,
                         downsample_padding=downsample_padding, generator=g)
        self.attentions = _transformers(out_channels, num_layers, transformer_layers_per_block, num_attention_heads,
                                        cross_attention_dim, resnet_groups, use_linear_projection,
                                        only_cross_attention, upcast_attention, g)


class UNetMidBlock2DCrossAttn(Module):
    """The bottleneck at the lowest resolution: resnet -> [transformer -> resnet] x num_layers (C channels throughout).

    Args: in_channels (C), temb_channels, num_layers, transformer_layers_per_block, resnet_eps, resnet_groups,
        dropout, num_attention_heads, output_scale_factor (divides each ResNet block's residual sum: diffusers'
        ``mid_block_scale_factor``), cross_attention_dim, use_linear_projection, upcast_attention, generator.
    forward(hidden_states (B, C, H, W), temb, encoder_hidden_states, encoder_attention_mask=None) -> (B, C, H, W)
    """

    has_cross_attention = True

    def __init__(self, in_channels: int, temb_channels: int, num_layers: int = 1, transformer_layers_per_block=1,
                 resnet_eps: float = 1e-6, resnet_groups: int = 32, dropout: float = 0.0,
                 num_attention_heads: int = 1, output_scale_factor: float = 1.0, cross_attention_dim: int = 1280,
                 use_linear_projection: bool = False, upcast_attention: bool = False, generator=None):
        super().__init__()
        g = init.host_generator(generator)
        self.resnets = ModuleList([
            ResnetBlock2D(in_channels, in_channels, temb_channels, groups=resnet_groups, eps=resnet_eps,
                          dropout=dropout, output_scale_factor=output_scale_factor, generator=g)
            for _ in range(num_layers + 1)])
        self.attentions = _transformers(in_channels, num_layers, transformer_layers_per_block, num_attention_heads,
                                        cross_attention_dim, resnet_groups, use_linear_projection, False,
                                        upcast_attention, g)

    def forward(self, hidden_states, temb, encoder_hidden_states, encoder_attention_mask=None):
        h = self.resnets[0](hidden_states, temb)
        for attention, resnet in zip(self.attentions, self.resnets[1:]):
            h = attention(h, encoder_hidden_states, encoder_attention_mask=encoder_attention_mask)
            h = resnet(h, temb)
        return h


class UpBlock2D(Module):
    """ResNet blocks that each take one skip connection (concatenated on the channels), then a x2 upsampling.

    Args:
        in_channels: channels of the skip consumed by the *last* ResNet block (the level below's output).
        prev_output_channel: channels of the incoming h (the output of the previous up block, or the mid block).
        out_channels: C_out of every ResNet block; also the channels of the other skips.
        temb_channels, num_layers, resnet_eps, resnet_groups, dropout: as in DownBlock2D.
        add_upsample: False for the last (full-resolution) level.  generator: int seed or host Generator.
    forward(hidden_states (B, prev_output_channel, H, W), skips, temb, encoder_hidden_states=None,
            encoder_attention_mask=None) -> (B, C_out, 2H, 2W) (H, W without upsampling).
        ``skips``: num_layers arrays (B, C_skip, H, W), in the order they are consumed: the most recent first.
    """

    has_cross_attention = False

    def __init__(self, in_channels: int, prev_output_channel: int, out_channels: int, temb_channels: int,
                 num_layers: int = 1, resnet_eps: float = 1e-6, resnet_groups: int = 32, dropout: float = 0.0,
                 add_upsample: bool = True, generator=None):
        super().__init__()
        g = init.host_generator(generator)
        resnets = []
        for i in range(num_layers):
            h_channels = prev_output_channel if i == 0 else out_channels
            skip_channels = in_channels if i == num_layers - 1 else out_channels
            resnets.append(ResnetBlock2D(h_channels + skip_channels, out_channels, temb_channels,
                                         groups=resnet_groups, eps=resnet_eps, dropout=dropout, generator=g))
        self.resnets = ModuleList(resnets)
        self.attentions = None
        self.upsamplers = ModuleList([Upsample2D(out_channels, use_conv=True, out_channels=out_channels,
                                                 generator=g)]) if add_upsample else None

    def forward(self, hidden_states, skips, temb, encoder_hidden_states=None, encoder_attention_mask=None):
        if len(skips) != len(self.resnets):
            raise ValueError(f"{type(self).__name__}: expected {len(self.resnets)} skip connections, got {len(skips)}")
        h = hidden_states
        for i, (resnet, skip) in enumerate(zip(self.resnets, skips)):
            h = resnet(cat([h, skip], axis=1), temb)  # the U-Net's skip connection: features from the way down
            if self.attentions is not None:
                h = self.attentions[i](h, encoder_hidden_states, encoder_attention_mask=encoder_attention_mask)
        if self.upsamplers is not None:
            h = self.upsamplers[0](h)
        return h


class CrossAttnUpBlock2D(UpBlock2D):
    """UpBlock2D with a Transformer2DModel after every ResNet block; extra args as in CrossAttnDownBlock2D."""

    has_cross_attention = True

    def __init__(self, in_channels: int, prev_output_channel: int, out_channels: int, temb_channels: int,
                 num_layers: int = 1, transformer_layers_per_block=1, resnet_eps: float = 1e-6,
                 resnet_groups: int = 32, dropout: float = 0.0, num_attention_heads: int = 1,
                 cross_attention_dim: int = 1280, add_upsample: bool = True, use_linear_projection: bool = False,
                 only_cross_attention: bool = False, upcast_attention: bool = False, generator=None):
        g = init.host_generator(generator)
        super().__init__(in_channels, prev_output_channel, out_channels, temb_channels, num_layers=num_layers,
                         resnet_eps=resnet_eps, resnet_groups=resnet_groups, dropout=dropout,
                         add_upsample=add_upsample, generator=g)
        self.attentions = _transformers(out_channels, num_layers, transformer_layers_per_block, num_attention_heads,
                                        cross_attention_dim, resnet_groups, use_linear_projection,
                                        only_cross_attention, upcast_attention, g)
