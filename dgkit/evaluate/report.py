"""Summaries of a results table: mean ± std per method (Markdown, LaTeX) and the large-pose plot.

* :func:`summarize`: per method, mean, std and count of each metric over the rows where it is defined, plus
  detection failures (``failures / rows``; failed outputs are counted, never dropped).
* :func:`markdown_table`, :func:`latex_table`: that summary as text, methods on untrained weights marked
  ``UNTRAINED``, and a note when the identity encoder is untrained.
* :func:`binned`: the same statistics per |reference yaw| bin.
* :func:`large_pose_figure`: each metric against |reference yaw| bins, one line per method, in the kit's
  figure style; :func:`export_large_pose` writes PNG (300 dpi) / PDF / SVG and the JSON configuration that
  :func:`large_pose_from_config` rebuilds the figure from.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError, InputError
from .results import METRICS, ResultRow, read_results

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "Stat",
    "summarize",
    "binned",
    "method_label",
    "markdown_table",
    "latex_table",
    "binned_markdown",
    "large_pose_figure",
    "export_large_pose",
    "large_pose_from_config",
    "YAW_BINS",
    "PLOT_METRICS",
    "SUMMARY_METRICS",
]

YAW_BINS = (0.0, 30.0, 60.0, 90.0)
PLOT_METRICS = ("yaw_error", "pose_error", "nme_target", "identity_cosine", "failure_rate")
SUMMARY_METRICS = ("pose_error", "yaw_error", "nme_target", "nme_reference", "mouth_error", "eye_error",
                   "identity_cosine", "psnr", "ssim", "jitter")
FIGURE_KIND = "large_pose_plot"
_MARKERS = ("o", "s", "^", "D", "v", "P")
_FAILURE = ("failure_rate", ("detection failures", False))


@dataclass(frozen=True)
class Stat:
    """mean, std (population) and n of the defined (non-NaN) values; NaN mean/std when n == 0."""

    mean: float
    std: float
    n: int

    def text(self, digits: int = 3) -> str:
        if self.n == 0:
            return "–"
        return f"{self.mean:.{digits}g} ± {self.std:.{digits}g}" if self.n > 1 else f"{self.mean:.{digits}g}"


def _stat(values: Sequence[float]) -> Stat:
    arr = np.asarray([v for v in values if not math.isnan(v)], np.float64)
    if arr.size == 0:
        return Stat(math.nan, math.nan, 0)
    return Stat(float(arr.mean()), float(arr.std()), int(arr.size))


def _methods(rows: Sequence[ResultRow]) -> list[str]:
    return list(dict.fromkeys(r.method for r in rows))


def method_label(rows: Sequence[ResultRow], method: str) -> str:
    """The method's name, with ``[UNTRAINED]`` when any of its rows came from untrained weights, and what a
    warp was drawn onto when it was not DG's target."""
    mine = [r for r in rows if r.method == method]
    label = method
    if method == "warp" and mine and all(r.target_from == "relative3d" for r in mine if r.target_from):
        label += " (onto relative3d)"
    if any(r.untrained for r in mine):
        label += " [UNTRAINED]"
    return label


def _metric_stat(rows: Sequence[ResultRow], metric: str) -> Stat:
    if metric == "failure_rate":
        if not rows:
            return Stat(math.nan, math.nan, 0)
        rate = sum(not r.detected for r in rows) / len(rows)
        return Stat(rate, 0.0, len(rows))
    return _stat([getattr(r, metric) for r in rows])


def summarize(rows: Sequence[ResultRow], metrics: Sequence[str] = SUMMARY_METRICS) -> dict[str, dict[str, Stat]]:
    """``{method: {metric: Stat, ..., "failure_rate": Stat(rate, 0, rows)}}`` over all rows of each method."""
    _check_metrics(metrics)
    out = {}
    for m in _methods(rows):
        mine = [r for r in rows if r.method == m]
        out[m] = {k: _metric_stat(mine, k) for k in (*metrics, "failure_rate")}
    return out


