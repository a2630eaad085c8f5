"""Notebook apps for DG: pick photos, reenact them, and turn a reference head with sliders.

Every app is an ``ipywidgets.VBox`` (display it as the last expression of a cell) whose logic also runs
without a browser: tests set a slider's ``.value`` or call a loader and check the public state.

* :class:`ImagePicker`: one image from the sample gallery, a file path, an upload or (optionally) a webcam
  snapshot; ``.image`` is RGB uint8 ``(H,W,3)``; errors show inline (the dgkit message, no traceback).
* :class:`ReenactApp`: source picker + reference picker -> detect, align, reenact (DG and the warp baseline)
  -> every stage side by side.
* :class:`LargePoseApp`: yaw/pitch/roll and expression sliders on 3D reference landmarks -> live 3D plot,
  the sketch with its hidden half, and the reenacted face (the source is encoded once).

* :class:`InterpolationApp`: a slider along a path between two references' landmark codes.

Images are shown as fixed-size ``ipywidgets.Image`` PNGs that keep their aspect ratio; rows wrap on narrow
windows. DG images made with untrained (synthetic) weights carry a red "UNTRAINED weights" banner burnt into
the pixels (:func:`dgkit.viz.stamp_untrained`), so screenshots keep the warning.

Responsiveness: after a slider move the apps show the fast panels at once (landmarks, 3D plot, sketches, the
warp baseline) and the DG face when the generator has finished, in a worker thread; a newer slider value
supersedes an older one that has not started (latest wins). A saved notebook keeps a static picture of each
app's last state (``image/png`` next to the live widget) and a one-line placeholder instead of the repr.
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
from .viz import is_untrained, stamp_untrained

__all__ = [
    "ImagePicker",
    "ReenactApp",
    "LargePoseApp",
    "CameraWidget",
    "error_message",
    "image_to_png",
    "sketch_with_hidden",
    "InterpolationApp",
    "side_by_side",
]

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


def _blank_png() -> bytes:
    """A plain light-grey picture for empty panels (an empty value shows as a broken-image icon)."""
    return image_to_png(np.full((8, 8, 3), 240, np.uint8))


def _caption_text(html_value: str) -> str:
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", html_value))


class _Panel(W.VBox):
    """A caption above a fixed-size PNG image (never squashed: the image keeps its square shape)."""

    def __init__(self, caption: str, size: int = PANEL_SIZE):
        self.caption = W.HTML(f"<b>{html.escape(caption)}</b>", layout=W.Layout(width=f"{size}px"))
        self.view = W.Image(value=_blank_png(), format="png", width=size, height=size,
                            layout=W.Layout(width=f"{size}px", height=f"{size}px", min_width=f"{size}px",
                                            object_fit="contain", border="1px solid #ccc"))
        self.array: np.ndarray | None = None
        super().__init__([self.caption, self.view], layout=W.Layout(margin="0 6px 6px 0", flex="0 0 auto"))

    def show(self, image: np.ndarray | None, caption: str | None = None, *, warn: bool = False) -> None:
        """Show ``image`` (None clears it); ``warn`` colours the caption red."""
        if caption is not None:
            style = f' style="{_ERROR_STYLE}"' if warn else ""
            self.caption.value = f"<b{style}>{html.escape(caption)}</b>"
        self.array = None if image is None else np.asarray(image)
        self.view.value = _blank_png() if image is None else image_to_png(self.array)

    def clear(self, note: str) -> None:
        """Empty the image and grey the caption (a result that no longer belongs to the inputs)."""
        title = _caption_text(self.caption.value).split(" (")[0]
        self.array = None
        self.view.value = _blank_png()
        self.caption.value = f'<b style="color:#888">{html.escape(title)} ({html.escape(note)})</b>'


# --- static pictures for saved notebooks -----------------------------------------------------------------------
class _Snapshot:
    """Mixin for apps: a saved notebook shows a static PNG of the app's last state (and a one-line text),
    never the widget's repr, wherever the live widget cannot render (GitHub, nbconvert HTML, no kernel)."""

    placeholder = "run the cell to start the app (a picture of its last state is saved with the notebook)"
    app_name = ""  # the name in the saved picture's title (default: the class name)

    def snapshot_images(self) -> tuple[list[np.ndarray], list[str]]:  # pragma: no cover - overridden
        return [], []

    def snapshot_png(self) -> bytes | None:
        """PNG bytes of the app's current panels (None when nothing is shown yet)."""
        from .viz import figure_png_bytes, image_grid

        images, titles = self.snapshot_images()
        if not images:
            return None
        fig = image_grid(images, titles, size=2.2, ncols=min(len(images), 5),
                         suptitle=f"{self.app_name or type(self).__name__}: static picture of the last state "
                                  "(run the cell to use it)")
        return figure_png_bytes(fig, dpi=80, colors=256)

    def _repr_mimebundle_(self, **kwargs):
        data = super()._repr_mimebundle_(**kwargs)
        bundle = data[0] if isinstance(data, tuple) else data
        if bundle is None:
            return data
        bundle["text/plain"] = f"{self.app_name or type(self).__name__}: {self.placeholder}"
        try:
            png = self.snapshot_png()
        except Exception:  # noqa: BLE001 - a picture is a courtesy; never break the display
            png = None
        if png is not None:
            bundle["image/png"] = base64.b64encode(png).decode("ascii")
        return data


