"""IDSG training (docs/how-dg-works.md §9): the landmark encoder/decoder learn to re-draw a shape with another identity.

Per step, on a batch of real shapes x2 (N,136), the VGG-Face feature f1 of another frame of the same person
and f3 of a frame of another person (identity id3):

1. landmark discriminator: BCE(D(x2), 1) + BCE(D(dec(enc(x2), f3)), 0) + lambda_reg * R1(x2);
2. identity classifier: CE(C(x2), id(x2)), real shapes only (own lr ``lr_cls``);
3. encoder + decoder, with fake1 = dec(enc(x2), f3) (cross-identity) and fake2 = dec(enc(x2), f1) (same):
   adv BCE(D(fake1), 1) + cls CE(C(fake1), id3) + cyc (fake2 vs x2) + con |enc(x2) - enc(fake2)|
   + local-shape loss per face part (margins 0.2 jaw / 0.01 others), all weights 1.

Then EMA (0.999) of encoder and decoder. The VGG-Face features are computed once per dataset and cached
(:func:`dgkit.training.data.identity_features`); the original recomputed them on randomly cropped photos.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn

from ..errors import DatasetError
from ..face68 import CROP_SIZE
from ..models import (
    IdentityClassifier,
    LandmarkDecoder,
    LandmarkDiscriminator,
    LandmarkEncoder,
)
from .config import IDSGConfig
from .losses import (
    adversarial_loss,
    code_consistency_loss,
    cycle_loss,
    identity_loss,
    local_shape_loss,
    r1_penalty,
)
from .runtime import Runtime
from .task import Task, cpu_state, requires_grad
from .vgg import find_vgg_face, load_vgg_face

__all__ = ["IDSGTask"]

ENC, DEC, DIS, CLS = "lm_linear_encoder", "linear_decoder", "linear_discriminator", "linear_classfier"


class IDSGTask(Task):
    """The four IDSG networks, their Adam optimizers and the three-part step (module docstring)."""

    kind = "idsg"
    subdir = "expr_lm"
    loss_names = ("d_real", "d_fake", "d_reg", "c_real", "g_adv", "g_cls", "g_cyc", "g_con", "g_tp", "g_total")

    def __init__(self, cfg: IDSGConfig, rt: Runtime, vgg: nn.Module | None = None):
        super().__init__(cfg, rt)
        self.vgg = vgg
        torch.manual_seed(cfg.seed)
        self.init_networks({ENC: LandmarkEncoder(), DEC: LandmarkDecoder(), DIS: LandmarkDiscriminator(),
                            CLS: IdentityClassifier(cfg.num_identities)}, ema_names=(ENC, DEC))
        self.optims = {ENC: self.adam(self.nets[ENC]), DEC: self.adam(self.nets[DEC]),
                       DIS: self.adam(self.nets[DIS]), CLS: self.adam(self.nets[CLS], cfg.lr_cls)}
        self.features: torch.Tensor | None = None

    def build_dataset(self):
        from .data import LandmarkDataset, identity_features

        dataset = LandmarkDataset(self.cfg.data, seed=self.cfg.seed)
        m = dataset.manifest
        if len(m.frames_by_identity) < 2:
            raise DatasetError(f"{m.root} holds one identity; the IDSG needs at least two people (its cross-identity "
                               "losses pair a shape with another person's identity feature)")
        if int(m.identity_ids.max()) >= self.cfg.num_identities:
            raise DatasetError(f"{m.root} has {len(m.identities)} identities; the IDSG classifier of the "
                               f"checkpoint layout has {self.cfg.num_identities} outputs")
        vgg = self.vgg
        if vgg is None:
            vgg = load_vgg_face(find_vgg_face(self.cfg.weights_dir, self.cfg.allow_synthetic_vgg), self.rt.device)
        # rank 0 fills the feature cache first, the others then read it
        if self.rt.is_main:
            feats = identity_features(m, vgg, progress=self.cfg.progress)
        self.rt.barrier()
        if not self.rt.is_main:
            feats = identity_features(m, vgg)
        self.features = torch.from_numpy(np.asarray(feats, dtype=np.float32)).to(self.rt.device)
        return dataset

    def _inputs(self, batch: dict) -> tuple[torch.Tensor, ...]:
        """x2 (N,136), f1 (N,4096), f3 (N,4096), id(x2) (N,), id3 (N,)."""
        return (batch["landmarks"].float(), self.features[batch["source_index"]],
                self.features[batch["other_index"]], batch["identity"], batch["other_identity"])

    def train_step(self, batches: list[dict], gen: torch.Generator) -> dict[str, torch.Tensor]:
        cfg, rt = self.cfg, self.rt
        enc, dec, dis, cls = (self.nets[k] for k in (ENC, DEC, DIS, CLS))
        data = [self._inputs(b) for b in batches]
        out, add = self.loss_meter(len(data))

        # 1. discriminator on 136-d shapes
        self.optims[DIS].zero_grad(set_to_none=True)
        r1 = self.r1_weight()
        for x2, _f1, f3, _id1, _id3 in data:
            with torch.no_grad(), rt.autocast():
                fake1 = dec(enc(x2), f3)
            x_real = x2.detach().requires_grad_(r1 > 0)
            with rt.autocast():
                real_logits, fake_logits = dis(x_real), dis(fake1.float())
            d_real, d_fake = adversarial_loss(real_logits, 1.0), adversarial_loss(fake_logits, 0.0)
            d_reg = r1_penalty(real_logits, x_real) if r1 > 0 else real_logits.new_zeros(())
            rt.backward(d_real + d_fake + r1 * d_reg)
            add(d_real=d_real, d_fake=d_fake, d_reg=d_reg)
        rt.step(self.optims[DIS])

        # 2. identity classifier on real shapes
        self.optims[CLS].zero_grad(set_to_none=True)
        for x2, _f1, _f3, id1, _id3 in data:
            with rt.autocast():
                c_real = identity_loss(cls, x2, id1, cfg.classifier_loss)
            rt.backward(c_real)
            add(c_real=c_real)
        rt.step(self.optims[CLS])

        # 3. encoder + decoder (D and C frozen)
        requires_grad(dis, False)
        requires_grad(cls, False)
        self.optims[ENC].zero_grad(set_to_none=True)
        self.optims[DEC].zero_grad(set_to_none=True)
        for x2, f1, f3, _id1, id3 in data:
            with rt.autocast():
                code = enc(x2)
                fake1, fake2 = dec(code, f3), dec(code, f1)
                g_adv = adversarial_loss(dis(fake1), 1.0)
                g_cls = identity_loss(cls, fake1, id3, cfg.classifier_loss)
                g_con = code_consistency_loss(code, enc(fake2))
            g_cyc = cycle_loss(fake2, x2)
            g_tp = local_shape_loss(fake1, fake2, x2, margin_contour=cfg.margin_contour,
                                    margin_parts=cfg.margin_parts, mode=cfg.local_shape_mode)
            g_total = (cfg.lambda_adv * g_adv + cfg.lambda_cls * g_cls + cfg.lambda_cyc * g_cyc
                       + cfg.lambda_con * g_con + cfg.lambda_tp * g_tp)
            rt.backward(g_total)
            add(g_adv=g_adv, g_cls=g_cls, g_cyc=g_cyc, g_con=g_con, g_tp=g_tp, g_total=g_total)
        rt.step(self.optims[ENC])
        rt.step(self.optims[DEC])
        requires_grad(dis, True)
        requires_grad(cls, True)
        return out

    def release_checkpoint(self) -> dict[str, dict[str, torch.Tensor]]:
        """EMA encoder/decoder plus the trained discriminator/classifier (load_dg loads all four strictly)."""
        return {DEC: cpu_state(self.ema[DEC]), ENC: cpu_state(self.ema[ENC]), DIS: cpu_state(self.nets[DIS]),
                CLS: cpu_state(self.nets[CLS])}

    def result_nets(self) -> dict[str, nn.Module]:
        return {**self.ema, DIS: self.nets[DIS], CLS: self.nets[CLS]}

    @torch.no_grad()
    def sample_grid(self, batch: dict) -> np.ndarray:
        """Sketches (128 px) of up to k = 4 shapes, (640, 128*k, 3) uint8. Rows: real x2; same-identity
        reconstruction dec(enc(x2), f1) and cross-identity dec(enc(x2), f3) of the trained networks; the same
        two of the EMA networks (the exported ones; they lag behind early in a run, see ``ema_beta``)."""
        from ..sketch import draw_sketch

        x2, f1, f3, _id1, _id3 = self._inputs(batch)
        rows = [x2]
        for enc, dec in ((self.nets[ENC], self.nets[DEC]), (self.ema[ENC], self.ema[DEC])):
            code = enc(x2)
            rows += [dec(code, f1), dec(code, f3)]
        tiles = []
        for shapes in rows:
            lm = shapes.float().clamp(0, 1).cpu().numpy().reshape(-1, 68, 2) * CROP_SIZE
            tiles.append(np.hstack([cv2.resize(draw_sketch(p, kind="reference"), (128, 128),
                                               interpolation=cv2.INTER_AREA) for p in lm]))
        grid = np.vstack(tiles)
        return np.repeat(grid[:, :, None], 3, axis=2)
