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

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Okabe & Ito (2008) colour-blind-safe palette (black last).
PALETTE: tuple[str, ...] = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
UNTRAINED_LABEL = "UNTRAINED weights"
UNTRAINED_COLOR = "#C00000"
CROP_FRAME = "crop pixels"

# Face parts of the 68-point iBUG layout: name -> (first, last) index, closed contour or not.
FACE_PARTS: dict[str, tuple[int, int, bool]] = {
    "jaw": (0, 16, False),
    "right brow": (17, 21, False),
    "left brow": (22, 26, False),
    "nose bridge": (27, 30, False),
    "nostrils": (31, 35, False),
    "right eye": (36, 41, True),
    "left eye": (42, 47, True),
    "outer lips": (48, 59, True),
    "inner lips": (60, 67, True),
}


# --- helpers ------------------------------------------------------------------------------------------------
def color(i: int) -> str:
    """The i-th palette colour (cycles)."""
    return PALETTE[i % len(PALETTE)]


def _as_landmarks(points: Any, name: str = "landmarks") -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != 68 or arr.shape[1] not in (2, 3):
        raise LandmarkError(f"{name} must have shape (68,2) or (68,3) (x, y[, z] pixels), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise LandmarkError(f"{name} contain NaN or inf; re-detect or drop them before plotting")
    return arr


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


def is_untrained(weights: Any) -> bool:
    """True for a weights label/info of untrained weights (``dg.weights``, ``dg``, a label string or a bool)."""
    if isinstance(weights, bool):
        return weights
    if hasattr(weights, "weights") and not isinstance(weights, str):  # a DualGenerator
        weights = weights.weights
    if hasattr(weights, "trained"):
        return not bool(weights.trained)
    label = str(weights).lower()
    return "untrained" in label or "synthetic" in label


def add_untrained_banner(ax: Axes, text: str = UNTRAINED_LABEL) -> None:
    """Stamp a red "UNTRAINED weights" banner across the top of an image axis (font sized to fit the axis)."""
    spec = ax.get_subplotspec()
    if spec is not None:  # the cell's share of the figure width (constrained layout has not run yet)
        _, ncols, _, _ = spec.get_geometry()
        width_in = 0.92 * ax.figure.get_figwidth() * (spec.colspan.stop - spec.colspan.start) / ncols
    else:
        width_in = ax.get_position().width * ax.figure.get_figwidth()
    fontsize = float(np.clip(5.0 * width_in, 4.5, 8.0))  # bold 8 pt banner text is ~1.4 in wide
    ax.text(0.5, 0.97, text, transform=ax.transAxes, ha="center", va="top", fontsize=fontsize, fontweight="bold",
            color="white", bbox={"boxstyle": "square,pad=0.25", "facecolor": UNTRAINED_COLOR, "edgecolor": "none",
                                     "alpha": 0.9}, zorder=10, gid="untrained-banner")


def has_untrained_banner(ax: Axes) -> bool:
    """Whether :func:`add_untrained_banner` was applied to ``ax`` (used by tests and checks)."""
    return any(t.get_text() == UNTRAINED_LABEL for t in ax.texts)


def show_image(ax: Axes, image: Any, *, title: str = "", untrained: bool = False, axis_labels: bool = False,
               frame: str = CROP_FRAME, cmap: str | None = None) -> None:
    """Draw one image on ``ax``: pixel grid, y down, equal aspect; grey images in a grey colour map."""
    img = _as_image(image)
    if img.ndim == 2 and cmap is None:
        cmap = "gray"
    ax.imshow(img, cmap=cmap, interpolation="nearest", vmin=0 if img.dtype == np.uint8 else None,
              vmax=255 if img.dtype == np.uint8 else None)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title, fontsize=9)
    if axis_labels:
        ax.set_xlabel(f"x ({frame})", fontsize=8)
        ax.set_ylabel(f"y ({frame})", fontsize=8)
        ax.tick_params(labelsize=7)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    if untrained:
        add_untrained_banner(ax)


