"""VGG-Face (VGG-16, cfg D) up to fc7: the source identity feature of IDSG and RFG's perceptual loss (docs/how-dg-works.md §3).

The module uses torchvision's key layout (``features.N``, ``classifier.N``) so that the released
``vgg_face_dag.pth`` (keys ``conv1_1`` ... ``fc8``) loads through :func:`from_vgg_face_dag`.
"""

from __future__ import annotations

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# channel counts of VGG-16 conv layers; "M" = 2x2 max-pool
_CFG_D = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
_DAG_NAMES = ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
              "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3"]
# ReLU outputs used by RFG's perceptual loss: relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
PERCEPTUAL_LAYERS = (1, 6, 11, 18, 25)


def _dag_to_torchvision() -> dict[str, str]:
    names, i = {}, 0
    conv_indices = []
    for v in _CFG_D:
        if v == "M":
            i += 1
        else:
            conv_indices.append(i)
            i += 2
    for name, idx in zip(_DAG_NAMES, conv_indices):
        names[name] = f"features.{idx}"
    names.update({"fc6": "classifier.0", "fc7": "classifier.3", "fc8": "classifier.6"})
    return names


DAG_TO_TORCHVISION = _dag_to_torchvision()
"""Source key prefix in vgg_face_dag.pth -> key prefix in :class:`VGGFace` (e.g. conv3_1 -> features.10)."""


class VGGFace(nn.Module):
    """RGB in [0,1] (N,3,H,W) -> fc7 after ReLU (N,4096), non-negative.

    ImageNet mean/std normalisation is applied inside (as the released code; not VGG-Face's native preprocessing, docs/how-dg-works.md §8).
    At 256 px the final 8x8 map is adaptive-pooled to 7x7 (overlapping 2x2 windows), as in the demo.
    Dropout layers are kept (for key layout) but never active in eval mode.
    """

    def __init__(self, num_classes: int = 2622):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in _CFG_D:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, 1, 1), nn.ReLU(inplace=True)]
                cin = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(),
            nn.Linear(4096, num_classes),
        )
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.eval()  # the demo builds it in eval mode: dropout is an identity

    def reset_constants(self) -> None:
        """(Re)create the normalisation constants on the parameters' device and dtype (after a meta-device build)."""
        weight = self.features[0].weight
        for name, values in (("mean", IMAGENET_MEAN), ("std", IMAGENET_STD)):
            setattr(self, name, torch.tensor(values, dtype=weight.dtype, device=weight.device).view(1, 3, 1, 1))

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        return (image - self.mean) / self.std

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.features(self.normalize(image))
        x = torch.flatten(self.avgpool(x), 1)
        return self.classifier[:5](x)  # fc6 -> ReLU -> dropout -> fc7 -> ReLU; fc8 is never applied

    def perceptual_features(self, image: torch.Tensor) -> list[torch.Tensor]:
        """ReLU outputs at :data:`PERCEPTUAL_LAYERS` (relu1_1 ... relu5_1) for RFG's perceptual loss."""
        x, out = self.normalize(image), []
        for i, layer in enumerate(self.features[: PERCEPTUAL_LAYERS[-1] + 1]):
            x = layer(x) if not isinstance(layer, nn.ReLU) else torch.relu(x)  # not in-place: keep the taps
            if i in PERCEPTUAL_LAYERS:
                out.append(x)
        return out


def from_vgg_face_dag(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a ``vgg_face_dag.pth`` state dict (conv1_1.weight ...) to :class:`VGGFace` keys."""
    renamed = {}
    for key, tensor in state.items():
        prefix, _, param = key.rpartition(".")
        renamed[f"{DAG_TO_TORCHVISION.get(prefix, prefix)}.{param}"] = tensor
    return renamed


def to_vgg_face_dag(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`from_vgg_face_dag` (to write a file in the official layout)."""
    inverse = {v: k for k, v in DAG_TO_TORCHVISION.items()}
    out = {}
    for key, tensor in state.items():
        prefix, _, param = key.rpartition(".")
        out[f"{inverse.get(prefix, prefix)}.{param}"] = tensor
    return out
