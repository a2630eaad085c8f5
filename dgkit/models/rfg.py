"""RFG, the Reenacted Face Generator (SPEC §2.2, §2.3, §5.1): sketch + source style -> face.

Key names match the released checkpoint ``expr/checkpoints/501500_nets_ema.ckpt``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .blocks import AdainResBlk, ResBlk, lrelu


class Generator(nn.Module):
    """Sketch (N,3,256,256) + style (N,128) -> RGB face (N,3,256,256) in (0,1) (sigmoid head).

    Encoder: conv3x3 3->64, then 4 normalized down-sampling ResBlks (64->128->256->512->512, 256px -> 16px).
    Decoder: 4 AdainResBlk(512,512) at 16px, then 4 up-sampling ones (512->512->256->128->64, 16px -> 256px).
    No encoder-decoder skips. ``to_rgb_lm`` exists in the checkpoint but is never called.
    """

    def __init__(self, img_size: int = 256, style_dim: int = 128, max_conv_dim: int = 512):
        super().__init__()
        dim_in = 64
        self.from_rgb = nn.Conv2d(3, dim_in, 3, 1, 1)
        encode, up_blocks = [], []
        for _ in range(4):  # 256 -> 16 px
            dim_out = min(dim_in * 2, max_conv_dim)
            encode.append(ResBlk(dim_in, dim_out, normalize=True, downsample=True))
            up_blocks.insert(0, AdainResBlk(dim_out, dim_in, style_dim, upsample=True))
            dim_in = dim_out
        bottleneck = [AdainResBlk(dim_out, dim_out, style_dim) for _ in range(4)]
        self.encode = nn.ModuleList(encode)
        self.decode = nn.ModuleList(bottleneck + up_blocks)
        self.to_rgb = nn.Sequential(nn.InstanceNorm2d(64, affine=True), nn.LeakyReLU(0.2), nn.Conv2d(64, 3, 1, 1, 0))
        self.to_rgb_lm = nn.Sequential(nn.InstanceNorm2d(64, affine=True), nn.LeakyReLU(0.2), nn.Conv2d(64, 4, 1, 1, 0))

    def forward(self, sketch: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        x = self.from_rgb(sketch)
        for block in self.encode:
            x = block(x)
        for block in self.decode:
            x = block(x, style)
        return torch.sigmoid(self.to_rgb(x))


class StyleEncoder(nn.Module):
    """Source photo (N,3,256,256) RGB in [0,1] -> style code (N,128). Single head (no StarGAN domains)."""

    def __init__(self, img_size: int = 256, style_dim: int = 128, max_conv_dim: int = 512):
        super().__init__()
        dim_in = 64
        blocks: list[nn.Module] = [nn.Conv2d(3, dim_in, 3, 1, 1)]
        for _ in range(6):  # 256 -> 4 px
            dim_out = min(dim_in * 2, max_conv_dim)
            blocks.append(ResBlk(dim_in, dim_out, downsample=True))
            dim_in = dim_out
        blocks += [nn.LeakyReLU(0.2), nn.Conv2d(dim_out, dim_out, 4, 1, 0), nn.LeakyReLU(0.2)]
        self.shared = nn.Sequential(*blocks)
        self.fc = nn.Linear(dim_out, style_dim)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.fc(self.shared(image).flatten(1))


class SketchDiscriminator(nn.Module):
    """Conditional discriminator for RFG training: concat(image, sketch) (N,6,256,256) -> one logit (N,).

    conv3x3 6->64, log2(img_size)-2 un-normalized down-sampling ResBlks (six at 256 px: 64->...->512), LReLU,
    conv4x4 valid, LReLU, conv1x1. Training only; not part of the released checkpoint.
    """

    def __init__(self, img_size: int = 256, max_conv_dim: int = 512, in_channels: int = 6):
        super().__init__()
        dim_in = 64
        blocks: list[nn.Module] = [nn.Conv2d(in_channels, dim_in, 3, 1, 1)]
        for _ in range(int(math.log2(img_size)) - 2):  # down to a 4x4 map: 6 blocks at 256 px
            dim_out = min(dim_in * 2, max_conv_dim)
            blocks.append(ResBlk(dim_in, dim_out, downsample=True))
            dim_in = dim_out
        blocks += [nn.LeakyReLU(0.2), nn.Conv2d(dim_out, dim_out, 4, 1, 0), nn.LeakyReLU(0.2),
                   nn.Conv2d(dim_out, 1, 1, 1, 0)]
        self.main = nn.Sequential(*blocks)

    def forward(self, image: torch.Tensor, sketch: torch.Tensor) -> torch.Tensor:
        return self.main(torch.cat([image, sketch], dim=1)).flatten()


__all__ = ["Generator", "StyleEncoder", "SketchDiscriminator", "lrelu"]
