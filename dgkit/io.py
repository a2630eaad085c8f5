"""Images and videos in and out: one place that turns whatever the user has into RGB uint8 arrays.

Conventions
-----------
* Every image dgkit returns is a NumPy array, RGB, ``uint8``, shape ``(H, W, 3)`` (HWC; row = y, column = x).
* Arrays given *to* dgkit are assumed to be **RGB** (not OpenCV's BGR): convert a ``cv2.imread`` result with
  ``cv2.cvtColor(img, cv2.COLOR_BGR2RGB)`` first, or pass the file path instead.
* Transparency is composited onto a **white** background (a transparent PNG looks as it does in a viewer).
* Outputs never overwrite inputs: the writers take ``protect=`` (the input paths) and refuse those targets.
* Outputs are written atomically (:func:`atomic_output`): into a hidden temporary file in the same folder,
  renamed over the final name only when complete. An interrupted or failed write leaves any previous file
  untouched and no partial file behind. An existing output is refused unless ``overwrite=True`` (the command
  line's ``--force``); two processes writing the same output at once: the second one fails at once.
* Inputs must be regular files: FIFOs, sockets and devices are refused before they are opened (reading a
  FIFO would wait forever).

Example::

    from dgkit.io import read_image, write_image, iter_video_frames

    rgb = read_image("me.jpg")                       # (H, W, 3) uint8, EXIF rotation applied
    write_image("out/me.png", rgb, protect=["me.jpg"])
    for frame in iter_video_frames("clip.mp4"):      # one (H, W, 3) uint8 frame at a time
        ...
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import secrets
import stat
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageReadError, InputError, OutputBusyError, OutputError, OutputExistsError, VideoError

PathLike = str | os.PathLike
ImageSource = PathLike | np.ndarray | Image.Image

__all__ = [
    "atomic_output",
    "check_input_file",
    "clean_stale_temporaries",
    "lock_file",
    "read_image",
    "as_rgb_uint8",
    "sample_image",
    "sample_names",
    "write_image",
    "VideoInfo",
    "video_info",
    "iter_video_frames",
    "VideoWriter",
    "make_test_video",
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "READ_VIDEO_SUFFIXES",
    "is_video_path",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
# suffix -> FourCC: both are in every OpenCV wheel (no GPL/patent-encumbered encoder needed)
VIDEO_SUFFIXES = {".mp4": "mp4v", ".avi": "MJPG"}
"""Video suffixes dgkit *writes* (suffix -> OpenCV FourCC)."""
READ_VIDEO_SUFFIXES = (*VIDEO_SUFFIXES, ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
"""Suffixes dgkit treats as videos when *reading* (command lines, folders of training videos, evaluation pairs);
OpenCV's FFmpeg decodes them all. The one list: every "is this a video?" question asks :func:`is_video_path`."""


def is_video_path(path: PathLike) -> bool:
    """Whether ``path``'s suffix (any case) is one of :data:`READ_VIDEO_SUFFIXES`; the file is not opened."""
    return Path(str(path)).suffix.lower() in READ_VIDEO_SUFFIXES

# EXIF orientation -> PIL transpose, for the 16-bit path where ImageOps.exif_transpose cannot be used
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


# --- safe files: regular inputs, atomic outputs ------------------------------------------------------------
_KINDS = {stat.S_ISFIFO: "a FIFO (named pipe)", stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a character device",
          stat.S_ISBLK: "a block device"}


def check_input_file(path: PathLike, what: str = "file", error: type[Exception] = InputError) -> Path:
    """Return ``path`` as a Path if it is an existing regular file (symlinks followed); raise ``error`` if not.

    FIFOs, sockets and devices are refused *before* anything opens them: opening a FIFO blocks until another
    process writes to it, so a reader would wait forever. ``what`` names the file in messages ("image", ...).
    """
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise error(f"{what} not found: {p}. Check the path (relative paths start at {Path.cwd()}).") from None
    except OSError as exc:
        raise error(f"cannot read the {what} {p}: {exc.strerror or exc}.") from None
    if stat.S_ISDIR(mode):
        raise error(f"{p} is a directory, not a {what} file. Pass the path of one file inside it.")
    for test, kind in _KINDS.items():
        if test(mode):
            raise error(f"{p} is {kind}, not a regular {what} file; dgkit reads only regular files (copy the "
                        "data into a file first).")
    return p


