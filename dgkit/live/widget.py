"""The notebook live app: the browser camera drives DG in the kernel (``dgkit.widgets.LiveApp``).

::

    browser (anywidget, offline ESM)                          kernel
    getUserMedia ─► canvas ─► JPEG ──"frame" msg──► PushSource ─► LiveEngine (detect ─► smooth ─► IDSG ─► sketch,
         ▲        (only when the previous frame                     generator and warp behind it)
         │         was acknowledged: back-pressure)                     │
         └── panels (camera + landmarks, sketch, DG face, warp) ◄───────┘   "ack" when the engine takes a frame

The page sends one frame, then waits for the kernel's acknowledgement (sent when the engine *takes* the frame
for processing) before it sends the next: no queue builds up anywhere, and the kernel always works on the
newest camera picture. Each returned panel carries the browser time of its camera frame, so the page shows the
true camera-to-screen latency next to the frames/s of each panel. The 3D reference landmarks (plotly) are
updated by a kernel thread at a lower rate (``plot_interval``), data only, so the plot does not flicker.
"""

from __future__ import annotations

import html
import threading
import time
from collections import OrderedDict
from pathlib import Path

import cv2
import ipywidgets as W
import numpy as np

from ..errors import DgkitError, ImageReadError
from .engine import LiveEngine, LiveFrame
from .sources import PushSource

__all__ = ["LiveApp", "LiveView"]

_JPEG_QUALITY = 88

