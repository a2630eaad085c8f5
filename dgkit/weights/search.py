"""Where dgkit looks for weight files: the user cache, the search folders, and :func:`locate_weights`.

Every folder is read from the environment at call time, which is also the seam tests use to isolate themselves:

- ``$DGKIT_WEIGHTS``: weights folders searched first (several separated by ``os.pathsep``);
- ``$DGKIT_REPO_WEIGHTS``: replaces the repository's ``weights/`` folder (default: ``weights/`` beside the
  ``dgkit`` package, which exists in a source checkout);
- ``$DGKIT_CACHE``: dgkit's user cache (default ``$XDG_CACHE_HOME/dgkit``, else ``~/.cache/dgkit``); its
  ``weights/`` folder is searched last.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from ..errors import WeightsNotFoundError
from .manifest import LABELS, OFFICIAL_FILES, how_to_get, official_size_text

__all__ = ["cache_dir", "labelled_search_dirs", "locate_weights", "repo_weights_dir", "weights_search_dirs"]


def cache_dir() -> Path:
    """dgkit's user cache: ``$DGKIT_CACHE``, else ``$XDG_CACHE_HOME/dgkit``, else ``~/.cache/dgkit``."""
    if os.environ.get("DGKIT_CACHE"):
        return Path(os.environ["DGKIT_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "dgkit"
    return Path.home() / ".cache" / "dgkit"


def repo_weights_dir() -> Path:
    """The repository's weights folder: ``$DGKIT_REPO_WEIGHTS``, else ``weights/`` beside the ``dgkit`` package."""
    if os.environ.get("DGKIT_REPO_WEIGHTS"):
        return Path(os.environ["DGKIT_REPO_WEIGHTS"]).expanduser()
    return Path(__file__).resolve().parents[2] / "weights"


def labelled_search_dirs(weights_dir: str | os.PathLike | None = None) -> list[tuple[Path, str]]:
    """:func:`weights_search_dirs`, each with a label for messages (``"$DGKIT_WEIGHTS"``, ``"the user cache"``)."""
    if weights_dir is not None:
        return [(Path(weights_dir).expanduser(), "the folder you gave")]
    found: list[tuple[Path, str]] = []
    for entry in os.environ.get("DGKIT_WEIGHTS", "").split(os.pathsep):
        if entry.strip():
            found.append((Path(entry.strip()).expanduser(), "$DGKIT_WEIGHTS"))
    repo = repo_weights_dir()
    if repo.is_dir():
        found.append((repo, "the repository's weights/ folder"))
    found.append((cache_dir() / "weights", "the user cache"))
    unique: list[tuple[Path, str]] = []
    seen: set[str] = set()
    for path, label in found:
        key = os.path.normcase(os.path.abspath(path))
        if key not in seen:
            seen.add(key)
            unique.append((path, label))
    return unique


def weights_search_dirs(weights_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for weight files, in order.

    With ``weights_dir`` only that folder. Otherwise ``$DGKIT_WEIGHTS`` (several folders may be separated by
    ``os.pathsep``), the repository's ``weights/`` folder (:func:`repo_weights_dir`) when it exists, and
    ``cache_dir() / "weights"``.
    """
    return [path for path, _ in labelled_search_dirs(weights_dir)]


def _find_misplaced(dirs: list[Path], basename: str, max_depth: int = 4) -> list[Path]:
    """Files named ``basename`` somewhere below ``dirs`` (e.g. a zip unpacked into an extra folder)."""
    hits: list[Path] = []
    for root in dirs:
        if not root.is_dir():
            continue
        base_depth = len(root.parts)
        for folder, subfolders, files in os.walk(root):
            if len(Path(folder).parts) - base_depth >= max_depth:
                subfolders[:] = []
            subfolders[:] = [d for d in subfolders if not d.startswith(".")]
            if basename in files:
                hits.append(Path(folder) / basename)
    return hits


def locate_weights(weights_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """Find the three weight files.

    Args:
        weights_dir: search only this folder; default: :func:`weights_search_dirs`.

    Returns:
        ``{"rfg": Path, "idsg": Path, "vgg_face": Path}``. Each file may come from a different folder; the
        first folder that has it wins. The files are not loaded here (see :func:`dgkit.weights.weights_status`).

    Raises:
        WeightsNotFoundError: listing every missing file, every folder searched, and how to get them.
    """
    labelled = labelled_search_dirs(weights_dir)
    found: dict[str, Path] = {}
    missing: list[str] = []
    for name, rel in OFFICIAL_FILES.items():
        for folder, _label in labelled:
            candidate = folder / rel
            if candidate.is_file():
                found[name] = candidate
                break
        else:
            missing.append(name)
    if not missing:
        return found

    lines = ["Missing DG weight file(s):"]
    for name in missing:
        lines.append(f"  - {OFFICIAL_FILES[name]}  ({LABELS[name]}, {official_size_text(name)})")
    lines.append("Searched, in this order:")
    for folder, label in labelled:
        note = "" if folder.is_dir() else ", does not exist"
        lines.append(f"  - {folder}  ({label}{note})")
    for name in missing:
        rel = OFFICIAL_FILES[name]
        for hit in _find_misplaced([f for f, _ in labelled], PurePosixPath(rel).name):
            lines.append(
                f"Found {hit}, but not where dgkit looks: it belongs at <weights folder>/{rel}. Move it there, "
                f"or run `dgkit weights install {hit}`."
            )
    lines.append(how_to_get())
    raise WeightsNotFoundError("\n".join(lines))