def new_figure(nrows: int = 1, ncols: int = 1, *, size: float = 2.2, aspect: float = 1.0, **kw):
    """A matplotlib figure (not attached to pyplot's global state, so no leaks in loops) and its axes array."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size * ncols, size * aspect * nrows + 0.3), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


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
    return fig


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
                 marker_size: float = 3.0) -> go.Figure:
    """Interactive 3D plot of one or more landmark sets (plotly).

    Each set is one legend entry: face parts connected by lines, points as markers. 2D sets are drawn at
    z = 0. The camera looks at the face from the front with y pointing down (as in the image) and the axes
    have equal scale (``aspectmode="data"``).

    Args:
        sets: name -> (68,2) or (68,3) landmarks (x, y pixels, z relative depth on the x scale).
        title: figure title.
        frame: what the pixels are ("crop pixels", "image pixels"), used in axis titles.
    Returns:
        plotly ``go.Figure`` with one trace per set.
    """
    import plotly.graph_objects as go

    if not sets:
        raise InputError("landmarks_3d needs at least one landmark set")
    fig = go.Figure()
    for i, (name, pts) in enumerate(sets.items()):
        lm = _as_landmarks(pts, name=str(name))
        if lm.shape[1] == 2:
            lm = np.column_stack([lm, np.zeros(68)])
        xs, ys, zs = polyline_xyz(lm)
        fig.add_trace(go.Scatter3d(
            x=xs, y=ys, z=zs, mode="lines+markers", name=str(name),
            line={"color": color(i), "width": 4}, marker={"color": color(i), "size": marker_size},
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
        legend={"x": 0.01, "y": 0.99}, margin={"l": 0, "r": 0, "t": 40 if title else 10, "b": 0}, height=480,
        template="plotly_white",
    )
    return fig


def draw_landmarks(ax: Axes, sets: Mapping[str, Any], *, markers: bool = True, linewidth: float = 1.2,
                   start_color: int = 0, styles: Sequence[str] | None = None) -> None:
    """Draw landmark sets (face-part lines + points) onto an existing axis, one palette colour and legend
    entry per set. ``styles``: optional matplotlib line styles per set (e.g. "-", "--", ":")."""
    for i, (name, pts) in enumerate(sets.items()):
        lm = _as_landmarks(pts, name=str(name))
        c = color(start_color + i)
        ls = styles[i % len(styles)] if styles else "-"
        for k, line in enumerate(part_polylines(lm)):
            ax.plot(line[:, 0], line[:, 1], color=c, lw=linewidth, ls=ls, label=str(name) if k == 0 else None)
        if markers:
            ax.scatter(lm[:, 0], lm[:, 1], s=6, color=c, zorder=3, linewidths=0)


def overlay_landmarks(image: Any, sets: Mapping[str, Any], *, ax: Axes | None = None, title: str = "",
                      frame: str = CROP_FRAME, untrained: bool = False, legend: bool = True,
                      size: float = 4.0) -> Figure:
    """Landmark sets drawn over an image (x, y in the image's pixels; z, if any, ignored).

    Args:
        image: (H,W,3) uint8 RGB or (H,W) grey; None draws on an empty axis with the image frame's limits
            taken from the landmarks (y still down).
        sets: name -> (68,2|3) landmarks in that image's pixels.
        ax: draw into this axis (its figure is returned) instead of a new figure.
        frame: the pixel frame, for the axis labels ("crop pixels", "image pixels").
    Returns:
        the matplotlib Figure.
    """
    if ax is None:
        fig, axes = new_figure(1, 1, size=size)
        ax = axes[0, 0]
    else:
        fig = ax.figure
    if image is not None:
        show_image(ax, image, title=title, untrained=untrained, axis_labels=True, frame=frame)
    else:
        allpts = np.concatenate([_as_landmarks(p)[:, :2] for p in sets.values()])
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
            add_untrained_banner(ax)
    lims = (ax.get_xlim(), ax.get_ylim())
    draw_landmarks(ax, sets)
    ax.set_xlim(*lims[0])
    ax.set_ylim(*lims[1])
    if legend and sets:
        ax.legend(fontsize=7, loc="lower right", framealpha=0.8)
    return fig


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
            untrained = is_untrained(dgres.weights)
            show_image(ax[2], dgres.sketch[index], title="target sketch (IDSG)", untrained=untrained)
            show_image(ax[3], dgres.image[index], title=f"DG output\n({dgres.weights})", untrained=untrained)
        else:
            target = photo.baselines.get("naive")
            if target is not None:
                show_image(ax[2], draw_sketch(np.asarray(target), kind="target"), title="naive target sketch")
            else:
                ax[2].set_visible(False)
            show_image(ax[3], photo.baselines["warp"], title="warp baseline\n(no DG weights)")
        fig.suptitle(f"DG stages (weights: {getattr(photo, 'weights_label', 'unknown')})", fontsize=10)
        return fig

    required = ("source_image", "reference_landmarks", "sketch", "image")
    if not all(hasattr(result, k) for k in required):
        raise InputError("stages_figure needs a dgkit.Reenactment or a dgkit.reenact.PhotoReenactment, "
                         f"got {type(result).__name__}")
    n = len(result.image)
    if not -n <= index < n:
        raise InputError(f"index {index} out of range for a batch of {n}")
    untrained = is_untrained(result.weights)
    fig, axes = new_figure(1, 4, size=size)
    ax = axes[0]
    show_image(ax[0], result.source_image[index], title="source (aligned crop)")
    show_image(ax[1], draw_sketch(result.reference_landmarks[index], kind="reference"),
               title="reference landmarks")
    show_image(ax[2], result.sketch[index], title="target sketch (IDSG)", untrained=untrained)
    show_image(ax[3], result.image[index], title=f"DG output\n({result.weights})", untrained=untrained)
    fig.suptitle(f"DG stages, item {index} (weights: {result.weights}, sketch: {result.sketch_intensity})",
                 fontsize=10)
    return fig


# --- teaching figures (notebooks 02-06) -----------------------------------------------------------------------
def landmark_code_figure(code: Any, labels: Sequence[str] | None = None, *, title: str = "IDSG landmark code",
                         size: float = 7.0) -> Figure:
    """The IDSG landmark code: a bar chart for one code ``(136,)``, a heatmap for a batch ``(N,136)``.

    The code is the landmark encoder's 136-value latent (not coordinates). The heatmap uses a diverging,
    colour-blind-safe map (PuOr) centred on 0, with a colorbar; rows are labelled with ``labels``.
    """
    return code_figure(code, labels, dim=136, title=title, size=size)


def style_code_figure(code: Any, labels: Sequence[str] | None = None, *, title: str = "RFG style code",
                      size: float = 7.0) -> Figure:
    """The RFG style code ``(128,)`` or ``(N,128)`` (what the generator's AdaIN layers get), like
    :func:`landmark_code_figure`."""
    return code_figure(code, labels, dim=128, title=title, size=size)


def code_figure(code: Any, labels: Sequence[str] | None = None, *, dim: int, title: str,
                size: float = 7.0) -> Figure:
    """Bar chart of one ``(dim,)`` code or diverging heatmap (with colorbar) of ``(N,dim)`` codes."""
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
        return fig
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
    return fig


def id_feature_figure(id_feature: Any, labels: Sequence[str] | None = None, *,
                      title: str = "source identity feature (VGG-Face fc7, 4096 values)", size: float = 3.0) -> Figure:
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
        sp.legend(fontsize=6)
        unit = arr / np.maximum(np.linalg.norm(arr, axis=1, keepdims=True), 1e-12)
        sim = unit @ unit.T
        cax = ax[n + 1]
        cm = cax.imshow(sim, cmap="viridis", vmin=min(0.0, float(sim.min())), vmax=1)
        cax.set_xticks(range(n))
        cax.set_yticks(range(n))
        cax.set_xticklabels(labels, fontsize=6, rotation=45, ha="right")
        cax.set_yticklabels(labels, fontsize=6)
        for (r, c), v in np.ndenumerate(sim):
            cax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=6, color="white" if v < 0.7 else "black")
        cax.set_title("cosine similarity", fontsize=8)
        fig.colorbar(cm, ax=cax, shrink=0.8)
    fig.suptitle(title, fontsize=10)
    return fig


def _eye_box(points: np.ndarray, pad: float = 6.0) -> tuple[float, float, float, float]:
    lo, hi = points.min(0) - pad, points.max(0) + pad
    side = float(max(hi - lo)) / 2
    c = (lo + hi) / 2
    return c[0] - side, c[0] + side, c[1] - side, c[1] + side


def eye_correction_figure(decoded: Any, corrected: Any, reference: Any, *, image: Any = None,
                          size: float = 3.0, title: str = "eye correction (crop pixels)",
                          untrained: bool = False) -> Figure:
    """Decoded IDSG landmarks before and after the eye correction, and the reference eyes it copies.

    Panel 1: whole face, decoded (dashed) vs corrected (solid). Panels 2-3: zoom on each eye (image
    right/left); the reference eye is drawn moved so that its centre sits on the corrected eye's centre,
    so that the eyelid openings can be compared. All in crop pixels, y down, equal aspect.
    ``untrained``: the decoded landmarks come from untrained weights (banner on the first panel).
    """
    dec, cor, ref = (_as_landmarks(a, n)[:, :2] for a, n in
                     ((decoded, "decoded"), (corrected, "corrected"), (reference, "reference")))
    fig, axes = new_figure(1, 3, size=size)
    ax = axes[0]
    overlay_landmarks(image, {"decoded (IDSG)": dec, "after eye correction": cor}, ax=ax[0],
                      title="decoded vs corrected", legend=False)
    for line in ax[0].get_lines()[:len(FACE_PARTS)]:
        line.set_linestyle("--")
    ax[0].legend(fontsize=7, loc="lower right")
    if untrained:
        add_untrained_banner(ax[0])
    for k, (name, idx) in enumerate((("eye 36-41 (image left)", slice(36, 42)),
                                     ("eye 42-47 (image right)", slice(42, 48)))):
        a = ax[k + 1]
        ref_moved = ref[idx] - ref[idx].mean(0) + cor[idx].mean(0)
        for lbl, pts, c, ls in (("decoded", dec[idx], color(0), "--"), ("corrected", cor[idx], color(1), "-"),
                                ("reference (moved to eye centre)", ref_moved, color(2), ":")):
            closed = np.vstack([pts, pts[:1]])
            a.plot(closed[:, 0], closed[:, 1], ls=ls, color=c, lw=1.5, marker="o", ms=3, label=lbl)
        x0, x1, y0, y1 = _eye_box(np.vstack([dec[idx], cor[idx], ref_moved]))
        a.set_xlim(x0, x1)
        a.set_ylim(y1, y0)  # y down
        a.set_aspect("equal")
        a.set_title(name, fontsize=9)
        a.set_xlabel("x (crop pixels)", fontsize=8)
        a.set_ylabel("y (crop pixels)", fontsize=8)
        a.tick_params(labelsize=7)
        a.grid(alpha=0.3)
        if k == 0:
            a.legend(fontsize=6, loc="lower center")
    fig.suptitle(title, fontsize=10)
    return fig


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
    return overlay_landmarks(image, sets, title=title, size=size, untrained=untrained)


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

    ref = _as_landmarks(reference, "reference")
    ref3 = ref if ref.shape[1] == 3 else lift_to_3d(ref)

    def lifted(pts: Any, name: str) -> np.ndarray:
        arr = _as_landmarks(pts, name)
        return arr if arr.shape[1] == 3 else lift_to_3d(arr, ref3)

    target_name = "target (IDSG, z lifted" + (", UNTRAINED weights)" if untrained else ")")
    sets: dict[str, np.ndarray] = {"reference": ref3, target_name: lifted(target, "target")}
    if source is not None:
        sets["source"] = lifted(source, "source")
    for k, v in (extra or {}).items():
        sets[k] = lifted(v, k)
    rule = ("target z = reference z scaled by the 2D similarity reference->target (dgkit.geometry.lift_to_3d)")
    if untrained:
        title = f"{title} [{UNTRAINED_LABEL}]"
    return landmarks_3d(sets, title=f"{title}<br><sup>{rule}</sup>")


def sketch_hidden_figure(landmarks: Any, *, size: float = 3.2,
                         title: str = "what the sketch's pose rule hides") -> Figure:
    """Target sketch of ``(68,2)`` crop-pixel landmarks and the points its pose rule leaves out.

    Left: the landmarks, drawn points (filled) and hidden points (red crosses, indices as
    :func:`dgkit.sketch.hidden_points` gives them for the chosen branch), with the eye-corner distances that
    decide the branch. Right: the sketch the generator receives (``kind="target"``).
    """
    from .sketch import HIDE_THRESHOLD_PX, draw_sketch, hidden_points, sketch_branch

    lm = _as_landmarks(landmarks)[:, :2]
    branch = sketch_branch(lm, "target")
    hidden = list(hidden_points(branch))
    shown = [i for i in range(68) if i not in hidden]
    fig, axes = new_figure(1, 2, size=size)
    ax = axes[0]
    a = ax[0]
    a.set_xlim(0, 256)
    a.set_ylim(256, 0)
    a.set_aspect("equal")
    a.scatter(lm[shown, 0], lm[shown, 1], s=10, color=color(0), label=f"drawn ({len(shown)})")
    a.scatter(lm[hidden, 0], lm[hidden, 1], s=22, marker="x", color=color(1), label=f"hidden ({len(hidden)})")
    xt = np.trunc(lm[:, 0])
    a.set_title(f"branch: {branch}\nx42-x36={xt[42] - xt[36]:.0f} px, x45-x39={xt[45] - xt[39]:.0f} px "
                f"(hide if <= {HIDE_THRESHOLD_PX})", fontsize=8)
    a.set_xlabel("x (crop pixels)", fontsize=8)
    a.set_ylabel("y (crop pixels)", fontsize=8)
    a.tick_params(labelsize=7)
    a.grid(alpha=0.3)
    a.legend(fontsize=7, loc="lower right")
    show_image(ax[1], draw_sketch(lm, kind="target"), title="target sketch (generator input)")
    fig.suptitle(title, fontsize=10)
    return fig


def activations_figure(acts: Mapping[str, Any], *, channels: int = 4, blocks: Sequence[str] | None = None,
                       size: float = 1.5, cmap: str = "magma",
                       title: str = "RFG generator activations (top-variance channels per block)") -> Figure:
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
            a.set_title(f"ch {order[c]}", fontsize=6)
            if c == 0:
                a.set_ylabel(f"{name}\n{act.shape[0]}x{act.shape[1]}x{act.shape[2]}", fontsize=7)
        fig.colorbar(im, ax=list(axes[r]), shrink=0.9, aspect=10, pad=0.02).ax.tick_params(labelsize=6)
    fig.suptitle(title, fontsize=10)
    return fig


def pca_trajectories_figure(codes_by_path: Mapping[str, Any], *, title: str = "landmark-code trajectories (PCA)",
                            size: float = 4.5) -> Figure:
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
    for i, (name, codes) in enumerate(paths.items()):
        p = (codes - res.mean) @ res.components.T
        ax.plot(p[:, 0], p[:, 1], ls=styles[i % 4], marker=".", color=color(i), label=name, lw=1.5)
        ax.scatter(p[0, 0], p[0, 1], marker="o", s=50, facecolor="none", edgecolor=color(i), zorder=3)
        ax.scatter(p[-1, 0], p[-1, 1], marker="s", s=40, facecolor="none", edgecolor=color(i), zorder=3)
    ax.set_xlabel(f"PC1 ({res.explained_ratio[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({res.explained_ratio[1]:.0%} of variance)")
    ax.grid(alpha=0.3)
    # below the axes: paths may cross any corner of the plot
    ax.legend(fontsize=8, title="path (o start, [] end)", title_fontsize=7, loc="upper center",
              bbox_to_anchor=(0.5, -0.14), frameon=False)
    ax.set_title(title, fontsize=10)
    return fig