_ESM = r"""
const PANELS = [["camera", "camera + landmarks"], ["sketch", "target sketch (IDSG)"],
                ["dg", "DG face (newest finished)"], ["warp", "warp baseline (no network)"]];

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function cameraMessage(e) {
  const name = (e && e.name) || "";
  if (name === "NotAllowedError" || name === "SecurityError")
    return "Camera permission was denied. Allow the camera for this page (the camera icon in the address bar) " +
           "and press Start again.";
  if (name === "NotFoundError" || name === "OverconstrainedError")
    return "No camera was found. Connect a camera and press Start again.";
  if (name === "NotReadableError")
    return "The camera is in use by another program (or failed). Close the other program and press Start again.";
  return "The camera could not start (" + name + ": " + ((e && e.message) || e) + ").";
}

function render({ model, el: root }) {
  root.classList.add("dgkit-live");
  const bar = el("div", "dgkit-live-bar");
  const start = el("button", "dgkit-live-start", "\u25B6 Start camera");
  const stop = el("button", "dgkit-live-stop", "\u25A0 Stop");
  const rec = el("button", "dgkit-live-record", "\u25CF Record");
  stop.disabled = true;
  for (const b of [start, stop, rec]) { b.style.marginRight = "6px"; b.style.padding = "3px 10px"; }
  const weights = el("span", "dgkit-live-weights");
  bar.append(start, stop, rec, weights);
  const error = el("div", "dgkit-live-error");
  error.style.cssText = "color:#C00000;font-weight:bold;margin:4px 0;min-height:1.2em";
  const info = el("div", "dgkit-live-message");
  info.style.cssText = "color:#555;margin:2px 0";
  const counters = el("div", "dgkit-live-counters", "not started");
  counters.style.cssText = "font-family:monospace;font-size:12px;margin:4px 0";
  const row = el("div", "dgkit-live-panels");
  row.style.cssText = "display:flex;flex-wrap:wrap;gap:6px";
  const panels = {};
  for (const [key, title] of PANELS) {
    const fig = el("figure", "dgkit-live-panel"); fig.style.margin = "0";
    const cap = el("figcaption", "", title); cap.style.cssText = "font-weight:bold;font-size:12px";
    const img = el("img", "dgkit-live-" + key);
    img.width = 256; img.height = 256; img.alt = "";
    img.style.cssText = "display:block;width:256px;height:256px;max-width:none;background:#333;" +
                        "border:1px solid #ccc;object-fit:contain";
    fig.append(cap, img); row.append(fig);
    panels[key] = { img, url: null, times: [], latency: NaN };
  }
  const video = el("video"); video.muted = true; video.playsInline = true; video.style.display = "none";
  root.append(bar, error, info, counters, row, video);

  let stream = null, timer = null, inflight = false, sentAt = 0, sent = 0, kernel = {};
  const canvas = document.createElement("canvas");

  const showError = (text) => { error.textContent = text ? "\u26A0 " + text : ""; };
  const syncFromModel = () => {
    showError(model.get("error"));
    info.textContent = model.get("message");
    weights.textContent = model.get("weights");
    rec.textContent = model.get("recording") ? "\u25A0 Stop recording" : "\u25CF Record";
    rec.style.color = model.get("recording") ? "#C00000" : "";
  };

  function fail(text) {
    model.set("error", text); model.set("camera_error", text); model.save_changes(); showError(text);
  }

  async function startCamera() {
    if (stream) return;
    showError("");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      fail("This page has no camera access (the browser allows cameras only on https:// or localhost pages).");
      return;
    }
    start.disabled = true;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } },
                                                           audio: false });
    } catch (e) {
      stream = null; start.disabled = false; fail(cameraMessage(e));
      model.set("running", false); model.save_changes();
      return;
    }
    for (const track of stream.getVideoTracks())
      track.addEventListener("ended", () => { stopCamera(); fail("The camera was lost (unplugged, switched off or " +
                                                                "taken by another program). Press Start to try again."); });
    video.srcObject = stream;
    try { await video.play(); } catch (e) { /* autoplay of a muted video is allowed; frames still arrive */ }
    model.set("camera_error", ""); model.set("error", ""); model.set("running", true); model.save_changes();
    stop.disabled = false; inflight = false;
    timer = setInterval(pump, 5);
  }

  function stopCamera() {
    if (timer) { clearInterval(timer); timer = null; }
    if (stream) { stream.getTracks().forEach((t) => t.stop()); stream = null; }
    video.srcObject = null; start.disabled = false; stop.disabled = true; inflight = false;
    if (model.get("running")) { model.set("running", false); model.save_changes(); }
  }

  function pump() {  // one frame in flight at most: the next one leaves when the kernel took this one
    if (!stream || video.readyState < 2 || !video.videoWidth) return;
    if (inflight && performance.now() - sentAt < 5000) return;
    const w = video.videoWidth, h = video.videoHeight;
    canvas.width = w; canvas.height = h;
    canvas.getContext("2d").drawImage(video, 0, 0, w, h);
    const t = performance.now();
    inflight = true; sentAt = t;
    canvas.toBlob(async (blob) => {
      if (!blob) { inflight = false; return; }
      const buf = await blob.arrayBuffer();
      model.send({ type: "frame", t, w, h }, undefined, [buf]);
      sent += 1;
    }, "image/jpeg", 0.85);
  }

  function show(key, buffer, mime, t) {
    const p = panels[key];
    const url = URL.createObjectURL(new Blob([buffer], { type: mime }));
    const old = p.url;
    p.url = url;
    p.img.onload = () => {
      const now = performance.now();
      p.times.push(now); if (p.times.length > 20) p.times.shift();
      if (t !== null && t !== undefined && t > 0) p.latency = now - t;
      if (old) URL.revokeObjectURL(old);
    };
    p.img.src = url;
  }

  model.on("msg:custom", (msg, buffers) => {
    if (msg.type === "ack") { inflight = false; return; }
    if (msg.type === "panels") {
      msg.panels.forEach((key, i) => show(key, buffers[i], msg.mime[i], msg.t[key]));
      kernel = msg.stats || kernel;
    }
  });

  function fps(times) {
    const now = performance.now();
    const recent = times.filter((x) => now - x < 10000);
    if (recent.length < 2) return NaN;  // one frame tells no rate: shown as "-", not as 0
    let span = recent[recent.length - 1] - recent[0];
    if (now - recent[recent.length - 1] > 3 * span / (recent.length - 1)) span = now - recent[0];
    return (recent.length - 1) / (span / 1000);
  }
  const ms = (x) => (isFinite(x) ? Math.round(x) + " ms" : "-");
  const counterTimer = setInterval(() => {
    if (!stream && !sent) return;
    const f = {};
    for (const [key] of PANELS) {
      f[key] = fps(panels[key].times);
      counters.dataset[key + "Fps"] = (isFinite(f[key]) ? f[key] : 0).toFixed(2);
    }
    const rate = (x) => (isFinite(x) ? x.toFixed(1) : "-");
    counters.dataset.sent = String(sent);
    counters.dataset.received = String(kernel.received || 0);
    counters.textContent =
      `frames/s  camera ${rate(f.camera)} \u00B7 sketch ${rate(f.sketch)} \u00B7 DG ${rate(f.dg)} ` +
      `\u00B7 warp ${rate(f.warp)}  |  camera\u2192screen  sketch ${ms(panels.sketch.latency)} \u00B7 ` +
      `DG ${ms(panels.dg.latency)}  |  kernel: ${kernel.received || 0} frames received, ` +
      `${kernel.processed || 0} processed, ${kernel.dropped || 0} dropped, ${kernel.no_face || 0} without a face`;
  }, 500);

  start.onclick = () => startCamera();
  stop.onclick = () => stopCamera();
  rec.onclick = () => { model.set("recording", !model.get("recording")); model.save_changes(); };
  model.on("change:running", () => {
    if (model.get("running") && !stream) startCamera();
    if (!model.get("running") && stream) stopCamera();
  });
  for (const name of ["error", "message", "weights", "recording"]) model.on("change:" + name, syncFromModel);
  syncFromModel();
  return () => { clearInterval(counterTimer); stopCamera(); };
}
export default { render };
"""

