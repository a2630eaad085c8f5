"""RFG training (docs/how-dg-works.md §9): the generator draws the face of a sketch in the style of a source photo.

Per step, on target photos x (N,3,S,S) RGB [0,1], their sketches sk (N,3,S,S) (lines 1.0) and style sources
src (N,3,S,S), S = ``image_size`` (256 by default):

1. conditional discriminator on concat(image, sketch):
   BCE(D(x, sk), 1) + BCE(D(G(sk, E(src)), sk), 0) + lambda_reg * R1(x);
2. generator + style encoder: BCE(D(fake, sk), 1) + lambda_pixel * |fake - x| + lambda_perceptual *
   (sum over VGG-Face relu1_1 ... relu5_1 of the mean L1 feature difference);

then EMA (0.999) of generator and style encoder (the exported weights).

Augmentation: RandomResizedCrop(256, scale 0.8-1.0, ratio 0.9-1.1) with probability 0.5, drawn
*independently* per image as in the original (photo and sketch misaligned in about half the samples);
``aligned_crops=True`` gives photo and sketch the same crop. ``image_size`` < 256 resizes photo and sketch
(area interpolation) for cheap CPU smoke runs: the discriminator is built with fewer down-sampling blocks
and the style encoder skips its last ones, so that their final 4x4 convolution still sees 4x4 (see
:class:`dgkit.models.StyleEncoder`). Weights
from such a run keep the official layout and load, but are not useful at 256 px (the skipped style-encoder
blocks stay untrained).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..models import Generator, SketchDiscriminator, StyleEncoder
from .config import RFGConfig
from .losses import adversarial_loss, perceptual_loss, r1_penalty
from .runtime import Runtime
from .task import Task, cpu_state, requires_grad
from .vgg import find_vgg_face, load_vgg_face

__all__ = ["RFGTask", "make_discriminator", "random_resized_crop"]

GEN, STY, DIS = "generator", "style_encoder", "discriminator"


def make_discriminator(image_size: int = 256) -> nn.Module:
    """The conditional discriminator for ``image_size`` px (log2(size) - 2 down-sampling blocks, 6 at 256)."""
    return SketchDiscriminator(img_size=image_size)


def _crop_box(height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float],
              gen: torch.Generator) -> tuple[int, int, int, int]:
    """(top, left, h, w) like torchvision's RandomResizedCrop.get_params, drawn from ``gen``."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        u = torch.rand(2, generator=gen).tolist()
        target = area * (scale[0] + u[0] * (scale[1] - scale[0]))
        aspect = math.exp(log_ratio[0] + u[1] * (log_ratio[1] - log_ratio[0]))
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=gen))
            left = int(torch.randint(0, width - w + 1, (1,), generator=gen))
            return top, left, h, w
    side = min(height, width)  # fallback: centre crop
    return (height - side) // 2, (width - side) // 2, side, side


def random_resized_crop(images: list[torch.Tensor], cfg: RFGConfig, gen: torch.Generator) -> list[torch.Tensor]:
    """Apply one random crop decision per sample to every tensor of ``images`` (each (N,3,H,W)), resizing
    back to (H,W) bilinearly. Pass several tensors to give them the *same* crop (``aligned_crops``)."""
    n, _, height, width = images[0].shape
    outs = [img.clone() for img in images]
    for i in range(n):
        if float(torch.rand(1, generator=gen)) >= cfg.crop_prob:
            continue
        top, left, h, w = _crop_box(height, width, tuple(cfg.crop_scale), tuple(cfg.crop_ratio), gen)
        for img, out in zip(images, outs):
            patch = img[i:i + 1, :, top:top + h, left:left + w]
            out[i:i + 1] = F.interpolate(patch, size=(height, width), mode="bilinear", align_corners=False)
    return outs


