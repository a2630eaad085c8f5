"""dgkit.viz: figures carry the right titles, labels, traces, aspect and UNTRAINED banners."""

from __future__ import annotations

import numpy as np
import pytest

from dgkit import viz
from dgkit.errors import InputError, LandmarkError
from dgkit.geometry import lift_to_3d, mean_face_3d, pose_landmarks
from dgkit.weights import WeightsInfo
from dgkit.sketch import hidden_points, sketch_branch


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return mean_face_3d()


@pytest.fixture(scope="module")
def reenactment(synthetic_dg, face):
    crop = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    return synthetic_dg.reenact(crop, face[:, :2])


def _titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes]


def test_image_grid_titles_banners_and_layout():
    imgs = [np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8), np.full((8, 8, 3), 200, np.uint8)]
    fig = viz.image_grid(imgs, ["a", "b", "c"], untrained=[False, False, True], ncols=2)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 4 and len(visible) == 3
    assert [ax.get_title() for ax in visible] == ["a", "b", "c"]
    assert [viz.has_untrained_banner(ax) for ax in visible] == [False, False, True]
    assert all(len(ax.images) == 1 for ax in visible)
    with pytest.raises(InputError):
        viz.image_grid(imgs, ["only one"])
    with pytest.raises(InputError):
        viz.image_grid([])


def test_image_grid_untrained_true_labels_every_image():
    fig = viz.image_grid(np.zeros((2, 4, 4, 3), np.uint8), untrained=True)
    assert all(viz.has_untrained_banner(ax) for ax in fig.axes)


def test_landmarks_3d_one_trace_per_set_y_down_equal_aspect(face):
    fig = viz.landmarks_3d({"3d": face, "2d": face[:, :2]}, title="faces")
    assert [t.name for t in fig.data] == ["3d", "2d"]
    # every point once, closed parts repeat their first point, one None separator per part
    n_closed = sum(closed for *_, closed in viz.FACE_PARTS.values())
    assert len(fig.data[0].x) == 68 + n_closed + len(viz.FACE_PARTS)
    assert {v for v in fig.data[1].z if v is not None} == {0.0}
    scene = fig.layout.scene
    assert scene.aspectmode == "data" and scene.camera.up.y == -1
    assert "crop pixels" in scene.xaxis.title.text and fig.layout.title.text == "faces"
    assert fig.data[0].line.color != fig.data[1].line.color
    with pytest.raises(LandmarkError):
        viz.landmarks_3d({"bad": np.zeros((5, 2))})


def test_overlay_landmarks_axes_frame_and_legend(face):
    fig = viz.overlay_landmarks(np.zeros((256, 256, 3), np.uint8), {"a": face, "b": face + 3}, title="t",
                                frame="image pixels")
    ax = fig.axes[0]
    assert ax.get_title() == "t" and "image pixels" in ax.get_xlabel() and "image pixels" in ax.get_ylabel()
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # y down
    assert ax.get_aspect() == 1.0
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]


def test_stages_figure_of_reenactment(reenactment):
    fig = viz.stages_figure(reenactment)
    assert len(fig.axes) == 4 and all(len(ax.images) == 1 for ax in fig.axes)
    assert _titles(fig)[0].startswith("source") and "target sketch" in _titles(fig)[2]
    assert [viz.has_untrained_banner(ax) for ax in fig.axes] == [False, False, True, True]
    with pytest.raises(InputError):
        viz.stages_figure(reenactment, index=3)
    with pytest.raises(InputError):
        viz.stages_figure(object())


def test_stages_figure_of_photo_reenactment(reenactment, face):
    from types import SimpleNamespace

    crop = reenactment.source_image[0]
    aligned = SimpleNamespace(crop=crop, crop_landmarks=face)
    photo = SimpleNamespace(source=aligned, reference=aligned, dg=reenactment, weights=reenactment.weights_info,
                            baselines={"naive": face[:, :2], "warp": crop})
    fig = viz.stages_figure(photo)
    assert viz.has_untrained_banner(fig.axes[3]) and "reference" in fig.axes[1].get_title()
    without = SimpleNamespace(**{**vars(photo), "dg": None, "weights": WeightsInfo("none", trained=False)})
    fig = viz.stages_figure(without)
    assert "warp baseline" in fig.axes[3].get_title() and not viz.has_untrained_banner(fig.axes[3])


def test_landmark_code_figure_bar_and_heatmap():
    rng = np.random.default_rng(1)
    fig = viz.landmark_code_figure(rng.normal(size=136))
    assert len(fig.axes[0].patches) == 136 and "dimension" in fig.axes[0].get_xlabel()
    fig = viz.landmark_code_figure(rng.normal(size=(3, 136)), labels=["x", "y", "z"])
    assert fig.axes[0].images[0].get_array().shape == (3, 136)
    assert len(fig.axes) == 2  # heatmap + colorbar
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["x", "y", "z"]
    with pytest.raises(InputError):
        viz.landmark_code_figure(np.zeros(10))


