"""Run DG and the weight-free baselines on the same pairs and measure every output.

Methods (each draws a 256x256 face in the reference's crop frame from the same aligned source crop):

* ``"dg"``: the Dual-Generator (IDSG target landmarks + RFG generator).
* ``"naive"``: the source crop warped (:func:`dgkit.baselines.warp_to_landmarks`) onto the reference's own
  landmarks (:func:`dgkit.baselines.naive_transfer`): right pose, but the reference's face shape.
* ``"relative3d"``: the source crop warped onto :func:`dgkit.baselines.relative_transfer_3d`: the source's
  shape moved by the reference's pose and expression.
* ``"warp"``: the kit's warp baseline as :func:`dgkit.reenact.reenact_photos` defines it: the source crop
  warped onto DG's target landmarks with trained weights (DG without its generator); with untrained weights
  DG's target means nothing, so it warps onto the relative-3D target and equals ``"relative3d"``.

The baselines need no weights: their pose, expression and image numbers are real even when DG's weights
are synthetic. The identity cosine needs an identity encoder (VGG-Face from the same weights by default):
with synthetic weights it is untrained too, and the rows' ``identity_encoder`` label says so.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DgkitError, InputError, NoFaceError
from ..reenact import AlignedFace, prepare_face, weights_of
from .metrics import (
    IdentityEncoder,
    VggFaceIdentity,
    identity_cosine,
    landmark_jitter,
    nme,
    opening_errors,
    pose_errors,
    psnr,
    ssim,
)
from .pairs import Pair, load_image_spec
from .results import ResultRow, read_results, weights_columns, write_results_csv, write_results_json

if TYPE_CHECKING:  # pragma: no cover
    from ..weights import WeightsInfo

__all__ = ["METHODS", "WEIGHT_FREE_LABEL", "weight_free", "Evaluation", "evaluate", "method_outputs", "MethodOutput"]

METHODS = ("dg", "naive", "relative3d", "warp")
WEIGHT_FREE_LABEL = "none (weight-free)"
RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"
RUN_JSON = "run.json"
_SOURCE_CACHE = 4  # prepared sources kept in memory (bounded memory over long pair lists)


def weight_free():
    """The :class:`~dgkit.pipeline.WeightsInfo` of the baselines: no network, so nothing is untrained (their
    numbers are real whatever DG's weights are)."""
    from ..weights import WeightsInfo

    return WeightsInfo(WEIGHT_FREE_LABEL, trained=True)


@dataclass
class MethodOutput:
    """One method's output: image (256,256,3) uint8, target landmarks (68,2) crop px, where they came from,
    and the :class:`~dgkit.pipeline.WeightsInfo` of the weights it depends on (:func:`weight_free` for the
    baselines)."""

    image: np.ndarray
    target: np.ndarray
    target_from: str
    weights: WeightsInfo

    @property
    def untrained(self) -> bool:
        """The output came from untrained weights: its numbers say nothing about DG."""
        return not self.weights.trained


def method_outputs(source: AlignedFace, reference_landmarks: np.ndarray, *, dg=None, encoding=None,
                   methods: Sequence[str] = METHODS) -> dict[str, MethodOutput]:
    """Every requested method's output for one source and one reference shape (the same inputs for all).

    Args:
        source: the prepared source (:func:`dgkit.reenact.prepare_face`).
        reference_landmarks: ``(68, 3)`` crop px (x, y, z) of the reference.
        dg: a DualGenerator (needed for ``"dg"``; ``"warp"`` uses its target when its weights are trained).
        encoding: ``dg.encode_source(source.crop)`` if already computed (saves VGG-Face and the style encoder).
    """
    from ..baselines import naive_transfer, relative_transfer_3d, warp_to_landmarks

    ref = np.asarray(reference_landmarks, np.float64)
    info = weights_of(dg)
    trained = info.trained
    run = None
    if dg is not None and ("dg" in methods or ("warp" in methods and trained)):
        run = dg.reenact(encoding if encoding is not None else source.crop, ref[None, :, :2])
    out: dict[str, MethodOutput] = {}
    relative = relative_transfer_3d(source.crop_landmarks, ref) if {"relative3d", "warp"} & set(methods) else None

    def warped(target: np.ndarray) -> np.ndarray:
        return warp_to_landmarks(source.crop, source.crop_landmarks, target)

    for m in methods:
        if m == "dg":
            if run is None:
                raise InputError("the 'dg' method needs a DG model (dgkit.load_dg(...)); or leave 'dg' out.")
            out[m] = MethodOutput(run.image[0], run.target_landmarks[0].astype(np.float64), "idsg", info)
        elif m == "naive":
            target = naive_transfer(ref)
            out[m] = MethodOutput(warped(target), target, "naive", weight_free())
        elif m == "relative3d":
            out[m] = MethodOutput(warped(relative), relative, "relative3d", weight_free())
        elif m == "warp":  # as reenact_photos: DG's target only when it is a trained one
            if run is not None and trained:
                target = run.target_landmarks[0].astype(np.float64)
                out[m] = MethodOutput(warped(target), target, "idsg", info)
            else:
                out[m] = MethodOutput(warped(relative), relative, "relative3d", weight_free())
        else:
            raise InputError(f"unknown method {m!r}; choose from {METHODS}.")
    return out


@dataclass
class Evaluation:
    """What :func:`evaluate` returns: every row (earlier runs' included), the new ones' count, written files."""

    rows: list[ResultRow]
    new_rows: int = 0
    skipped_pairs: int = 0
    files: dict[str, Path] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)


