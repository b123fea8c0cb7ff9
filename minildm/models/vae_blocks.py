"""The two halves of the Stable Diffusion autoencoder (Rombach et al. 2022, sec. 3.1 and appendix G), diffusers' names.

    Encoder   image (B, 3, H, W)
              conv_in ─► down_blocks: per level, resnets, then a stride-2 conv (not after the last level)
              ─► mid_block: resnet, self-attention over the H*W pixels, resnet
              ─► GroupNorm, SiLU, conv_out ─► (B, 2 * latent_channels, H/f, W/f)   mean and log-variance
    Decoder   latent (B, latent_channels, H/f, W/f)
              conv_in ─► mid_block ─► up_blocks: per level (widest first), resnets, then nearest x2 + conv
              ─► GroupNorm, SiLU, conv_out ─► (B, 3, H, W)

with f = 2 ** (number of levels - 1). The blocks are the U-Net's without time conditioning (``temb_channels=None``):
an autoencoder does the same thing at every call. The decoder has one more resnet per level than the encoder, and
the only attention sits in the mid blocks, at the lowest resolution, where it is cheapest and sees the whole image.
"""
from __future__ import annotations

from .. import nn
from ..nn import init

RESNET_EPS = 1e-6  # the VAE's GroupNorm epsilon (the original LDM code's value), in every block below


def _check_input(who: str, x, channels: int):
    """Errors that name the module and the shapes, instead of a broadcasting error deep inside a conv."""
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{who}: expected input (B, {channels}, H, W), got shape {tuple(x.shape)}")


class DownEncoderBlock2D(nn.Module):
    """``num_layers`` resnets (in_channels -> out_channels), then optionally a stride-2 conv that halves H and W.

    The downsampler pads one row at the bottom and one column at the right and uses no symmetric padding
    (``padding=0``): the encoder of LDM does this, so its weights expect it.
    Shapes: (B, in_channels, H, W) -> (B, out_channels, H/2, W/2) (or H, W without downsampling).
    """

    def __init__(self, in_channels: int, out_channels: int, num_layers: int = 1, resnet_groups: int = 32,
                 add_downsample: bool = True, generator=None):
        super().__init__()
        g = init.host_generator(generator)
        self.in_channels = in_channels
        self.resnets = nn.ModuleList([
            nn.ResnetBlock2D(in_channels if i == 0 else out_channels, out_channels, temb_channels=None,
                             groups=resnet_groups, eps=RESNET_EPS, generator=g)
            for i in range(num_layers)])
        self.downsamplers = nn.ModuleList(
            [nn.Downsample2D(out_channels, use_conv=True, padding=0, generator=g)] if add_downsample else [])

    def forward(self, x):
        for resnet in self.resnets:
            x = resnet(x)
        for downsampler in self.downsamplers:
            x = downsampler(x)
        return x


class UpDecoderBlock2D(nn.Module):
    """``num_layers`` resnets (in_channels -> out_channels), then optionally nearest-neighbour x2 and a 3x3 conv.

    Shapes: (B, in_channels, h, w) -> (B, out_channels, 2h, 2w) (or h, w without upsampling).
    """

    def __init__(self, in_channels: int, out_channels: int, num_layers: int = 1, resnet_groups: int = 32,
                 add_upsample: bool = True, generator=None):
        super().__init__()
        g = init.host_generator(generator)
        self.resnets = nn.ModuleList([
            nn.ResnetBlock2D(in_channels if i == 0 else out_channels, out_channels, temb_channels=None,
                             groups=resnet_groups, eps=RESNET_EPS, generator=g)
            for i in range(num_layers)])
        self.upsamplers = nn.ModuleList(
            [nn.Upsample2D(out_channels, use_conv=True, generator=g)] if add_upsample else [])

    def forward(self, x):
        for resnet in self.resnets:
            x = resnet(x)
        for upsampler in self.upsamplers:
            x = upsampler(x)
        return x


class UNetMidBlock2D(nn.Module):
    """resnet, then (attention, resnet) ``num_layers`` times, all at ``channels`` and the lowest resolution.

    The attention is one head as wide as the channels over the H*W pixels, with its own GroupNorm in front and
    the input added back (diffusers' ``Attention`` with ``residual_connection=True``; LDM's ``AttnBlock``).
    ``add_attention=False`` leaves only the resnets (diffusers' ``mid_block_add_attention``).
    Shapes: (B, channels, h, w) -> same.
    """

    def __init__(self, channels: int, resnet_groups: int = 32, num_layers: int = 1, add_attention: bool = True,
                 generator=None):
        super().__init__()
        g = init.host_generator(generator)

        def resnet():
            return nn.ResnetBlock2D(channels, channels, temb_channels=None, groups=resnet_groups, eps=RESNET_EPS,
                                    generator=g)

        self.add_attention = add_attention
        # diffusers' order of construction, so a seeded model draws its numbers in the same sequence of layers
        resnets, attentions = [resnet()], []
        for _ in range(num_layers):
            if add_attention:
                attentions.append(nn.Attention(channels, heads=1, dim_head=channels, bias=True,
                                               norm_num_groups=resnet_groups, eps=RESNET_EPS,
                                               residual_connection=True, upcast_softmax=True, generator=g))
            resnets.append(resnet())
        self.attentions = nn.ModuleList(attentions)  # empty without attention: no keys in the state dict
        self.resnets = nn.ModuleList(resnets)

    def forward(self, x):
        x = self.resnets[0](x)
        for i in range(1, len(self.resnets)):
            if self.add_attention:
                x = self.attentions[i - 1](x)
            x = self.resnets[i](x)
        return x