def test_id_feature_figure_maps_and_similarity():
    feats = np.abs(np.random.default_rng(2).normal(size=(2, 4096)))
    fig = viz.id_feature_figure(feats, ["a", "b"])
    maps = [ax for ax in fig.axes if ax.images and ax.images[0].get_array().shape == (64, 64)]
    assert len(maps) == 2
    sim = [ax for ax in fig.axes if ax.get_title() == "cosine similarity"]
    assert sim and np.allclose(np.diag(sim[0].images[0].get_array()), 1)


def test_eye_correction_figure_zooms_y_down(reenactment, face):
    fig = viz.eye_correction_figure(reenactment.decoded_landmarks[0], reenactment.target_landmarks[0], face,
                                    untrained=True)
    assert viz.has_untrained_banner(fig.axes[0])
    main = [ax for ax in fig.axes if ax.get_visible()]
    assert len(main) == 3
    assert all(ax.get_ylim()[0] > ax.get_ylim()[1] for ax in main)
    assert all("crop pixels" in ax.get_xlabel() for ax in main)


def test_shapes_overlay_3d_lifts_target_with_the_reference(face):
    target = face[:, :2] * 0.9 + 10
    fig = viz.shapes_overlay_3d(face, target, face)
    assert len(fig.data) == 3 and "lift_to_3d" in fig.layout.title.text
    z = np.array([v for v in fig.data[1].z if v is not None])
    expected = lift_to_3d(target, face)[:, 2]
    assert np.allclose(np.sort(np.unique(z)), np.sort(np.unique(expected)))
    fig2 = viz.shapes_overlay_2d(face, target, face)
    assert [t.get_text() for t in fig2.axes[0].get_legend().get_texts()] == ["reference", "target (IDSG)", "source"]
    assert not viz.has_untrained_banner(fig2.axes[0])
    fig2 = viz.shapes_overlay_2d(face, target, untrained=True)
    assert viz.has_untrained_banner(fig2.axes[0])
    assert "UNTRAINED" in viz.shapes_overlay_3d(face, target, untrained=True).data[1].name


def test_sketch_hidden_figure_marks_hidden_points(face):
    turned = pose_landmarks(face, 80, 0, 0)[:, :2]
    branch = sketch_branch(turned)
    assert branch != "frontal"
    fig = viz.sketch_hidden_figure(turned)
    ax = fig.axes[0]
    assert branch in ax.get_title()
    hidden = ax.collections[1].get_offsets()
    assert len(hidden) == len(hidden_points(branch)) > 0


def test_activations_figure_rows_and_colorbars():
    rng = np.random.default_rng(3)
    acts = {"from_rgb": rng.normal(size=(8, 16, 16)), "encode.0": rng.normal(size=(6, 8, 8)),
            "output": rng.random((3, 32, 32))}
    fig = viz.activations_figure(acts, channels=4)
    images = [ax for ax in fig.axes if ax.images and ax.get_visible()]
    assert len(images) == 4 + 4 + 3
    assert len(fig.axes) == 12 + 3  # 3x4 grid + one colorbar per row
    # one colour scale per row
    row = [ax.images[0] for ax in fig.axes[:4]]
    assert len({im.get_clim() for im in row}) == 1 and row[0].get_cmap().name == "magma"
    with pytest.raises(InputError):
        viz.activations_figure(acts, blocks=["decode.9"])


def test_pca_trajectories_figure_paths_and_variance():
    t = np.linspace(0, 1, 5)[:, None]
    fig = viz.pca_trajectories_figure({"straight": t * np.ones(136), "bent": t * np.ones(136) + np.sin(np.pi * t)})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["straight", "bent"]
    assert "PC1" in ax.get_xlabel() and "%" in ax.get_xlabel()


def test_is_untrained_reads_the_typed_flag_never_a_label(reenactment, synthetic_dg):
    assert viz.is_untrained(WeightsInfo("official", trained=False))  # the flag decides, not the text
    assert not viz.is_untrained(WeightsInfo("synthetic (untrained)", trained=True))
    assert viz.is_untrained(synthetic_dg) and viz.is_untrained(reenactment)  # anything carrying .weights
    assert viz.is_untrained(True) and not viz.is_untrained(False)
    with pytest.raises(InputError, match="WeightsInfo"):
        viz.is_untrained("synthetic (untrained)")


# --- house style, the UNTRAINED mark, static 3D ----------------------------------------------------------------
def _fontsizes(fig) -> list[float]:
    from matplotlib.text import Text

    viz.fit_texts(fig)
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text()]
    for ax in fig.axes:
        sizes += [t.get_fontsize() for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text()]
    return sizes