class _PanelApp(_Snapshot):
    """Mixin of the apps: ``panels`` (name -> :class:`_Panel`), a status line ``_busy``; the saved picture shows
    every panel that holds an image."""

    panels: dict

    @property
    def busy(self) -> bool:
        """True while the app is working (either phase)."""
        return self._busy.busy

    def snapshot_images(self):
        names = [n for n in self.panels if self.panels[n].array is not None]
        return [self.panels[n].array for n in names], [_caption_text(self.panels[n].caption.value) for n in names]

    def _show_face(self, image: np.ndarray, started: float) -> None:
        """Show a finished DG face (banner when untrained) and count the update."""
        self.image = image
        label = f"DG output ({self.dg.weights.label})" if hasattr(self.dg, "weights") else "DG output"
        self.panels["DG output"].show(stamp_untrained(image, self.untrained), label, warn=self.untrained)
        self._busy.done(f"ready (DG face {time.perf_counter() - started:.1f} s)")
        self.n_updates += 1
        self.error = ""
        self.message.value = ""

    def _show_error(self, exc: BaseException) -> bool:
        self.error = error_message(exc)
        self.message.value = _error_html(exc)
        self._busy.failed()
        return False


class _Row(_Snapshot, W.HBox):
    """Widgets side by side, wrapping on narrow windows; saved notebooks keep a picture of its pictures."""

    app_name = "pickers"
    placeholder = "run the cell to show the widgets (a picture of their images is saved with the notebook)"

    def snapshot_images(self):
        images, titles = [], []
        for child in self.children:
            if hasattr(child, "snapshot_images"):
                i, t = child.snapshot_images()
                images += i
                titles += t
        return images, titles


def side_by_side(*widgets: W.Widget) -> W.HBox:
    """Widgets in a row that wraps when the window is narrow (pickers, apps)."""
    return _Row(list(widgets), layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))


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


