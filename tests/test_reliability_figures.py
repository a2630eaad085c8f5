"""Figure exports: atomic, not overwritten by accident, byte-reproducible SVG, rebuildable from any folder."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from dgkit import figures
from dgkit.errors import OutputExistsError
from dgkit.geometry import mean_face_3d
from dgkit.io import sample_image


def _spec(photo_path: str) -> dict:
    face = (mean_face_3d() * [0.62, 0.62, 0.62] + [135.0, 40.0, 0.0]).tolist()  # on the astronaut, no detector
    return {"figure": "source_reference_grid", "faces": {"me": {"path": photo_path, "landmarks": face}},
            "sources": ["me"], "references": [{"face": "me", "yaw": 20}], "params": {"size": 1.0}}


@pytest.fixture
def made(tmp_path, monkeypatch, synthetic_dg):
    project = tmp_path / "project"
    project.mkdir()
    Image.fromarray(sample_image()).save(project / "face.png")
    monkeypatch.chdir(project)  # the user works in the project folder and gives a relative path
    fig, config = figures.build_figure(_spec("face.png"), dg=synthetic_dg)
    return project, fig, config


def test_rebuild_from_another_folder_and_after_moving_the_folder(made, synthetic_dg, tmp_path, monkeypatch):
    project, fig, config = made
    paths = figures.export_figure(fig, project / "out" / "grid", formats=("png",), dpi=40, config=config)
    record = json.loads(paths[-1].read_text())
    assert record["faces"]["me"]["path_from_json"] == "../face.png"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    png = np.asarray(Image.open(paths[0]).convert("RGBA"))
    rebuilt = figures.figure_from_config(paths[-1], dg=synthetic_dg)
    assert np.array_equal(figures.figure_png(rebuilt, dpi=40), png)
    moved = shutil.copytree(project, tmp_path / "moved")  # a colleague gets the whole folder
    shutil.rmtree(project)
    rebuilt = figures.figure_from_config(moved / "out" / "grid.json", dg=synthetic_dg)
    assert np.array_equal(figures.figure_png(rebuilt, dpi=40), png)


def test_svg_reexports_are_byte_identical(made):
    project, fig, config = made
    a = figures.export_figure(fig, project / "a", formats=("svg", "pdf"), dpi=30, config=config)
    b = figures.export_figure(fig, project / "b", formats=("svg", "pdf"), dpi=30, config=config)
    assert a[0].read_bytes() == b[0].read_bytes()
    assert a[1].read_bytes() == b[1].read_bytes()


def test_export_refuses_existing_files_and_is_all_or_nothing(made, monkeypatch):
    project, fig, config = made
    first = figures.export_figure(fig, project / "g", formats=("png", "svg"), dpi=30, config=config)
    before = {p: p.read_bytes() for p in first}
    with pytest.raises(OutputExistsError, match="g.png.*overwrite=True"):
        figures.export_figure(fig, project / "g", formats=("png", "svg"), dpi=30, config=config)
    calls = []

    def failing_savefig(*args, **kwargs):  # the second format fails (disk full, Ctrl-C, ...)
        calls.append(kwargs.get("format"))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    original = fig.savefig
    monkeypatch.setattr(fig, "savefig", failing_savefig)
    with pytest.raises(KeyboardInterrupt):
        figures.export_figure(fig, project / "g", formats=("png", "svg"), dpi=31, config=config, overwrite=True)
    assert {p: p.read_bytes() for p in first} == before  # none of the earlier files changed
    assert [p.name for p in project.iterdir() if p.name.startswith(".")] == []