# hidden temporaries: .<name>.<pid>.<8 hex>.tmp[<suffix>] (the suffix lets writers pick the format by name)
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp(?:\.[A-Za-z0-9]+)?$")


def temporary_name(path: Path, *, keep_suffix: bool = True) -> Path:
    """A fresh hidden temporary path beside ``path`` that :func:`clean_stale_temporaries` recognises."""
    suffix = path.suffix if keep_suffix else ""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp{suffix}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def clean_stale_temporaries(folder: PathLike, name: str | None = None) -> list[Path]:
    """Remove dgkit's temporary files in ``folder`` whose writing process is gone (e.g. killed with SIGKILL).

    Only files named like dgkit's temporaries (``.<name>.<pid>.<hex>.tmp[.suffix]``) whose process id no longer
    runs are removed; ``name`` restricts it to the temporaries of one output. Returns the removed paths.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_RE.match(entry.name)
        if not match or (name is not None and match["name"] != name) or _pid_alive(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def make_output_folder(folder: PathLike) -> Path:
    """Create ``folder`` (and its parents) for outputs; OutputError with a clear message when that fails."""
    p = Path(folder)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"cannot create the folder {p}: a file with that name exists. Choose another output "
                          "path.") from None
    except PermissionError:
        raise OutputError(f"permission denied: cannot create the folder {p} (no write permission in "
                          f"{_first_existing(p)}). Choose an output path in a folder you can write to.") from None
    except OSError as exc:
        raise OutputError(f"cannot create the folder {p}: {exc.strerror or exc}.") from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise OutputError(f"permission denied: cannot write into the folder {p}. Choose an output path in a "
                          "folder you can write to.")
    return p


def _first_existing(p: Path) -> Path:
    for parent in (p, *p.parents):
        if parent.exists():
            return parent
    return p


@contextlib.contextmanager
def lock_file(lock_path: PathLike, *, wait: bool = True, busy_message: str = "") -> Iterator[None]:
    """Hold an inter-process advisory lock (``fcntl.flock``) on ``lock_path``; the file is removed afterwards.

    ``wait=False`` raises OutputBusyError(``busy_message``) at once when another process holds the lock;
    ``wait=True`` waits for it. On systems without ``fcntl`` (Windows) this does nothing.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; atomic renames still prevent corrupt files
        yield
        return
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise OutputBusyError(busy_message or f"{lock_path} is locked by another process.") from None
            raise
        try:  # the holder before us may have removed the lock file after we opened it: lock the current one
            same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_path)
        os.close(fd)


def _output_lock(out: Path) -> contextlib.AbstractContextManager:
    """The lock :func:`atomic_output` holds on ``.<name>.lock`` beside ``out`` (fails at once if taken)."""
    return lock_file(out.with_name(f".{out.name}.lock"), wait=False, busy_message=(
        f"{out} is being written by another process right now; wait for it to finish or choose another "
        "output path."))


@contextlib.contextmanager
def atomic_output(
    path: PathLike, *, overwrite: bool = False, protect: PathLike | Iterable[PathLike] = ()
) -> Iterator[Path]:
    """Write one output file all-or-nothing. Yields a temporary path to write to; renamed into place at the end.

    The temporary file is hidden, in the same folder (so the final ``os.replace`` is atomic) and keeps the
    output's suffix (``.<name>.<pid>.<hex>.tmp<suffix>``), so writers that choose the format from the name
    work unchanged. When the block ends normally, the temporary replaces ``path``; when it raises (including
    KeyboardInterrupt, or SIGTERM on the command line), the temporary is removed and ``path`` is untouched.
    Temporaries left by killed processes (SIGKILL) are removed the next time the same output is written.

    Args:
        path: the final output file. Missing parent folders are created (OutputError if that is not allowed).
        overwrite: replace an existing ``path``. False (default) raises OutputExistsError naming the file.
        protect: input path(s) that must never be overwritten (InputError, whatever ``overwrite`` says).

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        OutputBusyError: another process is writing ``path`` at this moment (advisory ``fcntl`` lock on a hidden
            ``.<name>.lock`` file beside it, removed afterwards).
        OutputError: the folder cannot be created or written.

    Example::

        from dgkit.io import atomic_output

        with atomic_output("results/table.csv", overwrite=True) as tmp:
            tmp.write_text("a,b\\n1,2\\n")     # results/table.csv appears only now, complete
    """
    out = Path(path).expanduser()
    _refuse_protected(out, protect)
    make_output_folder(out.parent)
    with _output_lock(out):
        if out.exists() and not overwrite:
            raise OutputExistsError(
                f"{out} exists already; refusing to overwrite it. Pass overwrite=True (command line: --force) "
                "to replace it, or choose another output path.")
        clean_stale_temporaries(out.parent, out.name)
        tmp = temporary_name(out)
        try:
            yield tmp
            if not tmp.exists():
                raise OutputError(f"nothing was written for {out} (the writer produced no file).")
            os.replace(tmp, out)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise


# --- images in ----------------------------------------------------------------------------------------------
def read_image(source: ImageSource) -> np.ndarray:
    """Read an image as RGB ``uint8`` ``(H, W, 3)``.

    Args:
        source: a file path (str or Path), a NumPy array, or a PIL image.

            * Files: the EXIF orientation is applied (phone photos come out upright); grayscale becomes 3
              equal channels; palette images are converted; 16-bit images are *scaled* to 8 bits
              (``round(v / 257)``); transparency (RGBA, LA, palette with transparency) is composited on white.
            * Arrays are assumed RGB (not BGR). Accepted: ``uint8``, or float in ``[0, 1]`` (scaled by 255 and
              rounded); shapes ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)``, ``(H, W, 4)`` (RGBA, composited on
              white). The caller's array is never modified; the result is always a new array.

    Returns:
        ``np.ndarray`` RGB uint8, shape ``(H, W, 3)``, C-contiguous.

    Raises:
        ImageReadError: missing file, a directory, not an image, or a truncated/corrupted file.
        InputError: an array with an unsupported shape, dtype or value range.
    """
    if isinstance(source, np.ndarray):
        return as_rgb_uint8(source)
    if isinstance(source, Image.Image):
        return _pil_to_rgb(ImageOps.exif_transpose(source))  # a transposed copy; the caller's image is kept
    if isinstance(source, (str, os.PathLike)):
        return _read_image_file(Path(source))
    raise InputError(
        f"read_image expects a file path, a NumPy array or a PIL image, got {type(source).__name__}. "
        "Pass the path of a photo (e.g. 'face.jpg') or an RGB uint8 array."
    )


def as_rgb_uint8(array: np.ndarray, *, name: str = "image") -> np.ndarray:
    """Validate an image array and return a new RGB uint8 ``(H, W, 3)`` array (see :func:`read_image`).

    This is dgkit's one image normaliser: every function that takes an image array (detection, alignment,
    the pipeline's photo entry points, writers, widgets) goes through it, so the rules are the same everywhere
    (docs/conventions.md, "Images"):

    * the input is assumed RGB (not BGR); array-likes (nested lists) are accepted like arrays;
    * ``uint8`` passes through; ``bool`` becomes 0 / 255 (a mask shows as black and white);
    * float must lie in ``[0, 1]`` and becomes ``round(255 * x)``; a float image in 0..255 is refused (it is
      ambiguous: divide by 255 or cast to uint8), as are NaN/inf and other dtypes (16-bit: see :func:`read_image`);
    * ``(H, W)`` / ``(H, W, 1)`` grey is repeated to 3 channels; ``(H, W, 4)`` RGBA is composited on *white*
      (``rgb * a + 255 * (1 - a)``), as transparent photos read from files are, so a fully transparent pixel
      is white whatever colour its hidden RGB holds. Grey + alpha (LA) is given as RGBA (see :func:`read_image`).

    Raises:
        InputError: unsupported shape or dtype, float values outside [0, 1], NaN/inf, an empty image.
    """
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise InputError(
            f"{name} must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {arr.shape}. "
            "Images are height x width x channels (RGB); a CHW tensor needs .permute(1, 2, 0) first."
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{name} is empty (shape {arr.shape}).")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * np.uint8(255)
    if arr.dtype == np.uint8:
        out = arr.astype(np.float32) if arr.ndim == 3 and arr.shape[2] == 4 else arr.copy()
    elif arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise InputError(f"{name} contains NaN or infinite values.")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > 1.0:
            raise InputError(
                f"{name} is a float array with values in [{lo:.3g}, {hi:.3g}]; float images must lie in "
                "[0, 1]. Divide a 0-255 float image by 255, or convert it with .astype(np.uint8)."
            )
        out = arr.astype(np.float32) * 255.0
    else:
        raise InputError(
            f"{name} has dtype {arr.dtype}; use uint8 (0-255), bool or float in [0, 1]. "
            "For a 16-bit image use read_image(path) or (img / 257).round().astype(np.uint8)."
        )
    if out.ndim == 2:
        out = np.repeat(out[:, :, None], 3, axis=2)
    elif out.shape[2] == 4:
        alpha = out[:, :, 3:4] / 255.0
        out = out[:, :, :3] * alpha + 255.0 * (1.0 - alpha)  # composite on white
    if out.dtype != np.uint8:
        out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out)