class ImagePicker(_Snapshot, W.VBox):
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
        self.description = description
        self.title = W.HTML(f"<b>{html.escape(description)}</b>")
        self.gallery = W.Dropdown(options=["(choose)", *sample_names(), *self._extra], value="(choose)",
                                  description="sample", style={"description_width": "48px"},
                                  layout=W.Layout(width="300px", min_width="220px"))
        self.path = W.Text(placeholder="path/to/photo.jpg", description="path", style={"description_width": "48px"},
                           layout=W.Layout(width="230px", min_width="160px"))
        self.load_button = W.Button(description="Load", tooltip="load the file at this path",
                                    layout=W.Layout(width="auto", min_width="64px", flex="0 0 auto"))
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="Upload",
                                   layout=W.Layout(width="auto", min_width="100px"))
        self.status = W.HTML("", layout=W.Layout(max_width="480px"))
        self.preview = W.Image(format="png", width=preview_size, height=preview_size,
                               layout=W.Layout(width=f"{preview_size}px", height=f"{preview_size}px",
                                               min_width=f"{preview_size}px", flex="0 0 auto",
                                               object_fit="contain", border="1px solid #ccc"))
        self.preview.value = _blank_png()  # until a photo is chosen
        self.camera = CameraWidget() if (webcam and CameraWidget is not None) else None

        self.gallery.observe(self._on_gallery, names="value")
        self.load_button.on_click(lambda _: self.load_path(self.path.value))
        self.upload.observe(self._on_upload, names="value")
        controls = [self.title, self.gallery,
                    W.HBox([self.path, self.load_button], layout=W.Layout(flex_flow="row wrap")), self.upload]
        if self.camera is not None:
            self.camera.observe(self._on_camera, names=["snapshot", "error"])
            controls.append(self.camera)
        elif webcam:
            controls.append(W.HTML("<i>webcam unavailable: install anywidget</i>"))
        super().__init__([W.HBox([W.VBox(controls, layout=W.Layout(flex="0 1 auto", min_width="300px")),
                                  self.preview], layout=W.Layout(flex_flow="row wrap", align_items="flex-start")),
                          self.status],
                         layout=W.Layout(border="1px solid #ddd", padding="4px", margin="2px", flex="0 1 auto"))
        if default is not None:
            self.gallery.value = default  # loads through the observer

    # public API -----------------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """A short name of the current image for messages: the file name, the upload's name or the sample."""
        kind, _, what = self.origin.partition(": ")
        if kind == "file":
            return Path(what).name
        return what or kind or "(none)"

    def snapshot_images(self):
        if self.image is None:
            return [], []
        return [_thumbnail(self.image, 256)], [f"{self.description}: {self.name}"]

    def on_change(self, callback: Callable[[np.ndarray], Any]) -> None:
        """Call ``callback(image)`` after every successful load (image: RGB uint8 ``(H,W,3)``)."""
        self._callbacks.append(callback)

    def load_sample(self, name: str) -> bool:
        """Load a gallery entry; returns False (and shows the error inline) when it fails."""
        from .io import sample_image

        ok = self._load(lambda: self._extra[name].copy() if name in self._extra else sample_image(name),
                        f"sample: {name}")
        if ok:
            self.path.value = ""  # a path typed earlier no longer describes the image
        return ok

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
        ok = self._load(lambda: _read_image_bytes(bytes(data), name), f"upload: {name}")
        if ok:
            self.path.value = ""
        return ok

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
    """A status line: "working..." while a block runs, then the time it took, or "failed" (plain text and a CSS
    spinner; no emoji, which some systems draw as an empty box)."""

    _SPIN = ('<span style="display:inline-block;width:10px;height:10px;border:2px solid #0072B2;'
             'border-right-color:transparent;border-radius:50%;animation:dgkit-spin 0.8s linear infinite;'
             'vertical-align:middle"></span><style>@keyframes dgkit-spin{to{transform:rotate(360deg)}}</style>')

    def __init__(self):
        self.widget = W.HTML("", layout=W.Layout(min_width="140px"))
        self.busy = False
        self.state = ""

    def working(self, text: str = "working") -> None:
        self.busy, self.state = True, "working"
        self.widget.value = f'{self._SPIN} <span style="color:#0072B2">{html.escape(text)}&hellip;</span>'

    def done(self, text: str) -> None:
        self.busy, self.state = False, "ready"
        self.widget.value = f'<span style="color:#555">{html.escape(text)}</span>'

    def failed(self, text: str = "failed") -> None:
        self.busy, self.state = False, "failed"
        self.widget.value = f'<span style="{_ERROR_STYLE}">{html.escape(text)}</span>'

    def __enter__(self):
        self._t0 = time.perf_counter()
        self.working()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.done(f"ready ({time.perf_counter() - self._t0:.1f} s)")
        else:
            self.failed(f"failed after {time.perf_counter() - self._t0:.1f} s")
        return False


class _Deferred:
    """The slow phase of an app (the DG face): run ``delay`` seconds after the last request, in a worker thread,
    newest request only (latest wins); with ``delay <= 0`` it runs at once in the caller's thread."""

    def __init__(self, delay: float, lock: threading.Lock):
        self.delay = float(delay)
        self.lock = lock
        self.generation = 0
        self._timer: threading.Timer | None = None

    @property
    def pending(self) -> bool:
        return self._timer is not None and self._timer.is_alive()

    def request(self, job: Callable[[Callable[[], bool]], Any]) -> None:
        """Run ``job(is_current)``; ``is_current()`` tells the job whether a newer request has come since."""
        self.generation += 1
        gen = self.generation
        if self._timer is not None:
            self._timer.cancel()
        if self.delay <= 0:
            with self.lock:
                job(lambda: gen == self.generation)
            return
        self._timer = threading.Timer(self.delay, self._run, (gen, job))
        self._timer.daemon = True
        self._timer.start()

    def run_now(self, job: Callable[[Callable[[], bool]], Any]) -> Any:
        """Run ``job`` at once in this thread (superseding anything waiting); returns its result."""
        result = []
        saved, self.delay = self.delay, 0.0
        try:
            self.request(lambda is_current: result.append(job(is_current)))
        finally:
            self.delay = saved
        return result[0] if result else None

    def _run(self, gen: int, job) -> None:
        with self.lock:
            if gen == self.generation:  # superseded requests never start
                job(lambda: gen == self.generation)