@dataclass
class _Source:
    face: AlignedFace | None
    failure: str
    encoding: object = None
    identity: np.ndarray | None = None


def _check_methods(methods: Sequence[str]) -> list[str]:
    methods = list(dict.fromkeys(methods))
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise InputError(f"unknown or no methods {bad or methods}; choose from {METHODS}.")
    return methods


def _meta(dg, identity, methods, backend) -> dict:
    info = weights_of(dg)
    return {"methods": list(methods), "dg_weights": info.label, "dg_trained": info.trained,
            "identity_encoder": identity.name if identity is not None else "",
            "landmark_backend": str(backend), "tool": "dgkit evaluate"}


def evaluate(pairs: Iterable[Pair], *, dg=None, methods: Sequence[str] = METHODS,
             identity: IdentityEncoder | None | str = "auto", backend="auto", out_dir: str | Path | None = None,
             limit: int | None = None, progress: bool = False) -> Evaluation:
    """Reenact every pair with every method and measure each output (see :mod:`dgkit.evaluate`).

    Args:
        pairs: from :mod:`dgkit.evaluate.pairs` (lists or lazy iterators; videos are streamed).
        dg: a DualGenerator (required for ``"dg"``; its label goes on every DG row).
        methods: any of :data:`METHODS`.
        identity: an :class:`~dgkit.evaluate.metrics.IdentityEncoder`; ``"auto"`` = VGG-Face of ``dg`` (None without
            ``dg``); None skips the identity cosine.
        backend: landmark backend used on references and outputs alike.
        out_dir: folder for ``results.csv`` (rewritten atomically after every pair), ``results.json`` and
            ``run.json``. When ``results.csv`` already exists, its pairs are skipped (resume) and its rows kept.
        limit: measure at most this many pairs (counting skipped ones), e.g. for a quick look.
        progress: show a tqdm progress bar.

    Returns:
        :class:`Evaluation`. On an error (a missing or unreadable file met mid-run) the rows gathered so far
        are written first, then the dgkit error is raised; a re-run continues where it stopped.
    """
    methods = _check_methods(methods)
    if "dg" in methods and dg is None:
        raise InputError("the 'dg' method needs a DG model: pass dg=dgkit.load_dg(...) or leave 'dg' out of methods.")
    if isinstance(identity, str):
        if identity != "auto":
            raise InputError(f"identity must be an IdentityEncoder, None or 'auto', got {identity!r}.")
        identity = VggFaceIdentity(dg) if dg is not None else None
    meta = _meta(dg, identity, methods, backend)
    out = Path(out_dir) if out_dir is not None else None
    rows: list[ResultRow] = []
    if out is not None and (out / RESULTS_CSV).exists():
        rows = read_results(out / RESULTS_CSV)
        _check_compatible(out, meta)
    done = {r.key for r in rows}
    result = Evaluation(rows=rows, meta=meta)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / RUN_JSON).write_text(json.dumps(meta, indent=1))
        result.files = {"csv": out / RESULTS_CSV, "json": out / RESULTS_JSON, "run": out / RUN_JSON}

    sources: OrderedDict[str, _Source] = OrderedDict()
    previous: dict[tuple[str, str], tuple[int, np.ndarray, np.ndarray]] = {}
    bar = _progress(progress, pairs, limit)
    try:
        for n, pair in enumerate(pairs):
            if limit is not None and n >= limit:
                break
            if all((pair.pair_id, m) in done for m in methods):
                result.skipped_pairs += 1
                bar.update(1)
                continue
            new = _evaluate_pair(pair, [m for m in methods if (pair.pair_id, m) not in done], dg=dg,
                                 identity=identity, backend=backend, sources=sources, previous=previous)
            rows.extend(new)
            done.update(r.key for r in new)
            result.new_rows += len(new)
            if out is not None:
                write_results_csv(rows, out / RESULTS_CSV)
            bar.update(1)
    finally:
        bar.close()
        if out is not None:
            write_results_csv(rows, out / RESULTS_CSV)
            write_results_json(rows, out / RESULTS_JSON, meta=meta)
    return result


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(progress: bool, pairs, limit):
    if not progress:
        return _NoBar()
    from tqdm.auto import tqdm

    total = len(pairs) if hasattr(pairs, "__len__") else None
    if limit is not None:
        total = min(total, limit) if total is not None else limit
    return tqdm(total=total, unit="pair", desc="evaluate")


