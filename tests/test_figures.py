"""dgkit.figures: paper grids/strips, export with recorded config, rebuild from the config."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from dgkit import figures, viz
from dgkit.errors import ConfigError, InputError
from dgkit.geometry import mean_face_3d
from dgkit.interpolate import interpolate_codes, pose_sweep


def _astronaut_landmarks() -> list:
    """Landmarks roughly on the astronaut's face (image px): mean face scaled and moved; no detector needed."""
    face = mean_face_3d()
    return (face * [0.62, 0.62, 0.62] + [135.0, 40.0, 0.0]).tolist()


@pytest.fixture(scope="module")
def crop():
    return np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)


def test_source_reference_grid_layout(synthetic_dg, crop):
    face = mean_face_3d()
    refs = face[None, :, :2]
    fig = figures.source_reference_grid(synthetic_dg, crop, refs, source_titles=["me"], reference_titles=["r1"])
    axes = np.array(fig.axes).reshape(2, 2)
    assert [ax.get_title() for ax in axes[0, 1:]] == ["r1"]
    assert axes[1, 0].get_ylabel() == "me"
    assert all(viz.has_untrained_banner(ax) for ax in axes[1, 1:])
    assert not viz.has_untrained_banner(axes[1, 0])
    assert all(len(ax.images) == 1 for ax in axes.flat[1:])
    with pytest.raises(InputError):
        figures.source_reference_grid(synthetic_dg, crop, refs, reference_titles=["a", "b"])


def test_source_reference_grid_with_baseline_rows(synthetic_dg, crop):
    face = mean_face_3d()
    fig = figures.source_reference_grid(synthetic_dg, crop, face[None, :, :2], source_landmarks=face[None])
    axes = np.array(fig.axes).reshape(3, 2)
    assert "warp baseline" in axes[2, 0].texts[0].get_text()
    assert len(axes[2, 1].images) == 1 and not viz.has_untrained_banner(axes[2, 1])
    assert viz.has_untrained_banner(axes[1, 1])


def test_interpolation_and_pose_strips(synthetic_dg, crop):
    face = mean_face_3d()
    res = interpolate_codes(synthetic_dg, face[:, :2], face[:, :2] + [0, 4], [0, 1], source=crop, render=False)
    fig = figures.interpolation_strip(res, rows=("reference", "sketch"))
    assert [ax.get_title() for ax in fig.axes[:2]] == ["t = 0.00", "t = 1.00"]
    assert [fig.axes[0].get_ylabel(), fig.axes[2].get_ylabel()] == ["reference", "target sketch"]
    assert [viz.has_untrained_banner(ax) for ax in fig.axes] == [False, False, True, True]
    with pytest.raises(InputError):
        figures.interpolation_strip(res)  # no images were rendered
    sweep = pose_sweep(synthetic_dg, face, [-30, 30])
    fig = figures.pose_sweep_strip(sweep)
    assert [ax.get_title() for ax in fig.axes] == ["yaw -30°", "yaw +30°"]
    fig = figures.interpolation_strip(res, rows=("reference", "sketch"), source=crop)
    axes = np.array(fig.axes).reshape(2, 3)
    assert not axes[0, 0].axison and axes[1, 0].get_xlabel() == "source"
    assert np.array_equal(axes[1, 0].images[0].get_array(), crop)


@pytest.fixture(scope="module")
def exported(synthetic_dg, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fig")
    photo = folder / "face.png"
    from dgkit.io import sample_image

    Image.fromarray(sample_image("astronaut")).save(photo)
    spec = {"figure": "source_reference_grid",
            "faces": {"me": {"path": str(photo), "landmarks": _astronaut_landmarks()}},
            "sources": ["me"], "references": [{"face": "me", "yaw": 20}], "params": {"size": 1.0}}
    before = json.dumps(spec)
    fig, config = figures.build_figure(spec, dg=synthetic_dg)
    assert json.dumps(spec) == before  # the spec is not modified
    import io

    fig.savefig(io.BytesIO(), format="png", dpi=30, bbox_inches="tight")  # as a notebook displays it first
    paths = figures.export_figure(fig, folder / "out" / "grid", dpi=60, config=config)
    return folder, photo, fig, paths


def test_export_writes_every_format_and_the_config(exported, synthetic_weights, synthetic_dg):
    _, photo, fig, paths = exported
    assert [p.name for p in paths] == ["grid.png", "grid.pdf", "grid.svg", "grid.json"]
    assert all(p.stat().st_size > 0 for p in paths)
    assert paths[1].read_bytes().startswith(b"%PDF") and b"<svg" in paths[2].read_bytes()[:2000]
    config = json.loads(paths[3].read_text())
    face = config["faces"]["me"]
    from dgkit.io import read_image

    assert face["sha256"] == figures.array_sha256(read_image(photo))
    assert config["weights"]["label"] == "synthetic (untrained)" and config["weights"]["trained"] is False
    assert all(len(f["sha256"]) == 64 for f in config["weights"]["files"].values())
    assert {"dgkit", "torch"} <= set(config["versions"]) and config["export"]["dpi"] == 60
    assert config["seeds"]["synthetic_weights"] == 1234
    info = figures.weights_from_record(config)  # the JSON record round-trips to the typed WeightsInfo
    assert info == synthetic_dg.weights and info.trained is False
    with pytest.raises(ConfigError, match="records no weights"):
        figures.weights_from_record({"figure": "source_reference_grid"})
    png = np.asarray(Image.open(paths[0]))
    assert png.shape[1] == round(fig.get_figwidth() * 60)


def test_figure_from_config_rebuilds_the_same_pixels(exported, synthetic_dg):
    _, _, _, paths = exported
    rebuilt = figures.figure_from_config(paths[3], dg=synthetic_dg)
    original = np.asarray(Image.open(paths[0]).convert("RGBA"))
    assert np.array_equal(figures.figure_png(rebuilt, dpi=60), original)


def test_figure_from_config_notices_a_changed_input(exported, synthetic_dg, tmp_path):
    _, photo, _, paths = exported
    config = json.loads(paths[3].read_text())
    changed = tmp_path / "changed.png"
    img = np.asarray(Image.open(photo)).copy()
    img[0, 0] ^= 1
    Image.fromarray(img).save(changed)
    config["faces"]["me"]["path"] = str(changed)
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="changed"):
        figures.figure_from_config(edited, dg=synthetic_dg)


