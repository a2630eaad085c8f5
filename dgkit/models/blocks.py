"""Building blocks shared by DG's networks (StarGAN-v2 style; SPEC §2.1).

All LeakyReLUs use slope 0.2. InstanceNorm keeps no running statistics, so no buffers appear in state dicts.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LRELU_SLOPE = 0.2


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, LRELU_SLOPE)


class ResBlk(nn.Module):
    """Pre-activation residual block: ``(shortcut(x) + residual(x)) / sqrt(2)``.

    shortcut = [1x1 conv (no bias) if cin != cout] -> [2x2 avg-pool if downsample]
    residual = [IN_aff] -> LReLU -> conv3x3(cin->cin) -> [avg-pool] -> [IN_aff] -> LReLU -> conv3x3(cin->cout)
    """

    def __init__(self, dim_in: int, dim_out: int, normalize: bool = False, downsample: bool = False):
        super().__init__()
        self.normalize = normalize
        self.downsample = downsample
        self.learned_sc = dim_in != dim_out
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        if normalize:
            self.norm1 = nn.InstanceNorm2d(dim_in, affine=True)
            self.norm2 = nn.InstanceNorm2d(dim_in, affine=True)
        if self.learned_sc:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.learned_sc:
            x = self.conv1x1(x)
        if self.downsample:
            x = F.avg_pool2d(x, 2)
        return x

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            x = self.norm1(x)
        x = self.conv1(lrelu(x))
        if self.downsample:
            x = F.avg_pool2d(x, 2)
        if self.normalize:
            x = self.norm2(x)
        return self.conv2(lrelu(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self._shortcut(x) + self._residual(x)) / math.sqrt(2)


class AdaIN(nn.Module):
    """Adaptive instance norm: ``(1 + gamma(s)) * IN(x) + beta(s)`` with ``[gamma, beta] = fc(s)``."""

    def __init__(self, style_dim: int, num_features: int):
        super().__init__()
        self.norm = nn.InstanceNorm2d(num_features, affine=False)
        self.fc = nn.Linear(style_dim, num_features * 2)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        h = self.fc(s)[:, :, None, None]
        gamma, beta = torch.chunk(h, chunks=2, dim=1)
        return (1 + gamma) * self.norm(x) + beta


class AdainResBlk(nn.Module):
    """Style-modulated residual block of the generator's decoder (w_hpf = 0, no noise).

    shortcut = [nearest x2 if upsample] -> [1x1 conv (no bias) if cin != cout]
    residual = AdaIN -> LReLU -> [x2] -> conv3x3(cin->cout) -> AdaIN -> LReLU -> conv3x3(cout->cout)
    """

    def __init__(self, dim_in: int, dim_out: int, style_dim: int = 128, upsample: bool = False):
        super().__init__()
        self.upsample = upsample
        self.learned_sc = dim_in != dim_out
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, 1, 1)
        self.norm1 = AdaIN(style_dim, dim_in)
        self.norm2 = AdaIN(style_dim, dim_out)
        if self.learned_sc:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        if self.learned_sc:
            x = self.conv1x1(x)
        return x

    def _residual(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        x = lrelu(self.norm1(x, s))
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv1(x)
        x = lrelu(self.norm2(x, s))
        return self.conv2(x)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return (self._residual(x, s) + self._shortcut(x)) / math.sqrt(2)