# --- photo reenactment app ------------------------------------------------------------------------------------
def _default_reference() -> dict[str, np.ndarray]:
    from .io import sample_image

    return {"astronaut (mirrored)": np.ascontiguousarray(sample_image("astronaut")[:, ::-1])}


class ReenactApp(_PanelApp, W.VBox):
    """Pick a source and a reference photo, press Reenact, see every stage.

    Stages shown (each 256x256): aligned source crop, aligned reference crop, the sketch (DG's target sketch,
    or the reference sketch without DG), the DG output (banner "UNTRAINED weights" for synthetic weights) and
    the warp baseline (the source crop warped onto the reference landmarks).

    A run has two phases: detection, alignment and the warp baseline appear first; the DG sketch and face when
    the generator is done. A failed run names the input that failed (by its file or sample name), clears the
    panels of the previous result and says "failed" in the status line. Clicks that arrive while a run is
    going (a double click) are ignored.

    Args:
        dg: a :class:`dgkit.DualGenerator` (None: baselines only).
        source: picker for the source (default: the astronaut sample).
        reference: picker for the reference (default: the mirrored astronaut).
        backend: landmark backend for both photos ("auto", "mediapipe", "fan", ...).
        run_now: reenact the default pair at once (so the app opens with results).

    Attributes:
        result: the last :class:`dgkit.reenact.PhotoReenactment` (or None); images: stage name -> array shown;
        error: last error message ("" when the last run succeeded); busy: True while working; runs: number of
        runs started.
    """

    STAGES = ("source", "reference", "sketch", "DG output", "warp baseline")
    CLICK_GUARD_S = 0.4  # a click this soon after a run ended was queued during it (double click): ignored

    def __init__(self, dg=None, *, source: ImagePicker | None = None, reference: ImagePicker | None = None,
                 backend: str = "auto", run_now: bool = False):
        self.dg = dg
        self.backend = backend
        self.source = source or ImagePicker("Source (identity)")
        self.reference = reference or ImagePicker("Reference (pose and expression)", default="astronaut (mirrored)",
                                                  samples=_default_reference())
        self.result = None
        self.error = ""
        self.runs = 0
        self.images: dict[str, np.ndarray] = {}
        self.button = W.Button(description="Reenact", button_style="primary", icon="play",
                               layout=W.Layout(width="auto", min_width="110px"))
        self._busy = _Busy()
        self._running = False
        self._finished_at = -1e9
        self.message = W.HTML("")
        self.panels = {name: _Panel(name) for name in self.STAGES}
        from .reenact import weights_of

        label = weights_of(dg).label
        self.weights_info = W.HTML(f"DG weights: <b>{html.escape(label)}</b>")
        self.button.on_click(self._on_click)
        super().__init__([
            side_by_side(self.source, self.reference),
            W.HBox([self.button, self._busy.widget, self.weights_info],
                   layout=W.Layout(align_items="center", flex_flow="row wrap")),
            self.message,
            W.HBox(list(self.panels.values()), layout=W.Layout(flex_flow="row wrap")),
        ])
        if run_now:
            self.run()

    def _on_click(self, _button=None) -> None:
        if self._running or time.monotonic() - self._finished_at < self.CLICK_GUARD_S:
            return  # a second click of a double click, or a click while working
        self.run()

    def _prepare(self, picker: ImagePicker, role: str):
        """Detect and align one input; errors name the input by role and file/sample name."""
        from .reenact import prepare_face

        try:
            return prepare_face(picker.image, backend=self.backend)
        except DgkitError as exc:
            shape = tuple(picker.image.shape)
            text = str(exc).replace(f"the given ndarray {shape}", f"{picker.name!r}")
            raise type(exc)(f"{role} image {picker.name!r}: {text}") from None

    def run(self) -> bool:
        """Detect, align and reenact the current pair; update the panels. Returns False on an error."""
        from .reenact import add_dg, reenact_photos

        if self.source.image is None or self.reference.image is None:
            return self._fail(InputError("choose both a source and a reference image first."))
        self._running = True
        self.runs += 1
        self.button.disabled = True
        try:
            with self._busy:
                # phase 1 (fast): both faces and the weight-free baselines; named errors
                src = self._prepare(self.source, "source")
                ref = self._prepare(self.reference, "reference")
                for name in ("sketch", "DG output"):
                    self.panels[name].clear("computing")
                result = reenact_photos(src, ref)  # the faces are used as given: nothing is detected twice
                self.panels["source"].show(src.crop, "source")
                self.panels["reference"].show(ref.crop, "reference")
                self.panels["warp baseline"].show(*self._warp(result))
                if self.dg is not None:
                    self._busy.working("DG face")
                    # phase 2 (slow): DG on the same faces; the baselines (and, with untrained weights, the warp)
                    # of phase 1 are kept, not made again
                    result = add_dg(result, self.dg)
                self._show(result)
        except Exception as exc:  # noqa: BLE001 - errors are shown inline, never as a traceback
            self.result, self.images = None, {}
            for panel in self.panels.values():
                panel.clear("no result: the last run failed")
            return self._fail(exc)
        finally:
            self.button.disabled = False
            self._running = False
            self._finished_at = time.monotonic()
        self.result, self.error = result, ""
        notes = "; ".join(getattr(result, "notes", []) or [])
        self.message.value = f'<span style="color:#555">{html.escape(notes)}</span>' if notes else ""
        return True

    def _fail(self, exc: BaseException) -> bool:
        self.error = error_message(exc)
        self.message.value = _error_html(exc)
        if self._busy.state != "failed":
            self._busy.failed()
        return False

    @staticmethod
    def _warp(result) -> tuple[np.ndarray, str]:
        """The warp baseline of a :class:`~dgkit.reenact.PhotoReenactment` and its caption (it follows DG's
        target with trained weights, the relative-3D target otherwise: ``result.warp_target``)."""
        to = "to DG target" if result.warp_target == "dg" else "relative 3D"
        return result.baselines["warp"], f"warp baseline ({to})"

    def _show(self, result) -> None:
        from .sketch import draw_sketch

        imgs: dict[str, np.ndarray | None] = {"source": result.source.crop, "reference": result.reference.crop}
        out = result.dg
        if out is not None:
            untrained = is_untrained(result)
            imgs["sketch"] = stamp_untrained(out.sketch[0], untrained)
            imgs["DG output"] = stamp_untrained(out.image[0], untrained)
            caption_dg, warn = (f"DG output ({result.weights.label})", untrained)
            caption_sk, warn_sk = "sketch (IDSG target)", untrained
        else:
            imgs["sketch"] = draw_sketch(result.reference.crop_landmarks[:, :2], kind="reference")
            imgs["DG output"] = None
            caption_dg, warn, caption_sk, warn_sk = "DG output (no weights loaded)", True, "sketch (reference)", False
        imgs["warp baseline"], caption_warp = self._warp(result)
        self.panels["sketch"].show(imgs["sketch"], caption_sk, warn=warn_sk)
        self.panels["DG output"].show(imgs["DG output"], caption_dg, warn=warn)
        self.panels["warp baseline"].show(imgs["warp baseline"], caption_warp)
        for name in ("source", "reference"):
            self.panels[name].show(imgs[name], name)
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


