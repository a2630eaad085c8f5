"""Notebook apps for DG: pick photos, reenact them, and turn a reference head with sliders.

Every app is an ``ipywidgets.VBox`` (display it as the last expression of a cell) whose logic also runs
without a browser: tests set a slider's ``.value`` or call a loader and check the public state.

* :class:`ImagePicker`: one image from the sample gallery, a file path, an upload or (optionally) a webcam
  snapshot; ``.image`` is RGB uint8 ``(H,W,3)``; errors show inline (the dgkit message, no traceback).
* :class:`ReenactApp`: source picker + reference picker -> detect, align, reenact (DG and the warp baseline)
  -> every stage side by side.
* :class:`LargePoseApp`: yaw/pitch/roll and expression sliders on 3D reference landmarks -> live 3D plot,
  the sketch with its hidden half, and the reenacted face (the source is encoded once).

Images are shown as fixed-size ``ipywidgets.Image`` PNGs; DG images made with untrained (synthetic) weights
carry a red "UNTRAINED weights" banner burnt into the pixels, so screenshots keep the warning.
"""

from __future__ import annotations

import base64
import html
import io
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import ipywidgets as W
import numpy as np

from .errors import DgkitError, ImageReadError, InputError

__all__ = [
    "ImagePicker",
    "ReenactApp",
    "LargePoseApp",
    "CameraWidget",
    "error_message",
    "image_to_png",
    "stamp_banner",
    "sketch_with_hidden",
]

UNTRAINED_TEXT = "UNTRAINED weights"
PANEL_SIZE = 256  # displayed side of every stage image (px)
_ERROR_STYLE = "color:#C00000;font-weight:bold"