def test_house_style_dpi_and_minimum_font_size(face, reenactment):
    figs = [viz.image_grid([np.zeros((8, 8, 3), np.uint8)] * 2, ["a", "b"]),
            viz.id_feature_figure(np.abs(np.random.default_rng(0).normal(size=(2, 4096))), ["a", "b"]),
            viz.sketch_hidden_figure(pose_landmarks(face, yaw=80)[:, :2]),
            viz.activations_figure({"b": np.random.default_rng(1).normal(size=(6, 8, 8))}, channels=4),
            viz.eye_correction_figure(reenactment.decoded_landmarks[0], reenactment.target_landmarks[0],
                                      face[:, :2])]
    for fig in figs:
        assert fig.dpi == viz.FIGURE_DPI >= 100
        assert min(_fontsizes(fig)) >= viz.MIN_FONTSIZE


def test_role_colours_are_the_same_in_2d_and_3d(face):
    fig = viz.overlay_landmarks(None, {"source": face, "reference": face + 5, "target (IDSG)": face - 5})
    colours = {line.get_label(): line.get_color() for line in fig.axes[0].get_lines() if line.get_label()[0] != "_"}
    assert colours == {"source": viz.ROLE_COLORS["source"], "reference": viz.ROLE_COLORS["reference"],
                       "target (IDSG)": viz.ROLE_COLORS["target"]}
    fig3 = viz.landmarks_3d({"reference (posed)": face, "source": face})
    assert [t.line.color for t in fig3.data] == [viz.ROLE_COLORS["reference"], viz.ROLE_COLORS["source"]]
    assert len(set(viz.ROLE_COLORS.values())) == 3


def test_mark_untrained_one_mechanism_for_axes_figures_plotly_and_images(face):
    fig = viz.landmark_code_figure(np.zeros(136), untrained=True)
    assert viz.has_untrained_banner(fig) and viz.UNTRAINED_LABEL in fig._suptitle.get_text()
    assert not viz.has_untrained_banner(viz.landmark_code_figure(np.zeros(136)))
    for make in (lambda u: viz.style_code_figure(np.zeros((2, 128)), untrained=u),
                 lambda u: viz.pca_trajectories_figure({"a": np.random.default_rng(0).normal(size=(5, 136))},
                                                       untrained=u),
                 lambda u: viz.id_feature_figure(np.ones(4096), untrained=u)):
        assert viz.has_untrained_banner(make(True)) and not viz.has_untrained_banner(make(False))
    p = viz.landmarks_3d({"reference": face}, untrained=True)
    assert viz.has_untrained_banner(p)
    viz.mark_untrained(p)  # idempotent
    assert sum(a.name == viz.UNTRAINED_GID for a in p.layout.annotations) == 1
    img = np.zeros((64, 64, 3), np.uint8)
    marked = viz.stamp_untrained(img)  # images: the banner burnt into the pixels
    assert marked is not img and img.max() == 0 and marked[:5].max() > 0 and marked[-5:].max() == 0
    assert (marked[1, 1] == viz.UNTRAINED_RGB).all()
    assert viz.stamp_untrained(img, False) is img
    with pytest.raises(InputError, match="stamp_untrained"):
        viz.mark_untrained(img)  # figures only
    with pytest.raises(InputError):
        viz.mark_untrained("not a figure")


def test_long_titles_wrap_so_nothing_leaves_the_canvas():
    fig = viz.image_grid([np.zeros((8, 8, 3), np.uint8)] * 2, ["a very long column title " * 2, "b"], size=1.8,
                         suptitle="a suptitle that is much wider than the two small cells of this figure")
    for dpi in (100, 300):
        assert viz.text_overflow(fig, dpi=dpi) == []


def test_text_overflow_notices_a_cut_title():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2))
    fig.text(0.5, 0.5, "this text is far too long for a two-inch canvas", ha="left")
    assert viz.text_overflow(fig)


def test_signed_degrees_never_minus_zero():
    assert [viz.signed_degrees(a) for a in (-0.3, 0.0, 14.6, -30)] == ["0°", "0°", "+15°", "-30°"]


def test_alignment_figure_maps_five_points_near_the_template(face):
    from dgkit.align import ARCFACE_TEMPLATE_256, alignment_matrix, five_points

    photo = np.full((400, 300, 3), 90, np.uint8)
    lm = face * 0.6 + [40.0, 80.0, 0.0]
    fig = viz.alignment_figure(photo, lm)
    assert len(fig.axes) == 3 and "similarity" in fig._suptitle.get_text()
    m = alignment_matrix(lm)
    mapped = five_points(lm) @ m[:, :2].T + m[:, 2]
    assert np.abs(mapped - ARCFACE_TEMPLATE_256).max() < 15


