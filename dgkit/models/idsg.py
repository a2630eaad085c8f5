"""IDSG, the ID-preserving Shape Generator (docs/how-dg-works.md §2, §3, §9): landmark MLPs on 136-d shape vectors.

A shape vector is 68 landmarks in crop pixels / 256, interleaved ``[x0, y0, ..., x67, y67]``.
Key names match the released checkpoint ``expr_lm/checkpoints/30000_nets_ema.ckpt``.
"""

from __future__ import annotations

import torch
from torch import nn

LANDMARK_DIM = 136
ID_FEATURE_DIM = 4096
NUM_IDENTITIES = 1454  # classifier width in the released checkpoint (VoxCeleb1 has 1251)


def _mlp(dims: list[int], final_activation: bool) -> list[nn.Module]:
    """Linear -> LReLU(0.2) pairs, so Linear layers sit at even indices as in the checkpoint."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if final_activation or i < len(dims) - 2:
            layers.append(nn.LeakyReLU(0.2))
    return layers


class LandmarkEncoder(nn.Module):
    """Reference shape (N,136) -> landmark code (N,136). Six Linear(136,136), LReLU between them."""

    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(*_mlp([LANDMARK_DIM] * 7, final_activation=False))

    def forward(self, landmarks: torch.Tensor) -> torch.Tensor:
        return self.main(landmarks)


class LandmarkDecoder(nn.Module):
    """concat(landmark code (N,136), VGG-Face feature (N,4096)) -> target shape (N,136) in (0,1) (sigmoid)."""

    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(*_mlp([LANDMARK_DIM + ID_FEATURE_DIM, 512, 512, 512, 512, 512, LANDMARK_DIM],
                                        final_activation=False))

    def forward(self, code: torch.Tensor, id_feature: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.main(torch.cat([code, id_feature], dim=1)))  # code first, as the checkpoint was trained


class LandmarkDiscriminator(nn.Module):
    """Shape realism (training only): (N,136) -> raw logit (N,1)."""

    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(*_mlp([LANDMARK_DIM] * 6, final_activation=True))
        self.main_2 = nn.Sequential(nn.Linear(LANDMARK_DIM, 1))

    def forward(self, landmarks: torch.Tensor) -> torch.Tensor:
        return self.main_2(self.main(landmarks))


class IdentityClassifier(nn.Module):
    """Identity from shape (training only): (N,136) -> (N,1454) *sigmoid* scores (docs/how-dg-works.md §9: then cross-entropy)."""

    def __init__(self, num_identities: int = NUM_IDENTITIES):
        super().__init__()
        self.main = nn.Sequential(*_mlp([LANDMARK_DIM] * 6, final_activation=True))
        self.main_3 = nn.Sequential(nn.Linear(LANDMARK_DIM, num_identities))

    def forward(self, landmarks: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.main_3(self.main(landmarks)))


__all__ = ["LandmarkEncoder", "LandmarkDecoder", "LandmarkDiscriminator", "IdentityClassifier",
           "LANDMARK_DIM", "ID_FEATURE_DIM", "NUM_IDENTITIES"]