# --- small helpers --------------------------------------------------------------------------------------------
def error_message(exc: BaseException) -> str:
    """The text shown for an error: dgkit's own message, or ``"<Type>: <message>"`` for anything else."""
    if isinstance(exc, DgkitError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"


def _error_html(exc: BaseException) -> str:
    return f'<span style="{_ERROR_STYLE}">&#9888; {html.escape(error_message(exc))}</span>'


def image_to_png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB uint8 ``(H,W,3)`` or gray uint8 ``(H,W)`` image (what ``ipywidgets.Image`` shows)."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3):
        raise InputError(f"image_to_png needs a uint8 (H,W) or (H,W,3) image, got {arr.dtype} {arr.shape}")
    bgr = arr if arr.ndim == 2 else np.ascontiguousarray(arr[..., ::-1])  # OpenCV writes BGR
    ok, buf = cv2.imencode(".png", bgr)
    if not ok:  # pragma: no cover - OpenCV fails only on empty images
        raise InputError(f"could not encode an image of shape {arr.shape} as PNG")
    return buf.tobytes()


def stamp_banner(image: np.ndarray, text: str = UNTRAINED_TEXT, color: tuple[int, int, int] = (192, 0, 0)) -> np.ndarray:
    """A copy of an RGB uint8 image with a coloured banner and white ``text`` across its top."""
    out = np.array(image, dtype=np.uint8, copy=True)
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=2)
    h, w = out.shape[:2]
    band = max(12, h // 12)
    out[:band] = color
    scale = band / 30.0
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    org = (max(2, (w - tw) // 2), (band + th) // 2)
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def sketch_with_hidden(landmarks: np.ndarray, kind: str = "target") -> tuple[np.ndarray, str, tuple[int, ...]]:
    """The DG sketch of landmarks, with what the pose rule hides drawn in red.

    Args:
        landmarks: ``(68,2|3)`` crop pixels, x, y (z ignored).
        kind: which renderer's rule: ``"target"`` (what the generator sees) or ``"reference"``.
    Returns:
        ``(rgb, branch, hidden)``: rgb ``(256,256,3)`` uint8 (white: drawn lines, exactly
        :func:`dgkit.sketch.draw_sketch`; red: segments of the frontal sketch that this pose hides; red
        dots: landmarks no drawn segment touches), the branch ("frontal"/"left"/"right") and the hidden indices.
    """
    from .sketch import SEGMENTS, draw_sketch, hidden_points, sketch_branch

    lm = np.asarray(landmarks, dtype=np.float64)[:, :2]
    sketch = draw_sketch(lm, kind=kind)
    branch = sketch_branch(lm, kind=kind)
    hidden = hidden_points(branch)
    rgb = np.zeros((*sketch.shape, 3), np.uint8)
    pts = np.trunc(lm).astype(int)
    drawn = set(SEGMENTS[kind][branch])
    for a, b in SEGMENTS[kind]["frontal"]:
        if (a, b) not in drawn and (b, a) not in drawn:
            cv2.line(rgb, tuple(map(int, pts[a])), tuple(map(int, pts[b])), (230, 40, 40), 1, cv2.LINE_AA)
    for i in hidden:
        cv2.circle(rgb, tuple(map(int, pts[i])), 2, (255, 40, 40), -1, cv2.LINE_AA)
    rgb[sketch > 0] = 255  # last, so the white pixels are exactly the generator's sketch
    return rgb, branch, hidden


class _Panel(W.VBox):
    """A caption above a fixed-size PNG image."""

    def __init__(self, caption: str, size: int = PANEL_SIZE):
        self.caption = W.HTML(f"<b>{html.escape(caption)}</b>")
        self.view = W.Image(format="png", width=size, height=size,
                            layout=W.Layout(width=f"{size}px", height=f"{size}px", border="1px solid #ccc"))
        self.array: np.ndarray | None = None
        super().__init__([self.caption, self.view], layout=W.Layout(margin="0 6px 0 0"))

    def show(self, image: np.ndarray | None, caption: str | None = None, *, warn: bool = False) -> None:
        """Show ``image`` (None clears it); ``warn`` colours the caption red."""
        if caption is not None:
            style = f' style="{_ERROR_STYLE}"' if warn else ""
            self.caption.value = f"<b{style}>{html.escape(caption)}</b>"
        self.array = None if image is None else np.asarray(image)
        self.view.value = b"" if image is None else image_to_png(self.array)


# --- webcam ---------------------------------------------------------------------------------------------------
try:  # anywidget ships its front-end with the Python package: no CDN, works offline
    import anywidget
    import traitlets

    class CameraWidget(anywidget.AnyWidget):
        """A webcam preview with a "Snap" button (browser ``getUserMedia``; needs a camera and permission).

        ``snapshot`` receives the picture as a ``data:image/png;base64,...`` URL; ``error`` the browser's
        error text (no camera, permission denied).
        """

        _esm = """
        function render({ model, el }) {
          const video = document.createElement("video");
          video.autoplay = true; video.playsInline = true; video.muted = true;
          video.style.width = "240px"; video.style.background = "#222";
          const start = document.createElement("button"); start.textContent = "Start camera";
          const snap = document.createElement("button"); snap.textContent = "Snap"; snap.disabled = true;
          snap.className = "dgkit-snap"; start.className = "dgkit-camera-start";
          start.onclick = async () => {
            try {
              const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
              video.srcObject = stream; snap.disabled = false; model.set("error", ""); model.save_changes();
            } catch (e) { model.set("error", String(e)); model.save_changes(); }
          };
          snap.onclick = () => {
            const c = document.createElement("canvas");
            c.width = video.videoWidth; c.height = video.videoHeight;
            c.getContext("2d").drawImage(video, 0, 0);
            model.set("snapshot", c.toDataURL("image/png")); model.save_changes();
          };
          const bar = document.createElement("div"); bar.append(start, snap);
          el.append(video, bar);
          return () => { const s = video.srcObject; if (s) s.getTracks().forEach((t) => t.stop()); };
        }
        export default { render };
        """
        snapshot = traitlets.Unicode("").tag(sync=True)
        error = traitlets.Unicode("").tag(sync=True)

except ImportError:  # pragma: no cover - anywidget is a dependency; keep the module importable without it
    CameraWidget = None  # type: ignore[assignment,misc]


def _decode_data_url(url: str) -> bytes:
    head, _, data = url.partition(",")
    if not head.startswith("data:") or ";base64" not in head:
        raise ImageReadError("the camera sent no picture (expected a base64 data URL); press Snap again.")
    return base64.b64decode(data)


# --- image picker ---------------------------------------------------------------------------------------------
def _read_image_bytes(data: bytes, name: str) -> np.ndarray:
    """Decode uploaded file bytes into RGB uint8 ``(H,W,3)`` (EXIF orientation applied), or ImageReadError."""
    from PIL import Image, UnidentifiedImageError

    from .io import read_image

    if not data:
        raise ImageReadError(f"{name!r} is empty (0 bytes); upload a JPEG or PNG photo.")
    try:
        pil = Image.open(io.BytesIO(data))
        pil.load()
    except UnidentifiedImageError:
        raise ImageReadError(f"{name!r} is not an image file ({len(data)} bytes in no format Pillow knows); "
                             "upload a JPEG or PNG photo.") from None
    except (OSError, ValueError) as exc:  # truncated or corrupted file
        raise ImageReadError(f"{name!r} is a damaged image file ({exc}); upload the photo again or another one.") from None
    return read_image(pil)


class ImagePicker(W.VBox):
    """Choose one image: a built-in sample, a file path, an upload, or a webcam snapshot.

    Args:
        description: title shown above the picker ("Source", "Reference", ...).
        default: name of the gallery entry loaded at start (None: start empty).
        samples: extra gallery entries, name -> RGB uint8 image (added after :func:`dgkit.io.sample_names`).
        webcam: add a :class:`CameraWidget` (browser webcam; needs a camera and the user's permission).
        preview_size: side of the preview image, px.

    Attributes:
        image: the current RGB uint8 ``(H,W,3)`` image (a new array per load), or None.
        origin: where it came from ("sample: astronaut", "file: /path/x.jpg", "upload: x.png", "webcam").
        error: the last error message shown (empty after a successful load).
    """

    def __init__(self, description: str = "Image", *, default: str | None = "astronaut",
                 samples: Mapping[str, np.ndarray] | None = None, webcam: bool = False, preview_size: int = 160):
        from .io import sample_names

        self._extra = {str(k): np.asarray(v) for k, v in (samples or {}).items()}
        self._callbacks: list[Callable[[np.ndarray], Any]] = []
        self.image: np.ndarray | None = None
        self.origin = ""
        self.error = ""
        self.title = W.HTML(f"<b>{html.escape(description)}</b>")
        self.gallery = W.Dropdown(options=["(choose)", *sample_names(), *self._extra], value="(choose)",
                                  description="sample", layout=W.Layout(width="260px"))
        self.path = W.Text(placeholder="path/to/photo.jpg", description="path", layout=W.Layout(width="260px"))
        self.load_button = W.Button(description="Load", layout=W.Layout(width="60px"))
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="Upload")
        self.status = W.HTML("")
        self.preview = W.Image(format="png", width=preview_size, height=preview_size,
                               layout=W.Layout(width=f"{preview_size}px", height=f"{preview_size}px",
                                               object_fit="contain", border="1px solid #ccc"))
        self.camera = CameraWidget() if (webcam and CameraWidget is not None) else None

        self.gallery.observe(self._on_gallery, names="value")
        self.load_button.on_click(lambda _: self.load_path(self.path.value))
        self.upload.observe(self._on_upload, names="value")
        controls = [self.title, self.gallery, W.HBox([self.path, self.load_button]), self.upload]
        if self.camera is not None:
            self.camera.observe(self._on_camera, names=["snapshot", "error"])
            controls.append(self.camera)
        elif webcam:
            controls.append(W.HTML("<i>webcam unavailable: install anywidget</i>"))
        super().__init__([W.HBox([W.VBox(controls), self.preview]), self.status],
                         layout=W.Layout(border="1px solid #ddd", padding="4px", margin="2px"))
        if default is not None:
            self.gallery.value = default  # loads through the observer

    # public API -----------------------------------------------------------------------------------------------
    def on_change(self, callback: Callable[[np.ndarray], Any]) -> None:
        """Call ``callback(image)`` after every successful load (image: RGB uint8 ``(H,W,3)``)."""
        self._callbacks.append(callback)

    def load_sample(self, name: str) -> bool:
        """Load a gallery entry; returns False (and shows the error inline) when it fails."""
        from .io import sample_image

        return self._load(lambda: self._extra[name].copy() if name in self._extra else sample_image(name),
                          f"sample: {name}")

    def load_path(self, path: str | Path) -> bool:
        """Load an image file (any format :func:`dgkit.io.read_image` reads); False + inline error on failure."""
        from .io import read_image

        text = str(path).strip()
        if not text:
            return self._fail(ImageReadError("type the path of a photo first (e.g. photos/face.jpg)."))
        p = Path(text).expanduser()
        return self._load(lambda: read_image(p), f"file: {p}")

    def load_bytes(self, data: bytes, name: str = "upload") -> bool:
        """Load an encoded image file's bytes (JPEG, PNG, ...); False + inline error on failure."""
        return self._load(lambda: _read_image_bytes(bytes(data), name), f"upload: {name}")

    def set_image(self, image: np.ndarray, origin: str = "array") -> bool:
        """Use an RGB array directly (see :func:`dgkit.io.read_image` for accepted arrays)."""
        from .io import read_image

        return self._load(lambda: read_image(image), origin)

    # internals ------------------------------------------------------------------------------------------------
    def _load(self, reader: Callable[[], np.ndarray], origin: str) -> bool:
        try:
            image = reader()
        except Exception as exc:  # noqa: BLE001 - shown inline: a widget must never print a traceback
            return self._fail(exc)
        self.image, self.origin, self.error = image, origin, ""
        h, w = image.shape[:2]
        self.preview.value = image_to_png(_thumbnail(image, 320))
        self.status.value = f'<span style="color:#555">{html.escape(origin)} &middot; {w}x{h}</span>'
        for callback in list(self._callbacks):
            try:
                callback(image)
            except Exception as exc:  # noqa: BLE001
                self.status.value = _error_html(exc)
                self.error = error_message(exc)
        return True

    def _fail(self, exc: BaseException) -> bool:
        self.error = error_message(exc)
        self.status.value = _error_html(exc)
        return False

    def _on_gallery(self, change) -> None:
        if change["new"] and change["new"] != "(choose)":
            self.load_sample(change["new"])

    def _on_upload(self, change) -> None:
        for item in change["new"] or ():
            self.load_bytes(bytes(item["content"]), item.get("name", "upload"))

    def _on_camera(self, change) -> None:
        if change["name"] == "error" and change["new"]:
            self._fail(ImageReadError(f"the webcam is not available: {change['new']}"))
        elif change["name"] == "snapshot" and change["new"]:
            self._load(lambda: _read_image_bytes(_decode_data_url(change["new"]), "webcam"), "webcam")


def _thumbnail(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    s = side / max(h, w)
    if s >= 1:
        return image
    return cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


# --- busy indicator -------------------------------------------------------------------------------------------
class _Busy:
    """An HTML line that says "working..." while a block runs and the time it took afterwards."""

    def __init__(self):
        self.widget = W.HTML("")
        self.busy = False

    def __enter__(self):
        self.busy = True
        self._t0 = time.perf_counter()
        self.widget.value = '<span style="color:#0072B2">&#8987; working&hellip;</span>'
        return self

    def __exit__(self, exc_type, exc, tb):
        self.busy = False
        self.widget.value = f'<span style="color:#555">ready ({time.perf_counter() - self._t0:.1f} s)</span>'
        return False


# --- photo reenactment app ------------------------------------------------------------------------------------
def _default_reference() -> dict[str, np.ndarray]:
    from .io import sample_image

    return {"astronaut (mirrored)": np.ascontiguousarray(sample_image("astronaut")[:, ::-1])}


class ReenactApp(W.VBox):
    """Pick a source and a reference photo, press Reenact, see every stage.

    Stages shown (each 256x256): aligned source crop, aligned reference crop, the sketch (DG's target sketch,
    or the reference sketch without DG), the DG output (banner "UNTRAINED weights" for synthetic weights) and
    the warp baseline (the source crop warped onto the reference landmarks).

    Args:
        dg: a :class:`dgkit.DualGenerator` (None: baselines only).
        source: picker for the source (default: the astronaut sample).
        reference: picker for the reference (default: the mirrored astronaut).
        backend: landmark backend for both photos ("auto", "mediapipe", "fan", ...).
        run_now: reenact the default pair at once (so the app opens with results).

    Attributes:
        result: the last :class:`dgkit.reenact.PhotoReenactment` (or None); images: stage name -> array shown;
        error: last error message ("" when the last run succeeded); busy: True while working.
    """

    STAGES = ("source", "reference", "sketch", "DG output", "warp baseline")

    def __init__(self, dg=None, *, source: ImagePicker | None = None, reference: ImagePicker | None = None,
                 backend: str = "auto", run_now: bool = False):
        self.dg = dg
        self.backend = backend
        self.source = source or ImagePicker("Source (identity)")
        self.reference = reference or ImagePicker("Reference (pose and expression)", default="astronaut (mirrored)",
                                                  samples=_default_reference())
        self.result = None
        self.error = ""
        self.images: dict[str, np.ndarray] = {}
        self.button = W.Button(description="Reenact", button_style="primary", icon="play")
        self._busy = _Busy()
        self.message = W.HTML("")
        self.panels = {name: _Panel(name) for name in self.STAGES}
        label = "none (baselines only)" if dg is None else dg.weights.label
        self.weights_info = W.HTML(f"DG weights: <b>{html.escape(label)}</b>")
        self.button.on_click(lambda _: self.run())
        super().__init__([
            W.HBox([self.source, self.reference]),
            W.HBox([self.button, self._busy.widget, self.weights_info], layout=W.Layout(align_items="center")),
            self.message,
            W.HBox(list(self.panels.values()), layout=W.Layout(flex_flow="row wrap")),
        ])
        if run_now:
            self.run()

    @property
    def busy(self) -> bool:
        return self._busy.busy

    def run(self) -> bool:
        """Detect, align and reenact the current pair; update the panels. Returns False on an error."""
        from .reenact import reenact_photos

        if self.source.image is None or self.reference.image is None:
            return self._fail(InputError("choose both a source and a reference image first."))
        self.button.disabled = True
        try:
            with self._busy:
                result = reenact_photos(self.source.image, self.reference.image, dg=self.dg, backend=self.backend)
                self._show(result)
        except Exception as exc:  # noqa: BLE001 - errors are shown inline, never as a traceback
            return self._fail(exc)
        finally:
            self.button.disabled = False
        self.result, self.error = result, ""
        notes = "; ".join(getattr(result, "notes", []) or [])
        self.message.value = f'<span style="color:#555">{html.escape(notes)}</span>' if notes else ""
        return True

    def _fail(self, exc: BaseException) -> bool:
        self.error = error_message(exc)
        self.message.value = _error_html(exc)
        return False

    @staticmethod
    def _warp(result) -> tuple[np.ndarray | None, str]:
        """The warp baseline and its caption. Untrained DG targets are noise, so the warp then goes to the
        relative-3D target (the source's shape moved by the reference's pose and expression) instead."""
        from .baselines import warp_to_landmarks

        trained = bool(getattr(result, "weights_trained", result.dg is not None
                               and "official" in str(result.dg.weights)))
        if result.dg is not None and trained:
            return result.baselines.get("warp"), "warp baseline (to DG target)"
        target = result.baselines.get("relative3d")
        if target is None:
            return result.baselines.get("warp"), "warp baseline"
        src = result.source
        return warp_to_landmarks(src.crop, src.crop_landmarks, target), "warp baseline (relative 3D)"

    def _show(self, result) -> None:
        from .sketch import draw_sketch

        imgs: dict[str, np.ndarray | None] = {"source": result.source.crop, "reference": result.reference.crop}
        out = result.dg
        if out is not None:
            imgs["sketch"] = out.sketch[0]
            untrained = "untrained" in str(out.weights).lower() or "synthetic" in str(out.weights).lower()
            imgs["DG output"] = stamp_banner(out.image[0]) if untrained else out.image[0]
            caption_dg, warn = (f"DG output ({out.weights})", untrained)
            caption_sk = "sketch (IDSG target)"
        else:
            imgs["sketch"] = draw_sketch(result.reference.crop_landmarks[:, :2], kind="reference")
            imgs["DG output"] = None
            caption_dg, warn, caption_sk = "DG output (no weights loaded)", True, "sketch (reference)"
        imgs["warp baseline"], caption_warp = self._warp(result)
        self.panels["sketch"].show(imgs["sketch"], caption_sk)
        self.panels["DG output"].show(imgs["DG output"], caption_dg, warn=warn)
        self.panels["warp baseline"].show(imgs["warp baseline"], caption_warp)
        for name in ("source", "reference"):
            self.panels[name].show(imgs[name])
        self.images = {k: v for k, v in imgs.items() if v is not None}


# --- large-pose app -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _SliderSpec:
    name: str
    lo: float
    hi: float
    step: float


POSE_SLIDERS = (_SliderSpec("yaw", -90, 90, 5), _SliderSpec("pitch", -45, 45, 5), _SliderSpec("roll", -45, 45, 5))
EXPRESSION_SLIDERS = (_SliderSpec("mouth_open", -0.2, 0.6, 0.05), _SliderSpec("eyes_open", -1.0, 0.5, 0.1),
                      _SliderSpec("smile", -0.15, 0.2, 0.05))
def _snap(value: float, spec: _SliderSpec) -> float:
    """``value`` rounded to the slider's step and clipped to its range."""
    return float(np.clip(round(value / spec.step) * spec.step, spec.lo, spec.hi))


_SCENE_RANGE = dict(x=(-16, 272), y=(-16, 272), z=(-144, 144))  # fixed axes: the head turns, the view stays


class LargePoseApp(W.VBox):
    """Turn a reference head with sliders and watch DG follow: the paper's large-pose story.

    Pose sliders set the reference's absolute head pose (:func:`dgkit.geometry.pose_landmarks`, degrees:
    yaw +-90, pitch and roll +-45); expression sliders edit it (:func:`dgkit.geometry.edit_expression`). Each
    change updates a live 3D plot of the landmarks (hidden points in red), the sketch with the hidden half
    (:func:`sketch_with_hidden`, the generator's rule applied to the reference), and the reenacted face
    ``dg.reenact(encoding, landmarks)``; the source is encoded once at construction.

    Args:
        dg: a :class:`dgkit.DualGenerator`.
        source_crop: aligned source face, RGB uint8 ``(256,256,3)``.
        reference_landmarks3d: ``(68,3)`` crop pixels (x, y) and depth z (x scale), e.g. from
            :func:`dgkit.align.align_face` or :func:`dgkit.geometry.mean_face_3d`.
        source_landmarks: optional ``(68,2|3)`` crop pixels of the source: adds the warp baseline panel.
        debounce: seconds to wait after the last slider change before updating (0: update at once, in the
            caller's thread; what tests use).

    Attributes (the state after the last :meth:`update`):
        landmarks: ``(68,3)`` posed and edited reference, crop px; pose: measured :class:`HeadPose`;
        branch, hidden: sketch branch and hidden indices; sketch: RGB sketch shown; image: DG output (raw,
        no banner); baseline: warp baseline or None; result: the :class:`dgkit.Reenactment`;
        error: last error message; n_updates: completed updates.
    """

    def __init__(self, dg, source_crop: np.ndarray, reference_landmarks3d: np.ndarray, *,
                 source_landmarks: np.ndarray | None = None, debounce: float = 0.15):
        import plotly.graph_objects as go

        from .geometry import as_landmarks, head_pose

        self.dg = dg
        self.debounce = float(debounce)
        self.reference = as_landmarks(reference_landmarks3d, dims=(3,), name="reference_landmarks3d")
        self.source_landmarks = None if source_landmarks is None else as_landmarks(source_landmarks)
        self.encoding = dg.encode_source(source_crop)  # once: sliders change only the reference
        self.source_crop = self.encoding.image[0]
        self.untrained = not bool(getattr(getattr(dg, "weights", None), "trained", True))
        self.landmarks = self.reference.copy()
        self.pose = head_pose(self.reference)
        self.branch, self.hidden = "frontal", ()
        self.sketch = self.image = self.baseline = self.result = None
        self.error = ""
        self.n_updates = 0
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._suspend = False

        start = dict(zip(("yaw", "pitch", "roll"), self.pose))
        self.sliders: dict[str, W.FloatSlider] = {}
        for spec in (*POSE_SLIDERS, *EXPRESSION_SLIDERS):
            s = W.FloatSlider(value=_snap(start.get(spec.name, 0.0), spec), min=spec.lo, max=spec.hi, step=spec.step, description=spec.name,
                              continuous_update=False, readout_format=".0f" if spec.step >= 1 else ".2f",
                              style={"description_width": "90px"}, layout=W.Layout(width="350px"))
            s.observe(self._on_slider, names="value")
            self.sliders[spec.name] = s
        self.reset_button = W.Button(description="reset", icon="undo", layout=W.Layout(width="90px"))
        self.reset_button.on_click(lambda _: self.reset())
        self._busy = _Busy()
        self.message = W.HTML("")
        self.info = W.HTML("")

        from .viz import landmarks_3d

        fig = landmarks_3d({"reference": self.reference}, frame="crop pixels")
        fig.add_trace(go.Scatter3d(x=[], y=[], z=[], mode="markers", name="hidden in sketch",
                                   marker=dict(color="#C00000", size=5)))
        names = {"x": "x", "y": "y (down)", "z": "z (depth)"}
        axes = {f"{k}axis": dict(range=list(v), autorange=False, showticklabels=False, title=dict(text=names[k]))
                for k, v in _SCENE_RANGE.items()}
        # seen from the front, a little from the right and above, so that depth shows
        fig.update_layout(height=400, width=420, margin=dict(l=0, r=0, t=10, b=0),
                          scene=dict(aspectmode="cube", camera=dict(up=dict(x=0, y=-1, z=0),
                                                                    eye=dict(x=0.8, y=-0.5, z=-1.6)), **axes))
        self.figure = go.FigureWidget(fig)
        self.panels = {"source": _Panel("source (encoded once)"), "sketch": _Panel("sketch (red: hidden)"),
                       "DG output": _Panel("DG output")}
        if self.source_landmarks is not None:
            self.panels["warp baseline"] = _Panel("warp baseline")
        self.panels["source"].show(self.source_crop)

        pose_box = W.VBox([W.HTML("<b>head pose (degrees)</b>"), *(self.sliders[s.name] for s in POSE_SLIDERS)])
        expr_box = W.VBox([W.HTML("<b>expression</b>"), *(self.sliders[s.name] for s in EXPRESSION_SLIDERS)])
        super().__init__([
            W.HBox([pose_box, expr_box, W.VBox([self.reset_button, self._busy.widget])]),
            self.message,
            W.HBox([self.figure, W.VBox([W.HBox(list(self.panels.values())), self.info])],
                   layout=W.Layout(flex_flow="row wrap")),
        ])
        self.update()

    # public API -----------------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._busy.busy

    @property
    def values(self) -> dict[str, float]:
        """Current slider values: yaw, pitch, roll (degrees), mouth_open, eyes_open, smile."""
        return {name: float(s.value) for name, s in self.sliders.items()}

    def landmarks_for(self, yaw: float, pitch: float = 0.0, roll: float = 0.0, *, mouth_open: float = 0.0,
                      eyes_open: float = 0.0, smile: float = 0.0) -> np.ndarray:
        """The reference at an absolute pose with an expression edit: ``(68,3)`` crop px (no display)."""
        from .geometry import edit_expression, pose_landmarks

        posed = pose_landmarks(self.reference, yaw, pitch, roll)
        return edit_expression(posed, mouth_open=mouth_open, eyes_open=eyes_open, smile=smile)

    def update(self) -> bool:
        """Recompute everything for the current slider values (synchronously); False on an error (inline)."""
        pending = self._timer
        if pending is not None and pending is not threading.current_thread():
            pending.cancel()  # this update already uses the newest slider values
        with self._lock:
            try:
                with self._busy:
                    self._compute_and_show()
            except Exception as exc:  # noqa: BLE001 - shown inline
                self.error = error_message(exc)
                self.message.value = _error_html(exc)
                return False
            self.error = ""
            self.message.value = ""
            self.n_updates += 1
            return True

    def reset(self) -> None:
        """Sliders back to the reference's own pose and no expression edit; then one update."""
        from .geometry import head_pose

        start = dict(zip(("yaw", "pitch", "roll"), head_pose(self.reference)))
        self._suspend = True  # one update for all six sliders, not six
        try:
            for spec in (*POSE_SLIDERS, *EXPRESSION_SLIDERS):
                self.sliders[spec.name].value = _snap(start.get(spec.name, 0.0), spec)
        finally:
            self._suspend = False
        self._schedule()

    # internals ------------------------------------------------------------------------------------------------
    def _on_slider(self, change) -> None:
        if not self._suspend:
            self._schedule()

    def _schedule(self) -> None:
        if self.debounce <= 0:
            self.update()
            return
        if self._timer is not None:
            self._timer.cancel()  # a newer change supersedes the waiting one
        self._busy.widget.value = '<span style="color:#0072B2">&#8987; waiting&hellip;</span>'
        self._timer = threading.Timer(self.debounce, self.update)
        self._timer.daemon = True
        self._timer.start()

    def _compute_and_show(self) -> None:
        from .baselines import warp_to_landmarks
        from .geometry import head_pose

        v = self.values
        lm = self.landmarks_for(v["yaw"], v["pitch"], v["roll"], mouth_open=v["mouth_open"],
                                eyes_open=v["eyes_open"], smile=v["smile"])
        sketch, branch, hidden = sketch_with_hidden(lm, kind="target")
        result = self.dg.reenact(self.encoding, lm[:, :2])
        baseline = None
        if self.source_landmarks is not None:
            baseline = warp_to_landmarks(self.source_crop, self.source_landmarks, lm)
        self.landmarks, self.pose, self.branch, self.hidden = lm, head_pose(lm), branch, hidden
        self.sketch, self.result, self.image, self.baseline = sketch, result, result.image[0], baseline

        from .viz import polyline_xyz

        xs, ys, zs = polyline_xyz(lm)
        idx = list(hidden)
        with self.figure.batch_update():
            self.figure.data[0].update(x=xs, y=ys, z=zs)
            self.figure.data[1].update(x=lm[idx, 0], y=lm[idx, 1], z=lm[idx, 2])
        self.panels["sketch"].show(sketch, f"sketch: {branch} ({len(hidden)} hidden)")
        label = f"DG output ({self.dg.weights.label})" if hasattr(self.dg, "weights") else "DG output"
        self.panels["DG output"].show(stamp_banner(self.image) if self.untrained else self.image, label,
                                      warn=self.untrained)
        if baseline is not None:
            self.panels["warp baseline"].show(baseline)
        p = self.pose
        self.info.value = (f"measured pose: yaw {p.yaw:+.0f}&deg;, pitch {p.pitch:+.0f}&deg;, "
                           f"roll {p.roll:+.0f}&deg; &middot; sketch branch <b>{branch}</b>")

from .live.widget import LiveApp  # noqa: E402,F401  (live reenactment app; defined in dgkit/live/widget.py)
