"""Paper figures: qualitative grids and strips, exported with the configuration that rebuilds them.

Two ways to make a figure:

* from arrays: :func:`source_reference_grid`, :func:`interpolation_strip`, :func:`pose_sweep_strip` take
  crops, landmarks or results and return a matplotlib ``Figure``;
* from a *spec* (a JSON-able dict naming the inputs: sample names or image paths, poses, parameters):
  :func:`build_figure` resolves the inputs, makes the figure and returns the full configuration (inputs'
  sha256, detected landmarks, weights label and file sha256, versions). :func:`export_figure` writes PNG
  (300 dpi) / PDF / SVG plus ``<stem>.json`` with that configuration, and :func:`figure_from_config`
  rebuilds the same figure from the JSON file (checking that the inputs did not change).

A spec::

    {"figure": "source_reference_grid",              # or "interpolation_strip", "pose_sweep_strip"
     "faces": {"astro": {"sample": "astronaut"},        # or {"path": "me.jpg"}; optional "variant": "flip"|
               "astro_flip": {"sample": "astronaut", "variant": "flip"}},   #  "warm", "backend", "landmarks"
     "sources": ["astro", "astro_flip"],
     "references": [{"face": "astro"}, {"face": "astro", "yaw": 30, "mouth_open": 0.3}],
     "weights": {"dir": null, "allow_synthetic": true, "sketch_intensity": "demo"},
     "params": {"size": 1.6, "baseline_rows": True}}   # baseline_rows: add warp-baseline rows

``interpolation_strip`` specs give ``"source"``, ``"a"``, ``"b"`` (reference specs), ``"ts"`` and
``"method"`` ("linear", "spherical" or "landmarks"); ``pose_sweep_strip`` specs give ``"source"``,
``"reference"``, ``"axis"`` and ``"angles"``. A reference spec with any of yaw/pitch/roll is posed absolutely
with :func:`dgkit.geometry.pose_landmarks`; mouth_open/eyes_open/smile go through
:func:`dgkit.geometry.edit_expression`.
"""

from __future__ import annotations

import copy
import hashlib
import io as _io
import json
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import viz
from .errors import ConfigError, InputError
from .face68 import CROP_SIZE, check_landmarks

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from .reenact import AlignedFace

FIGURE_KINDS = ("source_reference_grid", "interpolation_strip", "pose_sweep_strip")
CONFIG_VERSION = 1


# --- figures from arrays ------------------------------------------------------------------------------------
def _crops(sources: Any) -> np.ndarray:
    arr = np.asarray(sources)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[1:] != (CROP_SIZE, CROP_SIZE, 3) or arr.dtype != np.uint8:
        raise InputError(f"sources must be aligned (256,256,3) uint8 crops (a list or (N,256,256,3)), got "
                         f"{arr.dtype} {arr.shape}")
    return arr


def _reference_set(references: Any, name: str = "references") -> np.ndarray:
    return check_landmarks(references, name, batch=True)


FIGURE_DPI = viz.FIGURE_DPI


def freeze_layout(fig: Figure, dpi: float = FIGURE_DPI, *, untrained: bool = False) -> Figure:
    """Apply the house style (:func:`dgkit.viz.finish`: readable fonts, titles wrapped to fit, the UNTRAINED
    mark when ``untrained``), then run the constrained layout once at a fixed dpi and keep it: matplotlib's
    constrained layout is iterative (each draw starts from the last one), so without this two renders of the
    same figure, or a figure and its rebuild, can differ by a pixel. Returns ``fig``."""
    fig.set_dpi(dpi)
    viz.finish(fig, untrained=untrained, what="every DG image in this figure")
    fig.draw_without_rendering()
    fig.set_layout_engine("none")
    return fig


def _label_axis(ax, text: str) -> None:
    ax.set_ylabel(text, fontsize=8)