class RFGTask(Task):
    """Generator, style encoder, conditional discriminator, their optimizers and the step (module docstring)."""

    kind = "rfg"
    subdir = "expr"
    loss_names = ("d_real", "d_fake", "d_reg", "g_adv", "g_pixel", "g_perceptual", "g_total")
    reads_files = True  # photos and sketches are PNG files

    def __init__(self, cfg: RFGConfig, rt: Runtime, vgg: nn.Module | None = None):
        super().__init__(cfg, rt)
        torch.manual_seed(cfg.seed)
        self.init_networks({GEN: Generator(), STY: StyleEncoder(), DIS: make_discriminator(cfg.image_size)},
                           ema_names=(GEN, STY))
        self.optims = {k: self.adam(net) for k, net in self.nets.items()}
        if vgg is None:
            vgg = load_vgg_face(find_vgg_face(cfg.weights_dir, cfg.allow_synthetic_vgg), rt.device)
        self.vgg = vgg.to(rt.device).eval()
        self.vgg.requires_grad_(False)

    def build_dataset(self):
        from .data import FaceDataset

        return FaceDataset(self.cfg.data, seed=self.cfg.seed)

    def _inputs(self, batch: dict, gen: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(photo, sketch, style source), each (N,3,S,S), augmented when ``gen`` is given."""
        cfg = self.cfg
        photo, sketch = batch["image"].float(), batch["sketch"].float()
        source = photo if cfg.style_source == "target" else batch["reference_image"].float()
        if gen is not None:
            if cfg.aligned_crops:
                photo, sketch = random_resized_crop([photo, sketch], cfg, gen)
            else:  # original: every image its own crop
                photo, = random_resized_crop([photo], cfg, gen)
                sketch, = random_resized_crop([sketch], cfg, gen)
            source, = random_resized_crop([source], cfg, gen)
        if cfg.image_size != photo.shape[-1]:
            photo, sketch, source = (F.interpolate(t, size=cfg.image_size, mode="area")
                                     for t in (photo, sketch, source))
        return photo, sketch, source

    def train_step(self, batches: list[dict], gen: torch.Generator) -> dict[str, torch.Tensor]:
        cfg, rt = self.cfg, self.rt
        g, e, d = self.nets[GEN], self.nets[STY], self.nets[DIS]
        data = [self._inputs(b, gen) for b in batches]
        out, add = self.loss_meter(len(data))

        # the fakes, computed once with the generator's graph: G and E do not change during the discriminator
        # step, so the discriminator learns on a detached copy and the generator step back-propagates the same
        # tensors (the graphs of all micro-batches are held until then)
        fakes = []
        for _photo, sketch, source in data:
            with rt.autocast():
                fakes.append(g(sketch, e(source)))

        # 1. discriminator
        self.optims[DIS].zero_grad(set_to_none=True)
        r1 = self.r1_weight()
        for (photo, sketch, _source), fake in zip(data, fakes):
            x_real = photo.detach().requires_grad_(r1 > 0)
            with rt.autocast():
                real_logits, fake_logits = d(x_real, sketch), d(fake.detach().float(), sketch)
            d_real, d_fake = adversarial_loss(real_logits, 1.0), adversarial_loss(fake_logits, 0.0)
            d_reg = r1_penalty(real_logits, x_real) if r1 > 0 else real_logits.new_zeros(())
            rt.backward(d_real + d_fake + r1 * d_reg)
            add(d_real=d_real, d_fake=d_fake, d_reg=d_reg)
        rt.step(self.optims[DIS])

        # 2. generator + style encoder (D frozen, already updated)
        requires_grad(d, False)
        self.optims[GEN].zero_grad(set_to_none=True)
        self.optims[STY].zero_grad(set_to_none=True)
        for (photo, sketch, _source), fake in zip(data, fakes):
            with rt.autocast():
                g_adv = adversarial_loss(d(fake, sketch), 1.0)
                g_perceptual = perceptual_loss(self.vgg, fake, photo)
            g_pixel = (fake.float() - photo).abs().mean()
            g_total = cfg.lambda_adv * g_adv + cfg.lambda_pixel * g_pixel + cfg.lambda_perceptual * g_perceptual
            rt.backward(g_total)
            add(g_adv=g_adv, g_pixel=g_pixel, g_perceptual=g_perceptual, g_total=g_total)
        rt.step(self.optims[GEN])
        rt.step(self.optims[STY])
        requires_grad(d, True)
        return out

    def release_checkpoint(self) -> dict[str, dict[str, torch.Tensor]]:
        """EMA generator and style encoder: the official RFG file layout."""
        return {GEN: cpu_state(self.ema[GEN]), STY: cpu_state(self.ema[STY])}

    @torch.no_grad()
    def sample_grid(self, batch: dict) -> np.ndarray:
        """Columns = up to k = 4 samples; rows: style source, sketch, target photo, output of the trained
        networks, output of the EMA networks (the exported ones; they lag early in a run, see ``ema_beta``).
        No augmentation; each tile ``image_size`` px; (5*S, k*S, 3) uint8."""
        photo, sketch, source = self._inputs(batch, None)
        rows = [source, sketch, photo]
        for g, e in ((self.nets[GEN], self.nets[STY]), (self.ema[GEN], self.ema[STY])):
            rows.append(g(sketch, e(source)).float())
        grid = torch.cat([torch.cat(list(r.clamp(0, 1)), dim=2) for r in rows], dim=1)  # (3, 4S, kS)
        return (grid * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