def _check_compatible(out: Path, meta: dict) -> None:
    """Refuse to mix rows from other weights into an existing results folder."""
    run = out / RUN_JSON
    if not run.exists():
        return
    try:
        old = json.loads(run.read_text())
    except (OSError, ValueError):
        return
    for key in ("dg_weights", "identity_encoder"):
        if old.get(key) and meta.get(key) and old[key] != meta[key]:
            raise InputError(f"{out} holds results made with {key} {old[key]!r}, but this run uses {meta[key]!r}; "
                             "write to another folder (or move the old results away).")


def _prepare_source(pair: Pair, dg, identity, backend, cache: OrderedDict) -> _Source:
    if pair.source in cache:
        cache.move_to_end(pair.source)
        return cache[pair.source]
    try:
        face = prepare_face(load_image_spec(pair.source), backend=backend)
    except NoFaceError:
        entry = _Source(None, f"no face in the source {pair.source}")
    else:
        enc = dg.encode_source(face.crop) if dg is not None else None
        feat = identity.encode(face.crop[None])[0] if identity is not None else None
        entry = _Source(face, "", enc, feat)
    cache[pair.source] = entry
    while len(cache) > _SOURCE_CACHE:
        cache.popitem(last=False)
    return entry


def _reference(pair: Pair, backend) -> tuple[np.ndarray | None, np.ndarray | None, tuple | None, str]:
    """(crop landmarks (68,3), crop image or None, pose, failure) of the pair's reference."""
    from ..geometry import head_pose

    if pair.kind == "landmarks":
        lm = np.asarray(pair.reference_landmarks, np.float64)
        pose = pair.reference_pose if pair.reference_pose is not None else tuple(head_pose(lm))
        return lm, None, tuple(float(v) for v in pose), ""
    image = pair.reference_image if pair.reference_image is not None else load_image_spec(pair.reference)
    try:
        face = prepare_face(image, backend=backend)
    except NoFaceError:
        return None, None, None, f"no face in the reference {pair.reference}"
    lm = np.asarray(face.crop_landmarks, np.float64)
    return lm, face.crop, tuple(head_pose(lm)), ""


