"""The ``"fan"`` (3D) and ``"fan2d"`` backends: face-alignment's FAN, the detector the DG paper used.

face-alignment downloads its weights on first use; dgkit never lets it. The backends are available only
when the weight files are already on disk, in ``torch.hub.get_dir()/checkpoints/`` (that is
``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``) or in a directory given as
``FanBackend(weights_dir=...)``:

========================  ===============================  =======================
file                      what                              needed by
========================  ===============================  =======================
3DFAN4-7835d9f11d.pth.tar 3D landmark network (FAN-4)       fan
depth-2a464da4ea.pth.tar  depth network                     fan
2DFAN4-11f355bf06.pth.tar 2D landmark network (FAN-4)       fan2d
s3fd-619a316812.pth       S3FD face detector                fan, fan2d
========================  ===============================  =======================

On a machine with internet they come from ``https://www.adrianbulat.com/downloads/python-fan/<file>``.
Every file is read with ``torch.load(weights_only=True)``, never without it. If that refuses a file (an
old-style checkpoint holding other objects than tensors), the objects it refers to are listed without
unpickling; a file that needs only harmless NumPy scalar/dtype objects is read again with exactly those
allowed (``torch.serialization.safe_globals``), any other file is refused. The backend is then reported as
unavailable, so ``backend="auto"`` uses mediapipe instead.

Coordinates: x, y in image pixels; FAN-3D's z converted to dgkit's convention (zero-mean, smaller =
closer to the camera; FAN's own depth sign is not documented, so the nose tip is made nearer than the
outer eye corners). ``fan2d`` returns z = 0.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import logging
import os
import pickle
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailableError, CheckpointError, UnsafeCheckpointError
from .base import FaceDetection, LandmarkBackend

logger = logging.getLogger("dgkit")

FAN3D_FILE = "3DFAN4-7835d9f11d.pth.tar"
DEPTH_FILE = "depth-2a464da4ea.pth.tar"
FAN2D_FILE = "2DFAN4-11f355bf06.pth.tar"
S3FD_FILE = "s3fd-619a316812.pth"
WEIGHTS_URL = "https://www.adrianbulat.com/downloads/python-fan/"
SUPPORTED_VERSION = "1.5"  # face-alignment: state-dict weights and the _load_native* hooks used below


def default_weights_dir() -> Path:
    """``torch.hub.get_dir()/checkpoints``, where face-alignment keeps its weights.

    Computed like torch does ($TORCH_HOME, else $XDG_CACHE_HOME/torch, else ~/.cache/torch) without
    importing torch when it is not imported yet; once it is, ``torch.hub.set_dir`` is honoured too.
    """
    if "torch" in sys.modules:
        import torch.hub

        return Path(torch.hub.get_dir()) / "checkpoints"
    cache = os.getenv("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    torch_home = os.path.expanduser(os.getenv("TORCH_HOME", os.path.join(cache, "torch")))
    return Path(torch_home) / "hub" / "checkpoints"


def missing_weights(files: tuple[str, ...], weights_dir: str | os.PathLike | None = None) -> list[Path]:
    """The paths among ``files`` (names) that are not regular files in ``weights_dir``."""
    folder = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    return [folder / name for name in files if not (folder / name).is_file()]


def _missing_message(missing: list[Path]) -> str:
    folder = missing[0].parent
    names = ", ".join(p.name for p in missing)
    return (f"FAN weight file(s) missing in {folder}: {names}. dgkit never downloads them; on a machine "
            f"with internet fetch each from {WEIGHTS_URL}<name> and copy it into {folder} (or pass "
            "FanBackend(weights_dir=...)). Without them, use backend='mediapipe'.")


def _face_alignment_problem() -> str | None:
    """Why the installed face-alignment cannot be used, or None."""
    if importlib.util.find_spec("face_alignment") is None:
        return "face-alignment is not installed; pip install 'face-alignment==1.5.*'"
    try:
        version = importlib.metadata.version("face-alignment")
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    if not version.startswith(SUPPORTED_VERSION + "."):
        return f"face-alignment {version} is installed; dgkit's FAN backend needs face-alignment=={SUPPORTED_VERSION}.*"
    return None


def _harmless_objects(names: list[str]) -> list | None:
    """The objects for ``names`` if every one only rebuilds data (NumPy scalars and dtypes, bytes), else None."""
    import _codecs

    import numpy

    table = {"numpy.dtype": numpy.dtype, "_codecs.encode": _codecs.encode}  # encode: how pickle stores bytes
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        with contextlib.suppress(ImportError, AttributeError), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table[f"{module}.scalar"] = getattr(importlib.import_module(module), "scalar")
    dtype_classes = {f"numpy.dtypes.{cls.__name__}": cls for cls in vars(numpy.dtypes).values()
                     if isinstance(cls, type) and issubclass(cls, numpy.dtype)}
    table.update(dtype_classes)
    if not all(name in table for name in names):
        return None
    # a pickled dtype names only numpy.dtype, but rebuilds through its concrete class (e.g. Float64DType)
    return [table[name] for name in names] + list(dtype_classes.values())


def unsafe_globals(path: Path) -> list[str]:
    """Classes/functions a weight file's pickle refers to beyond tensors (found without unpickling it)."""
    from ..checkpoint import _sniff, _unsafe_globals

    with open(path, "rb") as fh:
        fmt = _sniff(fh.read(64))
    return _unsafe_globals(path, fmt) if fmt else []


