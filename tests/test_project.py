"""The project's own files agree with each other (install paths, pins, layout of the design card)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DESIGN_CARD_PACKAGES = ["torch", "face-alignment", "ipywidgets", "matplotlib", "plotly", "jupyterlab", "numpy",
                        "opencv-python", "nbval"]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "scripts/constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_design_card_layout():
    for path in ("notebooks", "dgkit", "weights", "tests", "environment.yml", "README.md"):
        assert (ROOT / path).exists(), path


def test_design_card_packages_are_dependencies(pyproject):
    project = pyproject["project"]
    names = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        names |= {_name(r) for r in extra}
    assert set(DESIGN_CARD_PACKAGES) <= names


def test_torch_is_a_range_and_torchvision_is_nowhere(pyproject, constraints):
    torch_req = next(r for r in pyproject["project"]["dependencies"] if _name(r) == "torch")
    assert ">=" in torch_req and "<" in torch_req, "users must be able to keep their own CUDA torch"
    assert "torch" not in constraints, "setup.sh installs torch first (TORCH_SPEC); constraints must not fight it"
    for path in ("pyproject.toml", "environment.yml", "scripts/constraints.txt", "scripts/setup.sh"):
        assert "torchvision" not in (ROOT / path).read_text().replace("Do not add torchvision", "")


def test_both_opencv_wheels_share_one_version(constraints):
    # they install into the same cv2/ folder; different versions leave a broken mix
    assert constraints["opencv-python"] == constraints["opencv-contrib-python"]


def test_environment_yml_pins_match_constraints(constraints):
    yaml = pytest.importorskip("yaml")
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip_section[0] == "torch==2.13.0", "torch first, pinned (the CPU wheel here)"
    assert "-e .[all]" in pip_section
    for line in pip_section:
        if "==" in line and not line.startswith("torch"):
            name, version = line.split("==")
            assert constraints.get(name.lower()) == version, f"{name}: environment.yml and constraints differ"


def test_readme_commands_exist():
    readme = (ROOT / "README.md").read_text()
    assert "scripts/setup.sh" in readme and (ROOT / "scripts/setup.sh").stat().st_mode & 0o111
    assert ".venv/bin/python -m pytest" in readme
    assert (ROOT / ".ci/run").stat().st_mode & 0o111
    assert ".venv/bin/python -m pytest" in (ROOT / ".ci/run").read_text()


def test_notebooks_have_a_kernelspec_and_small_outputs():
    import json

    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    for nb_path in notebooks:
        nb = json.loads(nb_path.read_text())
        assert nb["metadata"]["kernelspec"]["name"] == "python3", nb_path.name
        assert nb_path.stat().st_size < 2_000_000, f"{nb_path.name} is too large to commit"