def test_interpolation_paths_figure_shows_the_squeezed_midpoint(face):
    a, b = pose_landmarks(face, yaw=-45), pose_landmarks(face, yaw=45)
    mid_straight = viz.face_width((a + b) / 2)
    mid_posed = viz.face_width(pose_landmarks(face, yaw=0))
    assert mid_straight < 0.85 * mid_posed
    fig = viz.interpolation_paths_figure(face)
    lines = {line.get_label() for line in fig.axes[1].get_lines()}
    assert lines == {"straight line in points", "turning the head"}


def test_dg_overview_figure_marks_every_network_panel(synthetic_dg):
    from dgkit.reenact import reenact_photos

    rng = np.random.default_rng(0)
    src = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    face = mean_face_3d()
    result = reenact_photos(src, src, dg=synthetic_dg, backend=lambda img: face) if False else None
    del result
    crop = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    run = synthetic_dg.reenact(crop, face[:, :2])

    class _Aligned:
        def __init__(self, c, lm):
            self.crop, self.crop_landmarks = c, lm

    photo = type("P", (), {"dg": run, "source": _Aligned(crop, face), "reference": _Aligned(crop, face)})()
    fig = viz.dg_overview_figure(photo)
    banners = [ax for ax in fig.axes if any(t.get_gid() == viz.UNTRAINED_GID for t in ax.texts)]
    assert len(banners) == 7  # code, decoded, target, sketch, identity, style, face
    texts = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    for shape in ("(1,136)", "(1,4096)", "(1,256,256)", "(1,128)"):
        assert shape in texts or any(shape in ax.get_title() for ax in fig.axes)
    assert viz.has_untrained_banner(fig)


def test_plotly_to_matplotlib_static_view_keeps_traces_and_front_camera(face):
    fig3 = viz.landmarks_3d({"reference": face, "source": face + 3}, title="t<br><sup>sub</sup>", untrained=True)
    static = viz.plotly_to_matplotlib(fig3)
    ax = static.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["reference", "source"]
    assert ax.azim == pytest.approx(-90) and ax.elev == pytest.approx(0)
    assert "static view" in ax.get_title() and viz.has_untrained_banner(static)
    png = viz.figure_png_bytes(static)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_notebook_renderer_is_offline_with_a_png_fallback(face):
    import plotly.io as pio

    viz.setup_notebook()
    assert pio.renderers.default == viz.PLOTLY_RENDERER
    bundle = pio.renderers[viz.PLOTLY_RENDERER].to_mimebundle(viz.landmarks_3d({"reference": face}).to_dict())
    assert set(bundle) == {"application/vnd.plotly.v1+json", "image/png"}  # no text/html, no CDN script
    import base64

    assert base64.b64decode(bundle["image/png"])[:4] == b"\x89PNG"


def test_notebook_pngs_use_a_palette_and_stay_small():
    fig = viz.image_grid([np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)] * 2)
    full, small = viz.figure_png_bytes(fig), viz.figure_png_bytes(fig, colors=viz.NOTEBOOK_PNG_COLORS)
    from PIL import Image
    import io

    img = Image.open(io.BytesIO(small))
    assert img.mode == "P" and len(small) < len(full)
    assert img.size == Image.open(io.BytesIO(full)).size


def test_loss_curves_figure_keeps_the_legend_outside_the_curves(tmp_path):
    log = tmp_path / "losses.csv"
    keys = [f"loss_{i}" for i in range(10)]
    rows = ["step,time_s," + ",".join(keys)] + [f"{s},0.1," + ",".join(str(1 / (s + k + 1)) for k in range(10))
                                                 for s in range(5)]
    log.write_text("\n".join(rows) + "\n")
    fig = viz.loss_curves_figure({"IDSG": log, "RFG": log})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == keys
    fig.draw_without_rendering()
    r = fig.canvas.get_renderer()
    assert ax.get_legend().get_window_extent(r).x0 >= ax.get_window_extent(r).x1 - 1  # right of the axes
    assert len({(line.get_color(), line.get_linestyle()) for line in ax.get_lines()}) == 10
    assert viz.text_overflow(fig) == []


def test_eye_correction_figure_numbers_points_and_draws_the_moves(face):
    from dgkit.eyes import correct_eyes
    from dgkit.geometry import edit_expression

    closed = edit_expression(face, eyes_open=-0.8)[:, :2]
    corrected = correct_eyes(face[:, :2], closed)
    fig = viz.eye_correction_figure(face[:, :2], corrected, closed)
    eye = fig.axes[1]
    labels = {t.get_text() for t in eye.texts}
    assert {str(i) for i in range(36, 42)} <= labels
    arrows = [c for c in eye.texts if getattr(c, "arrow_patch", None) is not None]
    assert len(arrows) == 2  # points 37 and 38 move
    assert "upper lid = lower lid" in fig._suptitle.get_text()