def _refused(path: Path, names: list[str]) -> UnsafeCheckpointError:
    listed = ", ".join(names) if names else "objects torch refuses to rebuild"
    return UnsafeCheckpointError(
        f"{path} was refused and not loaded: besides tensors it holds pickled objects ({listed}) that could run "
        f"code. Delete it and copy the published file again from {WEIGHTS_URL}{path.name}; until then "
        "backend='auto' uses mediapipe.")


def load_checkpoint(path: Path) -> dict:
    """Read a weight file safely (see the module docstring); returns what torch.load returns, on CPU.

    Raises:
        UnsafeCheckpointError: the file holds objects other than tensors and harmless NumPy scalars/dtypes.
        CheckpointError: the file is truncated or not a torch file.
    """
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        names = [n for n in unsafe_globals(path) if not n.startswith(("torch.", "collections.OrderedDict"))]
        allowed = _harmless_objects(names) if names else None
        if allowed is None:
            raise _refused(path, names) from None
        logger.info("%s is an old-style checkpoint with NumPy objects; loading it with only those allowed", path.name)
        try:
            with torch.serialization.safe_globals(allowed):
                return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            raise _refused(path, names) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} cannot be read as a torch weight file ({exc}); it is probably truncated. "
                              f"Delete it and copy it again from {WEIGHTS_URL}{path.name}") from exc


_SCANNED: dict[tuple[str, int, int], str | None] = {}  # (path, size, mtime) -> why the file is refused, or None


def refused_weights(files: tuple[str, ...], weights_dir: str | os.PathLike | None = None) -> str | None:
    """Why one of ``files`` would be refused by :func:`load_checkpoint` (a scan, nothing is unpickled), or None."""
    folder = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    for name in files:
        path = folder / name
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _SCANNED:
            names = [n for n in unsafe_globals(path) if not n.startswith(("torch.", "collections.OrderedDict"))]
            _SCANNED[key] = None if not names or _harmless_objects(names) is not None else str(_refused(path, names))
        if _SCANNED[key]:
            return _SCANNED[key]
    return None


@contextlib.contextmanager
def _downloads_forbidden() -> Iterator[None]:
    """Make any download attempt inside face-alignment/torch.hub fail loudly (defence in depth: the
    loaders below never ask for one)."""
    import torch.hub

    def refuse(url, *args, **kwargs):
        raise BackendUnavailableError(f"dgkit refused a download of {url}; put the file in {default_weights_dir()}")

    targets = [torch.hub]
    fa_utils = sys.modules.get("face_alignment.utils")
    if fa_utils is not None:
        targets.append(fa_utils)
    saved = [(t, t.download_url_to_file) for t in targets if hasattr(t, "download_url_to_file")]
    for target, _ in saved:
        target.download_url_to_file = refuse
    try:
        yield
    finally:
        for target, original in saved:
            target.download_url_to_file = original


