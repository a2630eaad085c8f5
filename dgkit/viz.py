"""Figures for teaching and papers: images, landmarks (2D matplotlib, 3D plotly), every DG stage.

Conventions shared by every function here:

* landmarks are ``(68,2)`` or ``(68,3)`` float, columns x, y[, z] in pixels of the frame named in the axis
  labels ("crop pixels" of the 256x256 aligned crop unless said otherwise); z is relative depth on the x
  scale, negative toward the camera;
* image axes point **y down** (like the pixel rows) and faces are drawn with **equal aspect**;
* colours come from the Okabe-Ito palette (:data:`PALETTE`), which stays distinct for colour-blind readers;
* any image made by *untrained* (synthetic) weights carries a red "UNTRAINED weights" banner, so a noise-like
  picture is never mistaken for a DG result.

2D figures are matplotlib ``Figure`` objects (nothing is shown or saved here: display them in a notebook or
pass them to :func:`dgkit.figures.export_figure`); 3D figures are plotly ``go.Figure`` (wrap them in
``go.FigureWidget`` for interactivity).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError, LandmarkError
from .face68 import CROP_SIZE, EYELID_PAIRS, FACE_PARTS, LEFT_EYE, RIGHT_EYE, check_landmarks

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Okabe & Ito (2008) colour-blind-safe palette (black last).
PALETTE: tuple[str, ...] = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
UNTRAINED_LABEL = "UNTRAINED weights"
UNTRAINED_COLOR = "#C00000"
CROP_FRAME = "crop pixels"

# --- house style ----------------------------------------------------------------------------------------------
FIGURE_DPI = 100
"""Resolution of every figure on screen (inches x 100 = pixels); exports choose their own dpi."""
MIN_FONTSIZE = 8.0
"""No text in a dgkit figure is smaller than this (points), so ticks, legends and matrix numbers stay readable."""
ROLE_COLORS: dict[str, str] = {"source": PALETTE[0], "reference": PALETTE[1], "target": PALETTE[2]}
"""The same colour for the same role in every figure: source blue, reference vermillion, target (IDSG) green."""
_ROLE_KEYS = (("reference", "reference"), ("source", "source"), ("target", "target"), ("idsg", "target"))
_OTHER_COLORS = tuple(c for c in PALETTE if c not in ROLE_COLORS.values())

# --- helpers ------------------------------------------------------------------------------------------------
def color(i: int) -> str:
    """The i-th palette colour (cycles)."""
    return PALETTE[i % len(PALETTE)]


def _as_image(image: Any, name: str = "image") -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
        raise InputError(f"{name} must be (H,W), (H,W,3) or (H,W,4), got shape {arr.shape}")
    return arr


def part_polylines(landmarks: np.ndarray) -> list[np.ndarray]:
    """The face-part contours of ``(68,D)`` landmarks as a list of ``(k,D)`` polylines (closed parts repeat
    their first point)."""
    lines = []
    for a, b, closed in FACE_PARTS.values():
        idx = list(range(a, b + 1)) + ([a] if closed else [])
        lines.append(landmarks[idx])
    return lines


def role_color(name: str, i: int = 0) -> str:
    """The colour of a named landmark set: its role's colour (:data:`ROLE_COLORS`) when the name says
    "reference", "source", "target" or "IDSG", otherwise the i-th of the remaining palette colours."""
    low = str(name).lower()
    for key, role in _ROLE_KEYS:
        if low.startswith(key) or f" {key}" in low or f"({key}" in low:
            return ROLE_COLORS[role]
    return _OTHER_COLORS[i % len(_OTHER_COLORS)]


def signed_degrees(angle: float) -> str:
    """An angle as ``"+15°"``, ``"-30°"`` or ``"0°"`` (never ``"-0°"``), rounded to whole degrees."""
    value = int(round(float(angle)))
    return f"{value:+d}°" if value else "0°"


def is_untrained(obj: Any) -> bool:
    """Whether ``obj`` comes from untrained weights, read from a typed ``.trained`` flag, never from a label.

    ``obj``: a :class:`~dgkit.pipeline.WeightsInfo`, anything carrying one as ``.weights`` (a
    :class:`~dgkit.pipeline.DualGenerator`, a :class:`~dgkit.reenact.PhotoReenactment`, a video report, an
    interpolation, ...) or as ``.weights_info`` (a :class:`~dgkit.pipeline.Reenactment`), or a bool.
    """
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if hasattr(obj, "trained") and hasattr(obj, "label"):
        return not bool(obj.trained)
    info = getattr(obj, "weights_info", None) or getattr(obj, "weights", None)
    if info is not None and hasattr(info, "trained"):
        return not bool(info.trained)
    raise InputError(f"cannot tell whether a {type(obj).__name__} comes from trained weights: give a WeightsInfo "
                     "(dg.weights), an object carrying one as .weights, or a bool")


# --- the UNTRAINED mark: one function for images, one for figures ---------------------------------------------
UNTRAINED_GID = "untrained-banner"
UNTRAINED_RGB: tuple[int, int, int] = (192, 0, 0)
"""The banner's colour in images (RGB), the same red as :data:`UNTRAINED_COLOR`."""