def source_reference_grid(dg, sources: Any, references: Any, *, source_titles: Sequence[str] | None = None,
                          reference_titles: Sequence[str] | None = None, reference_images: Any = None,
                          source_landmarks: Any = None, size: float = 1.6, title: str = "") -> Figure:
    """The paper's qualitative layout: references along the first row, sources down the first column, and
    each cell the source reenacted with that reference's pose and expression.

    Args:
        dg: a :class:`dgkit.DualGenerator`.
        sources: N aligned (256,256,3) uint8 crops.
        references: M (68,2|3) reference landmarks, crop pixels.
        reference_images: optional M (256,256,3) crops shown (with the landmarks) in the first row; without
            them the first row shows each reference's landmark sketch.
        source_landmarks: optional N (68,2|3) crop-pixel landmarks of the sources; when given, each source
            gets a second row with the no-learning baseline: the source crop warped onto the reference
            landmarks (:func:`dgkit.baselines.warp_to_landmarks`), for comparison with DG.
        size: inches per cell.
    Returns:
        Figure with (N+1) x (M+1) axes ((2N+1) x (M+1) with baseline rows); one batched DG pass of N*M
        items (sources and references encoded once).
    """
    src = _crops(sources)
    refs = _reference_set(references)
    n, m = len(src), len(refs)
    for name, seq, k in (("source_titles", source_titles, n), ("reference_titles", reference_titles, m)):
        if seq is not None and len(seq) != k:
            raise InputError(f"{name} has {len(seq)} entries for {k} items")
    enc = dg.encode_source(src)
    ref = dg.encode_reference(refs[:, :, :2].astype(np.float32))
    si, ri = np.repeat(np.arange(n), m), np.tile(np.arange(m), n)  # row-major cells
    cells = type(ref)(ref.landmarks[ri], ref.landmark_code[ri])
    images = dg.run_chain(cells, enc.id_feature[si], enc.style_code[si]).image
    untrained = viz.is_untrained(dg)

    from .sketch import draw_sketch

    src_lm = None if source_landmarks is None else _reference_set(source_landmarks, "source_landmarks")
    if src_lm is not None and len(src_lm) != n:
        raise InputError(f"source_landmarks has {len(src_lm)} sets for {n} sources")
    per = 1 if src_lm is None else 2
    fig, axes = viz.new_figure(per * n + 1, m + 1, size=size)
    corner = axes[0, 0]
    corner.set_axis_off()
    corner.text(0.5, 0.5, "source ↓\nreference →", ha="center", va="center", fontsize=9, transform=corner.transAxes)
    for j in range(m):
        ax = axes[0, j + 1]
        if reference_images is not None:
            viz.show_image(ax, np.asarray(reference_images[j]))
            viz.draw_landmarks(ax, {"reference": refs[j]}, markers=False, linewidth=0.6)
        else:
            viz.show_image(ax, draw_sketch(refs[j][:, :2], kind="reference"))
        ax.set_title(reference_titles[j] if reference_titles else f"reference {j + 1}", fontsize=8)
    for i in range(n):
        row = per * i + 1
        ax = axes[row, 0]
        viz.show_image(ax, src[i])
        _label_axis(ax, source_titles[i] if source_titles else f"source {i + 1}")
        for j in range(m):
            viz.show_image(axes[row, j + 1], images[i * m + j], untrained=untrained)
        if src_lm is not None:
            from .baselines import warp_to_landmarks

            axes[row + 1, 0].set_axis_off()
            axes[row + 1, 0].text(0.5, 0.5, "warp baseline\n(no learning)", ha="center", va="center", fontsize=8,
                                  transform=axes[row + 1, 0].transAxes)
            for j in range(m):
                viz.show_image(axes[row + 1, j + 1], warp_to_landmarks(src[i], src_lm[i], refs[j][:, :2]))
    fig.suptitle(title or f"DG reenactment: sources x references (weights: {dg.weights.label})", fontsize=10)
    return freeze_layout(fig, untrained=untrained)


_ROW_TITLES = {"reference": "reference", "sketch": "target sketch", "image": "DG output", "target": "target"}


def _strip(columns: Sequence[str], rows: dict[str, list[Any]], *, untrained_rows: Sequence[str], title: str,
           size: float, source: Any = None) -> Figure:
    """Rows of images under column titles; ``source`` (a crop) adds a first column with it in the last row."""
    lead = 0 if source is None else 1
    fig, axes = viz.new_figure(len(rows), len(columns) + lead, size=size)
    for r, (name, images) in enumerate(rows.items()):
        if lead:
            ax = axes[r, 0]
            if r == len(rows) - 1:
                viz.show_image(ax, np.asarray(source))
                ax.set_xlabel("source", fontsize=8)
            else:
                ax.set_axis_off()
        for c, img in enumerate(images):
            ax = axes[r, c + lead]
            viz.show_image(ax, img, untrained=name in untrained_rows)
            if r == 0:
                ax.set_title(columns[c], fontsize=8)
            if c == 0:
                _label_axis(ax, _ROW_TITLES.get(name, name))
    fig.suptitle(title, fontsize=10)
    return freeze_layout(fig, untrained=bool(untrained_rows))