class LargePoseApp(_PanelApp, W.VBox):
    """Turn a reference head with sliders and watch DG follow: the paper's large-pose story.

    Pose sliders set the reference's absolute head pose (:func:`dgkit.geometry.pose_landmarks`, degrees:
    yaw +-90, pitch and roll +-45); expression sliders edit it (:func:`dgkit.geometry.edit_expression`). Each
    change updates a live 3D plot of the landmarks (hidden points in red), the sketch with the hidden half
    (:func:`sketch_with_hidden`, the generator's rule applied to the reference), and the reenacted face; the
    source is encoded once at construction.

    Two phases per change: the shape phase (posed landmarks, 3D plot, sketch, warp baseline and the IDSG
    target: ``dg.encode_reference``, ``dg.decode``, ``dg.correct_eyes``, ``dg.draw``; milliseconds) is shown at
    once; the face phase (``dg.generate``, the slow generator) runs ``debounce`` seconds after the last change in
    a worker thread and only for the newest slider values.

    Args:
        dg: a :class:`dgkit.DualGenerator`.
        source_crop: aligned source face, RGB uint8 ``(256,256,3)``.
        reference_landmarks3d: ``(68,3)`` crop pixels (x, y) and depth z (x scale), e.g. from
            :func:`dgkit.align.align_face` or :func:`dgkit.geometry.mean_face_3d`.
        source_landmarks: optional ``(68,2|3)`` crop pixels of the source: adds the warp baseline panel.
        debounce: seconds to wait after the last slider change before the face phase (0: both phases at once,
            in the caller's thread; what tests use).

    Attributes (the state after the last :meth:`update`):
        landmarks: ``(68,3)`` posed and edited reference, crop px; pose: measured :class:`HeadPose`;
        branch, hidden: sketch branch and hidden indices; sketch: RGB sketch shown; image: DG output (raw,
        no banner); baseline: warp baseline or None; result: the :class:`dgkit.Reenactment`;
        error: last error message; n_updates: completed updates (face phase included); n_shape_updates:
        completed shape phases.
    """

    def __init__(self, dg, source_crop: np.ndarray, reference_landmarks3d: np.ndarray, *,
                 source_landmarks: np.ndarray | None = None, debounce: float = 0.15):
        import plotly.graph_objects as go

        from .face68 import check_landmarks
        from .geometry import head_pose

        self.dg = dg
        self.debounce = float(debounce)
        self.reference = check_landmarks(reference_landmarks3d, dims=(3,), name="reference_landmarks3d")
        self.source_landmarks = None if source_landmarks is None else check_landmarks(source_landmarks)
        self.encoding = dg.encode_source(source_crop)  # once: sliders change only the reference
        self.source_crop = self.encoding.image[0]
        self.untrained = is_untrained(dg)
        self.landmarks = self.reference.copy()
        self.pose = head_pose(self.reference)
        self.branch, self.hidden = "frontal", ()
        self.sketch = self.image = self.baseline = self.result = None
        self.error = ""
        self.n_updates = 0
        self.n_shape_updates = 0
        self._lock = threading.Lock()
        self._face = _Deferred(debounce, threading.Lock())
        self._suspend = False
        self._target = None  # the shape phase's ChainResult (no image), finished by the face phase

        start = dict(zip(("yaw", "pitch", "roll"), self.pose))
        self.sliders: dict[str, W.FloatSlider] = {}
        for spec in (*POSE_SLIDERS, *EXPRESSION_SLIDERS):
            s = W.FloatSlider(value=_snap(start.get(spec.name, 0.0), spec), min=spec.lo, max=spec.hi, step=spec.step, description=spec.name,
                              continuous_update=False, readout_format=".0f" if spec.step >= 1 else ".2f",
                              style={"description_width": "90px"},
                              layout=W.Layout(width="350px", min_width="300px", flex="0 0 auto"))
            s.observe(self._on_slider, names="value")
            self.sliders[spec.name] = s
        self.reset_button = W.Button(description="reset", icon="undo", layout=W.Layout(width="auto", min_width="90px"))
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
        wrap = W.Layout(flex_flow="row wrap", align_items="flex-start")
        super().__init__([
            W.HBox([pose_box, expr_box, W.VBox([self.reset_button, self._busy.widget])], layout=wrap),
            self.message,
            W.HBox([self.figure, W.VBox([W.HBox(list(self.panels.values()), layout=wrap), self.info])], layout=wrap),
        ])
        self.update()

    # public API -----------------------------------------------------------------------------------------------
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
        """Recompute everything for the current slider values (both phases, synchronously); False on an error
        (shown inline)."""
        if not self._shape_phase():
            return False
        return bool(self._face.run_now(self._face_phase))

    def snapshot_images(self):
        from .viz import figure_png_bytes, plotly_to_matplotlib

        images, titles = [], []
        try:
            png = figure_png_bytes(plotly_to_matplotlib(self.figure.to_dict(), size=3.2), dpi=80)
            view = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
            images.append(np.ascontiguousarray(view))
            titles.append("3D reference landmarks")
        except Exception:  # noqa: BLE001 - the 3D picture is optional
            pass
        more, names = super().snapshot_images()
        return images + more, titles + names

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
        if self._face.delay <= 0:
            self.update()
            return
        if self._shape_phase():  # fast: shown at once
            self._busy.working("DG face")
            self._face.request(self._face_phase)

    def _shape_phase(self) -> bool:
        """Landmarks, 3D plot, sketch, warp baseline and the IDSG target for the current sliders."""
        from .baselines import warp_to_landmarks
        from .geometry import head_pose
        from .viz import polyline_xyz, signed_degrees

        with self._lock:
            try:
                v = self.values
                lm = self.landmarks_for(v["yaw"], v["pitch"], v["roll"], mouth_open=v["mouth_open"],
                                        eyes_open=v["eyes_open"], smile=v["smile"])
                sketch, branch, hidden = sketch_with_hidden(lm, kind="target")
                chain = self.dg.run_chain(lm[:, :2], self.encoding.id_feature)  # shape only: IDSG, eyes, sketch
                baseline = None
                if self.source_landmarks is not None:
                    baseline = warp_to_landmarks(self.source_crop, self.source_landmarks, lm)
            except Exception as exc:  # noqa: BLE001 - shown inline
                return self._show_error(exc)
            self.landmarks, self.pose, self.branch, self.hidden = lm, head_pose(lm), branch, hidden
            self.sketch, self.baseline = sketch, baseline
            self._target = chain
            xs, ys, zs = polyline_xyz(lm)
            idx = list(hidden)
            with self.figure.batch_update():
                self.figure.data[0].update(x=xs, y=ys, z=zs)
                self.figure.data[1].update(x=lm[idx, 0], y=lm[idx, 1], z=lm[idx, 2])
            self.panels["sketch"].show(sketch, f"sketch: {branch} ({len(hidden)} hidden)")
            if baseline is not None:
                self.panels["warp baseline"].show(baseline)
            p = self.pose
            self.info.value = (f"measured pose: yaw {signed_degrees(p.yaw)}, pitch {signed_degrees(p.pitch)}, "
                               f"roll {signed_degrees(p.roll)} &middot; sketch branch <b>{branch}</b>")
            self.n_shape_updates += 1
            self.error = ""
            self.message.value = ""
            return True

    def _face_phase(self, is_current: Callable[[], bool] = lambda: True) -> bool:
        """The generator for the newest shape phase (its result is dropped when a newer request is waiting)."""
        from .pipeline import Reenactment

        if self._target is None:
            return False
        chain = self._target
        t0 = time.perf_counter()
        self._busy.working("DG face")
        try:
            image = self.dg.generate(chain.sketch, self.encoding.style_code, sketch_intensity=chain.sketch_intensity)
        except Exception as exc:  # noqa: BLE001 - shown inline
            return self._show_error(exc)
        if not is_current():
            return False  # a newer slider value is on its way; its own face phase shows the result
        enc = self.encoding
        self.result = Reenactment(
            source_image=enc.image, reference_landmarks=chain.reference.landmarks, id_feature=enc.id_feature,
            landmark_code=chain.reference.landmark_code, decoded_landmarks=chain.decoded_landmarks,
            target_landmarks=chain.target_landmarks, sketch=chain.sketch, style_code=enc.style_code, image=image,
            sketch_intensity=chain.sketch_intensity, weights=self.dg.weights.label, weights_info=self.dg.weights,
            precision=getattr(self.dg, "precision", "fp32"), compiled=getattr(self.dg, "compiled", False))
        self._show_face(image[0], t0)
        return True