def stamp_untrained(image: Any, untrained: bool = True) -> np.ndarray:
    """The UNTRAINED mark for **images**: a copy of an RGB (or grey) uint8 image with a red "UNTRAINED weights"
    banner burnt into its top rows (RGB out), so screenshots, saved PNGs, contact sheets and video frames keep the
    warning. The band is ``max(12, H // 12)`` rows high; the text shrinks to fit narrow images.

    ``untrained=False`` returns ``image`` itself, unchanged, so callers can pass ``is_untrained(result)`` through.
    The input is never modified. For matplotlib or plotly figures use :func:`mark_untrained`.
    """
    if not untrained:
        return image
    import cv2

    out = np.array(image, dtype=np.uint8, copy=True)
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=2)
    h, w = out.shape[:2]
    band = max(12, h // 12)
    out[:band] = UNTRAINED_RGB
    scale = band / 30.0
    (tw, th), _ = cv2.getTextSize(UNTRAINED_LABEL, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    if tw > w - 4:  # narrow image: shrink the text to fit
        scale *= (w - 4) / tw
        (tw, th), _ = cv2.getTextSize(UNTRAINED_LABEL, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    org = (max(2, (w - tw) // 2), (band + th) // 2)
    cv2.putText(out, UNTRAINED_LABEL, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _axis_banner(ax: Axes) -> None:
    """A red "UNTRAINED weights" banner across the top of one axis (font sized to fit the axis; the short form
    "UNTRAINED" on narrow cells)."""
    if any(t.get_gid() == UNTRAINED_GID for t in ax.texts):
        return
    spec = ax.get_subplotspec()
    if spec is not None:  # the cell's share of the figure width (constrained layout has not run yet)
        _, ncols, _, _ = spec.get_geometry()
        width_in = 0.92 * ax.figure.get_figwidth() * (spec.colspan.stop - spec.colspan.start) / ncols
    else:
        width_in = ax.get_position().width * ax.figure.get_figwidth()
    text = "UNTRAINED" if width_in < 1.45 else UNTRAINED_LABEL
    ax.text(0.5, 0.98, text, transform=ax.transAxes, ha="center", va="top", fontsize=MIN_FONTSIZE,
            fontweight="bold", color="white", clip_on=False,
            bbox={"boxstyle": "square,pad=0.2", "facecolor": UNTRAINED_COLOR, "edgecolor": "none", "alpha": 0.9},
            zorder=10, gid=UNTRAINED_GID)


def has_untrained_banner(obj: Any) -> bool:
    """Whether :func:`mark_untrained` marked an axis, a matplotlib figure (the figure or any of its axes) or a
    plotly figure."""
    if hasattr(obj, "layout") and hasattr(obj, "data"):  # plotly
        return any(getattr(a, "name", "") == UNTRAINED_GID for a in (obj.layout.annotations or ()))
    texts = list(getattr(obj, "texts", []))
    if hasattr(obj, "axes") and not hasattr(obj, "transAxes"):  # a Figure: its own texts + every axis
        texts += [t for ax in obj.axes for t in ax.texts]
        if getattr(obj, "_suptitle", None) is not None:
            texts.append(obj._suptitle)
    return any(t.get_gid() == UNTRAINED_GID for t in texts)


def untrained_note(what: str = "") -> str:
    """The sentence every figure-level UNTRAINED mark carries."""
    if what:
        return f"{UNTRAINED_LABEL}: {what} would be different with trained weights"
    return f"{UNTRAINED_LABEL}: made by random networks; trained weights would give different values"


def mark_untrained(obj: Any, untrained: bool = True, *, what: str = "") -> Any:
    """The UNTRAINED mark for **figures**; returns ``obj`` (marked in place, idempotent).

    * matplotlib ``Axes``: a red "UNTRAINED weights" banner across its top (an image panel made by a network);
    * matplotlib ``Figure``: a red line above the title saying what comes from random networks (``what``);
    * plotly figure: the same line as a red annotation above the plot.

    ``untrained=False`` returns ``obj`` unchanged, so callers can pass ``is_untrained(result)`` through.
    For image arrays use :func:`stamp_untrained` (the banner burnt into the pixels).
    """
    if not untrained:
        return obj
    if hasattr(obj, "transAxes"):
        _axis_banner(obj)
        return obj
    if hasattr(obj, "layout") and hasattr(obj, "data"):  # plotly
        if not has_untrained_banner(obj):
            obj.add_annotation(text=f"<b>{untrained_note(what)}</b>", name=UNTRAINED_GID, xref="paper",
                               yref="paper", x=0.0, y=1.0, xanchor="left", yanchor="bottom", showarrow=False,
                               font={"color": "white", "size": 12}, bgcolor=UNTRAINED_COLOR)
            top = (obj.layout.margin.t or 10) if obj.layout.margin else 10
            obj.update_layout(margin={"t": max(top, 30) + 24})
        return obj
    if hasattr(obj, "axes") and hasattr(obj, "suptitle"):  # matplotlib Figure: its own line above the title
        if getattr(obj, "_suptitle", None) is None or obj._suptitle.get_gid() != UNTRAINED_GID:
            old = obj._suptitle
            title = old.get_text() if old is not None else ""
            size = old.get_fontsize() if old is not None else 10
            obj.suptitle(untrained_note(what) + (f"\n{title}" if title else ""), fontsize=max(size, MIN_FONTSIZE + 1),
                         color=UNTRAINED_COLOR, fontweight="bold")
            obj._suptitle.set_gid(UNTRAINED_GID)
        return obj
    hint = " (an image array: use stamp_untrained)" if isinstance(obj, np.ndarray) else ""
    raise InputError(f"mark_untrained cannot mark a {type(obj).__name__}{hint}; give a matplotlib Axes or Figure "
                     "or a plotly figure")


# --- figure creation and the house-style pass -----------------------------------------------------------------
def new_figure(nrows: int = 1, ncols: int = 1, *, size: float = 2.2, aspect: float = 1.0, **kw):
    """A matplotlib figure in the house style (:data:`FIGURE_DPI`, constrained layout; not attached to pyplot's
    global state, so no leaks in loops) and its axes array."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size * ncols, size * aspect * nrows + 0.3), layout="constrained", dpi=FIGURE_DPI)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def show_image(ax: Axes, image: Any, *, title: str = "", untrained: bool = False, axis_labels: bool = False,
               frame: str = CROP_FRAME, cmap: str | None = None) -> None:
    """Draw one image on ``ax``: pixel grid, y down, equal aspect (never stretched); grey images in a grey
    colour map; ``untrained`` adds the banner."""
    img = _as_image(image)
    if img.ndim == 2 and cmap is None:
        cmap = "gray"
    ax.imshow(img, cmap=cmap, interpolation="nearest", vmin=0 if img.dtype == np.uint8 else None,
              vmax=255 if img.dtype == np.uint8 else None)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title, fontsize=9)
    if axis_labels:
        ax.set_xlabel(f"x ({frame})", fontsize=MIN_FONTSIZE)
        ax.set_ylabel(f"y ({frame})", fontsize=MIN_FONTSIZE)
        ax.tick_params(labelsize=MIN_FONTSIZE)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    if untrained:
        mark_untrained(ax)


def _renderer(fig: Figure):
    """The figure's Agg renderer (attaching an Agg canvas to a bare Figure), after one layout pass."""
    if not hasattr(fig.canvas, "get_renderer"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    fig.draw_without_rendering()
    return fig.canvas.get_renderer()


def _texts(fig: Figure) -> list:
    from matplotlib.text import Text

    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text()]


def fit_texts(fig: Figure, *, min_fontsize: float = MIN_FONTSIZE) -> Figure:
    """House style for text: every text at least ``min_fontsize`` points (ticks too), and titles that are
    wider than their axis (or the figure title wider than the canvas) wrapped onto more lines, so that
    nothing is cut off on screen or in an export. Returns ``fig``."""
    import textwrap

    for ax in fig.axes:
        for which in ("x", "y"):
            labels = ax.get_xticklabels() if which == "x" else ax.get_yticklabels()
            size = labels[0].get_fontsize() if labels else min_fontsize
            if size < min_fontsize:
                ax.tick_params(axis=which, labelsize=min_fontsize)
    for t in _texts(fig):
        if t.get_fontsize() < min_fontsize:
            t.set_fontsize(min_fontsize)
    renderer = _renderer(fig)
    fig_w = fig.bbox.width
    candidates = [(fig._suptitle, 0.98 * fig_w)] if getattr(fig, "_suptitle", None) is not None else []
    for ax in fig.axes:
        if ax.get_visible():
            avail = max(ax.get_window_extent(renderer).width, 0.2 * fig_w)
            candidates += [(ax.title, avail), (ax._left_title, avail), (ax._right_title, avail)]
    changed = False
    for text, avail in candidates:
        if not text.get_text():
            continue
        width = text.get_window_extent(renderer).width
        if width <= avail:
            continue
        lines = text.get_text().split("\n")
        longest = max(len(line) for line in lines)
        chars = max(8, int(longest * avail / width) - 1)
        text.set_text("\n".join(textwrap.fill(line, chars) for line in lines))
        changed = True
    if changed:
        fig.draw_without_rendering()
    return fig


def finish(fig: Figure, *, untrained: bool = False, what: str = "") -> Figure:
    """The last step of every dgkit figure: house-style fonts and wrapped titles (:func:`fit_texts`) and,
    when ``untrained``, the figure-level UNTRAINED mark (:func:`mark_untrained`). Returns ``fig``."""
    if untrained:
        mark_untrained(fig, what=what)
    return fit_texts(fig)


def _drawn_texts(fig: Figure) -> list:
    """Every non-empty text the figure draws: figure texts and titles, and for each visible axis its texts,
    titles, legend and (when its axis is on) labels and tick labels."""
    texts = list(fig.texts) + [t for t in (getattr(fig, "_suptitle", None), getattr(fig, "_supxlabel", None),
                                           getattr(fig, "_supylabel", None)) if t is not None]
    for leg in fig.legends:
        texts += list(leg.get_texts())
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        texts += [*ax.texts, ax.title, ax._left_title, ax._right_title]
        if ax.get_legend() is not None:
            texts += list(ax.get_legend().get_texts())
        if ax.axison:
            texts += [ax.xaxis.label, ax.yaxis.label]
            for axis in (ax.xaxis, ax.yaxis):  # only the ticks inside the view are drawn
                lo, hi = sorted(axis.get_view_interval())
                texts += [t.label1 for t in axis.get_major_ticks() if lo <= t.get_loc() <= hi]
    return [t for t in texts if t.get_visible() and t.get_text()]


def text_overflow(fig: Figure, dpi: float | None = None) -> list[str]:
    """Texts of ``fig`` that reach outside its canvas when rendered at ``dpi`` (default: the figure's);
    empty when the figure shows everything. What the export tests check."""
    old = fig.dpi
    if dpi is not None:
        fig.set_dpi(dpi)
    try:
        renderer = _renderer(fig)
        w, h = fig.bbox.width, fig.bbox.height
        bad = []
        for t in _drawn_texts(fig):
            if t.get_clip_on() and t.axes is not None and t not in (t.axes.title, t.axes._left_title,
                                                                    t.axes._right_title):
                continue  # clipped to its axis: cannot leave the canvas unnoticed
            bb = t.get_window_extent(renderer)
            if bb.x0 < -1 or bb.y0 < -1 or bb.x1 > w + 1 or bb.y1 > h + 1:
                bad.append(t.get_text())
        return bad
    finally:
        fig.set_dpi(old)


# --- contract functions -------------------------------------------------------------------------------------
def image_grid(images: Sequence[Any] | np.ndarray, titles: Sequence[str] | None = None, *,
               untrained: bool | Sequence[bool] = False, ncols: int | None = None, size: float = 2.2,
               suptitle: str = "") -> Figure:
    """Images side by side in a grid.

    Args:
        images: sequence of (H,W,3) uint8 RGB or (H,W) grey images, or an (N,H,W[,3]) array.
        titles: one title per image (optional).
        untrained: True, or one bool per image: those images get a red "UNTRAINED weights" banner.
        ncols: images per row (default: all in one row, at most 6).
        size: inches per image.
        suptitle: figure title.
    Returns:
        matplotlib Figure; ``fig.axes`` holds one axis per cell (unused cells are hidden).
    """
    imgs = list(images)
    if not imgs:
        raise InputError("image_grid needs at least one image")
    n = len(imgs)
    if titles is not None and len(titles) != n:
        raise InputError(f"got {len(titles)} titles for {n} images")
    flags = [bool(untrained)] * n if isinstance(untrained, (bool, np.bool_)) else [bool(u) for u in untrained]
    if len(flags) != n:
        raise InputError(f"untrained must be a bool or one bool per image; got {len(flags)} for {n} images")
    ncols = ncols or min(n, 6)
    nrows = -(-n // ncols)
    fig, axes = new_figure(nrows, ncols, size=size)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.set_visible(False)
            continue
        show_image(ax, imgs[i], title=titles[i] if titles else "", untrained=flags[i])
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    return finish(fig)


def polyline_xyz(landmarks3d: np.ndarray) -> tuple[list, list, list]:
    """x, y, z lists of every face part's polyline, parts separated by ``None`` (one plotly line trace)."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    zs: list[float | None] = []
    for line in part_polylines(landmarks3d):
        xs += [*line[:, 0], None]
        ys += [*line[:, 1], None]
        zs += [*line[:, 2], None]
    return xs, ys, zs


def landmarks_3d(sets: Mapping[str, Any], *, title: str = "", frame: str = CROP_FRAME,
                 marker_size: float = 3.0, untrained: bool = False) -> go.Figure:
    """Interactive 3D plot of one or more landmark sets (plotly).

    Each set is one legend entry: face parts connected by lines, points as markers. 2D sets are drawn at
    z = 0. The camera looks at the face from the front with y pointing down (as in the image) and the axes
    have equal scale (``aspectmode="data"``).

    Args:
        sets: name -> (68,2) or (68,3) landmarks (x, y pixels, z relative depth on the x scale).
        title: figure title.
        frame: what the pixels are ("crop pixels", "image pixels"), used in axis titles.
        untrained: some set comes from untrained weights (a red line above the plot says so).
    Returns:
        plotly ``go.Figure`` with one trace per set; colours follow :func:`role_color`.
    """
    import plotly.graph_objects as go

    if not sets:
        raise InputError("landmarks_3d needs at least one landmark set")
    fig = go.Figure()
    for i, (name, pts) in enumerate(sets.items()):
        lm = check_landmarks(pts, name=str(name))
        if lm.shape[1] == 2:
            lm = np.column_stack([lm, np.zeros(68)])
        xs, ys, zs = polyline_xyz(lm)
        fig.add_trace(go.Scatter3d(
            x=xs, y=ys, z=zs, mode="lines+markers", name=str(name),
            line={"color": role_color(str(name), i), "width": 4},
            marker={"color": role_color(str(name), i), "size": marker_size},
            hovertemplate="x=%{x:.1f}<br>y=%{y:.1f}<br>z=%{z:.1f}<extra>" + str(name) + "</extra>",
        ))
    fig.update_layout(
        title={"text": title} if title else None,
        scene={
            "xaxis_title": f"x ({frame})", "yaxis_title": f"y ({frame}, down)", "zaxis_title": "z (depth, x scale)",
            "aspectmode": "data",
            # y down like the image; the camera sits in front of the face (negative z is toward the viewer)
            "camera": {"up": {"x": 0, "y": -1, "z": 0}, "eye": {"x": 0.0, "y": 0.0, "z": -2.0}},
        },
        legend={"x": 0.01, "y": 0.99, "font": {"size": 13}}, font={"size": 13},
        margin={"l": 0, "r": 0, "t": 60 if title else 10, "b": 0}, height=480, template="plotly_white",
    )
    return mark_untrained(fig, untrained)


def draw_landmarks(ax: Axes, sets: Mapping[str, Any], *, markers: bool = True,
                   linewidth: float | Sequence[float] = 1.2,
                   start_color: int = 0, styles: Sequence[str] | None = None,
                   colors: Sequence[str] | None = None, alpha: float = 1.0) -> None:
    """Draw landmark sets (face-part lines + points) onto an existing axis, one colour (:func:`role_color`:
    reference, source and target keep their colours in every figure) and legend entry per set.
    ``styles``: optional matplotlib line styles per set (e.g. "-", "--", ":"); ``colors``: explicit colours
    per set instead of the role colours; ``linewidth``: one width or one per set (wider first keeps sets that
    coincide visible under the narrower ones)."""
    for i, (name, pts) in enumerate(sets.items()):
        lm = check_landmarks(pts, name=str(name))
        c = colors[i % len(colors)] if colors else role_color(str(name), start_color + i)
        ls = styles[i % len(styles)] if styles else "-"
        lw = linewidth[i % len(linewidth)] if isinstance(linewidth, Sequence) else linewidth
        for k, line in enumerate(part_polylines(lm)):
            ax.plot(line[:, 0], line[:, 1], color=c, lw=lw, ls=ls, alpha=alpha,
                    label=str(name) if k == 0 else None)
        if markers:
            ax.scatter(lm[:, 0], lm[:, 1], s=6, color=c, zorder=3, linewidths=0, alpha=alpha)


def overlay_landmarks(image: Any, sets: Mapping[str, Any], *, ax: Axes | None = None, title: str = "",
                      frame: str = CROP_FRAME, untrained: bool = False, legend: bool = True,
                      size: float = 4.0, styles: Sequence[str] | None = None,
                      linewidths: Sequence[float] | None = None) -> Figure:
    """Landmark sets drawn over an image (x, y in the image's pixels; z, if any, ignored).

    Args:
        image: (H,W,3) uint8 RGB or (H,W) grey; None draws on an empty axis with the image frame's limits
            taken from the landmarks (y still down).
        sets: name -> (68,2|3) landmarks in that image's pixels.
        ax: draw into this axis (its figure is returned) instead of a new figure.
        frame: the pixel frame, for the axis labels ("crop pixels", "image pixels").
        styles, linewidths: optional line style and width per set (so that sets that coincide stay visible).
    Returns:
        the matplotlib Figure.
    """
    own = ax is None
    if ax is None:
        fig, axes = new_figure(1, 1, size=size)
        ax = axes[0, 0]
    else:
        fig = ax.figure
    if image is not None:
        show_image(ax, image, title=title, untrained=untrained, axis_labels=True, frame=frame)
    else:
        allpts = np.concatenate([check_landmarks(p)[:, :2] for p in sets.values()])
        lo, hi = allpts.min(0) - 10, allpts.max(0) + 10
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(hi[1], lo[1])  # y down
        ax.set_aspect("equal")
        ax.set_xlabel(f"x ({frame})", fontsize=8)
        ax.set_ylabel(f"y ({frame})", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.25)
        if title:
            ax.set_title(title, fontsize=9)
        if untrained:
            mark_untrained(ax)
    lims = (ax.get_xlim(), ax.get_ylim())
    draw_landmarks(ax, sets, styles=styles, linewidth=list(linewidths) if linewidths else 1.2)
    ax.set_xlim(*lims[0])
    ax.set_ylim(*lims[1])
    if legend and sets:
        ax.legend(fontsize=MIN_FONTSIZE, loc="lower right", framealpha=0.85)
    return finish(fig) if own else fig


def stages_figure(result: Any, index: int = 0, *, size: float = 2.4) -> Figure:
    """The DG stages of one result in one row: source, reference, target sketch, output.

    Args:
        result: a :class:`dgkit.Reenactment` (the reference is drawn as its landmark sketch) or a
            ``dgkit.reenact.PhotoReenactment`` (reference crop with its landmarks; when it holds no DG result,
            the warp baseline is shown as output instead).
        index: batch item of a Reenactment.
    Returns:
        matplotlib Figure with 4 image axes; the target sketch and output of untrained weights carry the
        UNTRAINED banner (both come from the networks).
    """
    from .sketch import draw_sketch

    if hasattr(result, "source") and hasattr(result, "reference") and hasattr(result, "baselines"):
        photo = result
        dgres = photo.dg
        fig, axes = new_figure(1, 4, size=size)
        ax = axes[0]
        show_image(ax[0], photo.source.crop, title="source (aligned crop)")
        show_image(ax[1], photo.reference.crop, title="reference + landmarks")
        draw_landmarks(ax[1], {"reference": photo.reference.crop_landmarks}, markers=False, linewidth=0.8)
        if dgres is not None:
            untrained = is_untrained(dgres)
            show_image(ax[2], dgres.sketch[index], title="target sketch (IDSG)", untrained=untrained)
            show_image(ax[3], dgres.image[index], title=f"DG output\n({dgres.weights})", untrained=untrained)
        else:
            target = photo.baselines.get("naive")
            if target is not None:
                show_image(ax[2], draw_sketch(np.asarray(target), kind="target"), title="naive target sketch")
            else:
                ax[2].set_visible(False)
            show_image(ax[3], photo.baselines["warp"], title="warp baseline\n(no DG weights)")
        fig.suptitle(f"DG stages (weights: {photo.weights.label})", fontsize=10)
        return finish(fig)

    required = ("source_image", "reference_landmarks", "sketch", "image")
    if not all(hasattr(result, k) for k in required):
        raise InputError("stages_figure needs a dgkit.Reenactment or a dgkit.reenact.PhotoReenactment, "
                         f"got {type(result).__name__}")
    n = len(result.image)
    if not -n <= index < n:
        raise InputError(f"index {index} out of range for a batch of {n}")
    untrained = is_untrained(result)
    fig, axes = new_figure(1, 4, size=size)
    ax = axes[0]
    show_image(ax[0], result.source_image[index], title="source (aligned crop)")
    show_image(ax[1], draw_sketch(result.reference_landmarks[index], kind="reference"),
               title="reference landmarks")
    show_image(ax[2], result.sketch[index], title="target sketch (IDSG)", untrained=untrained)
    show_image(ax[3], result.image[index], title=f"DG output\n({result.weights})", untrained=untrained)
    fig.suptitle(f"DG stages, item {index} (weights: {result.weights}, sketch: {result.sketch_intensity})",
                 fontsize=10)
    return finish(fig)


# --- teaching figures (notebooks 02-06) -----------------------------------------------------------------------
def landmark_code_figure(code: Any, labels: Sequence[str] | None = None, *, title: str = "IDSG landmark code",
                         size: float = 7.0, untrained: bool = False) -> Figure:
    """The IDSG landmark code: a bar chart for one code ``(136,)``, a heatmap for a batch ``(N,136)``.

    The code is the landmark encoder's 136-value latent (not coordinates). The heatmap uses a diverging,
    colour-blind-safe map (PuOr) centred on 0, with a colorbar; rows are labelled with ``labels``.
    """
    return code_figure(code, labels, dim=136, title=title, size=size, untrained=untrained)


def style_code_figure(code: Any, labels: Sequence[str] | None = None, *, title: str = "RFG style code",
                      size: float = 7.0, untrained: bool = False) -> Figure:
    """The RFG style code ``(128,)`` or ``(N,128)`` (what the generator's AdaIN layers get), like
    :func:`landmark_code_figure`."""
    return code_figure(code, labels, dim=128, title=title, size=size, untrained=untrained)


def code_figure(code: Any, labels: Sequence[str] | None = None, *, dim: int, title: str,
                size: float = 7.0, untrained: bool = False) -> Figure:
    """Bar chart of one ``(dim,)`` code or diverging heatmap (with colorbar) of ``(N,dim)`` codes;
    ``untrained``: the code comes from untrained weights (figure-level mark)."""
    arr = np.asarray(code, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise InputError(f"{title}: expected shape ({dim},) or (N,{dim}), got {np.shape(code)}")
    n = len(arr)
    if labels is not None and len(labels) != n:
        raise InputError(f"got {len(labels)} labels for {n} codes")
    if n == 1:
        fig, axes = new_figure(1, 1, size=size, aspect=0.35)
        ax = axes[0, 0]
        ax.bar(np.arange(dim), arr[0], width=0.85, color=[color(0) if v >= 0 else color(1) for v in arr[0]])
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xlim(-1, dim)
        ax.set_xlabel(f"code dimension (0..{dim - 1})")
        ax.set_ylabel("value")
        ax.grid(axis="y", alpha=0.3)
        ax.set_title(f"{title}" + (f" ({labels[0]})" if labels else "")
                     + f"  |  norm {np.linalg.norm(arr[0]):.3g}", fontsize=10)
        return finish(fig, untrained=untrained, what="this code")
    fig, axes = new_figure(1, 1, size=size, aspect=max(0.25, min(1.2, 0.06 * n + 0.12)))
    ax = axes[0, 0]
    lim = float(np.abs(arr).max()) or 1.0
    im = ax.imshow(arr, aspect="auto", cmap="PuOr_r", vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_xlabel(f"code dimension (0..{dim - 1})")
    ax.set_ylabel("code")
    ax.set_yticks(np.arange(n))
    ax.set_yticklabels(labels if labels is not None else [str(i) for i in range(n)], fontsize=7)
    fig.colorbar(im, ax=ax, label="value", shrink=0.9)
    ax.set_title(title, fontsize=10)
    return finish(fig, untrained=untrained, what="these codes")


def id_feature_figure(id_feature: Any, labels: Sequence[str] | None = None, *,
                      title: str = "source identity feature (VGG-Face fc7, 4096 values)", size: float = 3.0,
                      untrained: bool = False) -> Figure:
    """VGG-Face identity feature(s) ``(4096,)`` or ``(N,4096)``: each as a 64x64 map (viridis, shared scale,
    colorbar) plus, on the right, the sorted values (log y) that show how sparse the ReLU output is.
    With N > 1 a last panel gives the cosine similarities between the features."""
    arr = np.asarray(id_feature, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 4096:
        raise InputError(f"an identity feature has shape (4096,) or (N,4096), got {np.shape(id_feature)}")
    n = len(arr)
    labels = list(labels) if labels is not None else [f"source {i}" for i in range(n)]
    if len(labels) != n:
        raise InputError(f"got {len(labels)} labels for {n} features")
    ncols = n + 1 + (n > 1)
    fig, axes = new_figure(1, ncols, size=size, aspect=1.3)  # headroom for titles, rotated tick labels
    ax = axes[0]
    vmax = float(arr.max()) or 1.0
    im = None
    for i in range(n):
        im = ax[i].imshow(arr[i].reshape(64, 64), cmap="viridis", vmin=0, vmax=vmax, interpolation="nearest")
        ax[i].set_title(f"{labels[i]}\n{(arr[i] > 0).mean():.0%} non-zero", fontsize=8)
        ax[i].set_xticks([])
        ax[i].set_yticks([])
        ax[i].set_xlabel("feature index as 64x64", fontsize=7)
    fig.colorbar(im, ax=list(ax[:n]), label="activation", shrink=0.8)
    sp = ax[n]
    for i in range(n):
        vals = np.sort(arr[i])[::-1]
        sp.plot(np.arange(1, 4097), np.maximum(vals, 1e-6), color=color(i), label=labels[i])
    sp.set_xscale("log")
    sp.set_yscale("log")
    sp.set_xlabel("rank", fontsize=8)
    sp.set_ylabel("value (sorted)", fontsize=8)
    sp.tick_params(labelsize=7)
    sp.set_title("sorted values", fontsize=8)
    sp.grid(alpha=0.3)
    sp.set_box_aspect(1)
    if n > 1:
        sp.legend(fontsize=MIN_FONTSIZE, loc="lower left")
        unit = arr / np.maximum(np.linalg.norm(arr, axis=1, keepdims=True), 1e-12)
        sim = unit @ unit.T
        cax = ax[n + 1]
        cm = cax.imshow(sim, cmap="viridis", vmin=min(0.0, float(sim.min())), vmax=1)
        cax.set_xticks(range(n))
        cax.set_yticks(range(n))
        cax.set_xticklabels(labels, fontsize=MIN_FONTSIZE, rotation=45, ha="right")
        cax.set_yticklabels(labels, fontsize=MIN_FONTSIZE)
        for (r, c), v in np.ndenumerate(sim):
            cax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=10, color="white" if v < 0.7 else "black")
        cax.set_title("cosine similarity", fontsize=8)
        fig.colorbar(cm, ax=cax, shrink=0.8)
    fig.suptitle(title, fontsize=10)
    return finish(fig, untrained=untrained, what="the feature values and similarities")


def _eye_box(points: np.ndarray, pad: float = 6.0) -> tuple[float, float, float, float]:
    lo, hi = points.min(0) - pad, points.max(0) + pad
    side = float(max(hi - lo)) / 2
    c = (lo + hi) / 2
    return c[0] - side, c[0] + side, c[1] - side, c[1] + side


EYE_RULE = ("upper lid = lower lid + r x (reference upper - reference lower),  "
            "r = width of eye 36-39 in the target / in the reference")
"""The eye-correction rule in words (see :func:`dgkit.eyes.correct_eyes`)."""


def eye_correction_figure(decoded: Any, corrected: Any, reference: Any, *, image: Any = None,
                          size: float = 3.6, title: str = "eye correction (crop pixels)",
                          untrained: bool = False, labels: Sequence[str] = ("decoded (IDSG)", "after eye correction",
                                                                            "reference eye")) -> Figure:
    """The eye-correction rule, made visible: decoded landmarks, corrected landmarks, the reference eyes.

    Panel 1: whole face, decoded (dashed) vs corrected (solid). Panels 2-3: large close-ups of each eye with
    every point numbered; arrows show how the upper-lid points (37, 38 and 43, 44) move, and the reference
    eye is drawn shifted so that its lower lid sits on the target's, so the copied opening can be compared.
    Only the four upper-lid points move. All in crop pixels, y down, equal aspect.

    Args:
        decoded, corrected, reference: ``(68,2)`` crop pixels (decoded: before the correction).
        image: optional crop drawn under panel 1.
        untrained: the decoded landmarks come from untrained weights (banner and figure-level mark).
        labels: legend names of the three sets.
    """

    dec, cor, ref = (check_landmarks(a, n)[:, :2] for a, n in
                     ((decoded, "decoded"), (corrected, "corrected"), (reference, "reference")))
    fig, axes = new_figure(1, 3, size=size)
    ax = axes[0]
    colours = (color(4), ROLE_COLORS["target"], ROLE_COLORS["reference"])
    overlay_landmarks(image, {labels[0]: dec, labels[1]: cor}, ax=ax[0], title="whole face", legend=False)
    for artist in [*ax[0].get_lines(), *ax[0].collections]:  # redrawn below in this figure's colours
        artist.remove()
    draw_landmarks(ax[0], {labels[0]: dec, labels[1]: cor}, colors=colours[:2], styles=["--", "-"])
    if untrained:
        mark_untrained(ax[0])
    for k, (name, idx) in enumerate((("eye 36-41 (image left)", list(RIGHT_EYE)),
                                     ("eye 42-47 (image right)", list(LEFT_EYE)))):
        a = ax[k + 1]
        lower = [lo for up, lo in EYELID_PAIRS if up in idx]
        shift = cor[lower].mean(0) - ref[lower].mean(0)
        ref_moved = ref[idx] + shift
        for lbl, pts, c, ls in ((labels[0], dec[idx], colours[0], "--"), (labels[1], cor[idx], colours[1], "-"),
                                (f"{labels[2]} (shifted)", ref_moved, colours[2], ":")):
            closed = np.vstack([pts, pts[:1]])
            a.plot(closed[:, 0], closed[:, 1], ls=ls, color=c, lw=2, marker="o", ms=4, label=lbl)
        for up, _ in EYELID_PAIRS:
            if up in idx and np.linalg.norm(cor[up] - dec[up]) > 0.5:
                a.annotate("", xy=cor[up], xytext=dec[up],
                           arrowprops={"arrowstyle": "->", "color": "black", "lw": 1.2})
        for i in idx:
            a.annotate(str(i), cor[i], xytext=(0, -9 if i in lower or i in (36, 39, 42, 45) else 6),
                       textcoords="offset points", ha="center", fontsize=MIN_FONTSIZE, color=colours[1])
        x0, x1, y0, y1 = _eye_box(np.vstack([dec[idx], cor[idx], ref_moved]), pad=5.0)
        a.set_xlim(x0, x1)
        a.set_ylim(y1, y0)  # y down
        a.set_aspect("equal")
        a.set_title(name, fontsize=10)
        a.set_xlabel("x (crop pixels)")
        a.set_ylabel("y (crop pixels)")
        a.grid(alpha=0.3)
    handles, names = ax[1].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=3, fontsize=9, frameon=False)
    fig.suptitle(f"{title}\n{EYE_RULE}", fontsize=10)
    return finish(fig, untrained=untrained, what="the decoded landmarks")


def shapes_overlay_2d(reference: Any, target: Any, source: Any = None, *, image: Any = None,
                      title: str = "reference vs IDSG target vs source (crop pixels)", size: float = 4.0,
                      extra: Mapping[str, Any] | None = None, untrained: bool = False) -> Figure:
    """Reference, target and (optionally) source landmarks in one crop-pixel frame (2D; z ignored),
    optionally over ``image``. ``extra``: more named sets (e.g. baselines), drawn after these.
    ``untrained``: the target comes from untrained weights (labelled in the legend, banner on the axis)."""
    sets: dict[str, Any] = {"reference": reference,
                            "target (IDSG, UNTRAINED)" if untrained else "target (IDSG)": target}
    if source is not None:
        sets["source"] = source
    sets.update(extra or {})
    fig = overlay_landmarks(image, sets, title=title, size=size, untrained=untrained)
    return mark_untrained(fig, untrained, what="the target landmarks")


def shapes_overlay_3d(reference: Any, target: Any, source: Any = None, *,
                      title: str = "reference vs IDSG target vs source (3D, crop pixels)",
                      extra: Mapping[str, Any] | None = None, untrained: bool = False) -> go.Figure:
    """Reference (68,3), IDSG target (68,2) and source (68,3) in 3D (plotly).

    The target is 2D; it is lifted to 3D with :func:`dgkit.geometry.lift_to_3d` using the reference as depth
    model: its x, y stay exact and its z is the reference's relief scaled by the 2D similarity from the
    reference to the target (the rule is also written in the plot's subtitle). ``extra`` 2D sets are lifted
    the same way. A 2D reference is first lifted onto the mean face (:func:`dgkit.geometry.mean_face_3d`).
    ``untrained``: the target comes from untrained weights (said in its legend entry and the title).
    """
    from .geometry import lift_to_3d

    ref = check_landmarks(reference, "reference")
    ref3 = ref if ref.shape[1] == 3 else lift_to_3d(ref)

    def lifted(pts: Any, name: str) -> np.ndarray:
        arr = check_landmarks(pts, name)
        return arr if arr.shape[1] == 3 else lift_to_3d(arr, ref3)

    target_name = "target (IDSG, z lifted" + (", UNTRAINED weights)" if untrained else ")")
    sets: dict[str, np.ndarray] = {"reference": ref3, target_name: lifted(target, "target")}
    if source is not None:
        sets["source"] = lifted(source, "source")
    for k, v in (extra or {}).items():
        sets[k] = lifted(v, k)
    rule = ("target z = reference z scaled by the 2D similarity reference->target (dgkit.geometry.lift_to_3d)")
    fig = landmarks_3d(sets, title=f"{title}<br><sup>{rule}</sup>")
    return mark_untrained(fig, untrained, what="the target landmarks")


def sketch_hidden_figure(landmarks: Any, *, size: float = 3.4, title: str = "what the sketch's pose rule hides",
                         untrained: bool = False) -> Figure:
    """Target sketch of ``(68,2)`` crop-pixel landmarks and the points its pose rule leaves out.

    Left: the landmarks, drawn points (filled) and hidden points (crosses, indices as
    :func:`dgkit.sketch.hidden_points` gives them for the chosen branch), with the two eye-corner distances
    that decide the branch drawn as arrows (x42-x36 and x45-x39, whole pixels). Right: the sketch the
    generator receives (``kind="target"``). ``untrained``: the landmarks come from untrained weights.
    """
    from .sketch import HIDE_THRESHOLD_PX, draw_sketch, hidden_points, sketch_branch

    lm = check_landmarks(landmarks)[:, :2]
    branch = sketch_branch(lm, "target")
    hidden = list(hidden_points(branch))
    shown = [i for i in range(68) if i not in hidden]
    fig, axes = new_figure(1, 2, size=size)
    ax = axes[0]
    a = ax[0]
    a.set_xlim(0, CROP_SIZE)
    a.set_ylim(CROP_SIZE, 0)
    a.set_aspect("equal")
    a.scatter(lm[shown, 0], lm[shown, 1], s=12, color=ROLE_COLORS["target"], label=f"drawn ({len(shown)})")
    a.scatter(lm[hidden, 0], lm[hidden, 1], s=28, marker="x", color=color(1), label=f"hidden ({len(hidden)})")
    xt = np.trunc(lm[:, 0])
    eye_y = float(lm[36:48, 1].min()) - 12
    for (i, j), dy, c in (((36, 42), 0.0, color(0)), ((39, 45), -20.0, color(4))):
        y = eye_y + dy
        a.annotate("", xy=(lm[j, 0], y), xytext=(lm[i, 0], y), arrowprops={"arrowstyle": "<->", "color": c, "lw": 1.4})
        left = float(min(lm[i, 0], lm[j, 0]))
        a.text(left - 4, y, f"x{j}-x{i} = {xt[j] - xt[i]:.0f} px", ha="right", va="center", fontsize=MIN_FONTSIZE,
               color=c, bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
    a.set_title(f"branch: {branch} (a half is hidden when a distance <= {HIDE_THRESHOLD_PX} px)", fontsize=9)
    a.set_xlabel("x (crop pixels)")
    a.set_ylabel("y (crop pixels)")
    a.grid(alpha=0.3)
    a.legend(fontsize=MIN_FONTSIZE, loc="lower right")
    if untrained:
        mark_untrained(a)
    show_image(ax[1], draw_sketch(lm, kind="target"), title="target sketch (generator input)", untrained=untrained)
    fig.suptitle(title, fontsize=10)
    return finish(fig, untrained=untrained, what="the landmarks")


def activations_figure(acts: Mapping[str, Any], *, channels: int = 4, blocks: Sequence[str] | None = None,
                       size: float = 1.5, cmap: str = "magma",
                       title: str = "RFG generator activations (top-variance channels per block)",
                       untrained: bool = False) -> Figure:
    """A few channels per generator block (as returned by ``dg.generator_activations``).

    Each row is one block (label: name and C x H x W), showing its ``channels`` highest-variance channels in
    one colour map (``magma``, perceptually uniform) on a scale shared across the row (2nd-98th percentile),
    with a colorbar per row. Untrained-weight activations look like noise; that is expected.
    """
    names = list(blocks) if blocks is not None else list(acts)
    if not names:
        raise InputError("activations_figure needs at least one block")
    fig, axes = new_figure(len(names), channels, size=size)
    for r, name in enumerate(names):
        if name not in acts:
            raise InputError(f"no activations for block {name!r}; available: {sorted(acts)}")
        act = np.asarray(acts[name], dtype=np.float32)
        if act.ndim != 3:
            raise InputError(f"activations must be (C,H,W), got {act.shape} for {name!r}")
        order = np.argsort(act.reshape(len(act), -1).var(axis=1))[::-1][:channels]
        sel = act[order]
        lo, hi = np.percentile(sel, [2, 98])
        hi = hi if hi > lo else lo + 1e-6
        im = None
        for c in range(channels):
            a = axes[r, c]
            a.set_xticks([])
            a.set_yticks([])
            if c >= len(sel):
                a.set_visible(False)
                continue
            im = a.imshow(sel[c], cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
            a.set_aspect("equal")
            a.set_title(f"ch {order[c]}", fontsize=MIN_FONTSIZE)
            if c == 0:
                a.set_ylabel(f"{name}\n{act.shape[0]}x{act.shape[1]}x{act.shape[2]}", fontsize=MIN_FONTSIZE)
        fig.colorbar(im, ax=list(axes[r]), shrink=0.9, aspect=10, pad=0.02).ax.tick_params(labelsize=MIN_FONTSIZE)
    fig.suptitle(title, fontsize=10)
    return finish(fig, untrained=untrained, what="these activations")


def pca_trajectories_figure(codes_by_path: Mapping[str, Any], *, title: str = "landmark-code trajectories (PCA)",
                            size: float = 4.5, untrained: bool = False) -> Figure:
    """Code paths projected on the first two principal components of all codes together.

    Args:
        codes_by_path: name -> (T,D) codes along a path (e.g. linear, spherical, from interpolated landmarks).
    Each path is a line with markers, its start a circle and end a square; axis labels give the explained
    variance. PCA is numpy SVD (:func:`dgkit.interpolate.pca`).
    """
    from .interpolate import pca

    if not codes_by_path:
        raise InputError("pca_trajectories_figure needs at least one path")
    paths = {k: np.asarray(v, dtype=np.float64).reshape(len(v), -1) for k, v in codes_by_path.items()}
    allc = np.concatenate(list(paths.values()))
    res = pca(allc, 2)
    fig, axes = new_figure(1, 1, size=size)
    ax = axes[0, 0]
    styles = ("-", "--", ":", "-.")
    marks = ("o", "s", "^", "D")
    for i, (name, codes) in enumerate(paths.items()):
        p = (codes - res.mean) @ res.components.T
        # earlier paths wider and below, later ones narrower on top: paths that coincide stay visible
        ax.plot(p[:, 0], p[:, 1], ls=styles[i % 4], marker=marks[i % 4], ms=max(3.0, 8.0 - 2 * i), color=color(i),
                label=name, lw=max(1.0, 4.0 - 1.2 * i), alpha=0.85, zorder=2 + i)
        ax.scatter(p[0, 0], p[0, 1], marker="o", s=50, facecolor="none", edgecolor=color(i), zorder=3)
        ax.scatter(p[-1, 0], p[-1, 1], marker="s", s=40, facecolor="none", edgecolor=color(i), zorder=3)
    ax.set_xlabel(f"PC1 ({res.explained_ratio[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({res.explained_ratio[1]:.0%} of variance)")
    ax.grid(alpha=0.3)
    # below the axes: paths may cross any corner of the plot
    ax.legend(fontsize=MIN_FONTSIZE, title="path (o start, [] end)", title_fontsize=MIN_FONTSIZE,
              loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
    ax.set_title(title, fontsize=10)
    return finish(fig, untrained=untrained, what="these code paths")


# --- teaching figures that need no trained weights ------------------------------------------------------------
_FIVE_NAMES = ("eye centre (36, 39)", "eye centre (42, 45)", "nose tip (30)", "mouth corner (48)",
               "mouth corner (54)")


def alignment_figure(photo: Any, landmarks: Any, *, size: float = 3.4) -> Figure:
    """How a photo becomes DG's 256x256 crop: five points, the template, the similarity, the crop.

    Panel 1: the photo with its 68 landmarks and the five alignment points (the two eye centres are the
    means of each eye's corners). Panel 2: the template in the 256 crop (squares) and the five points after
    the fitted similarity (dots; the gap is the least-squares residual), with the matrix's scale, rotation and
    translation. Panel 3: the crop with the mapped landmarks. No network is involved.

    Args:
        photo: (H,W,3) uint8 RGB photo.
        landmarks: (68,2|3) image pixels (x, y[, z]).
    """
    from .align import ARCFACE_TEMPLATE_256, align_face, alignment_matrix, five_points

    lm = check_landmarks(landmarks)
    img = _as_image(photo, "photo")
    m = alignment_matrix(lm)
    crop, crop_lm = align_face(img, lm)
    pts = five_points(lm)
    mapped = pts @ m[:, :2].T + m[:, 2]
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    angle = float(np.degrees(np.arctan2(m[1, 0], m[0, 0])))
    tpl = np.asarray(ARCFACE_TEMPLATE_256, dtype=np.float64)
    fig, axes = new_figure(1, 3, size=size)
    ax = axes[0]
    show_image(ax[0], img, title="1. photo: 68 landmarks, 5 alignment points", axis_labels=True, frame="image px")
    ax[0].scatter(lm[:, 0], lm[:, 1], s=5, color="white", linewidths=0)
    ax[0].scatter(pts[:, 0], pts[:, 1], s=70, color=color(4), edgecolors="black", zorder=4, label="5 points")
    for k in range(5):
        ax[0].annotate(str(k + 1), pts[k], xytext=(6, -6), textcoords="offset points", color="yellow",
                       fontsize=9, fontweight="bold")
    lo, hi = lm[:, :2].min(0), lm[:, :2].max(0)
    half = 0.8 * float(max(hi - lo))
    c = (lo + hi) / 2
    ax[0].set_xlim(max(c[0] - half, 0), min(c[0] + half, img.shape[1]))
    ax[0].set_ylim(min(c[1] + half, img.shape[0]), max(c[1] - half, 0))
    a = ax[1]
    a.set_xlim(0, CROP_SIZE)
    a.set_ylim(CROP_SIZE, 0)
    a.set_aspect("equal")
    a.add_patch(__import__("matplotlib.patches", fromlist=["Rectangle"]).Rectangle(
        (0, 0), CROP_SIZE, CROP_SIZE, fill=False, lw=1.5, ec="black"))
    a.scatter(tpl[:, 0], tpl[:, 1], s=110, marker="s", facecolor="none", edgecolor="black", lw=1.5,
              label="template (fixed)")
    a.scatter(mapped[:, 0], mapped[:, 1], s=50, color=color(4), edgecolors="black", zorder=3,
              label="5 points after M")
    for k in range(5):
        a.annotate(str(k + 1), tpl[k], xytext=(9, 4), textcoords="offset points", fontsize=9, fontweight="bold")
    a.text(4, 4, "\n".join(f"{k + 1}: {n}" for k, n in enumerate(_FIVE_NAMES)), ha="left", va="top",
           fontsize=MIN_FONTSIZE)
    a.text(128, 250, f"M: scale {scale:.2f}, rotation {angle:+.1f}°\ntranslation ({m[0, 2]:.0f}, {m[1, 2]:.0f}) px",
           ha="center", va="bottom", fontsize=9, bbox={"facecolor": "white", "edgecolor": "#999"})
    a.set_title("2. similarity M fitted to the template", fontsize=9)
    a.set_xlabel("x (crop pixels)")
    a.set_ylabel("y (crop pixels)")
    a.grid(alpha=0.3)
    a.legend(loc="upper center", fontsize=MIN_FONTSIZE, bbox_to_anchor=(0.5, -0.18), ncols=2, frameon=False)
    show_image(ax[2], crop, title="3. the 256x256 crop DG works in", axis_labels=True)
    ax[2].scatter(crop_lm[:, 0], crop_lm[:, 1], s=5, color="white", linewidths=0)
    ax[2].scatter(tpl[:, 0], tpl[:, 1], s=90, marker="s", facecolor="none", edgecolor=color(4), lw=1.5)
    fig.suptitle("alignment: a similarity (rotation, one scale, translation) maps 5 points onto a fixed template",
                 fontsize=10)
    return finish(fig)


def _arrow_axis(ax: Axes, text: str, direction: str = "right") -> None:
    """An axis that only shows an arrow with ``text`` on it (used between the panels of a pipeline figure)."""
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    if direction == "right":
        ax.annotate("", xy=(0.98, 0.5), xytext=(0.02, 0.5), arrowprops={"arrowstyle": "-|>", "lw": 2, "color": "#444"})
        ax.text(0.5, 0.56, text, ha="center", va="bottom", fontsize=MIN_FONTSIZE, wrap=True)
    else:  # down
        ax.annotate("", xy=(0.5, 0.02), xytext=(0.5, 0.98), arrowprops={"arrowstyle": "-|>", "lw": 2, "color": "#444"})
        ax.text(0.55, 0.5, text, ha="left", va="center", fontsize=MIN_FONTSIZE)


def _code_bars(ax: Axes, code: Any, title: str, untrained: bool) -> None:
    """A code as a small square bar chart (positive blue, negative vermillion)."""
    values = np.asarray(code, dtype=np.float64).ravel()
    ax.bar(np.arange(values.size), values, width=1.0, color=[color(0) if v >= 0 else color(1) for v in values])
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_box_aspect(1)
    if untrained:
        mark_untrained(ax)


def dg_overview_figure(result: Any, *, size: float = 1.9) -> Figure:
    """"DG in one page": one example through every stage, with the array shapes on the arrows.

    Top row (IDSG, the shape stage): reference crop with its landmarks -> landmark code -> decoded target
    landmarks (with the source's identity feature) -> eye correction -> target sketch. Bottom row (RFG, the
    face stage): source crop -> identity feature (to the IDSG decoder) and style code -> reenacted face.

    Args:
        result: a ``dgkit.reenact.PhotoReenactment`` that ran DG (``result.dg`` not None).
    Returns:
        matplotlib Figure; every panel made by a network carries the UNTRAINED banner when the weights are
        untrained, and the figure says so above its title.
    """
    from matplotlib.gridspec import GridSpec

    run = getattr(result, "dg", None)
    if run is None:
        raise InputError("dg_overview_figure needs a PhotoReenactment made with a DualGenerator (result.dg is None)")
    untrained = is_untrained(run)
    from matplotlib.figure import Figure as _Figure

    ratios = [1, 0.55, 1, 0.55, 1, 0.55, 1, 0.55, 1]
    fig = _Figure(figsize=(size * sum(ratios), 2 * size + 1.0), layout="constrained", dpi=FIGURE_DPI)
    gs = GridSpec(2, len(ratios), figure=fig, width_ratios=ratios)
    panel = [[fig.add_subplot(gs[r, 2 * c]) for c in range(5)] for r in range(2)]
    arrows = [[fig.add_subplot(gs[r, 2 * c + 1]) for c in range(4)] for r in range(2)]
    ref_lm = result.reference.crop_landmarks[:, :2]
    src = result.source.crop
    # top row: IDSG
    show_image(panel[0][0], result.reference.crop, title="reference (aligned crop)")
    draw_landmarks(panel[0][0], {"reference": ref_lm}, markers=False, linewidth=0.8)
    _arrow_axis(arrows[0][0], "68 points\n/256, x0 y0 x1 ...\n(1,136)\nIDSG encoder")
    _code_bars(panel[0][1], run.landmark_code[0], "landmark code (1,136)", untrained)
    _arrow_axis(arrows[0][1], "IDSG decoder\ncode (1,136)\n+ identity (1,4096)\n-> (1,68,2)")
    overlay_landmarks(None, {"target (IDSG)": run.decoded_landmarks[0]}, ax=panel[0][2], title="decoded target",
                      legend=False, untrained=untrained)
    panel[0][2].set_xlim(0, CROP_SIZE)
    panel[0][2].set_ylim(CROP_SIZE, 0)
    _arrow_axis(arrows[0][2], "eye correction\n(reference\neyelids)\n(1,68,2)")
    overlay_landmarks(None, {"target (IDSG)": run.target_landmarks[0]}, ax=panel[0][3],
                      title="target landmarks", legend=False, untrained=untrained)
    panel[0][3].set_xlim(0, CROP_SIZE)
    panel[0][3].set_ylim(CROP_SIZE, 0)
    _arrow_axis(arrows[0][3], "draw lines\n(pose rule)\n(1,256,256)\nuint8")
    show_image(panel[0][4], run.sketch[0], title="target sketch", untrained=untrained)
    # bottom row: source encoders and RFG
    show_image(panel[1][0], src, title="source (aligned crop)")
    _arrow_axis(arrows[1][0], "(1,3,256,256)\nRGB 0..1\nVGG-Face fc7")
    feat = np.asarray(run.id_feature[0]).reshape(64, 64)
    panel[1][1].imshow(feat, cmap="viridis", interpolation="nearest")
    panel[1][1].set_xticks([])
    panel[1][1].set_yticks([])
    panel[1][1].set_title("identity (1,4096)\n-> IDSG decoder", fontsize=9)
    if untrained:
        mark_untrained(panel[1][1])
    _arrow_axis(arrows[1][1], "style encoder\n(same source)\n(1,128)")
    _code_bars(panel[1][2], run.style_code[0], "style code (1,128)", untrained)
    _arrow_axis(arrows[1][2], "RFG generator\nsketch (top right)\n+ style code")
    show_image(panel[1][3], run.image[0], title="reenacted face\n(1,256,256,3) uint8", untrained=untrained)
    arrows[1][3].set_axis_off()
    panel[1][4].set_axis_off()
    panel[1][4].text(0.0, 0.5, "IDSG: where the source's\nlandmarks should be.\nRFG: the source's face\ndrawn on them.",
                     fontsize=9, va="center", transform=panel[1][4].transAxes)
    fig.suptitle(f"DG in one page: IDSG (top) then RFG (bottom); weights: {run.weights}", fontsize=11)
    return finish(fig, untrained=untrained, what="codes, target landmarks, sketch and face")


def face_width(landmarks: Any) -> np.ndarray:
    """Jaw width |x16 - x0| of ``(68,D)`` or ``(N,68,D)`` landmarks (pixels), a simple measure of face shape."""
    arr = np.asarray(landmarks, dtype=np.float64)
    return np.abs(arr[..., 16, 0] - arr[..., 0, 0])


def interpolation_paths_figure(landmarks3d: Any, yaw_a: float = -45.0, yaw_b: float = 45.0, *,
                               steps: int = 9, size: float = 3.4) -> Figure:
    """Why the path matters, with no network: a straight line in point space vs a path of real faces.

    Between the same face turned to ``yaw_a`` and to ``yaw_b``, (1) interpolate the 68 points on a straight
    line and (2) turn the head to the interpolated yaw (:func:`dgkit.geometry.pose_landmarks`), which stays a
    rigid copy of the same face all the way. Panel 1: both midpoints over the two ends. Panel 2: the jaw width
    along both paths: the straight line squeezes the face (a chord through the arc), the pose path keeps its
    width. A trained landmark code is meant to behave like path 2: every code decodes to a plausible face
    with the source's shape. Panel 3: the sketches of both midpoints.
    """
    from .geometry import pose_landmarks
    from .sketch import draw_sketch

    lm = check_landmarks(landmarks3d, "landmarks3d")
    if lm.shape[1] != 3:
        raise LandmarkError("interpolation_paths_figure needs (68,3) landmarks (x, y, depth)")
    ts = np.linspace(0, 1, steps)
    a, b = pose_landmarks(lm, yaw_a), pose_landmarks(lm, yaw_b)
    straight = np.stack([(1 - t) * a + t * b for t in ts])
    posed = np.stack([pose_landmarks(lm, (1 - t) * yaw_a + t * yaw_b) for t in ts])
    mid = steps // 2
    fig, axes = new_figure(1, 3, size=size)
    ax = axes[0]
    ends = {f"end A (yaw {signed_degrees(yaw_a)})": a[:, :2], f"end B (yaw {signed_degrees(yaw_b)})": b[:, :2]}
    overlay_landmarks(None, ends, ax=ax[0], legend=False, title=f"midpoints (t = {ts[mid]:.2f})")
    for line in list(ax[0].get_lines()):
        line.remove()
    for coll in list(ax[0].collections):
        coll.remove()
    draw_landmarks(ax[0], ends, colors=["#888888", "#BBBBBB"], styles=[":", "-."], markers=False)
    draw_landmarks(ax[0], {"straight line in points": straight[mid, :, :2]}, start_color=0, linewidth=2)
    draw_landmarks(ax[0], {"turning the head": posed[mid, :, :2]}, start_color=1, linewidth=2, styles=["--"])
    ax[0].legend(fontsize=MIN_FONTSIZE, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2, frameon=False)
    w = ax[1]
    w.plot(ts, face_width(straight), marker="o", color=_OTHER_COLORS[0], label="straight line in points")
    w.plot(ts, face_width(posed), marker="s", ls="--", color=_OTHER_COLORS[1], label="turning the head")
    w.set_xlabel("t")
    w.set_ylabel("jaw width |x16 - x0| (crop px)")
    w.set_title("the straight line squeezes the face", fontsize=9)
    w.grid(alpha=0.3)
    w.legend(fontsize=MIN_FONTSIZE, loc="lower center")
    sk = np.concatenate([draw_sketch(straight[mid, :, :2]), np.full((CROP_SIZE, 6), 128, np.uint8),
                         draw_sketch(posed[mid, :, :2])], axis=1)
    show_image(ax[2], sk, title="midpoint sketches: straight | turned")
    fig.suptitle("two paths between the same two references (no network involved)", fontsize=10)
    return finish(fig)


def loss_curves_figure(logs: Mapping[str, Any], *, size: float = 4.2, skip: Sequence[str] = ("step", "time_s",
                                                                                             "samples_per_s")) -> Figure:
    """Training losses from dgkit's CSV logs, one axis per run (name -> path of ``losses.csv``).

    Every loss column gets a palette colour and a line style (ten entries stay distinguishable); the legend
    sits outside the axes on the right so that it covers no curve.
    """
    import csv

    if not logs:
        raise InputError("loss_curves_figure needs at least one log")
    fig, axes = new_figure(1, len(logs), size=size, aspect=0.75)
    styles = ("-", "--", ":", "-.")
    for ax, (name, path) in zip(axes[0], logs.items()):
        with open(path) as fh:
            rows = list(csv.DictReader(fh))
        if not rows:
            raise InputError(f"the log {path} has no rows yet")
        steps = [int(r["step"]) for r in rows]
        keys = [k for k in rows[0] if k not in skip]
        for i, key in enumerate(keys):
            ax.plot(steps, [float(r[key]) for r in rows], marker=".", ls=styles[(i // 7) % 4],
                    color=PALETTE[i % 7], label=key)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=MIN_FONTSIZE, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return finish(fig)


# --- static pictures of 3D plots (for readers without a running kernel) -----------------------------------------
def plotly_to_matplotlib(fig: Any, *, size: float = 4.8) -> Figure:
    """A static matplotlib picture of a plotly 3D landmark figure (its ``Scatter3d`` traces, colours, names,
    title and camera), so that a notebook saved or rendered to HTML shows the 3D view without plotly.js.

    Plotly's image y axis points down; here the picture is drawn with the same camera direction and up vector.
    """
    import re

    if hasattr(fig, "to_plotly_json"):
        fig = fig.to_plotly_json()
    from matplotlib.figure import Figure as _Figure

    out = _Figure(figsize=(size, size), layout="constrained", dpi=FIGURE_DPI)
    ax = out.add_subplot(projection="3d")
    allpts = []
    for tr in fig.get("data", []):
        if tr.get("type") != "scatter3d":
            continue
        xs, ys, zs = (np.array([np.nan if v is None else v for v in (tr.get(k) if tr.get(k) is not None else [])],
                               dtype=np.float64) for k in ("x", "y", "z"))
        if xs.size == 0:
            continue
        c = (tr.get("line") or {}).get("color") or (tr.get("marker") or {}).get("color") or "#444"
        c = c if isinstance(c, str) else "#444"
        mode = tr.get("mode") or "lines+markers"
        # plotly (x, y down, z depth) -> matplotlib (x, depth, up)
        X, Y, Z = xs, zs, -ys
        if "lines" in mode:
            ax.plot(X, Y, Z, color=c, lw=1.6, label=tr.get("name"))
        if "markers" in mode:
            ax.scatter(X, Y, Z, color=c, s=8 if "lines" in mode else 22, depthshade=False,
                       label=None if "lines" in mode else tr.get("name"))
        allpts.append(np.column_stack([X, Y, Z]))
    if allpts:
        pts = np.concatenate(allpts)
        pts = pts[np.isfinite(pts).all(1)]
        if len(pts):
            lo, hi = pts.min(0), pts.max(0)
            ax.set_box_aspect(np.maximum(hi - lo, 1e-6))
    scene = (fig.get("layout") or {}).get("scene") or {}
    eye = ((scene.get("camera") or {}).get("eye")) or {"x": 1.25, "y": 1.25, "z": 1.25}
    ex, ey, ez = eye.get("x", 0), eye.get("z", 0), -eye.get("y", 0)
    ax.view_init(elev=float(np.degrees(np.arctan2(ez, np.hypot(ex, ey)))), azim=float(np.degrees(np.arctan2(ey, ex))))
    ax.set_xlabel("x")
    ax.set_ylabel("z (depth)")
    ax.set_zlabel("-y (up)")
    if abs(ax.elev) < 15 and abs(ax.azim + 90) < 15:  # seen from the front: the depth axis is edge-on
        ax.set_yticks([])
        ax.set_ylabel("")
    ax.tick_params(labelsize=MIN_FONTSIZE)
    title = ((fig.get("layout") or {}).get("title") or {}).get("text") or ""
    title = re.sub(r"<br>", "\n", title)
    title = re.sub(r"<[^>]+>", "", title)
    ax.set_title(title + ("\n" if title else "") + "(static view; run the notebook to rotate)", fontsize=9)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=MIN_FONTSIZE, loc="upper left")
    annotations = (fig.get("layout") or {}).get("annotations") or []
    untrained = any(a.get("name") == UNTRAINED_GID for a in annotations)
    return finish(out, untrained=untrained)


NOTEBOOK_PNG_COLORS = 256
"""Colours of the PNGs saved in notebooks (a 256-colour palette keeps photos recognisable and files ~4x smaller)."""


def figure_png_bytes(fig: Figure, dpi: float = FIGURE_DPI, *, colors: int | None = None) -> bytes:
    """PNG bytes of a matplotlib figure (tight bounding box, as a notebook shows it); ``colors``: reduce to a
    palette of that many colours (smaller files for notebooks; None keeps full colour)."""
    import io as _io

    if not hasattr(fig.canvas, "print_figure"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    if not colors:
        return buf.getvalue()
    from PIL import Image

    buf.seek(0)
    small = Image.open(buf).convert("RGB").quantize(colors=colors, method=Image.Quantize.FASTOCTREE,
                                                       dither=Image.Dither.NONE)
    out = _io.BytesIO()
    small.save(out, format="PNG", optimize=True)
    return out.getvalue()


PLOTLY_RENDERER = "dgkit"
"""Name of the plotly renderer :func:`setup_notebook` registers: the interactive figure for JupyterLab (no CDN:
JupyterLab's bundled plotly extension draws it) plus a static PNG for every other viewer."""


def _register_plotly_renderer() -> None:
    import base64

    import plotly.io as pio
    from plotly.io._base_renderers import MimetypeRenderer

    class _DgkitRenderer(MimetypeRenderer):
        def to_mimebundle(self, fig_dict):
            png = figure_png_bytes(plotly_to_matplotlib(fig_dict), colors=NOTEBOOK_PNG_COLORS)
            config = dict(fig_dict.get("config", {}))
            config.setdefault("responsive", True)
            return {"application/vnd.plotly.v1+json": {**fig_dict, "config": config},
                    "image/png": base64.b64encode(png).decode("ascii")}

    pio.renderers[PLOTLY_RENDERER] = _DgkitRenderer()


def setup_notebook() -> None:
    """House style for a notebook: matplotlib figures at :data:`FIGURE_DPI` with readable fonts, and plotly
    figures shown offline (the interactive view for JupyterLab, a static PNG for GitHub, nbconvert HTML and
    other viewers; never a plotly.js download from a CDN); in IPython, figures are saved as 256-colour PNGs."""
    import matplotlib
    import plotly.io as pio

    matplotlib.rcParams.update({"figure.dpi": FIGURE_DPI, "savefig.dpi": FIGURE_DPI, "font.size": 9,
                                "legend.fontsize": MIN_FONTSIZE, "xtick.labelsize": MIN_FONTSIZE,
                                "ytick.labelsize": MIN_FONTSIZE, "axes.titlesize": 10, "axes.labelsize": 9})
    _register_plotly_renderer()
    pio.renderers.default = PLOTLY_RENDERER
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with Jupyter
        return
    shell = get_ipython()
    if shell is not None:  # matplotlib figures as compact PNGs (same pixels per inch, a 256-colour palette)
        from matplotlib.figure import Figure as _Figure

        shell.display_formatter.formatters["image/png"].for_type(
            _Figure, lambda fig: figure_png_bytes(fig, colors=NOTEBOOK_PNG_COLORS))