def _with_other_weights(config: dict) -> dict:
    """The recorded config as if the figure had been made with other weight files (another label, sha256)."""
    config = json.loads(json.dumps(config))
    config["weights"]["label"] = "official"
    for rec in config["weights"]["files"].values():
        rec["sha256"] = "0" * 64
    return config


def test_rebuild_checks_the_recorded_weights(exported, synthetic_dg, tmp_path):
    _, _, _, paths = exported
    recorded = json.loads(paths[3].read_text())
    other = tmp_path / "other.json"
    other.write_text(json.dumps(_with_other_weights(recorded)))
    with pytest.raises(ConfigError, match="recorded weights do not match") as err:
        figures.figure_from_config(other, dg=synthetic_dg)
    assert "'official'" in str(err.value) and "differs" in str(err.value) and "--no-check" in str(err.value)
    spec = figures.load_config(other)
    with pytest.raises(ConfigError, match="recorded weights do not match"):  # build_figure itself checks
        figures.build_figure(spec, dg=synthetic_dg)
    _, rebuilt = figures.build_figure(spec, dg=synthetic_dg, check=False)  # accepted: the new weights recorded
    assert rebuilt["weights"]["label"] == recorded["weights"]["label"]
    assert rebuilt["weights"]["files"] == recorded["weights"]["files"]


@pytest.mark.slow
def test_cli_rebuild_refuses_other_weights_unless_no_check(exported, synthetic_weights_env, tmp_path):
    import argparse

    _, _, _, paths = exported
    other = tmp_path / "other.json"
    other.write_text(json.dumps(_with_other_weights(json.loads(paths[3].read_text()))))
    parser = argparse.ArgumentParser()
    figures.register_cli(parser.add_subparsers())
    args = parser.parse_args(["figure", str(other), "-o", str(tmp_path / "again"), "--formats", "png", "--dpi", "30"])
    with pytest.raises(ConfigError, match="recorded weights do not match"):
        args.func(args)
    assert not (tmp_path / "again.png").exists()
    args = parser.parse_args(["figure", str(other), "-o", str(tmp_path / "again"), "--formats", "png", "--dpi", "30",
                              "--no-check"])
    assert args.func(args) == 0
    assert json.loads((tmp_path / "again.json").read_text())["weights"]["files"] == \
        json.loads(paths[3].read_text())["weights"]["files"]


def test_export_refuses_to_overwrite_an_input(exported):
    folder, photo, fig, paths = exported
    config = json.loads(paths[3].read_text())
    before = photo.read_bytes()
    with pytest.raises(InputError, match="overwrite"):
        figures.export_figure(fig, folder / "face", formats=("png",), dpi=20, config=config)
    assert photo.read_bytes() == before


def test_bad_specs_raise_config_errors(tmp_path, synthetic_dg):
    with pytest.raises(ConfigError):
        figures.build_figure({"figure": "nope"}, dg=synthetic_dg)
    with pytest.raises(ConfigError):
        figures.build_figure({"figure": "pose_sweep_strip", "faces": {}}, dg=synthetic_dg)
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ConfigError):
        figures.figure_from_config(tmp_path / "x.json")
    with pytest.raises(InputError):
        figures.export_figure(viz.image_grid([np.zeros((4, 4), np.uint8)]), tmp_path / "f", formats=("gif",))


@pytest.mark.slow
def test_cli_rebuilds_an_exported_config(exported, synthetic_weights_env, tmp_path):
    import argparse

    _, _, _, paths = exported
    parser = argparse.ArgumentParser()
    figures.register_cli(parser.add_subparsers())
    args = parser.parse_args(["figure", str(paths[3]), "-o", str(tmp_path / "again"), "--formats", "png",
                              "--dpi", "60"])
    assert args.func(args) == 0
    again = np.asarray(Image.open(tmp_path / "again.png").convert("RGBA"))
    assert np.array_equal(again, np.asarray(Image.open(paths[0]).convert("RGBA")))
    assert (tmp_path / "again.json").exists()


def test_exports_contain_every_text_the_figure_shows(synthetic_dg, crop, tmp_path):
    """The grid's title and column headers are inside the canvas at export resolution (nothing cut off)."""
    face = mean_face_3d()
    refs = np.stack([face[:, :2], face[:, :2] + 2])
    fig = figures.source_reference_grid(synthetic_dg, [crop, crop], refs, size=1.2,
                                        reference_titles=["yaw +30, mouth_open +0.3, smile +0.1"] * 2,
                                        source_titles=["astronaut (mirrored)", "astronaut"])
    assert viz.has_untrained_banner(fig)
    for dpi in (100, 300):
        assert viz.text_overflow(fig, dpi=dpi) == []
    paths = figures.export_figure(fig, tmp_path / "grid", formats=("png",), dpi=300)
    w, h = Image.open(paths[0]).size
    assert (w, h) == (round(fig.get_figwidth() * 300), round(fig.get_figheight() * 300))