def _build_face_alignment(three_d: bool, folder: Path, device: str, flip_input: bool, min_score: float):
    """A face_alignment.FaceAlignment whose networks are loaded from ``folder`` (never downloaded)."""
    import torch
    from face_alignment import FaceAlignment, LandmarksType
    from face_alignment.models import FAN, ResNetDepth

    class OfflineFaceAlignment(FaceAlignment):
        # face-alignment 1.5 loads each network in these two hooks; ours read local files safely
        def _load_native(self, network_name, network_size, device, dtype):
            net = FAN(network_size)
            net.load_state_dict(load_checkpoint(folder / (FAN3D_FILE if three_d else FAN2D_FILE)))
            return net.to(device, dtype=dtype).eval()

        def _load_native_depth(self, device, dtype):
            checkpoint = load_checkpoint(folder / DEPTH_FILE)
            state = checkpoint.get("state_dict", checkpoint)
            net = ResNetDepth()
            net.load_state_dict({k.replace("module.", "", 1): v for k, v in state.items()})
            return net.to(device, dtype=dtype).eval()

    # face-alignment reads the detector file itself (weights_only=True); read it once here first so that a
    # truncated or foreign file gives dgkit's clear error instead of a bare EOFError
    load_checkpoint(folder / S3FD_FILE)
    kind = LandmarksType.THREE_D if three_d else LandmarksType.TWO_D
    with _downloads_forbidden(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        try:
            return OfflineFaceAlignment(kind, device=device, dtype=torch.float32, flip_input=flip_input,
                                        face_detector="sfd", compile=False,
                                        face_detector_kwargs={"path_to_detector": str(folder / S3FD_FILE),
                                                              "filter_threshold": min_score})
        except RuntimeError as exc:
            if "state_dict" not in str(exc):
                raise
            # load_state_dict: wrong keys or shapes
            raise CheckpointError(f"FAN weights in {folder} do not match face-alignment's networks: {exc}") from exc


class FanBackend(LandmarkBackend):
    """face-alignment's FAN (3D: FAN-4 + depth network) with its S3FD face detector, from local weights.

    Args:
        weights_dir: folder holding the weight files; default ``torch.hub.get_dir()/checkpoints``.
        device: torch device string; default "cuda" when available, else "cpu".
        flip_input: also run on the mirrored crop and average (face-alignment's default; ~2x slower).
        min_score: minimum S3FD confidence.

    Raises:
        BackendUnavailableError: face-alignment missing/unsupported, or weight files missing (the message
            lists them and where to put them).
    """

    name = "fan"
    three_d = True
    required_files: tuple[str, ...] = (FAN3D_FILE, DEPTH_FILE, S3FD_FILE)

    def __init__(self, weights_dir: str | os.PathLike | None = None, device: str | None = None,
                 flip_input: bool = True, min_score: float = 0.5) -> None:
        problem = _face_alignment_problem()
        if problem:
            raise BackendUnavailableError(problem)
        self.weights_dir = Path(weights_dir) if weights_dir is not None else default_weights_dir()
        missing = missing_weights(self.required_files, self.weights_dir)
        if missing:
            raise BackendUnavailableError(_missing_message(missing))
        self.device = device
        self.flip_input = bool(flip_input)
        self.min_score = float(min_score)
        self._fa = None
        self._lock = threading.Lock()

    @classmethod
    def available(cls) -> tuple[bool, str]:
        problem = _face_alignment_problem()
        if problem:
            return False, problem
        missing = missing_weights(cls.required_files)
        if missing:
            return False, _missing_message(missing)
        refused = refused_weights(cls.required_files)
        if refused:
            return False, refused
        return True, f"face-alignment FAN ({'3D' if cls.three_d else '2D'}) with weights in {default_weights_dir()}"

    def _model(self):
        with self._lock:
            if self._fa is None:
                import torch

                device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
                self._fa = _build_face_alignment(self.three_d, self.weights_dir, device, self.flip_input,
                                                 self.min_score)
            return self._fa

    def detect(self, image_rgb: np.ndarray) -> list[FaceDetection]:
        fa = self._model()
        with self._lock, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No faces were detected")
            landmarks, _, boxes = fa.get_landmarks_from_image(image_rgb, return_bboxes=True,
                                                              return_landmark_score=True)
        if landmarks is None:
            return []
        faces = []
        for points, box in zip(landmarks, boxes):
            box = np.asarray(box, dtype=np.float64).reshape(-1)
            faces.append(FaceDetection(self._to_dgkit(np.asarray(points)), box[:4],
                                       float(box[4]) if box.size > 4 else float("nan"), self.name))
        return faces

    @staticmethod
    def _to_dgkit(points: np.ndarray) -> np.ndarray:
        """(68, 2|3) FAN output -> (68, 3) float64 with dgkit's z convention."""
        lm = np.zeros((68, 3), dtype=np.float64)
        lm[:, : points.shape[1]] = points[:, :3]
        if points.shape[1] == 3:
            if lm[30, 2] > lm[[36, 45], 2].mean():  # nose tip must be nearer (smaller z) than eye corners
                lm[:, 2] = -lm[:, 2]
            lm[:, 2] -= lm[:, 2].mean()
        return lm


class Fan2DBackend(FanBackend):
    """FAN-2D (2DFAN4 + S3FD): points on the visible 2D outline, z = 0. Same arguments as FanBackend."""

    name = "fan2d"
    three_d = False
    required_files = (FAN2D_FILE, S3FD_FILE)