# --- interpolation app ----------------------------------------------------------------------------------------
class InterpolationApp(_PanelApp, W.VBox):
    """A slider ``t`` along a path between two references, and the path to take (notebook 04).

    Paths: ``"spherical"`` / ``"linear"`` interpolation of the two landmark codes, or ``"landmarks"``: the
    reference points interpolated on a straight line, then encoded. Panels: the interpolated reference's
    sketch, the IDSG target sketch of the path at ``t`` (fast: shown at once) and the DG face (the generator,
    after ``debounce`` seconds, newest value only). Every visited ``(path, t)`` is cached
    (:class:`dgkit.interpolate.CodePathExplorer`), so going back is instant.

    Args:
        dg: a :class:`dgkit.DualGenerator`.
        ref_a, ref_b: ``(68,2)`` crop-pixel reference landmarks of the two ends.
        source: an aligned source crop ``(256,256,3)`` uint8 or its :class:`dgkit.SourceEncoding`.
        t: start value; path: start path; debounce: seconds before the face phase (0: at once, synchronously).

    Attributes: frame (the :class:`dgkit.interpolate.CodeInterpolation` at the current t, no image), image (the
    DG face, raw), error, n_updates (face phases completed).
    """

    PATHS = ("spherical", "linear", "landmarks")

    def __init__(self, dg, ref_a: np.ndarray, ref_b: np.ndarray, *, source, t: float = 0.5,
                 path: str = "spherical", debounce: float = 0.15):
        from .interpolate import CodePathExplorer

        self.dg = dg
        self._ends = (ref_a, ref_b)
        self._source = source
        self._explorers: dict[str, CodePathExplorer] = {}
        self._faces: dict[tuple[str, float], np.ndarray] = {}
        self.untrained = is_untrained(dg)
        self.frame = None
        self.image: np.ndarray | None = None
        self.error = ""
        self.n_updates = 0
        self._face = _Deferred(debounce, threading.Lock())
        self._busy = _Busy()
        self.message = W.HTML("")
        self.slider = W.FloatSlider(value=t, min=0.0, max=1.0, step=0.05, description="t", continuous_update=False,
                                    readout_format=".2f", layout=W.Layout(width="360px", min_width="260px"))
        self.path = W.ToggleButtons(options=list(self.PATHS), value=path, description="path",
                                    style={"button_width": "90px"})
        self.panels = {"reference": _Panel("reference (points interpolated)"), "sketch": _Panel("target sketch"),
                       "DG output": _Panel("DG output")}
        self.slider.observe(lambda _c: self._schedule(), names="value")
        self.path.observe(lambda _c: self._schedule(), names="value")
        wrap = W.Layout(flex_flow="row wrap", align_items="center")
        super().__init__([W.HBox([self.slider, self.path, self._busy.widget], layout=wrap), self.message,
                          W.HBox(list(self.panels.values()), layout=W.Layout(flex_flow="row wrap"))])
        self.update()

    def _key(self) -> tuple[str, float]:
        return self.path.value, round(float(self.slider.value), 2)

    def update(self) -> bool:
        """Both phases for the current t and path, synchronously; False on an error (inline)."""
        if not self._shape_phase():
            return False
        return bool(self._face.run_now(self._face_phase))

    def _schedule(self) -> None:
        if self._face.delay <= 0:
            self.update()
        elif self._shape_phase():
            self._busy.working("DG face")
            self._face.request(self._face_phase)

    def _shape_phase(self) -> bool:
        from .interpolate import CodePathExplorer
        from .sketch import draw_sketch

        path, t = self._key()
        try:
            if path not in self._explorers:
                self._explorers[path] = CodePathExplorer(self.dg, *self._ends, source=self._source, method=path,
                                                         render=False)
            frame = self._explorers[path].frame(t)
        except Exception as exc:  # noqa: BLE001 - shown inline
            return self._show_error(exc)
        self.frame = frame
        self.panels["reference"].show(draw_sketch(frame.reference_landmarks[0], "reference"),
                                      f"reference (points interpolated), t = {t:.2f}")
        self.panels["sketch"].show(stamp_untrained(frame.sketches[0], self.untrained), f"target sketch ({path})",
                                   warn=self.untrained)
        self.error, self.message.value = "", ""
        return True

    def _face_phase(self, is_current: Callable[[], bool] = lambda: True) -> bool:
        key = self._key()
        frame = self.frame
        t0 = time.perf_counter()
        self._busy.working("DG face")
        try:
            if key not in self._faces:
                enc = self._explorers[key[0]].encoding
                self._faces[key] = self.dg.generate(frame.sketches, enc.style_code)[0]
        except Exception as exc:  # noqa: BLE001 - shown inline
            return self._show_error(exc)
        if not is_current():
            return False
        self._show_face(self._faces[key], t0)
        return True

from .live.widget import LiveApp  # noqa: E402,F401  (live reenactment app; defined in dgkit/live/widget.py)