try:  # anywidget ships its front-end with the Python package: no CDN, works offline
    import anywidget
    import traitlets

    class LiveView(anywidget.AnyWidget):
        """The browser half of :class:`LiveApp`: camera capture with back-pressure, the four panels, counters,
        Start/Stop/Record. ``running``/``recording`` are the buttons' state; ``camera_error`` the browser's
        camera problem (denied, missing, lost); ``error``/``message`` what the app shows."""

        _esm = _ESM
        running = traitlets.Bool(False).tag(sync=True)
        recording = traitlets.Bool(False).tag(sync=True)
        error = traitlets.Unicode("").tag(sync=True)
        camera_error = traitlets.Unicode("").tag(sync=True)
        message = traitlets.Unicode("").tag(sync=True)
        weights = traitlets.Unicode("").tag(sync=True)

except ImportError:  # pragma: no cover - anywidget is a dependency
    LiveView = None  # type: ignore[assignment,misc]


def _encode(image: np.ndarray, ext: str) -> bytes:
    bgr = image if image.ndim == 2 else np.ascontiguousarray(image[..., ::-1])
    params = [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, bgr, params)
    if not ok:  # pragma: no cover
        raise ImageReadError(f"could not encode a panel of shape {image.shape}")
    return buf.tobytes()


def camera_panel(frame: LiveFrame, size: int = 256) -> np.ndarray:
    """The camera frame letterboxed to ``size`` with the smoothed landmarks drawn (RGB uint8)."""
    from ..sheet import draw_points as _dots, fit_tile as _fit

    tile, scale, offset = _fit(frame.camera, size)
    if frame.image_landmarks is not None:
        _dots(tile, frame.image_landmarks, scale, offset)
    return tile


