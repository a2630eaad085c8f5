"""The results table: one :class:`ResultRow` per (pair, method), saved as CSV and JSON, written atomically.

Columns (units): angles in degrees; ``nme_*``, ``mouth_error``, ``eye_error`` and ``jitter`` are unitless
(fractions of a face size, see :mod:`dgkit.evaluate.metrics`); ``psnr`` in dB; missing values are NaN in Python,
``nan`` in the CSV and ``null`` in the JSON.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..errors import InputError
from ..io import atomic_output

__all__ = ["ResultRow", "METRICS", "weights_columns", "read_results", "write_results_csv", "write_results_json",
           "atomic_write_text"]

NAN = float("nan")

# metric column -> (label for tables and plots, higher is better)
METRICS: dict[str, tuple[str, bool]] = {
    "pose_error": ("pose error (°)", False),
    "yaw_error": ("yaw error (°)", False),
    "pitch_error": ("pitch error (°)", False),
    "roll_error": ("roll error (°)", False),
    "nme_target": ("NME vs target", False),
    "nme_reference": ("NME vs reference", False),
    "mouth_error": ("mouth opening error", False),
    "eye_error": ("eye opening error", False),
    "identity_cosine": ("identity cosine", True),
    "psnr": ("PSNR (dB)", True),
    "ssim": ("SSIM", True),
    "jitter": ("landmark jitter", False),
}


@dataclass
class ResultRow:
    """One output of one method on one pair. Metric fields are NaN when not defined or when detection failed.

    Attributes:
        pair_id, method: the row's key (a re-run skips keys already in the results file).
        source, reference, reference_kind: the pair ("photo", "video" or "landmarks").
        same_person: the reference is a ground-truth image of the source person (PSNR/SSIM are measured).
        group, frame: driving video and frame index (video pairs; "" and -1 otherwise).
        weights: weights the row's output depends on: the DG weights label for "dg" (and "warp" when it used
            DG's target), "none (weight-free)" for the baselines.
        untrained: the output came from untrained weights: its numbers say nothing about DG.
        identity_encoder: label of the identity model.
        identity_untrained: the identity model's weights are untrained (its ``trained`` flag): the identity
            cosine then means nothing for any method.
        target_from: what landmarks the output was drawn from ("idsg", "naive", "relative3d").
        ref_yaw, ref_pitch, ref_roll: the reference's head pose.
        detected: a face was found on the output. failure: why not (or why the pair could not run).
        out_yaw, out_pitch, out_roll: pose of the output (from landmarks detected on it).
        the metric columns: see :data:`METRICS`.
    """

    pair_id: str
    method: str
    source: str = ""
    reference: str = ""
    reference_kind: str = "photo"
    same_person: bool = False
    group: str = ""
    frame: int = -1
    weights: str = ""
    untrained: bool = False
    identity_encoder: str = ""
    identity_untrained: bool = False
    target_from: str = ""
    ref_yaw: float = NAN
    ref_pitch: float = NAN
    ref_roll: float = NAN
    detected: bool = False
    failure: str = ""
    out_yaw: float = NAN
    out_pitch: float = NAN
    out_roll: float = NAN
    pose_error: float = NAN
    yaw_error: float = NAN
    pitch_error: float = NAN
    roll_error: float = NAN
    nme_target: float = NAN
    nme_reference: float = NAN
    mouth_error: float = NAN
    eye_error: float = NAN
    identity_cosine: float = NAN
    psnr: float = NAN
    ssim: float = NAN
    jitter: float = NAN

    @property
    def key(self) -> tuple[str, str]:
        return (self.pair_id, self.method)

    @property
    def weights_info(self):
        """The row's weights as a :class:`~dgkit.pipeline.WeightsInfo` (label and ``trained``, no paths): the
        inverse of :func:`weights_columns`, so rows read back from CSV/JSON give the same answer."""
        from ..weights import WeightsInfo

        return WeightsInfo(self.weights, trained=not self.untrained)


def weights_columns(info) -> dict:
    """The ``weights`` and ``untrained`` columns of a row, derived from a :class:`~dgkit.pipeline.WeightsInfo`
    (``ResultRow(..., **weights_columns(dg.weights))``); :attr:`ResultRow.weights_info` reads them back."""
    return {"weights": info.label, "untrained": not info.trained}


_FIELDS = [f.name for f in fields(ResultRow)]
_TYPES = {f.name: f.type for f in fields(ResultRow)}


def _parse(name: str, value) -> object:
    kind = _TYPES[name]
    if kind == "float":
        return NAN if value in (None, "", "nan", "NaN") else float(value)
    if kind == "int":
        return int(value)
    if kind == "bool":
        return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes")
    return "" if value is None else str(value)


def row_from_dict(data: dict) -> ResultRow:
    missing = [k for k in ("pair_id", "method") if k not in data]
    if missing:
        raise InputError(f"a results row lacks the columns {missing}; is this a dgkit evaluate results file?")
    return ResultRow(**{k: _parse(k, v) for k, v in data.items() if k in _TYPES})


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Replace ``path`` with ``text`` all-or-nothing (:func:`dgkit.io.atomic_output`).

    Results files are rewritten after every pair, so replacing them is the point (``overwrite=True``); a reader
    or a crash sees either the old file or the new one, never half of it.
    """
    with atomic_output(path, overwrite=True) as tmp:
        with open(tmp, "w", newline="") as fh:
            fh.write(text)
    return Path(path)


def _csv_value(value) -> object:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(round(value, 6))
    return value


def write_results_csv(rows: list[ResultRow], path: str | Path) -> Path:
    """The table as CSV (header = :class:`ResultRow` fields), written atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(_FIELDS)
    for row in rows:
        writer.writerow([_csv_value(getattr(row, k)) for k in _FIELDS])
    return atomic_write_text(path, buf.getvalue())


def _json_value(value):
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    return value


def write_results_json(rows: list[ResultRow], path: str | Path, *, meta: dict | None = None) -> Path:
    """The table as JSON: ``{"meta": {...}, "rows": [{column: value}, ...]}`` (NaN as null), atomically."""
    data = {"meta": meta or {}, "rows": [{k: _json_value(v) for k, v in asdict(r).items()} for r in rows]}
    return atomic_write_text(path, json.dumps(data, indent=1))


def read_results(path: str | Path) -> list[ResultRow]:
    """Rows of a results file written by :func:`write_results_csv` (``.csv``) or :func:`write_results_json`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no results file at {str(path)!r}.")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text())
            items = data["rows"] if isinstance(data, dict) else data
        else:
            with path.open(newline="") as fh:
                items = list(csv.DictReader(fh))
        return [row_from_dict(d) for d in items]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"cannot read the results file {path}: {exc}. Move it away to start a fresh run.") from None
