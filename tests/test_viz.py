"""dgkit.viz: figures carry the right titles, labels, traces, aspect and UNTRAINED banners."""

from __future__ import annotations

import numpy as np
import pytest

from dgkit import viz
from dgkit.errors import InputError, LandmarkError
from dgkit.geometry import lift_to_3d, mean_face_3d, pose_landmarks
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
    photo = SimpleNamespace(source=aligned, reference=aligned, dg=reenactment, weights_label="synthetic (untrained)",
                            baselines={"naive": face[:, :2], "warp": crop})
    fig = viz.stages_figure(photo)
    assert viz.has_untrained_banner(fig.axes[3]) and "reference" in fig.axes[1].get_title()
    without = SimpleNamespace(**{**vars(photo), "dg": None, "weights_label": "none"})
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


def test_is_untrained():
    assert viz.is_untrained("synthetic (untrained)") and not viz.is_untrained("official")
    assert viz.is_untrained(True) and not viz.is_untrained(False)