def interpolation_strip(result: Any, *, rows: Sequence[str] = ("reference", "sketch", "image"), size: float = 1.6,
                        title: str = "", source: Any = None) -> Figure:
    """One column per step of a :class:`dgkit.interpolate.CodeInterpolation` (or IdentityInterpolation).

    rows: any of "reference" (the interpolated reference landmarks' sketch; code interpolations only),
    "sketch" (target sketch) and "image" (DG output; needs ``render=True``).
    source: optional (256,256,3) source crop shown in a first column (bottom row).
    """
    from .sketch import draw_sketch

    content: dict[str, list[Any]] = {}
    for row in rows:
        if row == "reference":
            if not hasattr(result, "reference_landmarks"):
                continue
            content[row] = [draw_sketch(p, kind="reference") for p in result.reference_landmarks]
        elif row == "sketch":
            content[row] = list(result.sketches)
        elif row == "image":
            if result.images is None:
                raise InputError("this interpolation was made with render=False; there are no images to show")
            content[row] = list(result.images)
        else:
            raise InputError(f"unknown row {row!r}; use 'reference', 'sketch' or 'image'")
    what = "identity" if hasattr(result, "id_features") else "landmark code"
    method = {"landmarks": "reference landmarks interpolated, then encoded"}.get(result.method, result.method)
    untrained = ("sketch", "image") if viz.is_untrained(result) else ()
    return _strip([f"t = {t:.2f}" for t in result.ts], content, untrained_rows=untrained,
                  title=title or f"{what} interpolation ({method}; weights: {result.weights.label})", size=size,
                  source=source)


def pose_sweep_strip(sweep: Any, *, rows: Sequence[str] = ("reference", "sketch", "image"), size: float = 1.6,
                     title: str = "", source: Any = None) -> Figure:
    """One column per angle of a :class:`dgkit.interpolate.PoseSweep` (reference sketch, target sketch, output);
    ``source``: optional source crop in a first column."""
    from .sketch import draw_sketch

    res = sweep.result
    content: dict[str, list[Any]] = {}
    for row in rows:
        if row == "reference":
            content[row] = [draw_sketch(p[:, :2], kind="reference") for p in sweep.reference_landmarks]
        elif row in ("sketch", "image"):
            if res is None:
                continue
            content[row] = list(res.sketch if row == "sketch" else res.image)
        else:
            raise InputError(f"unknown row {row!r}; use 'reference', 'sketch' or 'image'")
    weights = res.weights if res is not None else "no DG run"
    untrained = ("sketch", "image") if res is not None and viz.is_untrained(res) else ()
    return _strip([f"{sweep.axis} {viz.signed_degrees(a)}" for a in sweep.angles], content, untrained_rows=untrained,
                  title=title or f"{sweep.axis} sweep (weights: {weights})", size=size, source=source)


