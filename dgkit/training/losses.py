"""DG's training losses (docs/how-dg-works.md §9), as small functions on tensors.

Landmark tensors are (N,136): 68 points in crop pixels / 256, interleaved ``[x0, y0, x1, y1, ...]``.
Images are (N,3,H,W) RGB in [0,1]. Every loss returns a scalar tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..face68 import REGIONS

__all__ = [
    "PARTS",
    "adversarial_loss",
    "classifier_logits",
    "code_consistency_loss",
    "cycle_loss",
    "he_init",
    "identity_loss",
    "local_shape_loss",
    "perceptual_loss",
    "point_errors",
    "r1_penalty",
]

# face regions of the local-shape loss (68-point indices, end exclusive): jaw (the contour), brows, nose, eyes, mouth
PARTS: dict[str, tuple[int, int]] = {name: (part.start, part.stop) for name, part in REGIONS.items()}


def adversarial_loss(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Binary cross-entropy with logits against a constant label (1 = real, 0 = fake); logits any shape."""
    return F.binary_cross_entropy_with_logits(logits.float(), torch.full_like(logits.float(), target))


def r1_penalty(real_logits: torch.Tensor, real_input: torch.Tensor) -> torch.Tensor:
    """R1 gradient penalty: ``0.5 * mean_n sum (dD(x_n)/dx_n)^2`` (``real_input`` must require grad)."""
    (grad,) = torch.autograd.grad(real_logits.float().sum(), real_input, create_graph=True)
    return 0.5 * grad.float().pow(2).reshape(len(grad), -1).sum(1).mean()


def classifier_logits(classifier: nn.Module, landmarks: torch.Tensor) -> torch.Tensor:
    """The identity classifier's pre-sigmoid scores (N,1454) (its ``forward`` applies a sigmoid; docs/how-dg-works.md §9)."""
    return classifier.main_3(classifier.main(landmarks))


def identity_loss(classifier: nn.Module, landmarks: torch.Tensor, identity: torch.Tensor,
                  mode: str = "sigmoid_ce") -> torch.Tensor:
    """Cross-entropy of the shape classifier for integer ``identity`` (N,) int64.

    ``mode="sigmoid_ce"`` is the original (docs/how-dg-works.md §9: softmax cross-entropy over sigmoid outputs in (0,1),
    weak gradients); ``mode="ce"`` uses the logits.
    """
    logits = classifier_logits(classifier, landmarks).float()
    scores = torch.sigmoid(logits) if mode == "sigmoid_ce" else logits
    return F.cross_entropy(scores, identity)


def point_errors(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-point Euclidean distances between two (N,136) shapes, averaged over the batch: (68,)."""
    diff = (a.float() - b.float()).reshape(len(a), 68, 2)
    return diff.norm(dim=2).mean(0)


def cycle_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Self-reconstruction: sum over the 68 points of the batch-mean point distance."""
    return point_errors(fake, real).sum()


def code_consistency_loss(code_real: torch.Tensor, code_fake: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of two landmark codes (N,136)."""
    return (code_real.float() - code_fake.float()).abs().mean()


def local_shape_loss(fake_cross: torch.Tensor, fake_self: torch.Tensor, real: torch.Tensor, *,
                     margin_contour: float = 0.2, margin_parts: float = 0.01,
                     mode: str = "reflect") -> torch.Tensor:
    """The "visible local shape variation" loss (docs/how-dg-works.md §9), summed over the five parts.

    For part P: ``L_P = m_P + sum_P err(fake_self) - sum_P err(fake_cross)``, with ``err`` the batch-mean
    point distance to ``real`` and margin ``m`` = ``margin_contour`` for the jaw, ``margin_parts`` otherwise.
    ``mode="reflect"`` (original) replaces a negative L_P by |L_P|, which drives the gap between cross-identity
    and self-reconstruction errors to exactly the margin; ``mode="hinge"`` uses max(0, L_P).
    """
    err_self, err_cross = point_errors(fake_self, real), point_errors(fake_cross, real)
    total = fake_self.new_zeros((), dtype=torch.float32)
    for name, (a, b) in PARTS.items():
        margin = margin_contour if name == "jaw" else margin_parts
        part = margin + err_self[a:b].sum() - err_cross[a:b].sum()
        total = total + (part.abs() if mode == "reflect" else F.relu(part))
    return total


def perceptual_loss(vgg: nn.Module, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """RFG's "perceptual" identity loss: sum over VGG-Face relu1_1 ... relu5_1 of the mean L1 difference.

    ``vgg`` is a :class:`dgkit.models.VGGFace` (frozen; gradients flow to ``fake`` only). Both images (N,3,H,W)
    RGB in [0,1]; the ImageNet normalisation happens inside ``vgg.perceptual_features``.
    """
    with torch.no_grad():
        targets = vgg.perceptual_features(real)
    feats = vgg.perceptual_features(fake)
    return sum((f.float() - t.float()).abs().mean() for f, t in zip(feats, targets))


@torch.no_grad()
def he_init(module: nn.Module) -> None:
    """Kaiming-normal (fan_in, ReLU gain) weights and zero biases for every Conv2d and Linear (original init).

    Norm layers keep their defaults (weight 1, bias 0). Apply with ``net.apply(he_init)``.
    """
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