def _check_metrics(metrics: Sequence[str]) -> None:
    bad = [m for m in metrics if m not in METRICS and m != "failure_rate"]
    if bad:
        raise InputError(f"unknown metric(s) {bad}; choose from {[*METRICS, 'failure_rate']}.")


def _bin_index(yaw: float, bins: Sequence[float]) -> int:
    a = abs(yaw)
    if math.isnan(a):
        return -1
    for i in range(len(bins) - 1):
        last = i == len(bins) - 2
        if bins[i] <= a < bins[i + 1] or (last and a == bins[i + 1]):
            return i
    return -1


def bin_labels(bins: Sequence[float]) -> list[str]:
    return [f"{bins[i]:g}–{bins[i + 1]:g}°" for i in range(len(bins) - 1)]


def binned(rows: Sequence[ResultRow], metric: str, bins: Sequence[float] = YAW_BINS) -> dict[str, list[Stat]]:
    """``{method: [Stat per |ref_yaw| bin]}``; bins are [lo, hi) except the last, which includes hi."""
    _check_metrics([metric])
    bins = [float(b) for b in bins]
    if len(bins) < 2 or any(b1 <= b0 for b0, b1 in zip(bins, bins[1:])):
        raise InputError(f"yaw bins must be at least two increasing edges, got {bins}.")
    out = {}
    for m in _methods(rows):
        per = [[] for _ in range(len(bins) - 1)]
        for r in rows:
            if r.method == m and (i := _bin_index(r.ref_yaw, bins)) >= 0:
                per[i].append(r)
        out[m] = [_metric_stat(b, metric) for b in per]
    return out


def _untrained_encoder(rows: Sequence[ResultRow]) -> bool:
    return any(r.identity_untrained for r in rows)


def _notes(rows: Sequence[ResultRow]) -> list[str]:
    notes = []
    if any(r.untrained for r in rows):
        notes.append("UNTRAINED: rows from synthetic (untrained) DG weights; their numbers say nothing about DG. "
                     "The weight-free baselines' numbers are real.")
    encoders = sorted({r.identity_encoder for r in rows if r.identity_encoder})
    if _untrained_encoder(rows):
        notes.append(f"identity cosine from an untrained encoder ({', '.join(encoders)}): not a measure of "
                     "identity for any method.")
    return notes


def _present(rows, metrics) -> list[str]:
    return [k for k in metrics if any(not math.isnan(getattr(r, k)) for r in rows)]


