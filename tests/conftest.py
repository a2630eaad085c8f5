"""Shared pytest fixtures. Keep each fixture small and documented; add new ones under a section heading.

Weights
    synthetic_weights      session: folder of synthetic weights (seed 1234, docs/weights.md), official layout
    synthetic_weights_env  function: $DGKIT_WEIGHTS points at that folder (so load_dg() etc. find it)
    isolated_weights       function: no real weights folder is visible; caches go into tmp_path

Models
    synthetic_dg           session: DualGenerator on the synthetic weights (do not mutate)
"""

from __future__ import annotations

from pathlib import Path

import pytest


# --- weights ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def synthetic_weights() -> Path:
    """Folder with the three synthetic weight files (seed 1234) in the official layout.

    Generated once into the user cache (``$DGKIT_CACHE``/``~/.cache/dgkit``/synthetic-seed1234, ~820 MB,
    a few seconds) and reused by later test runs. Read-only for tests: copy files before changing them.
    """
    from dgkit.weights import synthetic_weights_dir

    return synthetic_weights_dir(1234)


@pytest.fixture
def synthetic_weights_env(synthetic_weights: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the synthetic weights the first place dgkit searches ($DGKIT_WEIGHTS); returns the folder."""
    monkeypatch.setenv("DGKIT_WEIGHTS", str(synthetic_weights))
    return synthetic_weights


@pytest.fixture
def isolated_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Hide every real weights folder and cache from dgkit.weights for one test (docs/weights.md, "Folders").

    Only through the documented environment variables, which dgkit reads at every call: $DGKIT_WEIGHTS is unset,
    $DGKIT_CACHE is ``tmp_path/"cache"`` and $DGKIT_REPO_WEIGHTS replaces the repository's ``weights/`` folder by
    ``tmp_path/"repo-weights"`` (created, empty). Returns ``tmp_path``.
    """
    repo = tmp_path / "repo-weights"
    repo.mkdir()
    monkeypatch.delenv("DGKIT_WEIGHTS", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("DGKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DGKIT_REPO_WEIGHTS", str(repo))
    return tmp_path


# --- models -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def synthetic_dg(synthetic_weights: Path):
    """A :class:`dgkit.DualGenerator` with the synthetic (untrained) weights, on CPU, sketch_intensity "demo".

    Shared by the whole session: tests must not change its state (set ``sketch_intensity`` back if they do).
    """
    from dgkit.pipeline import load_dg

    return load_dg(synthetic_weights, device="cpu")


# --- markers ------------------------------------------------------------------------------------------------
# Every notebook item (nbval, from notebooks/) gets the ``notebook`` marker and every test in a browser test file
# the ``browser`` marker, so that ``pytest -m "not slow and not notebook and not browser"`` is the fast subset.
BROWSER_TEST_FILES = {"test_browser.py", "test_browser_live.py"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.path))
        if path.suffix == ".ipynb":
            item.add_marker(pytest.mark.notebook)
        elif path.name in BROWSER_TEST_FILES:
            item.add_marker(pytest.mark.browser)
