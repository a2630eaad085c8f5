"""What a set of weight files is: per-file status (found, size, sha256, loads) and whether it is synthetic.

:func:`weights_status` (``dgkit weights status``) and :func:`dgkit.load_dg` (through :func:`synthetic_set_seed`)
use the same synthetic test, so they always agree.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from .. import checkpoint
from ..errors import DgkitError
from .hashes import cached_facts, file_sha256, verify_file
from .manifest import CHECKSUMS_NAME, OFFICIAL_FILES, SYNTHETIC_MARKER, layout_root
from .recipe import matches_seed1234
from .records import read_json
from .search import labelled_search_dirs

__all__ = ["WeightFileStatus", "file_synthetic_seed", "synthetic_seed", "synthetic_set_seed", "weights_status"]


def synthetic_seed(path: str | os.PathLike) -> int | None:
    """The seed if ``path`` (a weights folder, or a file in one) holds dgkit's synthetic weights, else None.

    Read from the folder's ``DGKIT_SYNTHETIC.json`` marker (see :func:`file_synthetic_seed` for single files).
    """
    path = Path(path).expanduser()
    candidates = [path] if path.is_dir() else []
    for name, rel in OFFICIAL_FILES.items():
        if path.as_posix().endswith(rel):
            candidates.append(layout_root(path, name))
    for folder in candidates:
        seed = read_json(folder / SYNTHETIC_MARKER).get("seed")
        if isinstance(seed, int):
            return seed
    return None


def file_synthetic_seed(path: str | os.PathLike, name: str | None = None, *, loaded: Mapping | None = None
                        ) -> int | None:
    """The seed if the weight file at ``path`` is dgkit's synthetic (untrained) weights, else None.

    Recognised, in order, by the signature written inside every synthetic file (any seed; it survives copies,
    installs and symlinks), by a ``DGKIT_SYNTHETIC.json`` marker in its weights folder, or, for files written
    before the signature existed, by contents equal to the seed-1234 synthetic tensors. :func:`weights_status` and
    :func:`dgkit.load_dg` both use this, so they always agree. ``loaded``: the file's contents when the caller
    has loaded it already (saves loading it again for the content check).
    """
    path = Path(path).expanduser()
    signature = checkpoint.read_signature(path) or {}
    if signature.get("synthetic") and isinstance(signature.get("seed"), int):
        return int(signature["seed"])
    seed = synthetic_seed(path)
    if seed is not None:
        return seed
    if name is None:
        name = next((n for n, rel in OFFICIAL_FILES.items() if path.as_posix().endswith(rel)), None)
    if name is not None and loaded is not None:
        return 1234 if matches_seed1234(loaded, name) else None
    if name is not None and path.is_file():
        with contextlib.suppress(DgkitError):
            verify_file(path, name)
            if cached_facts(path).get("seed1234_content"):
                return 1234
    return None


def synthetic_set_seed(paths: Mapping[str, str | os.PathLike], loaded: Mapping[str, Mapping] | None = None
                       ) -> int | None:
    """The seed of the first synthetic file among ``{name: path}`` (one synthetic file makes a set untrained).

    ``loaded``: ``{name: contents}`` already loaded by the caller (as :func:`dgkit.load_dg` has them).
    """
    for name, path in paths.items():
        seed = file_synthetic_seed(path, name, loaded=(loaded or {}).get(name))
        if seed is not None:
            return seed
    return None


@dataclasses.dataclass
class WeightFileStatus:
    """What :func:`weights_status` found for one weight file.

    Attributes:
        name: ``"rfg"``, ``"idsg"`` or ``"vgg_face"``.
        relative_path: the official path inside a weights folder (posix separators).
        path: where it was found (the first search folder that has it), or None.
        size: bytes, or None when not found.
        sha256: hex digest, or None when not found.
        loads_ok: it loads safely and matches the manifest.
        message: "ok", or the problems and notes (e.g. synthetic weights), one per line.
        synthetic_seed: the seed when the file is dgkit's synthetic (untrained) weights, else None.
    """

    name: str
    relative_path: str
    path: Path | None
    size: int | None
    sha256: str | None
    loads_ok: bool
    message: str
    synthetic_seed: int | None = None

    def to_dict(self) -> dict:
        """JSON-friendly copy (path as a string)."""
        data = dataclasses.asdict(self)
        data["path"] = str(self.path) if self.path is not None else None
        return data


def weights_status(weights_dir: str | os.PathLike | None = None, *, recheck: bool = False) -> list[WeightFileStatus]:
    """Check each of the three files: where it is, its size and sha256, and whether it loads.

    Hashes and successful checks are cached by (path, size, mtime), so repeated calls are cheap;
    ``recheck=True`` hashes and loads again.

    Returns:
        One :class:`WeightFileStatus` per file, in the order rfg, idsg, vgg_face.
    """
    labelled = labelled_search_dirs(weights_dir)
    statuses = []
    for name, rel in OFFICIAL_FILES.items():
        path = next((folder / rel for folder, _ in labelled if (folder / rel).is_file()), None)
        if path is None:
            where = ", ".join(str(folder) for folder, _ in labelled)
            statuses.append(
                WeightFileStatus(name, rel, None, None, None, False,
                                 f"not found (searched {where}); see `dgkit weights download`")
            )
            continue
        size = path.stat().st_size
        sha = file_sha256(path, recheck=recheck)
        notes = []
        try:
            verify_file(path, name, recheck=recheck)
            loads_ok = True
        except DgkitError as exc:
            loads_ok = False
            notes.append(str(exc))
        root = layout_root(path, name)
        recorded = read_json(root / CHECKSUMS_NAME).get("files", {}).get(rel)
        if isinstance(recorded, dict) and recorded.get("sha256") not in (None, sha):
            notes.append(
                f"its sha256 differs from the one recorded in {root / CHECKSUMS_NAME} when dgkit placed it: the "
                "file changed since (replace it with `dgkit weights download --force` if that was not you)"
            )
        seed = file_synthetic_seed(path, name) if loads_ok else synthetic_seed(root)
        if seed is not None:
            notes.append(f"synthetic random weights (seed {seed}), UNTRAINED: load_dg labels them "
                         "'synthetic (untrained)'; for tests only, outputs are meaningless")
        message = "\n".join(notes) if notes else "ok"
        statuses.append(WeightFileStatus(name, rel, path, size, sha, loads_ok, message, seed))
    return statuses