def markdown_table(rows: Sequence[ResultRow], metrics: Sequence[str] = SUMMARY_METRICS) -> str:
    """Mean ± std per method (columns: metrics that have values, then detection failures), as Markdown."""
    cols = _present(rows, metrics)
    summary = summarize(rows, cols)
    head = ["method", *[METRICS[k][0] + (" ↑" if METRICS[k][1] else " ↓") for k in cols], "detection failures"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m, stats in summary.items():
        n_rows = stats["failure_rate"].n
        fails = round(stats["failure_rate"].mean * n_rows)
        cells = [method_label(rows, m), *[stats[k].text() for k in cols], f"{fails}/{n_rows}"]
        lines.append("| " + " | ".join(cells) + " |")
    notes = _notes(rows)
    return "\n".join(lines) + ("\n\n" + "\n".join(f"*{n}*" for n in notes) if notes else "") + "\n"


def _tex(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#"),
                 ("°", r"$^\circ$"), ("±", r"$\pm$"), ("↑", r"$\uparrow$"), ("↓", r"$\downarrow$"), ("–", "--")):
        text = text.replace(a, b)
    return text


def latex_table(rows: Sequence[ResultRow], metrics: Sequence[str] = SUMMARY_METRICS, *,
                caption: str = "Reenactment metrics, mean $\\pm$ std per method.") -> str:
    """The same summary as a LaTeX ``table`` (booktabs rules: ``\\usepackage{booktabs}``)."""
    cols = _present(rows, metrics)
    summary = summarize(rows, cols)
    head = ["method", *[METRICS[k][0] + (" ↑" if METRICS[k][1] else " ↓") for k in cols], "failures"]
    out = ["\\begin{table}[t]", "\\centering", "\\small", "\\begin{tabular}{l" + "c" * (len(head) - 1) + "}",
           "\\toprule", " & ".join(_tex(h) for h in head) + " \\\\", "\\midrule"]
    for m, stats in summary.items():
        n_rows = stats["failure_rate"].n
        fails = round(stats["failure_rate"].mean * n_rows)
        cells = [method_label(rows, m), *[stats[k].text() for k in cols], f"{fails}/{n_rows}"]
        out.append(" & ".join(_tex(c) for c in cells) + " \\\\")
    out += ["\\bottomrule", "\\end{tabular}"]
    notes = _notes(rows)
    cap = caption + (" " + _tex(" ".join(notes)) if notes else "")
    out += [f"\\caption{{{cap}}}", "\\end{table}"]
    return "\n".join(out) + "\n"


def binned_markdown(rows: Sequence[ResultRow], metrics: Sequence[str] = PLOT_METRICS,
                    bins: Sequence[float] = YAW_BINS) -> str:
    """One Markdown table per metric: methods × |reference yaw| bins (mean ± std)."""
    parts = []
    labels = bin_labels(bins)
    for k in metrics:
        if k != "failure_rate" and not _present(rows, [k]):
            continue
        name = _FAILURE[1][0] if k == "failure_rate" else METRICS[k][0]
        lines = [f"**{name}** by |reference yaw|", "", "| method | " + " | ".join(labels) + " |",
                 "|---|" + "---|" * len(labels)]
        for m, stats in binned(rows, k, bins).items():
            cells = [f"{s.mean:.3g} (n={s.n})" if k == "failure_rate" and s.n else s.text() for s in stats]
            lines.append(f"| {method_label(rows, m)} | " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


# --- the large-pose plot ------------------------------------------------------------------------------------
def large_pose_figure(rows: Sequence[ResultRow], *, metrics: Sequence[str] = PLOT_METRICS,
                      bins: Sequence[float] = YAW_BINS, size: float = 2.2, title: str = "") -> Figure:
    """Each metric (one panel) against |reference yaw| bins, one line per method (mean, ± std as a band).

    Returns a matplotlib Figure (not attached to pyplot). Error bars are ± one standard deviation; lines are
    shifted a little along x so that methods with equal numbers stay visible. Methods on untrained weights are
    drawn dashed and named ``[UNTRAINED]`` in the legend, and the figure carries the kit's UNTRAINED line
    (:func:`dgkit.viz.mark_untrained`) above its title. Bins without values leave a gap.
    """
    from .. import viz

    rows = list(rows)
    if not rows:
        raise InputError("no result rows to plot; run an evaluation first.")
    metrics = [k for k in metrics if k == "failure_rate" or _present(rows, [k])]
    _check_metrics(metrics)
    fig, axes = viz.new_figure(1, len(metrics), size=size, aspect=0.85)
    centres = np.array([(bins[i] + bins[i + 1]) / 2 for i in range(len(bins) - 1)])
    labels = bin_labels(bins)
    methods = _methods(rows)
    # methods that give the same numbers would hide each other: shift each line a little along x
    dodge = (np.arange(len(methods)) - (len(methods) - 1) / 2) * 0.02 * (bins[-1] - bins[0])
    untrained_any = any(r.untrained for r in rows)
    for ax, k in zip(axes[0], metrics):
        name, higher = _FAILURE[1] if k == "failure_rate" else METRICS[k]
        for i, (m, stats) in enumerate(binned(rows, k, bins).items()):
            mean = np.array([s.mean for s in stats])
            std = np.array([s.std for s in stats])
            untrained = any(r.untrained for r in rows if r.method == m)
            x = centres + dodge[i]
            ax.plot(x, mean, marker=_MARKERS[i % len(_MARKERS)], markersize=4, linewidth=1.4, color=viz.color(i),
                    linestyle="--" if untrained else "-", label=method_label(rows, m), gid=f"method:{m}")
            if k != "failure_rate":
                ax.errorbar(x, mean, yerr=std, fmt="none", ecolor=viz.color(i), elinewidth=0.8, capsize=2,
                            alpha=0.7)
        ax.set_xticks(centres, labels)
        ax.set_xlabel("|reference yaw|")
        ax.set_title(f"{name} {'↑' if higher else '↓'}", fontsize=9)
        if k == "identity_cosine" and _untrained_encoder(rows):
            ax.text(0.5, 0.5, "UNTRAINED encoder:\nnot a measure of identity", transform=ax.transAxes, ha="center",
                    va="center", fontsize=viz.MIN_FONTSIZE, color=viz.UNTRAINED_COLOR, gid="untrained-encoder")
        ax.grid(True, alpha=0.3, linewidth=0.5)
        if k in ("failure_rate", "ssim"):
            ax.set_ylim(-0.03, 1.03)
    axes[0][0].legend(frameon=False, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    # the kit's one UNTRAINED mark (a line above the title); the baselines' lines stay real
    viz.mark_untrained(fig, untrained_any, what="DG's lines (dashed) and every identity cosine")
    return fig


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_large_pose(results_path: str | Path, path_stem: str | Path, *, metrics: Sequence[str] = PLOT_METRICS,
                      bins: Sequence[float] = YAW_BINS, size: float = 2.2, title: str = "",
                      formats: Sequence[str] = ("png", "pdf", "svg"), dpi: int = 300,
                      overwrite: bool = False) -> tuple[Figure, list[Path]]:
    """Plot a results file and export it like the kit's paper figures (:func:`dgkit.figures.export_figure`).

    An existing export is refused unless ``overwrite=True`` (``dgkit evaluate`` passes it for the plot in its own
    output folder, which follows the results file as a resumed run grows it).

    ``<path_stem>.json`` records the results file (path and sha256), metrics, bins and size, so
    :func:`large_pose_from_config` (or ``dgkit evaluate plot STEM.json``) rebuilds the same figure.
    """
    from ..figures import _versions, export_figure, freeze_layout

    results = Path(results_path)
    rows = read_results(results)
    fig = freeze_layout(large_pose_figure(rows, metrics=metrics, bins=bins, size=size, title=title))
    config = {"figure": FIGURE_KIND,
              "results": {"path": str(results.resolve()), "sha256": _sha256(results)},
              "metrics": list(metrics), "bins": [float(b) for b in bins], "size": size, "title": title,
              "versions": _versions()}
    return fig, export_figure(fig, path_stem, formats=formats, dpi=dpi, config=config, overwrite=overwrite)


def large_pose_from_config(json_path: str | Path, *, check: bool = True) -> Figure:
    """Rebuild a large-pose plot from its exported ``<stem>.json``; with ``check`` the results file must be
    unchanged (same sha256), otherwise ConfigError says so."""
    path = Path(json_path)
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the plot configuration {path}: {exc}") from None
    if not isinstance(config, Mapping) or config.get("figure") != FIGURE_KIND:
        raise ConfigError(f"{path} is not a large-pose plot configuration (no 'figure': {FIGURE_KIND!r}).")
    results = Path(config["results"]["path"])
    if not results.is_file():
        raise ConfigError(f"the results file {results} the plot was made from is missing.")
    if check and _sha256(results) != config["results"]["sha256"]:
        raise ConfigError(f"{results} changed since the plot was exported (sha256 differs); rebuild with "
                          "check=False to plot the new results.")
    from ..figures import freeze_layout

    return freeze_layout(large_pose_figure(read_results(results), metrics=config["metrics"], bins=config["bins"],
                                           size=config["size"], title=config.get("title", "")))