def _evaluate_pair(pair: Pair, methods: list[str], *, dg, identity, backend, sources, previous) -> list[ResultRow]:
    from ..landmarks import detect_faces

    src = _prepare_source(pair, dg, identity, backend, sources)
    ref_lm, ref_crop, ref_pose, failure = _reference(pair, backend)
    failure = src.failure or failure
    info = weights_of(dg)
    base = dict(pair_id=pair.pair_id, source=pair.source, reference=pair.reference, reference_kind=pair.kind,
                same_person=pair.same_person, group=pair.group, frame=pair.frame,
                identity_encoder=identity.name if identity is not None else "",
                identity_untrained=identity is not None and not identity.trained)
    if ref_pose is not None:
        base.update(ref_yaw=ref_pose[0], ref_pitch=ref_pose[1], ref_roll=ref_pose[2])
    if failure:  # counted, never skipped: one row per method saying why
        return [ResultRow(method=m, **weights_columns(info if m == "dg" else weight_free()), failure=failure, **base)
                for m in methods]
    outputs = method_outputs(src.face, ref_lm, dg=dg, encoding=src.encoding, methods=methods)
    # methods that drew the very same image (warp = relative3d with untrained DG) are measured once
    unique: dict[bytes, int] = {}
    index = [unique.setdefault(o.image.tobytes(), len(unique)) for o in outputs.values()]
    outs = list(outputs.values())
    images = [outs[index.index(u)].image for u in range(len(unique))]
    feats = identity.encode(np.stack(images)) if identity is not None else None
    detections = [detect_faces(image, backend) for image in images]
    rows = []
    for u, (m, o) in zip(index, outputs.items()):
        row = ResultRow(method=m, **weights_columns(o.weights), target_from=o.target_from, **base)
        if feats is not None:
            row.identity_cosine = identity_cosine(src.identity, feats[u])
        if pair.same_person and ref_crop is not None:
            row.psnr, row.ssim = psnr(o.image, ref_crop), ssim(o.image, ref_crop)
        faces = detections[u]
        key = (pair.group, m)
        if not faces:
            row.failure = "no face found on the output"
            previous.pop(key, None)
        else:
            lm = np.asarray(faces[0].landmarks, np.float64)
            _landmark_metrics(row, lm, o.target, ref_lm, ref_pose)
            if pair.group:
                prev = previous.get(key)
                if prev is not None and prev[0] < pair.frame:
                    row.jitter = landmark_jitter(prev[1], lm, prev[2], ref_lm)
                previous[key] = (pair.frame, lm, ref_lm)
        rows.append(row)
    return rows


def _landmark_metrics(row: ResultRow, lm: np.ndarray, target: np.ndarray, ref_lm: np.ndarray, ref_pose) -> None:
    from ..geometry import head_pose

    row.detected = True
    try:
        pose = head_pose(lm)
        err = pose_errors(lm, ref_pose)
        row.nme_target, row.nme_reference = nme(lm, target), nme(lm, ref_lm)
        row.mouth_error, row.eye_error = opening_errors(lm, ref_lm)
    except DgkitError as exc:  # degenerate detection: a failure, recorded
        row.detected, row.failure = False, f"landmarks on the output are unusable ({exc})"
        return
    row.out_yaw, row.out_pitch, row.out_roll = pose.yaw, pose.pitch, pose.roll
    row.yaw_error, row.pitch_error, row.roll_error, row.pose_error = err.yaw, err.pitch, err.roll, err.mean
    if not all(math.isfinite(v) for v in (row.nme_target, row.pose_error)):
        row.detected, row.failure = False, "landmarks on the output are not finite"

