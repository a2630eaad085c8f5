"""RFG, the Reenacted Face Generator (docs/how-dg-works.md §7): sketch + source style -> face.

Key names match the released checkpoint ``expr/checkpoints/501500_nets_ema.ckpt``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .blocks import AdainResBlk, InstanceNorm, ResBlk, lrelu


def _as_dtype_of(x: torch.Tensor, module: nn.Module) -> torch.Tensor:
    """``x`` in the dtype of ``module``'s first parameter (no copy when it already is)."""
    return x.to(next(module.parameters()).dtype)


def calibrate_contrast(generator: "Generator", sketch: torch.Tensor, style: torch.Tensor,
                       target_std: float = 0.25) -> float:
    """Scale the generator's last 1x1 convolution (``to_rgb.2``) in place so its output has ``target_std``.

    Untrained (synthetic) weights give a nearly flat grey face: small logits before the sigmoid, which hides
    rounding errors of lower precisions. Real faces have a standard deviation of about 0.25 (on the [0,1]
    scale); this makes a synthetic generator as contrasted, for fidelity measurements only.

    Args:
        generator: a float32 :class:`Generator` (changed in place: pass a copy to keep the original).
        sketch: (N,3,256,256) generator input; style: (N,128) style codes.
    Returns:
        the factor applied to ``to_rgb.2``'s weight and bias.
    """
    conv = generator.to_rgb[2]
    features: list[torch.Tensor] = []
    hook = conv.register_forward_hook(lambda _m, inputs, _out: features.append(inputs[0]))
    try:
        with torch.inference_mode():
            generator(sketch, style)
    finally:
        hook.remove()
    with torch.inference_mode():
        logits = conv(features[0]).float()
        lo, hi = 0.0, 1.0
        while torch.sigmoid(hi * logits).std().item() < target_std and hi < 2.0**40:
            lo, hi = hi, hi * 2
        for _ in range(40):  # the spread of sigmoid(k * logits) grows with k: bisection
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if torch.sigmoid(mid * logits).std().item() < target_std else (lo, mid)
        factor = (lo + hi) / 2
    with torch.no_grad():
        conv.weight.mul_(factor)
        conv.bias.mul_(factor)
    return float(factor)


class Generator(nn.Module):
    """Sketch (N,3,S,S) + style (N,128) -> RGB face (N,3,S,S) in (0,1) (sigmoid head); S = 256 for DG.

    Encoder: conv3x3 3->64, then 4 normalized down-sampling ResBlks (64->128->256->512->512, 256px -> 16px).
    Decoder: 4 AdainResBlk(512,512) at 16px, then 4 up-sampling ones (512->512->256->128->64, 16px -> 256px).
    No encoder-decoder skips. ``to_rgb_lm`` exists in the checkpoint but is never called.

    The network is fully convolutional with a fixed number of blocks (the checkpoint layout), so it has no
    image-size setting: any S divisible by 16 works (small S only for cheap CPU training smoke runs).
    """

    def __init__(self, style_dim: int = 128, max_conv_dim: int = 512):
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
        self.to_rgb = nn.Sequential(InstanceNorm(64, affine=True), nn.LeakyReLU(0.2), nn.Conv2d(64, 3, 1, 1, 0))
        self.to_rgb_lm = nn.Sequential(InstanceNorm(64, affine=True), nn.LeakyReLU(0.2), nn.Conv2d(64, 4, 1, 1, 0))

    def forward(self, sketch: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        # each stage runs in its own parameters' dtype (all float32 unless a lower precision was chosen for some
        # blocks, see dgkit.pipeline.load_dg); the output is always float32
        x = self.from_rgb(_as_dtype_of(sketch, self.from_rgb))
        for block in self.encode:
            x = block(_as_dtype_of(x, block))
        for block in self.decode:
            x = block(_as_dtype_of(x, block), style)
        return torch.sigmoid(self.to_rgb(_as_dtype_of(x, self.to_rgb)).float())


class StyleEncoder(nn.Module):
    """Source photo (N,3,S,S) RGB in [0,1] -> style code (N,128). Single head (no StarGAN domains).

    conv3x3 3->64, six down-sampling ResBlks (64->128->256->512->512->512->512, 256px -> 4px), LReLU, conv4x4
    valid (4px -> 1px), LReLU, linear. The layout is the checkpoint's, so there is no image-size setting: at
    S = 256 (DG) every block runs; a smaller power of two S (32 <= S < 256, for cheap CPU training smoke runs)
    skips the last ``log2(256 / S)`` 512->512 down-sampling blocks so that the 4x4 convolution still sees a 4x4
    map (those blocks are then neither used nor trained).
    """

    n_down = 6  # down-sampling blocks: 256 px -> 4 px

    def __init__(self, style_dim: int = 128, max_conv_dim: int = 512):
        super().__init__()
        dim_in = 64
        blocks: list[nn.Module] = [nn.Conv2d(3, dim_in, 3, 1, 1)]
        for _ in range(self.n_down):
            dim_out = min(dim_in * 2, max_conv_dim)
            blocks.append(ResBlk(dim_in, dim_out, downsample=True))
            dim_in = dim_out
        blocks += [nn.LeakyReLU(0.2), nn.Conv2d(dim_out, dim_out, 4, 1, 0), nn.LeakyReLU(0.2)]
        self.shared = nn.Sequential(*blocks)
        self.fc = nn.Linear(dim_out, style_dim)
        self._min_down = int(math.log2(max_conv_dim // 64))  # blocks until the channels reach max_conv_dim (3)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        size = image.shape[-1]
        if size == 4 * 2**self.n_down:
            return self.fc(self.shared(image).flatten(1))
        keep = int(math.log2(size)) - 2 if size > 0 else -1  # down-sampling blocks this size needs
        if 2 ** (keep + 2) != size or not self._min_down <= keep < self.n_down or image.shape[-2] != size:
            raise ValueError(f"StyleEncoder takes square images of 256 px or a smaller power of two >= {2 ** (self._min_down + 2)}, "
                             f"got {tuple(image.shape[-2:])}")
        layers = list(self.shared)
        x = image
        for layer in [*layers[: 1 + keep], *layers[1 + self.n_down:]]:  # skip the last 512->512 blocks
            x = layer(x)
        return self.fc(x.flatten(1))


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


__all__ = ["Generator", "StyleEncoder", "SketchDiscriminator", "lrelu", "calibrate_contrast"]