# --- specs -> figures ---------------------------------------------------------------------------------------
def array_sha256(array: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and bytes (C order)."""
    arr = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def _variant(image: np.ndarray, variant: str) -> np.ndarray:
    if variant == "none":
        return image
    if variant == "flip":  # mirror left-right
        return np.ascontiguousarray(image[:, ::-1])
    if variant == "warm":  # a visible colour shift: more red, less blue
        out = image.astype(np.int16)
        out[..., 0] += 40
        out[..., 2] -= 40
        return np.clip(out, 0, 255).astype(np.uint8)
    raise ConfigError(f"unknown face variant {variant!r}; use 'none', 'flip' or 'warm'")


def resolve_face(face_spec: dict, *, check: bool = True) -> AlignedFace:
    """Load one face spec (``sample`` or ``path``; ``variant``; ``landmarks`` or ``backend`` for detection) and
    align it with :func:`dgkit.reenact.prepare_face`.

    Fills in ``face_spec["landmarks"]`` (68,3 image px, as a list) when missing, so that the recorded
    configuration rebuilds without detection, and ``face_spec["sha256"]`` (of the image after the variant).
    With ``check``, a recorded sha256 that differs from the loaded image raises ConfigError.
    """
    from .io import read_image, sample_image
    from .reenact import prepare_face

    if "sample" in face_spec:
        image = sample_image(face_spec["sample"])
    elif "path" in face_spec:
        image = read_image(face_spec["path"])
    else:
        raise ConfigError(f"a face needs 'sample' (one of dgkit.io.sample_names()) or 'path', got {face_spec}")
    image = _variant(image, face_spec.setdefault("variant", "none"))
    sha = array_sha256(image)
    if check and face_spec.get("sha256") and face_spec["sha256"] != sha:
        where = face_spec.get("path") or face_spec.get("sample")
        raise ConfigError(f"input face {where!r} changed since the figure was recorded (sha256 differs); "
                          "restore it, or rebuild with check=False to accept the new image")
    face_spec["sha256"] = sha
    if face_spec.get("landmarks") is None:
        face = prepare_face(image, backend=face_spec.setdefault("backend", "mediapipe"))
        face_spec["landmarks"] = face.landmarks.tolist()
        return face
    try:
        return prepare_face(image, landmarks=face_spec["landmarks"])
    except InputError as exc:
        raise ConfigError(f"face landmarks in the figure configuration: {exc}") from None


_POSE_KEYS = ("yaw", "pitch", "roll")
_EXPR_KEYS = ("mouth_open", "eyes_open", "smile")


def reference_landmarks(ref_spec: Mapping, faces: Mapping[str, AlignedFace]) -> np.ndarray:
    """(68,3) crop-pixel reference landmarks of a reference spec: the face's own, optionally posed and with
    an edited expression."""
    from .geometry import edit_expression, pose_landmarks

    name = ref_spec.get("face")
    if name not in faces:
        raise ConfigError(f"reference face {name!r} is not among the figure configuration's faces {sorted(faces)}")
    lm = faces[name].crop_landmarks
    if any(k in ref_spec for k in _POSE_KEYS):
        lm = pose_landmarks(lm, *(float(ref_spec.get(k, 0.0)) for k in _POSE_KEYS))
    expr = {k: float(ref_spec[k]) for k in _EXPR_KEYS if k in ref_spec}
    if expr:
        lm = edit_expression(lm, **expr)
    return lm


def _ref_title(ref_spec: Mapping) -> str:
    parts = [f"{k} {float(ref_spec[k]):+g}" for k in (*_POSE_KEYS, *_EXPR_KEYS) if k in ref_spec]
    return ref_spec.get("title") or (", ".join(parts) if parts else str(ref_spec.get("face")))


def _versions() -> dict[str, str]:
    import matplotlib
    import torch

    from . import __version__

    return {"dgkit": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "matplotlib": matplotlib.__version__, "python": platform.python_version()}


def _weights_record(dg) -> dict:
    from .weights import file_sha256

    info = dg.weights
    files = {}
    for name, path in (getattr(info, "paths", {}) or {}).items():
        try:
            files[name] = {"path": str(path), "sha256": file_sha256(path)}
        except OSError:
            files[name] = {"path": str(path), "sha256": None}
    return {"label": info.label, "trained": bool(info.trained), "files": files}


def weights_from_record(config: Mapping):
    """The :class:`~dgkit.weights.WeightsInfo` a figure configuration (``build_figure``'s config or the
    exported ``<stem>.json``) records: label, ``trained`` and the weight files' paths.

    Raises:
        ConfigError: the configuration records no weights (it was not made by :func:`build_figure`).
    """
    from .weights import WeightsInfo

    w = config.get("weights") or {}
    if "label" not in w or "trained" not in w:
        raise ConfigError("this figure configuration records no weights (label and trained); rebuild it with "
                          "build_figure")
    paths = {name: Path(f["path"]) for name, f in (w.get("files") or {}).items() if f.get("path")}
    return WeightsInfo(str(w["label"]), trained=bool(w["trained"]), paths=paths)


def _check_weights(recorded: Mapping, now: Mapping) -> None:
    """Raise ConfigError when a figure's recorded weights (label, files' sha256) differ from the model's."""
    changes = []
    if recorded.get("label") and recorded["label"] != now.get("label"):
        changes.append(f"made with {recorded['label']!r} weights, this model has {now.get('label')!r}")
    for name, rec in (recorded.get("files") or {}).items():
        current = (now.get("files") or {}).get(name, {})
        if rec.get("sha256") and current.get("sha256") and rec["sha256"] != current["sha256"]:
            changes.append(f"weights file {name!r} differs (recorded sha256 {rec['sha256'][:12]}..., "
                           f"now {current['sha256'][:12]}... at {current.get('path')})")
    if changes:
        raise ConfigError("the figure's recorded weights do not match this model: " + "; ".join(changes)
                          + ". Rebuild with the weights it was made with (the config's weights 'dir'), or pass "
                          "check=False (dgkit figure --no-check) to rebuild with these weights and record them.")


