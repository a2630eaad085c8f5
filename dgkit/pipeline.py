"""The dual-generator pipeline: IDSG (shape) then RFG (face), as small public steps.

::

    source crop (N,256,256,3) uint8 --encode_source--> SourceEncoding(id_feature (N,4096), style_code (N,128))
    reference landmarks (N,68,2) crop px --encode_reference--> ReferenceEncoding(landmark_code (N,136))
    decode(landmark_code, id_feature)            -> decoded landmarks (N,68,2) crop px    [IDSG decoder]
    correct_eyes(decoded, reference_landmarks)   -> target landmarks  (N,68,2) crop px    [turn_eye]
    draw(target landmarks)              -> sketch (N,256,256) uint8 {0,255}       [show_map]
    generate(sketch, style_code)                 -> image  (N,256,256,3) uint8 RGB        [RFG generator]

``run_chain`` runs decode -> correct_eyes -> draw (-> generate) in one call (every caller in dgkit uses it;
without a style code it stops after the sketch: the fast shape-only update a slider needs). ``reenact``
encodes, chains and returns a :class:`Reenactment` holding every intermediate. Changing only the
reference reuses a :class:`SourceEncoding`, so VGG-Face and the style encoder run once per source.
Per-call options (``sketch_intensity``) are arguments; the numeric precision is fixed when the model is built
(``load_dg(..., precision=...)``).
All arrays are numpy, batch first; landmarks are x, y in pixels of the 256x256 ArcFace-aligned crop
(see :func:`dgkit.align_face`); the networks see them normalized (/256, interleaved to 136 values).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from . import eyes as _eyes
from .errors import CheckpointError, InputError
from .face68 import CROP_SIZE, LANDMARK_DTYPE, check_landmarks
from .models import IDSG_NETS, RFG_NETS, VGGFace, from_vgg_face_dag
from .sketch import draw_sketch
from .weights import WeightsInfo, weights_info

log = logging.getLogger("dgkit")

SketchIntensity = Literal["demo", "train"]
SKETCH_INTENSITIES: dict[str, float] = {"demo": 1.0 / 255.0, "train": 1.0}
"""Value of sketch lines fed to the generator. "demo": 1/255, what the released demo did (docs/how-dg-works.md §6: its
uint8 round trip wrapped 255*255 to 1); "train": 1.0, what the RFG was trained on."""

Precision = Literal["fp32", "tf32", "bf16", "fp16"]
PRECISIONS: dict[str, str] = {
    "fp32": "exact float32 everywhere (reproduces the released demo; the default)",
    "tf32": "CUDA only: float32 with TF32 tensor-core convolutions/matmuls (~1e-3 relative); on CPU same as fp32",
    "bf16": "bfloat16 generator decoder, style encoder and VGG-Face; the generator's encoder (which sees the "
            "faint sketch lines), IDSG, eye correction and sketch stay float32",
    "fp16": "CUDA only: like bf16 with float16",
}
"""Numeric precisions of :func:`load_dg`; what each costs in fidelity is measured by benchmarks/bench_precision.py."""


class _NoTimer:
    """Stand-in for a per-stage timer: ``timer(stage)`` returns a context manager that does nothing."""

    def __call__(self, stage: str) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()


# --- results --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SourceEncoding:
    """What DG needs from a source face, computed once per source.

    Attributes:
        image: (N,256,256,3) uint8 RGB aligned source crops.
        id_feature: (N,4096) float32 VGG-Face fc7 (after ReLU), the IDSG identity input.
        style_code: (N,128) float32 RFG style code.
    """

    image: np.ndarray
    id_feature: np.ndarray
    style_code: np.ndarray

    def __len__(self) -> int:
        return len(self.image)

    def select(self, index) -> "SourceEncoding":
        """A sub-batch (``index``: int, slice or index array), keeping the batch axis."""
        idx = np.atleast_1d(np.arange(len(self))[index])
        return SourceEncoding(self.image[idx], self.id_feature[idx], self.style_code[idx])


@dataclass(frozen=True)
class ReferenceEncoding:
    """A reference shape and its IDSG landmark code.

    Attributes:
        landmarks: (N,68,2) float64 reference landmarks, crop pixels, x then y.
        landmark_code: (N,136) float32 output of the IDSG landmark encoder.
    """

    landmarks: np.ndarray
    landmark_code: np.ndarray

    @property
    def normalized(self) -> np.ndarray:
        """(N,136) float32 network input: crop pixels / 256, interleaved x0, y0, x1, y1, ..."""
        return (self.landmarks / CROP_SIZE).reshape(len(self.landmarks), -1).astype(np.float32)


@dataclass(frozen=True)
class Reenactment:
    """One DG run, every stage kept (numpy, batch first). Landmarks: float64 crop pixels (docs/conventions.md), x then y.

    Attributes:
        source_image: (N,256,256,3) uint8 RGB source crops.
        reference_landmarks: (N,68,2) reference shape.
        id_feature: (N,4096) VGG-Face identity feature of the source.
        landmark_code: (N,136) IDSG code of the reference.
        decoded_landmarks: (N,68,2) IDSG decoder output, before eye correction.
        target_landmarks: (N,68,2) after eye correction: what the sketch draws.
        sketch: (N,256,256) uint8 {0,255} target sketch.
        style_code: (N,128) RFG style code of the source.
        image: (N,256,256,3) uint8 RGB reenacted faces.
        sketch_intensity: "demo" or "train".
        weights: label of the weights used ("official", "synthetic (untrained)", ...), kept a plain string so
            results compare and print as before; ``weights_info.label``.
        precision: numeric precision of the model that made it ("fp32", "tf32", "bf16", "fp16").
        weights_info: the :class:`WeightsInfo` of the model that made it (``.trained`` is False for synthetic
            weights: their images need the UNTRAINED banner, see :func:`dgkit.viz.is_untrained`).
        compiled: whether the generator ran compiled (``load_dg(..., compile=True)``; within a grey level of the
            eager run, not bit-identical).
    """

    source_image: np.ndarray
    reference_landmarks: np.ndarray
    id_feature: np.ndarray
    landmark_code: np.ndarray
    decoded_landmarks: np.ndarray
    target_landmarks: np.ndarray
    sketch: np.ndarray
    style_code: np.ndarray
    image: np.ndarray
    sketch_intensity: str = "demo"
    weights: str = "official"
    precision: str = "fp32"
    weights_info: WeightsInfo = field(default_factory=lambda: WeightsInfo("official", trained=True))
    compiled: bool = False

    def __len__(self) -> int:
        return len(self.image)


@dataclass(frozen=True)
class ChainResult:
    """Output of :meth:`DualGenerator.run_chain` (numpy, batch first; landmarks float64 crop px, x then y).

    Attributes:
        reference: the (N) reference landmarks and landmark codes that were decoded.
        decoded_landmarks: (N,68,2) IDSG decoder output.
        target_landmarks: (N,68,2) after eye correction.
        sketch: (N,256,256) uint8 {0,255} target sketches.
        image: (N,256,256,3) uint8 RGB faces, or None for a shape-only run (no style code given).
        sketch_intensity: the line value the generator was (or would be) fed: "demo" or "train".
    """

    reference: ReferenceEncoding
    decoded_landmarks: np.ndarray
    target_landmarks: np.ndarray
    sketch: np.ndarray
    image: np.ndarray | None
    sketch_intensity: str

    def __len__(self) -> int:
        return len(self.target_landmarks)


# --- input checks -----------------------------------------------------------------------------------------------
def _as_source_batch(source) -> np.ndarray:
    arr = np.asarray(source)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[1:] != (CROP_SIZE, CROP_SIZE, 3):
        raise InputError(
            f"a source must be an aligned RGB crop of shape (256,256,3) or (N,256,256,3), got {arr.shape}; "
            "align a photo first with dgkit.align_face(photo, landmarks)"
        )
    if arr.dtype != np.uint8:
        raise InputError(f"source crops must be uint8 RGB (0..255), got {arr.dtype}; "
                         "convert with dgkit.read_image() or (img * 255).round().astype(np.uint8)")
    if len(arr) == 0:
        raise InputError("the source batch is empty")
    return arr


def _as_landmark_batch(landmarks, name: str = "reference_landmarks") -> np.ndarray:
    """(68,2|3) or (N,68,2|3) crop-pixel landmarks -> (N,68,2) float32 (:func:`dgkit.face68.check_landmarks`)."""
    return check_landmarks(landmarks, name, batch=True, crop_frame=True, dtype=np.float32)[..., :2]


def _as_vector_batch(values, width: int, name: str) -> np.ndarray:
    """(width,) or (N,width) finite floats -> (N,width) float32."""
    arr = np.asarray(values)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != width or len(arr) == 0 or not np.issubdtype(arr.dtype, np.number):
        raise InputError(f"{name} must be numeric of shape ({width},) or (N,{width}), got {arr.dtype} {arr.shape}")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise InputError(f"{name} contain NaN or inf; recompute them (encode_source / encode_reference)")
    return arr


def _broadcast(n_a: int, n_b: int, what: str) -> int:
    if n_a == n_b or n_b == 1:
        return n_a
    if n_a == 1:
        return n_b
    raise InputError(f"batch mismatch: {n_a} {what[0]} but {n_b} {what[1]}; pass equal batches, or one of either")


def _repeat(arr: np.ndarray, n: int) -> np.ndarray:
    return arr if len(arr) == n else np.repeat(arr, n, axis=0)


# --- numerics -------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _fp32_on_cuda(device: torch.device, allow_tf32: bool):
    """Full-precision float32 convolutions/matmuls on CUDA unless ``allow_tf32``.

    cuDNN convolutions use TF32 by default on Ampere and newer GPUs: ~1e-3 relative error, outside the tolerances
    that reproduce the released demo (its code predates TF32). torch offers these switches only as process-wide
    flags (no per-module or per-call setting), so each step sets them from the model's precision (fixed at load
    time) and restores the caller's values afterwards: other code in the process is not affected.
    """
    if device.type != "cuda":
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # newer torch prefers fp32_precision; the old flags still work
        saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _inference(method):
    """Decorator for DualGenerator steps: inference mode and the model's float32 policy."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with torch.inference_mode(), _fp32_on_cuda(self.device, self.precision == "tf32"):
            return method(self, *args, **kwargs)

    return wrapper