def _read_image_file(path: Path) -> np.ndarray:
    check_input_file(path, "image", ImageReadError)
    try:
        with warnings.catch_warnings():  # images up to Pillow's hard limit are read without a warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if _is_16bit_colour(img):
                    return _read_16bit_colour(path, img)
                img.load()  # decode now, so that a truncated file fails here and not later
                return _pil_to_rgb(ImageOps.exif_transpose(img))
    except UnidentifiedImageError:
        raise ImageReadError(
            f"{path} is not an image file that Pillow can read. Use a PNG or JPEG photo ({', '.join(IMAGE_SUFFIXES)})."
        ) from None
    except Image.DecompressionBombError as exc:
        raise ImageReadError(
            f"{path} is too large to read safely ({exc}). Downscale it (faces need no more than a few thousand "
            "pixels per side) and try again."
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(
            f"{path} could not be decoded ({exc}); the file is probably truncated or corrupted. "
            "Copy or download it again, or re-save it with an image editor."
        ) from exc


def _is_16bit_colour(img: Image.Image) -> bool:
    # Pillow decodes 16-bit colour PNGs by keeping only the high byte; OpenCV keeps all 16 bits.
    return img.mode in ("RGB", "RGBA", "LA") and any(";16" in str(tile.args) for tile in img.tile)


def _read_16bit_colour(path: Path, img: Image.Image) -> np.ndarray:
    data = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if data is None or data.dtype != np.uint16:
        img.load()  # let Pillow decide (or raise a decoding error)
        return _pil_to_rgb(ImageOps.exif_transpose(img))
    if data.ndim == 3 and data.shape[2] == 2:  # gray + alpha
        data = data[:, :, [0, 0, 0, 1]]
    elif data.ndim == 3:
        data = data[:, :, [2, 1, 0, 3][: data.shape[2]]]  # BGR(A) -> RGB(A)
    rgb = np.rint(data.astype(np.float32) / 257.0).astype(np.uint8)
    orientation = img.getexif().get(0x0112, 1)
    if orientation in _ORIENTATION:
        channels = [Image.fromarray(rgb[:, :, c]).transpose(_ORIENTATION[orientation]) for c in range(rgb.shape[2])]
        rgb = np.stack([np.asarray(c) for c in channels], axis=2)
    return as_rgb_uint8(rgb)


def _pil_to_rgb(img: Image.Image) -> np.ndarray:
    """A decoded PIL image (any mode) -> RGB uint8 (H, W, 3); alpha composited on white."""
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        return as_rgb_uint8(np.rint(np.clip(np.asarray(img, dtype=np.float64), 0, 65535) / 257.0).astype(np.uint8))
    if mode == "F":
        values = np.asarray(img, dtype=np.float64)
        values = values * 255.0 if values.max(initial=0.0) <= 1.0 else values  # float TIFFs use either range
        return as_rgb_uint8(np.clip(np.rint(values), 0, 255).astype(np.uint8))
    if mode in ("P", "PA"):
        img = img.convert("RGBA" if (mode == "PA" or "transparency" in img.info) else "RGB")
    elif mode in ("LA", "La", "RGBa"):
        img = img.convert("RGBA")
    elif mode == "L":
        return as_rgb_uint8(np.asarray(img))
    elif mode not in ("RGB", "RGBA"):
        img = img.convert("RGB")  # 1, CMYK, YCbCr, LAB, HSV
    return as_rgb_uint8(np.asarray(img))


# --- samples ------------------------------------------------------------------------------------------------
_SAMPLES = {
    "astronaut": "Eileen Collins, NASA portrait (public domain), 512x512, from scikit-image's skimage.data",
}


def sample_names() -> tuple[str, ...]:
    """Names accepted by :func:`sample_image` (all public domain, shipped inside installed packages)."""
    return tuple(_SAMPLES)


def photo_or_sample(text: str) -> str | np.ndarray:
    """What a command line's photo argument names: the path itself, or the built-in sample photo of that name
    (:func:`sample_names`) when no such file exists, so ``dgkit reenact astronaut ...`` works without a photo."""
    if text in _SAMPLES and not Path(text).exists():
        return sample_image(text)
    return text


def sample_image(name: str = "astronaut") -> np.ndarray:
    """A built-in sample photo as RGB uint8 ``(H, W, 3)`` (works offline; a new array on every call).

    ``"astronaut"``: scikit-image's ``skimage.data.astronaut()``, 512x512, a frontal portrait of astronaut
    Eileen Collins (NASA, public domain).
    """
    if name not in _SAMPLES:
        raise InputError(f"unknown sample image {name!r}; choose one of {sample_names()}.")
    from skimage import data  # noqa: PLC0415  (imported on demand: skimage.data is slow to import)

    return as_rgb_uint8(data.astronaut())


# --- images out ---------------------------------------------------------------------------------------------
def _as_paths(protect: PathLike | Iterable[PathLike] | None) -> list[Path]:
    if protect is None:
        return []
    if isinstance(protect, (str, os.PathLike)):
        return [Path(protect)]
    return [Path(p) for p in protect if isinstance(p, (str, os.PathLike))]


def _refuse_protected(path: Path, protect: PathLike | Iterable[PathLike] | None) -> None:
    """Raise InputError if ``path`` is (or links to) one of the protected input files."""
    target = path.expanduser().resolve()
    for item in _as_paths(protect):
        source = item.expanduser().resolve()
        same = target == source or (target.exists() and source.exists() and os.path.samefile(target, source))
        if same:
            raise InputError(
                f"refusing to write {path}: it is one of the inputs ({item}). Outputs never overwrite "
                "inputs; choose another output path."
            )
    if target.is_dir():
        raise InputError(f"{path} is a directory; give a file name such as {path / 'out.png'}.")


def write_image(
    path: PathLike, rgb: np.ndarray, *, protect: PathLike | Iterable[PathLike] = (), overwrite: bool = False
) -> Path:
    """Write an image to ``path`` (format from the suffix: PNG, JPEG (quality 95), BMP, TIFF, WebP).

    dgkit's one image writer (crops, sketches, training samples, contact sheets, snapshots). The file is
    written atomically (see :func:`atomic_output`): it appears complete or not at all. PNG is lossless and
    encoded with OpenCV's fast setting (datasets write thousands); a grey ``(H, W)`` image is stored as a
    one-channel grey file (it reads back as the same pixels, see :func:`read_image`).

    Args:
        path: output file; missing parent folders are created.
        rgb: RGB image, anything :func:`as_rgb_uint8` accepts (uint8, bool or float in [0, 1]); ``(H, W)`` or
            ``(H, W, 1)`` is written as grey.
        protect: input path(s) that must not be overwritten (a path equal to, or the same file as, any of
            them raises InputError).
        overwrite: replace an existing file (default False: OutputExistsError names the file).

    Returns:
        The output path as a ``Path``.
    """
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise InputError(f"cannot write {out}: unknown image suffix {out.suffix!r}; use one of {IMAGE_SUFFIXES}.")
    _refuse_protected(out, protect)
    grey = np.ndim(rgb) == 2 or (np.ndim(rgb) == 3 and np.shape(rgb)[2] == 1)
    pixels = as_rgb_uint8(rgb)
    if grey:
        pixels = np.ascontiguousarray(pixels[:, :, 0])
    with atomic_output(out, overwrite=overwrite, protect=protect) as tmp:
        try:
            if suffix == ".png":
                if not cv2.imwrite(str(tmp), pixels if grey else np.ascontiguousarray(pixels[:, :, ::-1])):
                    raise OSError("OpenCV could not write the file")
            else:
                options = {"quality": 95} if suffix in (".jpg", ".jpeg", ".webp") else {}
                Image.fromarray(pixels).save(tmp, **options)
        except OSError as exc:
            raise OutputError(f"could not write {out}: {exc.strerror or exc} (disk full or no permission?)") from exc
    return out


# --- videos -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VideoInfo:
    """What a video file says about itself.

    Attributes:
        fps: frames per second as stored in the container (may be 0.0 if unknown).
        frame_count: number of frames (from the container; counted by decoding when it does not say).
        width, height: frame size in pixels.
    """

    fps: float
    frame_count: int
    width: int
    height: int

    @property
    def duration(self) -> float:
        """Length in seconds (``frame_count / fps``; 0.0 when the fps is unknown)."""
        return self.frame_count / self.fps if self.fps > 0 else 0.0


def _silence_ffmpeg() -> None:
    """Keep FFmpeg's own log lines (e.g. "moov atom not found") off stderr; dgkit reports problems itself."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET, read each time OpenCV opens a file


def _open_capture(path: PathLike) -> tuple[cv2.VideoCapture, np.ndarray]:
    """Open a video and decode its first frame (BGR); VideoError if either fails."""
    p = check_input_file(path, "video", VideoError)
    _silence_ffmpeg()
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        cap.release()
        raise VideoError(
            f"{p} could not be opened as a video (not a video, corrupted or incomplete, or an unsupported codec). "
            "Convert it to H.264 or MPEG-4 .mp4 (e.g. `ffmpeg -i in.mov out.mp4`) and try again."
        )
    ok, frame = cap.read()
    if not ok or frame is None:
        cap.release()
        raise VideoError(f"{p} has no decodable frames. Check that the file is complete and plays in a player.")
    return cap, frame


def video_info(path: PathLike) -> VideoInfo:
    """fps, frame count and frame size of a video file (VideoError if it cannot be opened or decoded)."""
    cap, first = _open_capture(path)
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if count <= 0:  # some containers do not store it: count by decoding (grab skips the colour conversion)
            count = 1
            while cap.grab():
                count += 1
    finally:
        cap.release()
    fps = fps if math.isfinite(fps) and fps > 0 else 0.0
    return VideoInfo(fps=fps, frame_count=count, width=int(first.shape[1]), height=int(first.shape[0]))


def iter_video_frames(
    path: PathLike, *, start: int = 0, stop: int | None = None, step: int = 1
) -> Iterator[np.ndarray]:
    """Stream the frames of a video as RGB uint8 ``(H, W, 3)`` arrays, one at a time (constant memory).

    The file is opened and its first frame decoded *before* this returns, so a missing, garbage or empty
    video raises VideoError at the call, not at the first ``next()``.

    Args:
        path: video file (anything OpenCV's FFmpeg backend reads: .mp4, .avi, .mov, .mkv, ...).
        start, stop, step: frame indices to yield, like ``range(start, stop, step)``; stop None = to the end.
    """
    if start < 0 or step < 1 or (stop is not None and stop < start):
        raise InputError(f"need start >= 0, step >= 1 and stop >= start (got start={start}, stop={stop}, step={step}).")
    cap, first = _open_capture(path)
    return _frames(cap, first, start, stop, step)


def _frames(cap: cv2.VideoCapture, first: np.ndarray, start: int, stop: int | None, step: int) -> Iterator[np.ndarray]:
    def wanted(i: int) -> bool:
        return i >= start and (i - start) % step == 0

    try:
        index, frame = 0, (first if wanted(0) else None)
        while True:
            if frame is not None:
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
            if stop is not None and index >= stop:
                break
            if wanted(index):
                ok, frame = cap.read()
            else:
                ok, frame = cap.grab(), None  # skip without decoding
            if not ok:
                break
    finally:
        cap.release()


class VideoWriter:
    """Write RGB uint8 frames to a video file; use it as a context manager.

    The video is written to a hidden temporary file beside ``path`` and renamed into place by :meth:`close`
    (see :func:`atomic_output`). Leaving the ``with`` block through an exception (or Ctrl-C) removes the
    temporary file instead, so an interrupted run never leaves a partial video, and a previous file at
    ``path`` stays as it was. A writer that is garbage-collected without :meth:`close` is discarded too.

    Args:
        path: output file, ``.mp4`` (MPEG-4 part 2, FourCC ``mp4v``) or ``.avi`` (Motion-JPEG, ``MJPG``).
            Missing parent folders are created.
        fps: frames per second (> 0).
        size: ``(width, height)`` in pixels (OpenCV's order; frames are ``(height, width, 3)`` arrays).
        protect: input path(s) this writer must not overwrite.
        overwrite: replace an existing file (default False: OutputExistsError names the file).
        finish: optional ``finish(tmp_path)`` called on the complete temporary file just before it is renamed
            into place (dgkit uses it to add the driving clip's audio track).

    Example::

        with VideoWriter("out/clip.mp4", fps=25, size=(256, 256), protect=[source_video]) as w:
            for frame in frames:
                w.write(frame)          # (256, 256, 3) RGB uint8
    """

    def __init__(
        self,
        path: PathLike,
        fps: float,
        size: tuple[int, int],
        *,
        protect: PathLike | Iterable[PathLike] = (),
        overwrite: bool = False,
        finish=None,
    ):
        self.path = Path(path)
        self._writer = None
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_SUFFIXES:
            raise VideoError(f"cannot write {self.path}: use a .mp4 or .avi file name (got {suffix!r}).")
        if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
            raise InputError(f"fps must be a positive number, got {fps!r}.")
        width, height = (int(v) for v in size)
        if width <= 0 or height <= 0:
            raise InputError(f"size must be (width, height) with positive values, got {size!r}.")
        self.fps, self.size, self.frames_written = float(fps), (width, height), 0
        self._finish = finish
        self._output = atomic_output(self.path, overwrite=overwrite, protect=protect)
        self._tmp = self._output.__enter__()
        try:
            self._writer = cv2.VideoWriter(
                str(self._tmp), cv2.VideoWriter_fourcc(*VIDEO_SUFFIXES[suffix]), self.fps, self.size
            )
            if not self._writer.isOpened():
                self._writer.release()
                self._writer = None
                raise OutputError(f"could not open {self.path} for writing: OpenCV's {VIDEO_SUFFIXES[suffix]} "
                                  "encoder refused it (is the disk full?).")
        except BaseException as exc:
            self._output.__exit__(type(exc), exc, exc.__traceback__)
            raise

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB frame of shape ``(height, width, 3)`` (uint8, or float in [0, 1])."""
        if self._writer is None:
            raise VideoError(f"{self.path} is already closed.")
        rgb = as_rgb_uint8(frame, name="frame")
        width, height = self.size
        if rgb.shape[:2] != (height, width):
            raise InputError(
                f"frame has shape {rgb.shape[:2]} (height, width) but the video is {height}x{width}; "
                "resize frames to the size given to VideoWriter."
            )
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file and move it into place (idempotent)."""
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        try:
            if self._finish is not None:
                self._finish(self._tmp)
        except BaseException as exc:
            self._output.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._output.__exit__(None, None, None)

    def abort(self) -> None:
        """Stop writing and discard the unfinished video (``path`` keeps its previous content; idempotent)."""
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        error = OutputError(f"writing {self.path} was abandoned")
        with contextlib.suppress(OutputError):
            self._output.__exit__(OutputError, error, None)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:  # never closed: the video may be incomplete, so it is discarded
        try:
            self.abort()
        except Exception:  # noqa: BLE001  (interpreter shutdown)
            pass


def make_test_video(
    path: PathLike,
    image: ImageSource | None = None,
    n_frames: int = 24,
    fps: float = 12.0,
    *,
    size: tuple[int, int] | None = None,
    protect: PathLike | Iterable[PathLike] = (),
    overwrite: bool = False,
) -> Path:
    """Write a small synthetic video: ``image`` gently rotating, zooming and drifting (for tests and demos).

    Frame ``i`` is ``image`` under a similarity transform (rotation up to 8 degrees, zoom up to 6 %, shift up to
    4 % of the width) that follows one sine period over the clip, with a reflected border.

    Args:
        path: output ``.mp4`` or ``.avi``.
        image: anything :func:`read_image` takes; default the astronaut sample resized to 256x256.
        n_frames: number of frames (>= 1).
        fps: frames per second.
        size: optional ``(width, height)`` to resize the image to first. Odd sizes are cropped by one pixel
            to even ones (some codecs need even sizes).
        overwrite: replace an existing file (default False).

    Returns:
        The output path.
    """
    if n_frames < 1:
        raise InputError(f"n_frames must be at least 1, got {n_frames}.")
    rgb = (
        read_image(image) if image is not None else cv2.resize(sample_image(), (256, 256), interpolation=cv2.INTER_AREA)
    )
    if size is not None:
        rgb = cv2.resize(rgb, (int(size[0]), int(size[1])), interpolation=cv2.INTER_AREA)
    rgb = rgb[: rgb.shape[0] // 2 * 2, : rgb.shape[1] // 2 * 2]
    height, width = rgb.shape[:2]
    if height < 2 or width < 2:
        raise InputError(f"image too small for a video: {width}x{height}.")
    centre = (width / 2.0, height / 2.0)
    with VideoWriter(path, fps, (width, height), protect=protect, overwrite=overwrite) as writer:
        for i in range(n_frames):
            phase = math.sin(2.0 * math.pi * i / max(n_frames, 2))
            matrix = cv2.getRotationMatrix2D(centre, 8.0 * phase, 1.0 + 0.06 * phase)
            matrix[0, 2] += 0.04 * width * phase
            writer.write(
                cv2.warpAffine(rgb, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            )
    return Path(path)


# --- audio --------------------------------------------------------------------------------------------------
def mux_audio(video: PathLike, audio_from: PathLike, *, duration: float) -> bool:
    """Add the first audio track of ``audio_from``, cut to its first ``duration`` seconds, to ``video`` in place.

    The video stream is copied as it is (no re-encoding); the audio is copied too when the container of
    ``video`` accepts its codec, else re-encoded (AAC in .mp4, MP3 in .avi). ``video`` is replaced atomically.
    Uses PyAV (the ``av`` package, which ships FFmpeg in its wheel).

    Returns:
        False when ``audio_from`` has no audio track (``video`` is unchanged), True when the audio was added.
    """
    import av  # noqa: PLC0415

    video, audio_from = Path(video), Path(audio_from)
    tmp = temporary_name(video)
    try:
        with av.open(str(audio_from)) as source:
            if not source.streams.audio:
                return False
            try:
                _remux_with_audio(video, source, tmp, duration, copy=True)
            except (av.error.FFmpegError, ValueError):
                tmp.unlink(missing_ok=True)
                source.seek(0)
                _remux_with_audio(video, source, tmp, duration, copy=False)
        os.replace(tmp, video)
    except av.error.FFmpegError as exc:
        raise VideoError(f"could not add the audio of {audio_from} to the output video ({exc}).") from None
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _remux_with_audio(video: Path, source, out_path: Path, duration: float, *, copy: bool) -> None:
    import av  # noqa: PLC0415

    a_in = source.streams.audio[0]
    start = a_in.start_time or 0
    with av.open(str(video)) as vin, av.open(str(out_path), "w") as out:
        v_in = vin.streams.video[0]
        v_out = out.add_stream_from_template(v_in)
        if copy:
            a_out = out.add_stream_from_template(a_in)
        else:
            codec = "aac" if video.suffix.lower() == ".mp4" else "libmp3lame"
            a_out = out.add_stream(codec, rate=a_in.rate or 44100, layout=a_in.layout.name if a_in.layout else "stereo")
        for packet in vin.demux(v_in):
            if packet.dts is not None:
                packet.stream = v_out
                out.mux(packet)
        for packet in source.demux(a_in):
            if packet.dts is None:
                continue
            if packet.pts is not None and float((packet.pts - start) * a_in.time_base) >= duration:
                break
            if copy:
                packet.stream = a_out
                out.mux(packet)
            else:
                for frame in packet.decode():
                    frame.pts = None
                    out.mux(a_out.encode(frame))
        if not copy:
            out.mux(a_out.encode(None))