def _load_dg_for(spec: Mapping):
    from .pipeline import load_dg

    w = spec.get("weights", {})
    return load_dg(w.get("dir"), allow_synthetic=bool(w.get("allow_synthetic", True)),
                   sketch_intensity=w.get("sketch_intensity", "demo"))


def build_figure(spec: Mapping, *, dg=None, check: bool = True) -> tuple[Figure, dict]:
    """Make the figure a spec describes (see the module docstring).

    Args:
        spec: the figure spec (not modified).
        dg: a DualGenerator to use; None loads one from ``spec["weights"]``.
        check: inputs with a recorded sha256 must still match it (see :func:`resolve_face`), and when the spec
            is a recorded configuration (its ``weights`` hold a label and files' sha256), the model's weights
            must match that record; otherwise a ConfigError says what differs. ``check=False`` rebuilds anyway
            and records the new inputs and weights.
    Returns:
        (figure, config): config is the spec completed with detected landmarks, input sha256s, the weights
        record (label, trained, file sha256), seeds and versions; pass it to :func:`export_figure`.
    """
    from .interpolate import interpolate_codes, interpolate_landmarks, pose_sweep

    config = copy.deepcopy(dict(spec))
    kind = config.get("figure")
    if kind not in FIGURE_KINDS:
        raise ConfigError(f"spec['figure'] must be one of {FIGURE_KINDS}, got {kind!r}")
    faces_spec = config.get("faces") or {}
    if not faces_spec:
        raise ConfigError("the spec names no 'faces'")
    faces = {name: resolve_face(fs, check=check) for name, fs in faces_spec.items()}
    if dg is None:
        dg = _load_dg_for(config)
    config.setdefault("weights", {})
    w = config["weights"]
    w.setdefault("sketch_intensity", dg.sketch_intensity)
    if w["sketch_intensity"] != dg.sketch_intensity:
        raise ConfigError(f"the spec asks for sketch_intensity {w['sketch_intensity']!r} but dg uses "
                          f"{dg.sketch_intensity!r}")
    now = _weights_record(dg)
    if check:
        _check_weights(w, now)
    w.update(now)
    params = config.setdefault("params", {})
    size = float(params.setdefault("size", 1.6))

    def face(name: str) -> AlignedFace:
        if name not in faces:
            raise ConfigError(f"face {name!r} is not among the figure configuration's faces {sorted(faces)}")
        return faces[name]

    if kind == "source_reference_grid":
        srcs = config.get("sources") or []
        refs = config.get("references") or []
        if not srcs or not refs:
            raise ConfigError("a source_reference_grid spec needs non-empty 'sources' and 'references'")
        ref_lms = np.stack([reference_landmarks(r, faces) for r in refs])
        ref_imgs = None
        if params.get("reference_images", False):
            if any(any(k in r for k in (*_POSE_KEYS, *_EXPR_KEYS)) for r in refs):
                raise ConfigError("reference_images only fits references that are not posed or edited")
            ref_imgs = [face(r["face"]).crop for r in refs]
        src_lms = [face(s).crop_landmarks for s in srcs] if params.get("baseline_rows", False) else None
        fig = source_reference_grid(
            dg, np.stack([face(s).crop for s in srcs]), ref_lms, size=size, reference_images=ref_imgs,
            source_landmarks=src_lms,
            source_titles=params.get("source_titles") or list(srcs),
            reference_titles=params.get("reference_titles") or [_ref_title(r) for r in refs],
            title=params.get("title", ""))
    elif kind == "interpolation_strip":
        src = face(config["source"]).crop
        a = reference_landmarks(config["a"], faces)[:, :2]
        b = reference_landmarks(config["b"], faces)[:, :2]
        ts = np.asarray(config.setdefault("ts", [0.0, 0.25, 0.5, 0.75, 1.0]), dtype=np.float64)
        method = config.setdefault("method", "linear")
        if method == "landmarks":
            res = interpolate_landmarks(dg, a, b, ts, source=src)
        else:
            res = interpolate_codes(dg, a, b, ts, method, source=src)
        fig = interpolation_strip(res, size=size, title=params.get("title", ""), source=src)
    else:
        sweep = pose_sweep(dg, reference_landmarks(config["reference"], faces),
                           config.setdefault("angles", [-45, -20, 0, 20, 45]), config.setdefault("axis", "yaw"),
                           source=face(config["source"]).crop)
        fig = pose_sweep_strip(sweep, size=size, title=params.get("title", ""), source=face(config["source"]).crop)
    config["seeds"] = {"synthetic_weights": 1234} if not dg.weights.trained else {}
    config["seeds"]["note"] = "DG inference is deterministic; no random numbers are drawn"
    config["versions"] = _versions()
    config["config_version"] = CONFIG_VERSION
    return fig, config