class LiveApp(W.VBox):
    """You are the reference: the browser camera drives DG live in the notebook.

    Panels: camera + landmarks, 3D reference landmarks (plotly, updated every ``plot_interval`` s), target
    sketch (the camera's pace), DG face (as often as the generator allows; UNTRAINED banner for synthetic
    weights), warp baseline. Counters: frames/s per panel and camera-to-screen latency. Start/Stop/Record
    buttons; the source comes from the gallery, an upload, a file path, or "camera frame -> source".
    Without a camera (or with the permission denied) the app shows why, inline.

    Args:
        dg: a :class:`dgkit.DualGenerator` (default: ``load_dg(allow_synthetic=True)``).
        source: the first source face (a sample name, path or RGB array).
        backend, smoothing: see :class:`dgkit.live.LiveEngine`.
        record_dir: folder for recordings (``dgkit-live-<time>.mp4``).
        plot_interval: seconds between 3D plot updates.
        warm_up: run the networks once now, so the first camera frame is not slow.

    Attributes:
        engine: the :class:`LiveEngine`; view: the browser half (:class:`LiveView`); picker: the source picker;
        figure: the 3D plot; received: camera frames the kernel received; last_recording: path of the last
        recording; error: the last error message shown.
    """

    def __init__(self, dg=None, source="astronaut", *, backend="auto", smoothing="one-euro",
                 record_dir: str | Path = ".", plot_interval: float = 0.5, warm_up: bool = True):
        import plotly.graph_objects as go

        from ..io import sample_names
        from ..viz import landmarks_3d
        from ..widgets import _SCENE_RANGE, ImagePicker

        if LiveView is None:  # pragma: no cover
            raise DgkitError("the live app needs the anywidget package: pip install anywidget")
        if dg is None:
            from ..pipeline import load_dg

            dg = load_dg(allow_synthetic=True)
        self.dg = dg
        self.record_dir = Path(record_dir)
        self.plot_interval = float(plot_interval)
        self.received = 0
        self.last_recording: Path | None = None
        self.error = ""
        self._browser_t: OrderedDict[float, float] = OrderedDict()  # kernel capture time -> browser time
        self._send_lock = threading.Lock()
        self._source = PushSource()
        self.view = LiveView()
        self.view.weights = f"weights: {dg.weights.label}" + ("" if dg.weights.trained else
                                                             " \u2014 the DG face is NOT a real result")
        first = source
        if isinstance(source, str) and source in sample_names():
            from ..io import sample_image

            first = sample_image(source)
        self.engine = LiveEngine(dg, first, self._source, backend=backend, smoothing=smoothing,
                                 on_update=self._on_update, on_take=self._on_take)
        if warm_up:
            self.engine.warm_up()

        self.picker = ImagePicker("Source (the identity)", default=None, preview_size=120)
        self.picker.on_change(self._use_source)
        self.snapshot_button = W.Button(description="camera frame \u2192 source", icon="camera",
                                        layout=W.Layout(width="200px"))
        self.snapshot_button.on_click(lambda _: self.use_camera_frame())
        fig = landmarks_3d({"reference (camera, smoothed)": self.engine.source.crop_landmarks},
                           frame="crop pixels")
        # short axis titles and the camera a little further out: the long ones were cut off in this small panel
        titles = {"x": "x", "y": "y (down)", "z": "z (depth)"}
        axes = {f"{k}axis": dict(range=list(v), autorange=False, showticklabels=False, title=dict(text=titles[k]))
                for k, v in _SCENE_RANGE.items()}
        fig.update_layout(height=330, width=360, margin=dict(l=0, r=0, t=10, b=0), showlegend=True,
                          scene=dict(aspectmode="cube", camera=dict(up=dict(x=0, y=-1, z=0),
                                                                    eye=dict(x=0.9, y=-0.55, z=-1.8)), **axes))
        self.figure = go.FigureWidget(fig)
        self._plotted = -1
        self._plot_stop = threading.Event()
        self._plot_thread: threading.Thread | None = None

        self.view.observe(self._on_running, names="running")
        self.view.observe(self._on_recording, names="recording")
        self.view.observe(self._on_camera_error, names="camera_error")
        self.view.on_msg(self._on_msg)
        source_box = W.VBox([self.picker, self.snapshot_button])
        super().__init__([
            W.HTML("<b>Live reenactment</b>: press <i>Start camera</i>, allow the camera, and move your head; "
                   "the source face follows you."),
            W.HBox([self.view, W.VBox([W.HTML("<b>3D reference landmarks</b>"),
                                       W.Box([self.figure], layout=W.Layout(height="340px", width="370px",
                                                                            overflow="hidden")),
                                       source_box])],
                   layout=W.Layout(flex_flow="row wrap")),
        ])

    # public API ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the engine (the page starts its camera too; in a test frames come from :meth:`push_frame`)."""
        self.view.running = True

    def stop(self) -> None:
        """Stop the engine and the camera; an active recording is closed."""
        self.view.running = False

    def record(self, on: bool = True) -> None:
        """Start (or stop) recording the side-by-side panels to ``record_dir``."""
        self.view.recording = bool(on)

    def push_frame(self, frame: np.ndarray, browser_t: float | None = None) -> None:
        """Hand one camera frame (RGB uint8 ``(H,W,3)``) to the engine, as the page does."""
        t = time.monotonic()
        if browser_t is not None:
            self._browser_t[t] = float(browser_t)
            while len(self._browser_t) > 64:
                self._browser_t.popitem(last=False)
        self.received += 1
        self._source.push(frame, t)

    def use_camera_frame(self) -> bool:
        """Use the newest camera frame as the source face; False (message shown) when there is none or no face."""
        latest = self.engine.latest()
        if latest is None:
            return self._fail(ImageReadError("no camera frame yet: press Start camera first."))
        return self._use_source(latest.camera.copy(), "camera frame")

    def close(self) -> None:
        self.stop()
        self._stop_plot()
        self.engine.close()
        super().close()

    # internals ----------------------------------------------------------------------------------------------
    def _fail(self, exc: BaseException) -> bool:
        from ..widgets import error_message

        self.error = error_message(exc)
        self.view.error = self.error
        return False

    def _use_source(self, image: np.ndarray, origin: str = "picker") -> bool:
        try:
            self.engine.set_source(image)
        except Exception as exc:  # noqa: BLE001 - shown inline
            return self._fail(exc)
        self.error = ""
        self.view.error = ""
        self.view.message = f"source: {origin if origin != 'picker' else self.picker.origin}"
        return True

    def _on_running(self, change) -> None:
        try:
            if change["new"] and not self.engine.running:
                self.engine.start()
                self._start_plot()
                self.view.message = "running"
            elif not change["new"] and self.engine.running:
                self._stop_plot()
                stats = self.engine.stop()
                self.view.message = f"stopped: {stats.processed} frames processed, {stats.dropped} dropped"
                self._after_recording()
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def _on_recording(self, change) -> None:
        try:
            if change["new"]:
                path = self.record_dir / f"dgkit-live-{time.strftime('%Y%m%d-%H%M%S')}.mp4"
                self.engine.start_recording(path)
                self.last_recording = path
                self.view.message = f"recording to {path}"
            else:
                self.engine.stop_recording()
                self._after_recording()
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def _after_recording(self) -> None:
        if self.view.recording:
            self.view.recording = False  # the engine closed it on stop
        if self.last_recording is not None and self.engine.recorded_frames:
            done = f"recorded {self.engine.recorded_frames} frames to {self.last_recording}"
            self.view.message = f"{self.view.message}; {done}" if self.view.message.startswith("stopped") else done

    def _on_camera_error(self, change) -> None:
        if change["new"]:
            self.error = change["new"]
            if self.engine.running:
                self._stop_plot()
                self.engine.stop()

    def _on_msg(self, _widget, content, buffers) -> None:
        if not isinstance(content, dict) or content.get("type") != "frame":
            return
        if not self.engine.running or not buffers:
            self._send({"type": "ack"})
            return
        frame = cv2.imdecode(np.frombuffer(bytes(buffers[0]), np.uint8), cv2.IMREAD_COLOR)
        if frame is None:
            self._send({"type": "ack"})
            return
        self.push_frame(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), content.get("t"))

    def _send(self, content: dict, buffers: list[bytes] | None = None) -> None:
        with self._send_lock:  # engine threads send too
            self.view.send(content, buffers)

    def _on_take(self, t_capture: float) -> None:
        self._send({"type": "ack"})

    def _on_update(self, kind: str, frame: LiveFrame) -> None:
        stats = self.engine.stats()
        kernel = {"received": self.received, "processed": stats.processed, "dropped": stats.dropped,
                  "no_face": stats.no_face}
        if kind == "shape":
            images = [("camera", camera_panel(frame), ".jpg")]
            if frame.sketch is not None:
                images.append(("sketch", frame.sketch, ".png"))
            t = {"camera": self._browser_t.get(frame.t_capture), "sketch": self._browser_t.get(frame.t_capture)}
        elif kind == "dg":
            images, t = [("dg", frame.dg_image, ".jpg")], {"dg": self._browser_t.get(frame.dg_t_capture)}
        else:
            images, t = [("warp", frame.warp, ".jpg")], {}
        self._send({"type": "panels", "panels": [k for k, _, _ in images],
                    "mime": ["image/jpeg" if e == ".jpg" else "image/png" for _, _, e in images],
                    "t": t, "stats": kernel}, [_encode(img, e) for _, img, e in images])

    def _start_plot(self) -> None:
        self._plot_stop.clear()
        self._plot_thread = threading.Thread(target=self._plot_loop, name="dgkit-live-plot", daemon=True)
        self._plot_thread.start()

    def _stop_plot(self) -> None:
        self._plot_stop.set()
        if self._plot_thread is not None:
            self._plot_thread.join(5)
            self._plot_thread = None

    def _plot_loop(self) -> None:
        from ..viz import polyline_xyz

        while not self._plot_stop.wait(self.plot_interval):
            latest = self.engine.latest()
            if latest is None or latest.reference_landmarks is None or latest.index == self._plotted:
                continue
            xs, ys, zs = polyline_xyz(latest.reference_landmarks)
            with self.figure.batch_update():  # data only: the plot keeps its camera and axes, no flicker
                self.figure.data[0].update(x=xs, y=ys, z=zs)
            self._plotted = latest.index

    @property
    def status(self) -> str:
        """One line: what the app shows as message or error (for tests and logs)."""
        return html.unescape(self.view.error or self.view.message)
