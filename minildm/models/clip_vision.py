"""``CLIPVisionCNN``: the image tower of minildm's miniature CLIP (Radford et al. 2021, sec. 2.4).

CLIP pairs a text encoder with an image encoder and trains both so that an image and its caption land on nearby
points of one shared embedding space. The real CLIP's image tower is a ResNet or a ViT on 224x224 photos; for
32x32 pictures of coloured shapes a few convolutions are plenty:

    images (B, 3, 32, 32) in [-1, 1]
      ─► conv_in 3x3                                  (B, c0, 32, 32)
      ─► per stage: [3x3 conv stride 2 ─► GroupNorm ─► SiLU ─► 3x3 conv ─► GroupNorm ─► SiLU]
                                                      (B, c, 16, 16) ─► ... ─► (B, c_last, 4, 4)
      ─► flatten ─► Linear (the visual projection)    (B, projection_dim)   the image embedding

Why flatten rather than average-pool at the end (as ResNets do)? A caption says *where* the object is ("at the
top left"); a global average would throw that away, while a linear map of the whole 4x4 grid of features keeps
every position apart.
"""
from __future__ import annotations

from .. import nn
from ..nn import init
from .modeling_utils import ModelMixin


class VisionStage(nn.Module):
    """Halve the resolution, then one more 3x3 conv: (B, C_in, H, W) -> (B, C_out, H/2, W/2)."""

    def __init__(self, in_channels: int, out_channels: int, groups: int, generator=None):
        super().__init__()
        g = init.host_generator(generator)
        self.downsample = nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, generator=g)
        self.norm1 = nn.GroupNorm(groups, out_channels)
        self.conv = nn.Conv2d(out_channels, out_channels, 3, padding=1, generator=g)
        self.norm2 = nn.GroupNorm(groups, out_channels)
        self.act = nn.SiLU()

    def forward(self, x):
        x = self.act(self.norm1(self.downsample(x)))
        return self.act(self.norm2(self.conv(x)))


class CLIPVisionCNN(ModelMixin, nn.Module):
    """A small CNN that maps images to CLIP's joint embedding space.

    Args:
        image_size: side of the (square) input images; must be divisible by 2 ** len(channels).
        in_channels: 3 for RGB.
        channels: output channels of each stage; stage i works at image_size / 2 ** (i + 1).
        projection_dim: width of the image embedding (the same as the text projection's).
        norm_num_groups: GroupNorm groups; must divide every entry of ``channels``.
        generator: int seed or host Generator for the initial weights.
    forward(images (B, in_channels, S, S)) -> (B, projection_dim), not normalised (the CLIP loss normalises).
    """

    def __init__(self, image_size: int = 32, in_channels: int = 3, channels=(32, 64, 128), projection_dim: int = 64,
                 norm_num_groups: int = 8, generator=None):
        super().__init__()
        channels = [int(c) for c in channels]
        side = image_size // 2 ** len(channels)
        if side < 1 or image_size % 2 ** len(channels):
            raise ValueError(f"CLIPVisionCNN: image_size={image_size} is not divisible by 2 ** {len(channels)} "
                             f"(one halving per stage in channels={channels})")
        bad = [c for c in channels if c % norm_num_groups]
        if bad:
            raise ValueError(f"CLIPVisionCNN: norm_num_groups={norm_num_groups} does not divide channels {bad}")
        g = init.host_generator(generator)
        self.image_size, self.in_channels = image_size, in_channels
        self.conv_in = nn.Conv2d(in_channels, channels[0], 3, padding=1, generator=g)
        self.stages = nn.ModuleList([VisionStage(c_in, c_out, norm_num_groups, generator=g)
                                     for c_in, c_out in zip(channels[:1] + channels[:-1], channels)])
        self.visual_projection = nn.Linear(channels[-1] * side * side, projection_dim, generator=g)

    def forward(self, images):
        x = nn.module.as_tensor(images)
        if x.ndim != 4 or x.shape[1:] != (self.in_channels, self.image_size, self.image_size):
            raise ValueError(f"CLIPVisionCNN: expected images (B, {self.in_channels}, {self.image_size}, "
                             f"{self.image_size}), got shape {x.shape}")
        h = self.conv_in(x)
        for stage in self.stages:
            h = stage(h)
        return self.visual_projection(h.flatten(1))   # (B, c_last * side * side) -> (B, projection_dim)