# --- export and rebuild -------------------------------------------------------------------------------------
_METADATA = {"png": {"Software": None}, "pdf": {"CreationDate": None, "ModDate": None}, "svg": {"Date": None}}


def _input_paths(config: Mapping | None) -> list[Path]:
    if not config:
        return []
    paths = [Path(f["path"]) for f in (config.get("faces") or {}).values() if isinstance(f, Mapping) and "path" in f]
    return [p.resolve() for p in paths]


def figure_png(fig: Figure, dpi: float = 100) -> np.ndarray:
    """Render a matplotlib figure to an (H,W,4) uint8 RGBA array (as its PNG export would be)."""
    from PIL import Image

    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata=_METADATA["png"])
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGBA"))


def _record_paths(record: dict, json_path: Path) -> None:
    """Add ``path_from_json`` (the input's path relative to the JSON file's folder) to each face with a path."""
    import os

    for face in (record.get("faces") or {}).values():
        if isinstance(face, dict) and isinstance(face.get("path"), str):
            absolute = Path(face["path"]).expanduser().resolve()
            try:
                face["path_from_json"] = Path(os.path.relpath(absolute, json_path.parent.resolve())).as_posix()
            except ValueError:  # another drive (Windows): keep the absolute path only
                face.pop("path_from_json", None)


def _resolve_recorded_paths(config: dict, json_path: Path) -> None:
    """Point each face's ``path`` at the file next to the JSON (``path_from_json``), so that a figure rebuilds
    from any working folder; a face without one keeps its path (relative to the working folder)."""
    for face in (config.get("faces") or {}).values():
        if isinstance(face, dict) and isinstance(face.get("path_from_json"), str):
            candidate = (json_path.parent / face["path_from_json"]).resolve()
            if candidate.exists() or not Path(str(face.get("path", ""))).exists():
                face["path"] = str(candidate)


def export_figure(fig: Figure, path_stem: str | Path, formats: Sequence[str] = ("png", "pdf", "svg"),
                  dpi: int = 300, config: Mapping | None = None, *, overwrite: bool = False) -> list[Path]:
    """Write a figure in each format plus ``<path_stem>.json`` with its recorded configuration.

    All files are written to temporaries first and renamed into place together at the end (see
    :func:`dgkit.io.atomic_output`): an error or Ctrl-C leaves no partial export and earlier files untouched.
    Files are written without timestamps and with a fixed SVG id salt, so re-exports are byte-identical.
    Input image paths are recorded as given and relative to the JSON file (``path_from_json``), so
    :func:`figure_from_config` finds them from any working folder (move the JSON with its inputs).

    Args:
        fig: matplotlib Figure.
        path_stem: output path without suffix (its folder is created).
        formats: any of "png", "pdf", "svg" (PDF/SVG are vector; images inside them keep their pixels).
        dpi: resolution of raster output (PNG; also images embedded in PDF/SVG).
        config: what made the figure (from :func:`build_figure`, or your own JSON-able dict); the export
            settings and versions are added.
        overwrite: replace existing files (default False: OutputExistsError names the first one).
    Returns:
        the written paths, the JSON last.
    Raises:
        InputError: an output would overwrite one of the figure's input files, or an unknown format.
        OutputExistsError: an output exists and ``overwrite`` is False.
    """
    import contextlib

    import matplotlib

    from .io import atomic_output

    stem = Path(path_stem)
    fmts = [f.lower().lstrip(".") for f in formats]
    bad = [f for f in fmts if f not in _METADATA]
    if bad:
        raise InputError(f"unknown figure format(s) {bad}; use png, pdf or svg")
    outputs = [stem.with_name(f"{stem.name}.{f}") for f in fmts]
    json_path = stem.with_name(f"{stem.name}.json")
    protected = set(_input_paths(config))
    for out in (*outputs, json_path):
        if out.resolve() in protected:
            raise InputError(f"refusing to overwrite the input file {out}; choose another path_stem")
    record = copy.deepcopy(dict(config or {}))
    record.setdefault("versions", _versions())
    record["export"] = {"formats": fmts, "dpi": dpi, "files": [p.name for p in outputs]}
    _record_paths(record, json_path)
    with contextlib.ExitStack() as stack:  # every temporary is renamed into place only if all were written
        temps = [stack.enter_context(atomic_output(out, overwrite=overwrite)) for out in (*outputs, json_path)]
        with matplotlib.rc_context({"svg.hashsalt": "dgkit"}):  # stable SVG ids (clip paths) run to run
            for fmt, tmp in zip(fmts, temps):
                fig.savefig(tmp, format=fmt, dpi=dpi, metadata=_METADATA[fmt])
        temps[-1].write_text(json.dumps(record, indent=1, sort_keys=False))
    return [*outputs, json_path]


