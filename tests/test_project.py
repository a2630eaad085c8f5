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


# --- the top-level API ------------------------------------------------------------------------------------------
def _init_tree():
    import ast

    return ast.parse((ROOT / "dgkit" / "__init__.py").read_text())


def _type_checking_imports() -> tuple[set[str], set[str]]:
    """(names imported from dgkit's modules, submodules imported) inside ``if TYPE_CHECKING:`` of __init__.py."""
    import ast

    names, submodules = set(), set()
    for node in _init_tree().body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.level == 1, ast.dump(imp)
                (submodules if imp.module is None else names).update(a.asname or a.name for a in imp.names)
    return names, submodules


def _literal(name: str):
    import ast

    for node in _init_tree().body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not assigned in dgkit/__init__.py")


def test_every_top_level_name_is_visible_to_type_checkers():
    import dgkit
    import dgkit.errors

    lazy, submodules = _literal("_LAZY"), _literal("_SUBMODULES")
    typed_names, typed_submodules = _type_checking_imports()
    assert typed_names == set(lazy)
    assert typed_submodules == set(submodules)
    assert set(dgkit.__all__) - set(dgkit.errors.__all__) - {"__version__"} == set(lazy)
    assert len(dgkit.__all__) == len(set(dgkit.__all__))


def test_every_top_level_name_resolves_to_its_module():
    import importlib

    import dgkit

    for name, module in _literal("_LAZY").items():
        assert getattr(dgkit, name) is getattr(importlib.import_module(module), name), name
    for name in _literal("_SUBMODULES"):
        assert getattr(dgkit, name) is importlib.import_module(f"dgkit.{name}"), name
    with pytest.raises(AttributeError):
        dgkit.train_idsg  # training and weight management are not on the top level  # noqa: B018


def test_readme_lists_exactly_the_top_level_api():
    import dgkit

    readme = (ROOT / "README.md").read_text()
    section = readme.split("### The top-level API", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "`" in line]
    listed = [name for row in rows for name in re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", row.split("|")[2])]
    assert len(listed) == len(set(listed)), "a name is listed twice"
    assert set(listed) == set(dgkit.__all__) - {"__version__"}