# --- the model --------------------------------------------------------------------------------------------------
class DualGenerator(nn.Module):
    """DG with its five networks: VGG-Face, IDSG encoder/decoder, RFG style encoder/generator.

    The IDSG landmark discriminator and identity classifier are kept (strict loading, training) in
    ``idsg_extra``. Build it with :func:`load_dg`; call the steps, :meth:`run_chain` or :meth:`reenact`.
    ``sketch_intensity`` is the default of the calls that take one; ``precision`` is fixed at construction.
    """

    def __init__(self, *, device: str | torch.device = "cpu", sketch_intensity: SketchIntensity = "demo",
                 weights: WeightsInfo | None = None, precision: Precision = "fp32"):
        super().__init__()
        self._precision = _check_precision(precision, torch.device(device))
        self.vgg = VGGFace()
        self.landmark_encoder = IDSG_NETS["lm_linear_encoder"]()
        self.landmark_decoder = IDSG_NETS["linear_decoder"]()
        self.idsg_extra = nn.ModuleDict({k: IDSG_NETS[k]() for k in ("linear_discriminator", "linear_classfier")})
        self.style_encoder = RFG_NETS["style_encoder"]()
        self.generator = RFG_NETS["generator"]()
        self.weights = weights or WeightsInfo("uninitialized", trained=False)
        self.sketch_intensity = sketch_intensity
        self.eval()
        self._apply_precision()
        self.to(torch.device(device))
        self.__dict__["_compiled_generator"] = None  # kept out of nn.Module's registry (and the state dict)

    def to(self, *args, **kwargs):
        """``nn.Module.to``, then the memory format that is fastest for the device (see ``memory_format``)."""
        module = super().to(*args, **kwargs)
        if "memory_format" not in kwargs:
            super().to(memory_format=self.memory_format)
        return module

    @property
    def memory_format(self) -> torch.memory_format:
        # channels_last: ~1.3x faster CPU (oneDNN) convolutions, results within 1e-5. On CUDA in exact float32 it
        # was slower (H200, batch 4: see benchmarks/bench_pipeline.py), so GPUs keep the default layout.
        return torch.channels_last if self.device.type == "cpu" else torch.contiguous_format

    # -- configuration --
    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @property
    def precision(self) -> str:
        """"fp32" (exact), "tf32", "bf16" or "fp16": fixed when the model is built (see :data:`PRECISIONS`)."""
        return self._precision

    @property
    def allow_tf32(self) -> bool:
        """Whether CUDA float32 steps may use TF32 (``precision="tf32"``); exact float32 otherwise."""
        return self._precision == "tf32"

    def low_precision_modules(self) -> list[str]:
        """Names of the sub-networks that run in bfloat16/float16 at this precision (empty for fp32/tf32)."""
        if self._precision not in ("bf16", "fp16"):
            return []
        # Chosen by measurement on a contrast-calibrated generator (benchmarks/bench_precision.py): the decoder
        # blocks in low precision keep ~43 dB PSNR; adding encoder blocks falls to ~38 dB (blocks 1-3) and ~24 dB
        # (all): the sketch lines are faint (1/255) and their rounding is amplified by the encoder's instance norms.
        return ["generator.decode", "style_encoder", "vgg"]

    def _apply_precision(self) -> None:
        """Cast the sub-networks named by :meth:`low_precision_modules` to the low dtype (fp32 stays)."""
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self._precision)
        if dtype is None:
            return
        if dtype == torch.bfloat16 and self.device.type == "cpu" and not cpu_has_fast_bf16():
            warnings.warn("precision='bf16' on a CPU without native bfloat16 support (AVX-512 BF16 / AMX): "
                          "convolutions fall back to a slow path, several times slower than float32 here; use "
                          "precision='fp32' on this machine", RuntimeWarning, stacklevel=3)
        for name in self.low_precision_modules():
            self.get_submodule(name).to(dtype)

    def to_precision(self, precision: Precision) -> "DualGenerator":
        """A copy of this model at another precision (for side-by-side comparisons); this model is unchanged.

        Casting down is a one-way trip, so the copy is made from a float32 model only.
        """
        if self._precision not in ("fp32", "tf32"):
            raise InputError(f"to_precision needs a float32 model (this one is {self._precision}); "
                             "load a float32 model with dgkit.load_dg(..., precision='fp32')")
        compiled = self.__dict__["_compiled_generator"]
        clone = copy.deepcopy(self, {id(compiled): None} if compiled is not None else None)  # the copy runs eager
        clone._precision = _check_precision(precision, self.device)
        clone._apply_precision()
        return clone

    @property
    def compiled(self) -> bool:
        """Whether :meth:`generate` runs a compiled generator (see :meth:`compile_generator`)."""
        return self.__dict__["_compiled_generator"] is not None

    def compile_generator(self) -> "DualGenerator":
        """Compile the generator with ``torch.compile`` (inductor, static shapes); returns ``self``.

        What ``load_dg(..., compile=True)`` does. The first call per batch size and device compiles (minutes on a
        small CPU); the generated code is kept in :func:`compile_cache_dir`, so later sessions skip most of that.
        Results are within a grey level of the eager float32 run (the compiler fuses elementwise steps and
        reorders float operations), so the exact demo-conformant path stays the eager default.
        The weights stay inputs of the compiled code (inductor's weight freezing was slower here and its
        prepacked weights cannot be cached: benchmarks/bench_compile.py). :meth:`to_precision` copies run eager;
        :meth:`generator_activations` always runs eager.
        """
        _use_compile_cache()
        compiled = torch.compile(self.generator, dynamic=False)
        self.__dict__["_compiled_generator"] = compiled
        return self

    def _run_generator(self, sketch: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """The generator, compiled when :attr:`compiled` (falling back to eager, with a warning, if compiling fails)."""
        compiled = self.__dict__["_compiled_generator"]
        if compiled is None:
            return self.generator(sketch, style)
        try:
            return compiled(sketch, style)
        except torch._dynamo.exc.BackendCompilerFailed as exc:
            warnings.warn(f"dgkit: compiling the generator failed ({str(exc).splitlines()[0]}); running it eager. "
                          "torch.compile needs a working C++ compiler on CPU", RuntimeWarning, stacklevel=3)
            self.__dict__["_compiled_generator"] = None
            return self.generator(sketch, style)

    @property
    def sketch_intensity(self) -> str:
        return self._sketch_intensity

    @sketch_intensity.setter
    def sketch_intensity(self, value: str) -> None:
        if value not in SKETCH_INTENSITIES:
            raise InputError(f"sketch_intensity must be one of {sorted(SKETCH_INTENSITIES)}, got {value!r}")
        self._sketch_intensity = value

    def load_official_state(self, rfg: dict, idsg: dict, vgg_face: dict) -> None:
        """Load the three official checkpoint objects (as returned by ``dgkit.checkpoint.load_checkpoint``).

        A model built on the meta device (what :func:`load_dg` does) takes the checkpoints' tensors as its
        parameters (no random initialisation, no second copy); otherwise the values are copied in place.
        """
        assign = self.device.type == "meta"
        targets = {
            "generator": (self.generator, rfg), "style_encoder": (self.style_encoder, rfg),
            "lm_linear_encoder": (self.landmark_encoder, idsg), "linear_decoder": (self.landmark_decoder, idsg),
            "linear_discriminator": (self.idsg_extra["linear_discriminator"], idsg),
            "linear_classfier": (self.idsg_extra["linear_classfier"], idsg),
        }
        for name, (net, blob) in targets.items():
            _load_strict(net, blob[name], name, assign)
        _load_strict(self.vgg, from_vgg_face_dag(vgg_face), "vgg_face_dag", assign)
        if assign:
            self.vgg.reset_constants()  # its normalisation constants are not in the checkpoint
        self._apply_precision()
        self.to(memory_format=self.memory_format)

    def _tensor(self, arr: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(arr)).to(self.device)

    def _images_to_tensor(self, images_u8: np.ndarray) -> torch.Tensor:
        # HWC uint8 RGB -> NCHW float in [0,1], the demo's toTensor (division by 255)
        t = self._tensor(images_u8).permute(0, 3, 1, 2).float() / 255
        return t.contiguous(memory_format=self.memory_format)

    # -- the steps --
    @_inference
    def encode_source(self, source) -> SourceEncoding:
        """Identity feature (VGG-Face fc7) and style code of aligned source crop(s).

        Args:
            source: (256,256,3) or (N,256,256,3) uint8 RGB, aligned with :func:`dgkit.align_face`.
        """
        images = _as_source_batch(source)
        x = self._images_to_tensor(images)
        x_vgg = x.to(self.vgg.classifier[0].weight.dtype)
        x_style = x_vgg.to(self.style_encoder.fc.weight.dtype)
        return SourceEncoding(
            image=images.copy(),
            id_feature=self.vgg(x_vgg).float().cpu().numpy(),
            style_code=self.style_encoder(x_style).float().cpu().numpy(),
        )

    @_inference
    def encode_reference(self, reference_landmarks) -> ReferenceEncoding:
        """IDSG landmark code of reference landmarks ((68,2) or (N,68,2) crop pixels)."""
        lm = _as_landmark_batch(reference_landmarks)
        normalized = (lm / CROP_SIZE).reshape(len(lm), -1)
        code = self.landmark_encoder(self._tensor(normalized))
        return ReferenceEncoding(landmarks=lm.astype(LANDMARK_DTYPE), landmark_code=code.cpu().numpy())

    @_inference
    def decode(self, landmark_code: np.ndarray, id_feature: np.ndarray) -> np.ndarray:
        """IDSG decoder: landmark code (N,136) + identity feature (N,4096) -> landmarks (N,68,2) crop pixels.

        Either input may have batch 1 and is then repeated to the other's batch size.
        """
        code = _as_vector_batch(landmark_code, 136, "landmark_code")
        feat = _as_vector_batch(id_feature, 4096, "id_feature")
        n = _broadcast(len(code), len(feat), ("landmark codes", "identity features"))
        out = self.landmark_decoder(self._tensor(_repeat(code, n)), self._tensor(_repeat(feat, n)))
        # x256 is exact in binary floating point, and so is the cast to the landmark dtype (float64)
        return (out.cpu().numpy().reshape(n, 68, 2) * CROP_SIZE).astype(LANDMARK_DTYPE)

    def correct_eyes(self, decoded_landmarks: np.ndarray, reference_landmarks: np.ndarray) -> np.ndarray:
        """Copy the reference's eyelid openings onto decoded landmarks ((N,68,2), crop pixels); see ``dgkit.eyes``."""
        dec = _as_landmark_batch(decoded_landmarks, "decoded_landmarks")
        ref = _as_landmark_batch(reference_landmarks)
        n = _broadcast(len(dec), len(ref), ("decoded shapes", "references"))
        return _eyes.correct_eyes(_repeat(dec, n), _repeat(ref, n))

    def draw(self, target_landmarks: np.ndarray) -> np.ndarray:
        """Target sketches (N,256,256) uint8 {0,255} of a batch of (N,68,2) crop-pixel landmarks.

        The batch form of :func:`dgkit.sketch.draw_sketch` (which draws one sketch, of either kind) with the
        target rules the generator was trained on.
        """
        lm = _as_landmark_batch(target_landmarks, "target_landmarks")
        return np.stack([draw_sketch(p, kind="target") for p in lm])

    def _intensity(self, sketch_intensity: str | None) -> str:
        """The call's sketch intensity: the argument, or the model's default when None."""
        if sketch_intensity is None:
            return self.sketch_intensity
        if sketch_intensity not in SKETCH_INTENSITIES:
            raise InputError(f"sketch_intensity must be one of {sorted(SKETCH_INTENSITIES)}, got {sketch_intensity!r}")
        return sketch_intensity

    def sketch_tensor(self, sketch: np.ndarray, sketch_intensity: SketchIntensity | None = None) -> torch.Tensor:
        """(N,256,256) uint8 sketch -> generator input (N,3,256,256) float32, lines at ``sketch_intensity``.

        ``sketch_intensity``: "demo" (1/255), "train" (1.0) or None for the model's default.
        """
        sk = np.asarray(sketch)
        if sk.ndim == 2:
            sk = sk[None]
        if sk.ndim != 3 or sk.shape[1:] != (CROP_SIZE, CROP_SIZE) or sk.dtype != np.uint8:
            raise InputError(f"a sketch must be uint8 (256,256) or (N,256,256), got {sk.dtype} {sk.shape}")
        lines = (self._tensor(sk) > 0).float() * SKETCH_INTENSITIES[self._intensity(sketch_intensity)]
        return lines[:, None].expand(-1, 3, -1, -1).contiguous(memory_format=self.memory_format)

    @_inference
    def generate(self, sketch: np.ndarray, style_code: np.ndarray, *,
                 output: Literal["uint8", "float"] = "uint8",
                 sketch_intensity: SketchIntensity | None = None) -> np.ndarray:
        """RFG generator: sketch (N,256,256) uint8 + style code (N,128) -> faces (N,256,256,3) RGB.

        ``output="uint8"`` converts like the demo, ``floor(255 * y)`` (truncation, docs/how-dg-works.md §8);
        ``output="float"`` returns the sigmoid output, float32 in (0,1).
        ``sketch_intensity``: "demo", "train" or None (the model's default) for this call.
        """
        x = self.sketch_tensor(sketch, sketch_intensity)
        style = _as_vector_batch(style_code, 128, "style_code")
        n = _broadcast(len(x), len(style), ("sketches", "style codes"))
        out = self._run_generator(x.expand(n, -1, -1, -1) if len(x) != n else x, self._tensor(_repeat(style, n)))
        if output == "float":
            return out.float().permute(0, 2, 3, 1).cpu().numpy()
        return to_uint8_image(out)

    @_inference
    def generator_activations(self, sketch: np.ndarray, style_code: np.ndarray) -> dict[str, np.ndarray]:
        """Feature maps of every generator block for one sketch, via forward hooks (for teaching).

        Returns ``{"from_rgb": (C,H,W), "encode.0": ..., "decode.7": ..., "output": (3,256,256)}`` float32.
        """
        found: dict[str, torch.Tensor] = {}
        modules = {"from_rgb": self.generator.from_rgb}
        modules.update({f"encode.{i}": b for i, b in enumerate(self.generator.encode)})
        modules.update({f"decode.{i}": b for i, b in enumerate(self.generator.decode)})
        hooks = [m.register_forward_hook(lambda _m, _i, out, key=key: found.__setitem__(key, out))
                 for key, m in modules.items()]
        try:
            out = self.generator(self.sketch_tensor(sketch)[:1],
                                 self._tensor(_as_vector_batch(style_code, 128, "style_code")[:1]))
        finally:
            for h in hooks:
                h.remove()
        found["output"] = out
        return {k: v[0].float().cpu().numpy() for k, v in found.items()}

    def run_chain(self, reference, id_feature, style_code=None, *,
                  sketch_intensity: SketchIntensity | None = None, timer=None) -> ChainResult:
        """The DG step chain: decode -> correct eyes -> draw the sketch -> generate (the one place it is written).

        Args:
            reference: a :class:`ReferenceEncoding` (landmarks + codes; e.g. interpolated codes), or reference
                landmarks (68,2)/(N,68,2) crop px, which are encoded first.
            id_feature: (4096,) or (N,4096) VGG-Face identity feature(s) of the source.
            style_code: (128,) or (N,128) style code(s); None stops after the sketch (a shape-only update:
                IDSG + eye correction + sketch, a few ms, for panels that must follow a slider at once;
                call :meth:`generate` on ``result.sketch`` for the face).
            sketch_intensity: "demo", "train" or None (the model's default) for this call.
            timer: optional ``timer(stage) -> context manager`` charged with the stages "idsg", "sketch" and
                "generator" (e.g. ``dgkit.reenact``'s video timer).
        Any batch of size 1 is repeated to the others' size.
        Returns:
            :class:`ChainResult` with every intermediate (``image`` None without a style code).
        """
        timer = timer or _NoTimer()
        intensity = self._intensity(sketch_intensity)
        with timer("idsg"):
            ref = reference if isinstance(reference, ReferenceEncoding) else self.encode_reference(reference)
            decoded = self.decode(ref.landmark_code, id_feature)
            n = len(decoded)
            ref = ReferenceEncoding(_repeat(ref.landmarks, n), _repeat(ref.landmark_code, n))
            target = self.correct_eyes(decoded, ref.landmarks)
        with timer("sketch"):
            sketch = self.draw(target)
        image = None
        if style_code is not None:
            with timer("generator"):
                image = self.generate(sketch, style_code, sketch_intensity=intensity)
        return ChainResult(reference=ref, decoded_landmarks=decoded, target_landmarks=target, sketch=sketch,
                           image=image, sketch_intensity=intensity)

    @_inference
    def reenact_tensors(self, reference_landmarks: torch.Tensor, id_feature: torch.Tensor, style_code: torch.Tensor,
                        *, sketch_intensity: SketchIntensity | None = None) -> torch.Tensor:
        """The whole per-reference update on the model's device, tensors in and out (batched GPU throughput).

        IDSG encoder/decoder, eye correction, :func:`dgkit.sketch.draw_sketches_torch` (the tensor sketch
        renderer, within a pixel of OpenCV's) and the generator, with no host round trip. The numpy steps and
        :meth:`run_chain` remain the reference path (OpenCV sketch, exact demo behaviour).

        Args:
            reference_landmarks: (N,68,2) float crop px; id_feature: (N,4096) or (1,4096); style_code: (N,128)
                or (1,128), on any device (moved to the model's).
        Returns:
            (N,3,256,256) float32 faces in (0,1) on the model's device.
        """
        from .face68 import EYELID_PAIRS
        from .sketch import draw_sketches_torch

        ref = reference_landmarks.to(self.device, torch.float32)[..., :2]
        n = len(ref)
        code = self.landmark_encoder((ref / CROP_SIZE).reshape(n, -1))
        ids = id_feature.to(self.device, torch.float32).expand(n, -1)
        target = (self.landmark_decoder(code, ids) * CROP_SIZE).reshape(n, 68, 2)
        ratio = (target[:, 36] - target[:, 39]).norm(dim=-1) / (ref[:, 36] - ref[:, 39]).norm(dim=-1)
        for upper, lower in EYELID_PAIRS:  # the same rule as dgkit.eyes.correct_eyes, on tensors
            target[:, upper] = target[:, lower] + ratio[:, None] * (ref[:, upper] - ref[:, lower])
        lines = (draw_sketches_torch(target) > 0).float() * SKETCH_INTENSITIES[self._intensity(sketch_intensity)]
        sketch = lines[:, None].expand(-1, 3, -1, -1).contiguous(memory_format=self.memory_format)
        return self._run_generator(sketch, style_code.to(self.device, torch.float32).expand(n, -1))

    def reenact(self, source, reference_landmarks, *, sketch_intensity: SketchIntensity | None = None,
                timer=None) -> Reenactment:
        """Full DG: source identity + reference pose/expression -> reenacted face(s).

        Args:
            source: an aligned RGB uint8 crop (256,256,3) / batch (N,256,256,3), or a :class:`SourceEncoding`
                (so that changing only the reference skips VGG-Face and the style encoder).
            reference_landmarks: (68,2) or (N,68,2) float, 256-crop pixels, x then y.
                Batches of sources and references must be equal, or one of them 1 (it is repeated).
            sketch_intensity: "demo", "train" or None (the model's default) for this call.
            timer: optional per-stage timer, see :meth:`run_chain`.
        Returns:
            :class:`Reenactment` with every intermediate.
        """
        enc = source if isinstance(source, SourceEncoding) else self.encode_source(source)
        ref_lm = _as_landmark_batch(reference_landmarks)
        n = _broadcast(len(enc), len(ref_lm), ("sources", "references"))
        if len(enc) != n:
            enc = enc.select(np.zeros(n, dtype=int))
        chain = self.run_chain(ref_lm, enc.id_feature, enc.style_code, sketch_intensity=sketch_intensity, timer=timer)
        return Reenactment(
            source_image=enc.image, reference_landmarks=chain.reference.landmarks, id_feature=enc.id_feature,
            landmark_code=chain.reference.landmark_code, decoded_landmarks=chain.decoded_landmarks,
            target_landmarks=chain.target_landmarks, sketch=chain.sketch, style_code=enc.style_code,
            image=chain.image, sketch_intensity=chain.sketch_intensity, weights=self.weights.label,
            precision=self.precision, weights_info=self.weights, compiled=self.compiled,
        )


def to_uint8_image(images: torch.Tensor) -> np.ndarray:
    """(N,3,H,W) float in [0,1] -> (N,H,W,3) uint8, truncating like the demo's ``(t*255).byte()``."""
    return (images.float() * 255).clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def cpu_has_fast_bf16() -> bool:
    """Whether oneDNN runs bfloat16 convolutions natively on this CPU (else torch uses a slow generic path)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def compile_cache_dir() -> Path:
    """Where ``torch.compile`` keeps dgkit's compiled generator code: ``$TORCHINDUCTOR_CACHE_DIR`` when set,
    else ``inductor/`` in dgkit's user cache (``dgkit.weights.cache_dir()``)."""
    from . import weights as weights_mod

    env = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    return Path(env) if env else weights_mod.cache_dir() / "inductor"


def _use_compile_cache() -> None:
    """Point torch's compiled-code caches at :func:`compile_cache_dir` (process-wide; torch reads it from the
    environment) so a compile is paid once per machine, not once per session."""
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config

    directory = compile_cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(directory)
    inductor_config.fx_graph_cache = True  # on disk (torch's default, made explicit)
    functorch_config.enable_autograd_cache = True


def _check_precision(precision: str, device: torch.device) -> str:
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and device.type == "cpu":
        raise InputError("precision='fp16' needs a GPU (float16 convolutions are slow and lose accuracy on CPU); "
                         "use precision='bf16' on CPU, or device='cuda'")
    return precision


def _load_strict(net: nn.Module, state: dict, name: str, assign: bool = False) -> None:
    try:
        net.load_state_dict(state, strict=True, assign=assign)
    except RuntimeError as exc:  # keys were verified already; this catches an architecture drift
        raise CheckpointError(f"weights for {name!r} do not fit dgkit's network: {exc}") from None


def load_dg(weights_dir: str | Path | None = None, *, device: str | torch.device = "cpu",
            sketch_intensity: SketchIntensity = "demo", allow_synthetic: bool = False,
            precision: Precision = "fp32", compile: bool = False) -> DualGenerator:
    """Build DG and load the official weights.

    Args:
        weights_dir: folder with the official layout (``expr/checkpoints/501500_nets_ema.ckpt``,
            ``expr_lm/checkpoints/30000_nets_ema.ckpt``, ``vgg_face_dag.pth``). None searches, in order,
            ``$DGKIT_WEIGHTS``, the repository's ``weights/`` and the user cache (``dgkit weights status``).
        device: "cpu", "cuda", "cuda:1", "mps", ...
        sketch_intensity: "demo" (lines at 1/255 like the released demo; default) or "train" (lines at 1.0).
        allow_synthetic: when no official weights are found, fall back to deterministic *untrained*
            synthetic weights (seed 1234; images are noise-like). ``dg.weights.trained`` tells which.
        precision: "fp32" (exact float32, reproduces the released demo; default), "bf16" (bfloat16 generator
            decoder, style encoder and VGG-Face, faster on CPUs with AVX-512 BF16/AMX and on GPUs; IDSG and the
            sketch stay exact), "fp16" (GPU only) or "tf32" (GPU TF32 float32). See :data:`PRECISIONS`; the README's
            measured table says what each costs in fidelity. Recorded on every :class:`Reenactment`.
        compile: compile the generator with ``torch.compile`` (:meth:`DualGenerator.compile_generator`): faster
            repeated runs (video, live) after a one-time compile per batch size (a minute or more on a small CPU,
            seconds later from :func:`compile_cache_dir`); within a grey level of the eager run, not
            bit-identical, so the default (False) stays the exact path. Recorded as ``Reenactment.compiled``.
    Raises:
        WeightsNotFoundError: files are missing (the message lists each and how to get it).
        CheckpointError / UnsafeCheckpointError: a file is corrupt, mismatched or unsafe.
    """
    from . import checkpoint, weights as weights_mod
    from .device import resolve_device
    from .errors import WeightsNotFoundError

    device = resolve_device(device)  # a DeviceError before the slow loading
    _check_precision(precision, device)
    try:
        paths = weights_mod.locate_weights(weights_dir)
    except WeightsNotFoundError:
        if not allow_synthetic:
            raise
        directory = weights_mod.synthetic_weights_dir()
        log.warning("dgkit: official DG weights not found; using UNTRAINED synthetic weights from %s", directory)
        paths = weights_mod.locate_weights(directory)
    blobs = {kind: checkpoint.load_checkpoint(path, kind) for kind, path in paths.items()}
    # a signature inside each synthetic file (any seed), the folder marker, or the seed-1234 synthetic contents
    synthetic = weights_mod.synthetic_set_seed(paths, loaded=blobs) is not None  # same answer as weights status
    info = weights_info(paths, synthetic=synthetic)
    with torch.device("meta"):  # no random initialisation: every parameter comes from the checkpoints
        dg = DualGenerator(sketch_intensity=sketch_intensity, weights=info, precision=precision, device="meta")
    dg.load_official_state(blobs["rfg"], blobs["idsg"], blobs["vgg_face"])
    dg = dg.to(torch.device(device))
    return dg.compile_generator() if compile else dg