def _check_block_types(who: str, kind: str, block_types, expected: str, block_out_channels) -> None:
    wrong = [t for t in block_types if t != expected]
    if wrong:
        raise ValueError(f"{who}: unsupported {kind} {wrong}; minildm's autoencoder supports only {expected!r}")
    if len(block_types) != len(block_out_channels):
        raise ValueError(f"{who}: {len(block_types)} {kind} but {len(block_out_channels)} block_out_channels "
                         f"{list(block_out_channels)}; give one per level")


class Encoder(nn.Module):
    """Image -> the parameters of the latent Gaussian: (B, in_channels, H, W) -> (B, 2 * out_channels, H/f, W/f)
    (``double_z``: a mean and a log-variance per latent channel), f = 2 ** (len(block_out_channels) - 1)."""

    def __init__(self, in_channels: int = 3, out_channels: int = 4, down_block_types=("DownEncoderBlock2D",),
                 block_out_channels=(64,), layers_per_block: int = 2, norm_num_groups: int = 32,
                 double_z: bool = True, mid_block_add_attention: bool = True, generator=None):
        super().__init__()
        _check_block_types("Encoder", "down_block_types", down_block_types, "DownEncoderBlock2D", block_out_channels)
        g = init.host_generator(generator)
        self.in_channels = in_channels
        self.conv_in = nn.Conv2d(in_channels, block_out_channels[0], 3, padding=1, generator=g)
        self.down_blocks = nn.ModuleList()
        for i, channels in enumerate(block_out_channels):
            previous = block_out_channels[max(i - 1, 0)]
            last = i == len(block_out_channels) - 1
            self.down_blocks.append(DownEncoderBlock2D(previous, channels, num_layers=layers_per_block,
                                                       resnet_groups=norm_num_groups, add_downsample=not last,
                                                       generator=g))
        self.mid_block = UNetMidBlock2D(block_out_channels[-1], resnet_groups=norm_num_groups,
                                        add_attention=mid_block_add_attention, generator=g)
        self.conv_norm_out = nn.GroupNorm(norm_num_groups, block_out_channels[-1], eps=RESNET_EPS)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(block_out_channels[-1], 2 * out_channels if double_z else out_channels, 3,
                                  padding=1, generator=g)

    def forward(self, x):
        _check_input("Encoder", x, self.in_channels)
        x = self.conv_in(x)
        for block in self.down_blocks:
            x = block(x)
        x = self.mid_block(x)
        return self.conv_out(self.conv_act(self.conv_norm_out(x)))


class Decoder(nn.Module):
    """Latent -> image: (B, in_channels, h, w) -> (B, out_channels, h * f, w * f). Each level has
    ``layers_per_block + 1`` resnets (one more than the encoder's); the levels run from the widest channels down."""

    def __init__(self, in_channels: int = 4, out_channels: int = 3, up_block_types=("UpDecoderBlock2D",),
                 block_out_channels=(64,), layers_per_block: int = 2, norm_num_groups: int = 32,
                 mid_block_add_attention: bool = True, generator=None):
        super().__init__()
        _check_block_types("Decoder", "up_block_types", up_block_types, "UpDecoderBlock2D", block_out_channels)
        g = init.host_generator(generator)
        self.in_channels = in_channels
        self.conv_in = nn.Conv2d(in_channels, block_out_channels[-1], 3, padding=1, generator=g)
        self.mid_block = UNetMidBlock2D(block_out_channels[-1], resnet_groups=norm_num_groups,
                                        add_attention=mid_block_add_attention, generator=g)
        reversed_channels = list(reversed(block_out_channels))
        self.up_blocks = nn.ModuleList()
        for i, channels in enumerate(reversed_channels):
            previous = reversed_channels[max(i - 1, 0)]
            last = i == len(reversed_channels) - 1
            self.up_blocks.append(UpDecoderBlock2D(previous, channels, num_layers=layers_per_block + 1,
                                                   resnet_groups=norm_num_groups, add_upsample=not last,
                                                   generator=g))
        self.conv_norm_out = nn.GroupNorm(norm_num_groups, block_out_channels[0], eps=RESNET_EPS)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(block_out_channels[0], out_channels, 3, padding=1, generator=g)

    def forward(self, z):
        _check_input("Decoder", z, self.in_channels)
        x = self.mid_block(self.conv_in(z))
        for block in self.up_blocks:
            x = block(x)
        return self.conv_out(self.conv_act(self.conv_norm_out(x)))