def load_config(json_path: str | Path) -> dict:
    """Read an exported configuration; raises ConfigError when it is missing or not a figure config.

    Input paths recorded relative to the JSON file are resolved against its folder (any working folder works).
    """
    path = Path(json_path)
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read figure config {path}: {exc}") from None
    if not isinstance(config, dict) or config.get("figure") not in FIGURE_KINDS:
        raise ConfigError(f"{path} is not a dgkit figure config (no 'figure' of {FIGURE_KINDS}); "
                          "make one with dgkit.figures.build_figure + export_figure")
    _resolve_recorded_paths(config, path)
    return config


def _spec_of(config: Mapping) -> dict:
    """A recorded configuration as a spec for :func:`build_figure` (what the export added is dropped)."""
    spec = copy.deepcopy(dict(config))
    for key in ("versions", "export", "seeds", "config_version"):
        spec.pop(key, None)
    return spec


def figure_from_config(json_path: str | Path, *, dg=None, check: bool = True) -> Figure:
    """Rebuild the figure recorded in ``<stem>.json`` by :func:`export_figure`.

    The recorded landmarks are used (no re-detection). With ``check``, the inputs' sha256 and the weights'
    label and file sha256 must match the record, otherwise a ConfigError says what changed.
    """
    fig, _ = build_figure(_spec_of(load_config(json_path)), dg=dg, check=check)
    return fig


# --- command line -------------------------------------------------------------------------------------------
def register_cli(subparsers) -> None:
    """``dgkit figure CONFIG.json -o STEM``: build (or rebuild) a figure from a spec or an exported config."""
    p = subparsers.add_parser(
        "figure", help="make a paper figure from a JSON spec, or rebuild one from its exported config",
        description="Build the figure a JSON spec describes (see dgkit.figures) and export it as PNG/PDF/SVG "
                    "plus STEM.json with the recorded configuration. An exported STEM.json is itself a spec: "
                    "rebuilding it checks that the input images and the weights (label and files' sha256) still "
                    "match the record, and stops with a message naming what differs when they do not.")
    p.add_argument("spec", help="JSON spec or exported figure config")
    p.add_argument("-o", "--output", required=True, help="output path without suffix (STEM)")
    p.add_argument("--formats", nargs="+", default=["png", "pdf", "svg"], help="png pdf svg (default: all)")
    p.add_argument("--dpi", type=int, default=300, help="raster resolution (default 300)")
    p.add_argument("--no-check", action="store_true",
                   help="rebuild even when inputs or weights differ from the record (records the new ones)")
    p.add_argument("--force", action="store_true", help="replace existing output files (default: refuse)")
    p.set_defaults(func=_cli_figure)


def _cli_figure(args) -> int:
    fig, full = build_figure(_spec_of(load_config(args.spec)), check=not args.no_check)
    for path in export_figure(fig, args.output, formats=args.formats, dpi=args.dpi, config=full,
                              overwrite=args.force):
        print(path)
    return 0
