"""Training configurations as dataclasses, read from YAML/JSON files and ``key=value`` overrides.

Defaults reproduce the published settings (docs/how-dg-works.md §9): :class:`IDSGConfig` (batch 32, Adam lr 2e-5,
betas (0.99, 0.999)) and :class:`RFGConfig` (batch 4, Adam lr 1e-4, betas (0.0, 0.99)); both use weight
decay 1e-4, EMA 0.999 and R1 weight 1. Every quirk of the original code is a flag whose default is the
original behaviour.

    >>> cfg = load_config("idsg", None, ["steps=10", "batch_size=8"], data="data/", out="runs/a")
    >>> cfg.steps, cfg.batch_size, cfg.lr
    (10, 8, 2e-05)

A config file is a flat mapping of field names (JSON always; YAML when PyYAML is installed). Unknown keys
raise :class:`~dgkit.errors.ConfigError` naming the key (and the closest valid names).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError
from ..face68 import CROP_SIZE

__all__ = [
    "CONFIGS",
    "IDSGConfig",
    "RFGConfig",
    "TrainConfig",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "parse_overrides",
]

AmpMode = Literal["none", "bf16", "fp16"]


@dataclass
class TrainConfig:
    """Settings shared by both trainings (see the subclasses for the method-specific ones).

    Attributes:
        data: dataset folder (layout of :mod:`dgkit.training.data`).
        out: run folder; checkpoints go to ``out/expr/...`` (RFG) or ``out/expr_lm/...`` (IDSG), so one
            folder can hold both runs and be exported with :func:`dgkit.training.export_trained_weights`.
        steps: total optimizer steps (each consumes ``batch_size * grad_accum`` samples per process).
        batch_size: samples per micro-batch and process.
        grad_accum: micro-batches accumulated per optimizer step.
        lr, betas, weight_decay: Adam settings of the main networks.
        ema_beta: EMA decay of the exported ("nets_ema") networks, updated after every step. 0.999 averages
            over ~1000 steps: for short runs (a few hundred steps) use e.g. 0.9 and ema_from_default_init=false,
            or the exported networks stay close to their initial weights.
        lambda_reg: weight of the R1 penalty on real samples.
        r1_every: compute R1 only every k-th step, weighted by k ("lazy regularization", StyleGAN2). 1 = the
            original (every step). On a GPU the R1 double backward through the RFG discriminator is about
            60% of the step time, so 4 or 16 speeds RFG training up considerably.
        he_init: Kaiming-normal (fan_in, ReLU gain) init with zero biases, as the original.
        ema_from_default_init: as in the released code (docs/how-dg-works.md §8), the EMA copies start from PyTorch's default init (copied before
            he_init); False starts them from the he-initialised networks.
        seed: seeds networks, sampling and augmentation (rank r of a DDP run adds r for its data).
        device: "auto" (CUDA if available, else CPU), "cpu", "cuda", "cuda:1", "mps".
        amp: "none", "bf16" or "fp16" autocast; CUDA only (CPU falls back to fp32 with a message).
        log_every, sample_every, save_every: in steps (0 disables samples/intermediate saves).
        keep_checkpoints: how many intermediate train-state files to keep (the last one always stays).
        weights_dir: folder holding ``vgg_face_dag.pth`` (None: dgkit's search path, see
            ``dgkit weights status``); VGG-Face gives IDSG's identity features and RFG's perceptual loss.
        allow_synthetic_vgg: use the untrained synthetic VGG-Face when no real one is found (tests only).
        num_workers: DataLoader worker processes (RFG only; IDSG data lives in memory).
        prefetch: with ``num_workers=0``, read the next RFG batches (PNG files) in a background thread during
            each step (IDSG data is in memory: never prefetched).
        tensorboard: also log to TensorBoard when ``torch.utils.tensorboard`` is importable.
        progress: show a tqdm progress bar (rank 0).
        resume: continue from the latest train state in ``out`` (same config expected).
    """

    data: str = ""
    out: str = "runs/dg"
    steps: int = 1000
    batch_size: int = 4
    grad_accum: int = 1
    lr: float = 1e-4
    betas: tuple[float, float] = (0.0, 0.99)
    weight_decay: float = 1e-4
    ema_beta: float = 0.999
    lambda_reg: float = 1.0
    r1_every: int = 1
    he_init: bool = True
    ema_from_default_init: bool = True
    seed: int = 777
    device: str = "auto"
    amp: AmpMode = "none"
    log_every: int = 10
    sample_every: int = 500
    save_every: int = 5000
    keep_checkpoints: int = 3
    weights_dir: str | None = None
    allow_synthetic_vgg: bool = False
    num_workers: int = 0
    prefetch: bool = True
    tensorboard: bool = True
    progress: bool = True
    resume: bool = False

    kind: typing.ClassVar[str] = ""

    def validate(self) -> None:
        """Raise ConfigError for values that cannot work (names the field and says what is allowed)."""
        positive = ["steps", "batch_size", "grad_accum", "r1_every"]
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("log_every", "sample_every", "save_every", "keep_checkpoints", "num_workers"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.ema_beta < 1.0:
            raise ConfigError(f"ema_beta must be in [0, 1), got {self.ema_beta}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if self.amp not in ("none", "bf16", "fp16"):
            raise ConfigError(f"amp must be 'none', 'bf16' or 'fp16', got {self.amp!r}")
        if not self.data:
            raise ConfigError("data is not set: pass the dataset folder (--data DATASET or data=...)")


@dataclass
class IDSGConfig(TrainConfig):
    """IDSG (shape generator) training (docs/how-dg-works.md §9). Defaults = the original.

    Attributes:
        lr_cls: Adam lr of the identity classifier (the original's lr2).
        lambda_adv, lambda_cls, lambda_cyc, lambda_con, lambda_tp: loss weights (all 1).
        margin_contour, margin_parts: local-shape margins of the jaw contour and of the other parts.
        classifier_loss: "sigmoid_ce" (the released code's choice, docs/how-dg-works.md §9: cross-entropy over the classifier's sigmoid outputs) or
            "ce" (cross-entropy over its logits, the usual form).
        local_shape_mode: "reflect" (original: a negative part loss is replaced by its absolute value, so
            the gap is driven to exactly the margin) or "hinge" (max(0, .), a conventional margin loss).
        num_identities: classifier outputs; the checkpoint layout fixes 1454.
    """

    batch_size: int = 32
    lr: float = 2e-5
    lr_cls: float = 2e-5
    betas: tuple[float, float] = (0.99, 0.999)
    save_every: int = 5000
    lambda_adv: float = 1.0
    lambda_cls: float = 1.0
    lambda_cyc: float = 1.0
    lambda_con: float = 1.0
    lambda_tp: float = 1.0
    margin_contour: float = 0.2
    margin_parts: float = 0.01
    classifier_loss: Literal["sigmoid_ce", "ce"] = "sigmoid_ce"
    local_shape_mode: Literal["reflect", "hinge"] = "reflect"
    num_identities: int = 1454

    kind: typing.ClassVar[str] = "idsg"

    def validate(self) -> None:
        super().validate()
        _choice(self, "classifier_loss", ("sigmoid_ce", "ce"))
        _choice(self, "local_shape_mode", ("reflect", "hinge"))
        if self.num_identities != 1454:
            raise ConfigError("num_identities must stay 1454: the IDSG checkpoint layout that load_dg reads "
                              f"has a 1454-way classifier (got {self.num_identities})")


@dataclass
class RFGConfig(TrainConfig):
    """RFG (face generator + style encoder) training (docs/how-dg-works.md §9). Defaults = the original.

    Attributes:
        lambda_adv, lambda_pixel, lambda_perceptual: loss weights (all 1).
        image_size: generator/discriminator resolution. 256 is the real setting; 64 or 128 resize the data
            for cheap CPU smoke runs only (discriminator and style encoder skip down-sampling blocks; the
            exported weights keep the official layout but are not useful at 256 px).
        crop_prob, crop_scale, crop_ratio: RandomResizedCrop augmentation (probability 0.5, scale 0.8-1.0,
            aspect ratio 0.9-1.1).
        aligned_crops: False = original quirk, every image (photo, sketch, style source) gets its own random
            crop, so photo and sketch are misaligned in about half the samples; True = photo and sketch share
            one crop.
        style_source: "target" (original "in_paper" setting: the style comes from the target photo itself,
            self-reconstruction) or "reference" (another frame of the same identity).
    """

    batch_size: int = 4
    lr: float = 1e-4
    betas: tuple[float, float] = (0.0, 0.99)
    lambda_adv: float = 1.0
    lambda_pixel: float = 1.0
    lambda_perceptual: float = 1.0
    image_size: int = CROP_SIZE
    crop_prob: float = 0.5
    crop_scale: tuple[float, float] = (0.8, 1.0)
    crop_ratio: tuple[float, float] = (0.9, 1.1)
    aligned_crops: bool = False
    style_source: Literal["target", "reference"] = "target"

    kind: typing.ClassVar[str] = "rfg"

    def validate(self) -> None:
        super().validate()
        if self.image_size not in (32, 64, 128, 256):
            raise ConfigError(f"image_size must be 256 (or 32/64/128 for smoke runs), got {self.image_size}")
        if not 0.0 <= self.crop_prob <= 1.0:
            raise ConfigError(f"crop_prob must be in [0, 1], got {self.crop_prob}")
        _choice(self, "style_source", ("target", "reference"))


CONFIGS: dict[str, type[TrainConfig]] = {"idsg": IDSGConfig, "rfg": RFGConfig}


def _choice(cfg: TrainConfig, name: str, allowed: tuple[str, ...]) -> None:
    if getattr(cfg, name) not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {getattr(cfg, name)!r}")


# --- parsing ------------------------------------------------------------------------------------------------
def _unknown_key(cls: type[TrainConfig], key: str) -> ConfigError:
    names = [f.name for f in dataclasses.fields(cls)]
    close = difflib.get_close_matches(key, names, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return ConfigError(f"unknown {cls.kind.upper()} config key {key!r}.{hint} Valid keys: {', '.join(names)}")


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """Convert a parsed value (JSON/YAML scalar, list or string) to the field's annotated type."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(name, value, inner[0])
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{name} must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.replace("(", "").replace(")", "").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{name} needs {len(args)} values (e.g. {name}=0.0,0.99), got {value!r}")
        return tuple(_coerce(name, v, a) for v, a in zip(value, args))
    try:
        if annotation is bool:
            if isinstance(value, str):
                low = value.strip().lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            if isinstance(value, (bool, int)) and value in (0, 1):
                return bool(value)
            raise ValueError(value)
        if annotation is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if annotation is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if annotation is str:
            return str(value) if not isinstance(value, os.PathLike) else os.fspath(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be {getattr(annotation, '__name__', annotation)}, got {value!r}") from None
    return value


def config_from_dict(kind: str, values: dict[str, Any]) -> TrainConfig:
    """Build and validate the config of ``kind`` ("idsg" or "rfg") from a flat mapping.

    Raises:
        ConfigError: unknown kind, unknown key (named, with suggestions) or a value of the wrong type.
    """
    if kind not in CONFIGS:
        raise ConfigError(f"unknown training kind {kind!r}; use 'idsg' or 'rfg'")
    cls = CONFIGS[kind]
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise _unknown_key(cls, key)
        kwargs[key] = _coerce(key, value, hints[key])
    cfg = cls(**kwargs)
    cfg.validate()
    return cfg


def _parse_value(text: str) -> Any:
    """``--set`` values: JSON when it parses (numbers, true/false, null, lists), else the raw string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["lr=1e-4", "betas=[0.0,0.99]", "aligned_crops=true"]`` -> ``{"lr": 1e-4, ...}``.

    Raises:
        ConfigError: an item without ``=`` or with an empty key.
    """
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form key=value (e.g. --set lr=1e-4)")
        out[key.strip()] = _parse_value(value.strip())
    return out


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """A flat mapping from a ``.json`` or ``.yaml``/``.yml`` file (YAML needs PyYAML)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ConfigError(f"{path} is YAML but PyYAML is not installed: `pip install pyyaml`, "
                              "or write the config as JSON") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not valid JSON ({exc}); YAML files need a .yaml/.yml suffix") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of config keys, got {type(data).__name__}")
    return data


def load_config(kind: str, path: str | os.PathLike | None = None, overrides: list[str] | None = None,
                **values: Any) -> TrainConfig:
    """Config of ``kind`` from defaults < file ``path`` < ``overrides`` ("key=value") < keyword ``values``.

    Keyword values that are None are ignored (so CLI options that were not given keep the file's value).
    """
    merged: dict[str, Any] = {}
    if path is not None:
        merged.update(read_config_file(path))
    merged.update(parse_overrides(overrides))
    merged.update({k: v for k, v in values.items() if v is not None})
    return config_from_dict(kind, merged)


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """JSON-ready dict of a config (tuples become lists)."""
    out = dataclasses.asdict(cfg)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

