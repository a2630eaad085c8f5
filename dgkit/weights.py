"""Where the DG weight files live, and how to get them: locate, status, download, import, synthetic weights.

The three files keep the official layout (relative to a weights folder)::

    expr/checkpoints/501500_nets_ema.ckpt     RFG   223.6 MB   Google Drive zip
    expr_lm/checkpoints/30000_nets_ema.ckpt   IDSG   15.2 MB   (same zip)
    vgg_face_dag.pth                          VGG  580.0 MB   Oxford VGG-Face, converted to PyTorch

Each file is searched for in, in order: ``$DGKIT_WEIGHTS``, the repository's ``weights/`` folder, and the user
cache (``$DGKIT_CACHE``, else ``$XDG_CACHE_HOME/dgkit``, else ``~/.cache/dgkit``) ``/weights``. The first hit
wins, file by file. Every file is checked with :func:`dgkit.checkpoint.load_checkpoint` (safe loading and the
manifest's keys and shapes) before dgkit places it anywhere.

Synthetic weights (random tensors made by a fixed rule, docs/weights.md) have the same layout and let everything run
offline; their outputs are meaningless.

    >>> import dgkit
    >>> dgkit.locate_weights()            # {"rfg": Path, "idsg": Path, "vgg_face": Path} or WeightsNotFoundError
    >>> dgkit.download_weights()          # needs internet
    >>> dgkit.import_weights("~/Downloads/DG_checkpoints.zip")
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import functools
import hashlib
import importlib.resources
import inspect
import json
import math
import os
import re
import secrets
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath

import torch

from .checkpoint import (
    KINDS,
    expected_entries,
    guess_kind,
    load_checkpoint,
    manifest,
    _expected_file_bytes,
    read_signature,
    read_weights_file,
    save_checkpoint,
    verify_state_dicts,
)
from .errors import (
    CheckpointError,
    DgkitError,
    DownloadError,
    InputError,
    WeightsError,
    WeightsNotFoundError,
)
from .io import lock_file

__all__ = [
    "DG_GDRIVE_ID",
    "DG_GDRIVE_URL",
    "OFFICIAL_FILES",
    "VGG_FACE_URL",
    "WeightFileStatus",
    "cache_dir",
    "download_weights",
    "file_synthetic_seed",
    "import_weights",
    "synthetic_set_seed",
    "locate_weights",
    "make_synthetic_weights",
    "register_cli",
    "synthetic_seed",
    "synthetic_weights_dir",
    "verify_synthetic_checksums",
    "weights_search_dirs",
    "weights_status",
]

OFFICIAL_FILES = {
    "rfg": "expr/checkpoints/501500_nets_ema.ckpt",
    "idsg": "expr_lm/checkpoints/30000_nets_ema.ckpt",
    "vgg_face": "vgg_face_dag.pth",
}
DG_GDRIVE_ID = "1H8RqQ4GAYSVFt9q3CgIyS1CrOKQRXi7U"
DG_GDRIVE_URL = f"https://drive.google.com/file/d/{DG_GDRIVE_ID}/view"
VGG_FACE_URL = "http://www.robots.ox.ac.uk/~albanie/models/pytorch-mcn/vgg_face_dag.pth"

CHECKSUMS_NAME = "CHECKSUMS.json"  # size + sha256 of the files dgkit verified and placed in a weights folder
SYNTHETIC_MARKER = "DGKIT_SYNTHETIC.json"  # marks a folder of synthetic (random) weights
TRAINED_MARKER = "DGKIT_TRAINED.json"
_COMPLETE_MARKER = ".complete"  # written last into a cached synthetic folder
_HASH_CACHE_NAME = "file-hashes.json"  # in cache_dir(): sha256 and verification results by (path, size, mtime)

_LABELS = {"rfg": "RFG", "idsg": "IDSG", "vgg_face": "VGG-Face"}
_SIZES_MB = {"rfg": "223.6 MB", "idsg": "15.2 MB", "vgg_face": "580.0 MB"}
_SOURCES = {"rfg": DG_GDRIVE_URL, "idsg": DG_GDRIVE_URL, "vgg_face": VGG_FACE_URL}
_CHUNK = 1 << 20
_PLACEMENT_LOCK = ".dgkit-weights.lock"  # held while files are placed into a weights folder
_ZIP_SIZE_FACTOR = 1.5  # a zip member more than this times the official file's size is refused


# --- folders ------------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """dgkit's user cache: ``$DGKIT_CACHE``, else ``$XDG_CACHE_HOME/dgkit``, else ``~/.cache/dgkit``."""
    if os.environ.get("DGKIT_CACHE"):
        return Path(os.environ["DGKIT_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "dgkit"
    return Path.home() / ".cache" / "dgkit"


def _repo_weights_dir() -> Path:
    """The ``weights/`` folder beside the ``dgkit`` package (exists in a source checkout)."""
    return Path(__file__).resolve().parents[1] / "weights"


def _labelled_search_dirs(weights_dir: str | os.PathLike | None) -> list[tuple[Path, str]]:
    if weights_dir is not None:
        return [(Path(weights_dir).expanduser(), "the folder you gave")]
    found: list[tuple[Path, str]] = []
    for entry in os.environ.get("DGKIT_WEIGHTS", "").split(os.pathsep):
        if entry.strip():
            found.append((Path(entry.strip()).expanduser(), "$DGKIT_WEIGHTS"))
    repo = _repo_weights_dir()
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
    ``os.pathsep``), the repository's ``weights/`` folder when it exists, and ``cache_dir() / "weights"``.
    """
    return [path for path, _ in _labelled_search_dirs(weights_dir)]


def _default_dest() -> Path:
    """Where downloads and imports go: the first writable of $DGKIT_WEIGHTS, repo weights/, the user cache."""
    candidates = [path for path, label in _labelled_search_dirs(None) if synthetic_seed(path) is None]
    for path in candidates:
        probe = path
        while not probe.exists() and probe.parent != probe:
            probe = probe.parent
        if probe.is_dir() and os.access(probe, os.W_OK | os.X_OK):
            return path
    raise WeightsError(
        "none of the weights folders can be written to: "
        + ", ".join(str(p) for p in candidates)
        + ". Pass a writable folder (dest=... or --dest) and point $DGKIT_WEIGHTS at it."
    )


# --- locating -----------------------------------------------------------------------------------------------
def _how_to_get() -> str:
    return (
        "How to get them:\n"
        "  - run `dgkit weights download` (needs internet; or dgkit.download_weights() in Python), or\n"
        f"  - download by hand: the DG checkpoints zip from {DG_GDRIVE_URL} and VGG-Face from "
        f"{VGG_FACE_URL}, then run `dgkit weights import PATH` for each (or dgkit.import_weights(PATH)).\n"
        "  - To try dgkit without them, `dgkit weights synthetic DIR` writes random weights in the same layout "
        "(outputs are meaningless); pass weights_dir=DIR."
    )


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
        first folder that has it wins. The files are not loaded here (see :func:`weights_status`).

    Raises:
        WeightsNotFoundError: listing every missing file, every folder searched, and how to get them.
    """
    labelled = _labelled_search_dirs(weights_dir)
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
        lines.append(f"  - {OFFICIAL_FILES[name]}  ({_LABELS[name]}, {_SIZES_MB[name]})")
    lines.append("Searched, in this order:")
    for folder, label in labelled:
        note = "" if folder.is_dir() else ", does not exist"
        lines.append(f"  - {folder}  ({label}{note})")
    for name in missing:
        rel = OFFICIAL_FILES[name]
        for hit in _find_misplaced([f for f, _ in labelled], PurePosixPath(rel).name):
            lines.append(
                f"Found {hit}, but not where dgkit looks: it belongs at <weights folder>/{rel}. Move it there, "
                f"or run `dgkit weights import {hit}`."
            )
    lines.append(_how_to_get())
    raise WeightsNotFoundError("\n".join(lines))


# --- hashes and verification, cached by (path, size, mtime) ------------------------------------------------
def _hash_cache_file() -> Path:
    return cache_dir() / _HASH_CACHE_NAME


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_json_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _file_identity(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


def _cache_entry(path: Path) -> dict:
    """The cached facts about ``path`` if it has not changed since (same size and mtime), else {}."""
    key, size, mtime = _file_identity(path)
    entry = _read_json(_hash_cache_file()).get(key)
    if isinstance(entry, dict) and entry.get("size") == size and entry.get("mtime_ns") == mtime:
        return entry
    return {}


def _remember(path: Path, **facts: object) -> None:
    """Store facts (sha256, verified kind) about ``path``; a read-only cache only costs speed."""
    key, size, mtime = _file_identity(path)
    with contextlib.suppress(OSError):
        data = _read_json(_hash_cache_file())
        entry = data.get(key)
        if not (isinstance(entry, dict) and entry.get("size") == size and entry.get("mtime_ns") == mtime):
            entry = {"size": size, "mtime_ns": mtime}
        entry.update(facts)
        data[key] = entry
        data = {k: v for k, v in data.items() if k == key or os.path.exists(k)}  # forget deleted files
        _write_json_atomic(_hash_cache_file(), data)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike, *, recheck: bool = False) -> str:
    """sha256 (hex) of a file, cached by (path, size, mtime) in ``cache_dir()/file-hashes.json``."""
    path = Path(path)
    if not recheck and (cached := _cache_entry(path).get("sha256")):
        return str(cached)
    value = _sha256_file(path)
    _remember(path, sha256=value)
    return value


def _verify_file(path: Path, name: str, *, recheck: bool = False) -> None:
    """load_checkpoint(path, name), skipped when this exact file (size, mtime) verified before.

    Also remembers whether the contents are the synthetic tensors of seed 1234 (files written before
    dgkit signed its synthetic files; see :func:`file_synthetic_seed`).
    """
    if not recheck and _cache_entry(path).get("verified") == name and "seed1234_content" in _cache_entry(path):
        return
    obj = load_checkpoint(path, name)
    _remember(path, verified=name, seed1234_content=_is_seed1234_content(obj, name))


def _is_seed1234_content(obj: Mapping, name: str) -> bool:
    """True when a loaded file's first tensor starts with the values of the seed-1234 synthetic file."""
    sums = _packaged_checksums()
    for key, tensor in _iter_seed_keyed({name: obj}):
        recorded = sums.get(key)
        if isinstance(recorded, dict) and "first" in recorded:
            first = torch.tensor(recorded["first"], dtype=torch.float32)
            return bool(torch.equal(tensor.reshape(-1)[: first.numel()].float(), first))
    return False


def file_synthetic_seed(path: str | os.PathLike, name: str | None = None, *, loaded: Mapping | None = None
                        ) -> int | None:
    """The seed if the weight file at ``path`` is dgkit's synthetic (untrained) weights, else None.

    Recognised, in order, by the signature written inside every synthetic file (any seed; it survives copies,
    imports and symlinks), by a ``DGKIT_SYNTHETIC.json`` marker in its weights folder, or, for files written
    before the signature existed, by contents equal to the seed-1234 synthetic tensors. :func:`weights_status` and
    :func:`dgkit.load_dg` both use this, so they always agree. ``loaded``: the file's contents when the caller
    has loaded it already (saves loading it again for the content check).
    """
    path = Path(path).expanduser()
    signature = read_signature(path) or {}
    if signature.get("synthetic") and isinstance(signature.get("seed"), int):
        return int(signature["seed"])
    seed = synthetic_seed(path)
    if seed is not None:
        return seed
    if name is None:
        name = next((n for n, rel in OFFICIAL_FILES.items() if path.as_posix().endswith(rel)), None)
    if name is not None and loaded is not None:
        return 1234 if _is_seed1234_content(loaded, name) else None
    if name is not None and path.is_file():
        with contextlib.suppress(DgkitError):
            _verify_file(path, name)
            if _cache_entry(path).get("seed1234_content"):
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


def _layout_root(path: Path, name: str) -> Path:
    """The weights folder that holds ``path`` at its official relative path."""
    return path.parents[len(PurePosixPath(OFFICIAL_FILES[name]).parts) - 1]


# --- status -------------------------------------------------------------------------------------------------
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
    labelled = _labelled_search_dirs(weights_dir)
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
            _verify_file(path, name, recheck=recheck)
            loads_ok = True
        except DgkitError as exc:
            loads_ok = False
            notes.append(str(exc))
        root = _layout_root(path, name)
        recorded = _read_json(root / CHECKSUMS_NAME).get("files", {}).get(rel)
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


# --- placing verified files ---------------------------------------------------------------------------------
def _record_checksum(root: Path, name: str, path: Path, sha: str, source: str) -> None:
    """Add size and sha256 of a verified file to ``root/CHECKSUMS.json``."""
    record_path = root / CHECKSUMS_NAME
    data = _read_json(record_path)
    data.setdefault(
        "note",
        "size and sha256 of the weight files dgkit verified (safe load, keys, shapes, dtypes) when it placed "
        "them here",
    )
    files = data.setdefault("files", {})
    files[OFFICIAL_FILES[name]] = {
        "size": path.stat().st_size,
        "sha256": sha,
        "source": source,
        "verified_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    _write_json_atomic(record_path, data)


def _is_valid(path: Path, name: str) -> bool:
    try:
        _verify_file(path, name)
        return True
    except DgkitError:
        return False


def _temp_beside(final: Path) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    return final.with_name(f".{final.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _copy_hashing(src: Path, dst: Path) -> str:
    """Copy ``src`` to ``dst`` in 1 MiB blocks and return the sha256 of the bytes written."""
    digest = hashlib.sha256()
    with open(src, "rb") as inp, open(dst, "wb") as out:
        while block := inp.read(_CHUNK):
            digest.update(block)
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def _check_replaceable(final: Path, name: str, force: bool) -> bool:
    """True if ``final`` may be (re)written. False: a valid file is already there and force is off."""
    if not final.exists() or force:
        return True
    return not _is_valid(final, name)


def _refuse_synthetic_dest(root: Path) -> None:
    """Official files must not be mixed into a folder of synthetic weights (status would call them synthetic)."""
    seed = synthetic_seed(root)
    if seed is not None:
        raise WeightsError(
            f"{root} holds synthetic random weights (seed {seed}, see {SYNTHETIC_MARKER}); official files do not go "
            "there. Choose another folder (dest=... or --dest)."
        )


@dataclasses.dataclass
class _Staged:
    """One file ready to be placed: verified, copied (or moved) to ``tmp`` beside ``final``; tmp None = kept."""

    name: str
    src: Path
    final: Path
    tmp: Path | None = None
    sha: str | None = None
    moved: bool = False  # src was renamed to tmp (put back if the transaction fails)
    delete_src: bool = False  # move requested across file systems: delete src once placed
    seed1234_content: bool = False


def _stage(src: Path, root: Path, name: str, *, move: bool, force: bool) -> _Staged:
    """Verify ``src`` as weight file ``name`` and copy/move it next to its final place (nothing replaced yet)."""
    final = root / OFFICIAL_FILES[name]
    if final.exists() and src.resolve() == final.resolve():
        _verify_file(final, name)
        return _Staged(name, src, final)
    obj = load_checkpoint(src, name)
    seed_content = _is_seed1234_content(obj, name)
    del obj
    if not _check_replaceable(final, name, force):
        if file_sha256(final) == file_sha256(src):
            return _Staged(name, src, final)
        raise WeightsError(
            f"{final} already holds a valid {_LABELS[name]} file that differs from {src}; it was left as it is "
            "(and nothing else was placed). Pass force=True (`--force` on the command line) to replace it."
        )
    staged = _Staged(name, src, final, tmp=_temp_beside(final), seed1234_content=seed_content)
    try:
        if move:
            try:
                os.replace(src, staged.tmp)  # same file system: a rename
                staged.moved = True
            except OSError:
                staged.sha = _copy_hashing(src, staged.tmp)
                staged.delete_src = True
        else:
            staged.sha = _copy_hashing(src, staged.tmp)
    except BaseException:
        staged.tmp.unlink(missing_ok=True)
        raise
    return staged


def _unstage(staged: _Staged) -> None:
    if staged.tmp is None:
        return
    with contextlib.suppress(OSError):
        if staged.moved:
            os.replace(staged.tmp, staged.src)  # give the user's file back
        else:
            staged.tmp.unlink()


def _place_all(items: list[tuple[str, Path, bool]], root: Path, *, source: str, force: bool,
               stage: Callable[[str, Path, bool], _Staged] | None = None) -> tuple[dict[str, Path], set[str]]:
    """Place several weight files into ``root`` as one transaction, under an inter-process lock on the folder.

    Every file is verified and copied next to its final place first; only when all of them are ready are they
    renamed into place. One that fails to verify (or a different valid file already there without ``force``)
    means none is placed. A second process placing files into the same folder waits for the first.

    Args:
        items: ``(name, source file, move)`` triples.
        stage: optional replacement for :func:`_stage` (the zip import stages members it unpacks itself).

    Returns:
        ``({name: final path}, names that were kept because an identical valid file was already there)``.
    """
    stage = stage or (lambda name, src, move: _stage(src, root, name, move=move, force=force))
    root.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(root / _PLACEMENT_LOCK):
        staged: list[_Staged] = []
        try:
            for name, src, move in items:
                staged.append(stage(name, src, move))
        except BaseException:
            for item in staged:
                _unstage(item)
            raise
        placed: dict[str, Path] = {}
        kept: set[str] = set()
        for item in staged:
            placed[item.name] = item.final
            if item.tmp is None:
                kept.add(item.name)
                continue
            os.replace(item.tmp, item.final)
            if item.delete_src:
                item.src.unlink(missing_ok=True)
            sha = item.sha or _sha256_file(item.final)
            _remember(item.final, sha256=sha, verified=item.name, seed1234_content=item.seed1234_content)
            with contextlib.suppress(OSError):
                _record_checksum(root, item.name, item.final, sha, source)
    return placed, kept


def _place(src: Path, root: Path, name: str, *, move: bool, source: str, force: bool) -> Path:
    """Verify ``src`` as weight file ``name`` and put it at ``root/OFFICIAL_FILES[name]`` (see _place_all)."""
    return _place_all([(name, src, move)], root, source=source, force=force)[0][name]


def _unsafe_member(member: str) -> bool:
    """Absolute paths, drive letters and '..' parts are refused (a zip must not write outside its folder)."""
    posix = member.replace("\\", "/")
    return posix.startswith("/") or bool(re.match(r"^[A-Za-z]:", posix)) or ".." in PurePosixPath(posix).parts


def _install_from_zip(
    archive_path: Path, root: Path, names: list[str], *, force: bool, source: str, move_archive: bool = False,
    kept: set[str] | None = None,
) -> tuple[dict[str, Path], list[str]]:
    """Unpack the wanted weight files from a zip into the layout under ``root``: all verified, then all placed.

    Members are found by file name, wherever they sit in the archive (e.g. under a top folder). A member whose
    declared size, or whose bytes while unpacking, exceed 1.5 times the official file's size is refused before
    more is written (a "zip bomb" cannot fill the disk). ``kept`` (optional) receives the names kept as they were.

    Returns:
        (placed ``{name: path}``, names not found in the archive).

    Raises:
        WeightsError: not a zip, corrupted, an oversized member, or a member path is absolute or contains '..'.
        CheckpointError: a member does not verify (nothing is placed at all).
    """
    try:
        archive = zipfile.ZipFile(archive_path)
    except (zipfile.BadZipFile, OSError) as exc:
        with open(archive_path, "rb") as handle:
            head = handle.read(200).lstrip().lower()
        what = "an HTML page (Google Drive's quota, virus-scan or login page?)" if head.startswith(
            (b"<!doctype html", b"<html")) else f"not a zip archive ({exc})"
        raise WeightsError(f"{archive_path} is {what}.") from None
    absent: list[str] = []
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        bad = [m.filename for m in archive.infolist() if _unsafe_member(m.filename)]
        if bad:
            raise WeightsError(
                f"{archive_path} was refused: member path(s) {', '.join(map(repr, bad[:5]))} are absolute or climb "
                "out of the folder with '..'. A genuine DG archive has plain relative paths. Nothing was unpacked."
            )
        chosen: dict[str, zipfile.ZipInfo] = {}
        for name in names:
            rel = OFFICIAL_FILES[name]
            base = PurePosixPath(rel).name
            candidates = [m for m in members if PurePosixPath(m.filename.replace("\\", "/")).name == base]
            if not candidates:
                absent.append(name)
                continue
            # prefer a member at the official relative path (possibly below a top folder)
            candidates.sort(key=lambda m: not m.filename.replace("\\", "/").endswith(rel))
            chosen[name] = candidates[0]
            _check_member_size(archive_path, candidates[0], name, candidates[0].file_size)

        def stage_member(name: str, _src: Path, _move: bool) -> _Staged:
            member = chosen[name]
            tmp = _temp_beside(root / OFFICIAL_FILES[name])
            try:
                _unpack_member(archive, archive_path, member, name, tmp)
                staged = _stage(tmp, root, name, move=True, force=force)
                staged.moved = False  # our own temporary: discard it (not put back) if the transaction fails
                return staged
            except CheckpointError as exc:  # name the member, not dgkit's temporary file
                text = str(exc).replace(str(tmp), f"{archive_path} (member {member.filename})")
                text = text.replace("Delete it and get the file again.", "Download the archive again.")
                raise type(exc)(text) from None
            finally:
                tmp.unlink(missing_ok=True)

        placed, kept_now = _place_all([(name, archive_path, True) for name in chosen], root, source=source,
                                      force=force, stage=stage_member)
    if kept is not None:
        kept.update(kept_now)
    if move_archive and placed:
        archive_path.unlink()
    return placed, absent


def _member_limit(name: str) -> int:
    return int(_expected_file_bytes(name) * _ZIP_SIZE_FACTOR) + (1 << 20)


def _check_member_size(archive_path: Path, member: zipfile.ZipInfo, name: str, size: int) -> None:
    if size > _member_limit(name):
        raise WeightsError(
            f"{archive_path} was refused: its member {member.filename} is {size:,} bytes or more once unpacked, "
            f"far more than the official {_LABELS[name]} file ({_expected_file_bytes(name):,} bytes). It is not "
            "the DG download (or it is damaged); nothing was placed."
        )


def _unpack_member(archive: zipfile.ZipFile, archive_path: Path, member: zipfile.ZipInfo, name: str,
                   tmp: Path) -> None:
    """Stream one member to ``tmp``, stopping as soon as it grows beyond the allowed size."""
    limit, written = _member_limit(name), 0
    try:
        with archive.open(member) as inp, open(tmp, "wb") as out:
            while block := inp.read(_CHUNK):
                written += len(block)
                if written > limit:
                    _check_member_size(archive_path, member, name, written)
                out.write(block)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise WeightsError(
            f"{archive_path} is corrupted: {member.filename} could not be unpacked ({exc}). Download it again."
        ) from None


# --- downloading --------------------------------------------------------------------------------------------
def _gdown_fetch(file_id: str, output_path: str | os.PathLike, *, quiet: bool = False) -> Path:
    """Download a Google Drive file with gdown (resumes a previous partial download)."""
    import gdown

    Path(output_path).parent.mkdir(parents=True, exist_ok=True)
    options = {"id": file_id, "output": str(output_path), "quiet": quiet, "resume": True}
    if "retries" in inspect.signature(gdown.download).parameters:  # gdown >= 6; pyproject allows 5.x
        options["retries"] = 3
    result = gdown.download(**options)
    if not result:
        raise DownloadError(f"gdown could not download Google Drive file {file_id}.")
    return Path(result)


class _Interrupted(Exception):
    """A transfer stopped before the end; the .part file keeps what arrived."""


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes START-END/TOTAL`` or ``bytes */TOTAL`` -> (start, total); None where absent."""
    match = re.match(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", value or "")
    if not match:
        return None, None
    start = int(match.group(1)) if match.group(1) is not None else None
    total = int(match.group(2)) if match.group(2) != "*" else None
    return start, total


def _hand_download_hint(url: str) -> str:
    return (
        f"Download it by hand in a browser from {url} and run `dgkit weights import PATH` "
        f"(or dgkit.import_weights(PATH)); see weights/README.md."
    )


def _http_fetch_once(url: str, part: Path, *, progress: bool, timeout: float) -> None:
    """One HTTP GET into ``part``, continuing it with a Range request when it already has bytes."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "dgkit (python urllib)"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: complete, or the server's file changed
            _start, total = _parse_content_range(exc.headers.get("Content-Range"))
            if total == have:
                return
            part.unlink()
            raise _Interrupted("the server refused to resume the partial file; starting again") from None
        raise DownloadError(
            f"{url} answered HTTP {exc.code} {exc.reason}. The file may have moved or the server may be down. "
            + _hand_download_hint(url)
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(
            f"could not connect to {url} ({reason}). Check the internet connection (and proxy settings: "
            "$HTTP_PROXY/$HTTPS_PROXY). " + _hand_download_hint(url)
        ) from None

    with response:
        total: int | None = None
        if have and response.status == 206:
            start, total = _parse_content_range(response.headers.get("Content-Range"))
            if start != have:  # an unexpected range: start again rather than splice wrong bytes
                part.unlink()
                raise _Interrupted(f"the server resumed at byte {start}, not {have}; starting again")
        else:
            have = 0  # the server ignored the Range header and sends everything
        if total is None and response.headers.get("Content-Length"):
            total = have + int(response.headers["Content-Length"])
        from tqdm.auto import tqdm

        with open(part, "ab" if have else "wb") as out, tqdm(
            total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
            desc=part.name.removesuffix(".part"), disable=not progress,
        ) as bar:
            if have:
                out.truncate(have)
            while True:
                try:
                    block = response.read(_CHUNK)
                except (OSError, EOFError, ValueError) as exc:  # reset, timeout, IncompleteRead
                    raise _Interrupted(str(exc) or type(exc).__name__) from None
                if not block:
                    break
                out.write(block)
                bar.update(len(block))
    got = part.stat().st_size
    if total is not None and got < total:
        raise _Interrupted(f"the connection closed after {got:,} of {total:,} bytes")
    if total is not None and got > total:
        part.unlink()
        raise DownloadError(f"{url} sent more bytes than announced; the partial file was deleted. Try again.")


def _http_download(url: str, part: Path, *, progress: bool, retries: int, timeout: float = 60.0) -> None:
    """Download ``url`` into ``part`` (resumable). Interrupted transfers are resumed up to ``retries`` times.

    Raises:
        DownloadError: HTTP error, no connection, or still interrupted after the retries (``part`` is then
            kept, so calling again resumes).
    """
    part.parent.mkdir(parents=True, exist_ok=True)
    attempt = 0
    while True:
        try:
            _http_fetch_once(url, part, progress=progress, timeout=timeout)
            return
        except _Interrupted as exc:
            if attempt < retries:
                attempt += 1
                continue
            kept = part.stat().st_size if part.exists() else 0
            raise DownloadError(
                f"the download of {url} was interrupted ({exc}). {kept:,} bytes are kept in {part}; run the same "
                f"command again to resume. " + _hand_download_hint(url)
            ) from None


def download_weights(
    dest: str | os.PathLike | None = None,
    *,
    gdrive: Callable[[str, Path], str | os.PathLike] | None = None,
    vgg_url: str = VGG_FACE_URL,
    dg_file_id: str = DG_GDRIVE_ID,
    progress: bool = True,
    force: bool = False,
    retries: int = 3,
) -> dict[str, Path]:
    """Download the official weights into ``dest`` in the official layout (needs internet).

    The DG zip (RFG + IDSG) comes from Google Drive through ``gdrive(file_id, output_path) -> path``
    (default: gdown); VGG-Face from ``vgg_url`` over HTTP, resumable: a partial ``vgg_face_dag.pth.part``
    is continued with a Range request, by later attempts and by the next call. Every file is verified with
    :func:`load_checkpoint` before it is moved into place; its size and sha256 go to ``dest/CHECKSUMS.json``.
    Files already there and valid are kept (and not downloaded again) unless ``force``.

    Args:
        dest: weights folder; default: the first writable of ``$DGKIT_WEIGHTS``, the repository's
            ``weights/``, ``cache_dir()/weights``.
        gdrive: Google Drive downloader (tests pass a fake).
        vgg_url, dg_file_id: sources.
        progress: show progress bars and messages.
        force: replace valid files too.
        retries: how often an interrupted VGG-Face transfer is resumed within this call.

    Returns:
        ``{"rfg": Path, "idsg": Path, "vgg_face": Path}`` of the files in ``dest``.

    Raises:
        DownloadError: listing each file that failed, the URL, and what to do. Files that did succeed stay
            in place.
    """
    root = Path(dest).expanduser() if dest is not None else _default_dest()
    _refuse_synthetic_dest(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the weights folder {root} ({exc}). Pass another dest.") from None

    def say(text: str) -> None:
        if progress:
            print(text, flush=True)

    result: dict[str, Path] = {}
    todo = []
    for name in KINDS:
        final = root / OFFICIAL_FILES[name]
        if not force and final.is_file() and _is_valid(final, name):
            say(f"{OFFICIAL_FILES[name]}: already present and valid, kept")
            result[name] = final
        else:
            todo.append(name)

    failures: list[str] = []
    dg_names = [name for name in ("rfg", "idsg") if name in todo]
    if dg_names:
        archive = root / ".downloads" / "DG_checkpoints.zip"
        fetch = gdrive or functools.partial(_gdown_fetch, quiet=not progress)
        try:
            say(f"downloading the DG checkpoints zip from {DG_GDRIVE_URL} ...")
            got = Path(fetch(dg_file_id, archive) or archive)
            placed, absent = _install_from_zip(got, root, dg_names, force=force, source=DG_GDRIVE_URL)
            result.update(placed)
            for name in placed:
                say(f"{OFFICIAL_FILES[name]}: verified and placed")
            if absent:
                failures.append(
                    f"the DG zip from {DG_GDRIVE_URL} holds no {', '.join(PurePosixPath(OFFICIAL_FILES[n]).name for n in absent)}"
                    ". Google Drive may have served another file; download it by hand and use `dgkit weights import`."
                )
            if got.resolve() == archive.resolve():
                got.unlink(missing_ok=True)  # unpacked (or useless): do not keep 240 MB around
        except Exception as exc:  # noqa: BLE001 - any failure of this source is reported with the others
            detail = str(exc) if isinstance(exc, DgkitError) else f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(OSError):
                if archive.is_file() and not isinstance(exc, DownloadError):
                    archive.unlink()  # a bad zip would poison a resumed download
            failures.append(
                f"DG checkpoints (RFG + IDSG) from {DG_GDRIVE_URL} (file id {dg_file_id}): {detail}\n"
                f"    What to do: open that link in a browser (Google Drive sometimes refuses scripted downloads "
                f"when a file is popular), save the zip, and run `dgkit weights import PATH_TO_ZIP`."
            )
        with contextlib.suppress(OSError):
            (root / ".downloads").rmdir()

    if "vgg_face" in todo:
        final = root / OFFICIAL_FILES["vgg_face"]
        part = final.with_name(final.name + ".part")
        try:
            say(f"downloading VGG-Face from {vgg_url} ...")
            _http_download(vgg_url, part, progress=progress, retries=retries)
            try:
                result["vgg_face"] = _place(part, root, "vgg_face", move=True, source=vgg_url, force=force)
            except WeightsError as exc:
                part.unlink(missing_ok=True)  # complete but wrong: resuming it cannot help
                raise DownloadError(
                    f"the file downloaded from {vgg_url} does not verify, so nothing was placed: {exc}"
                ) from None
            say(f"{OFFICIAL_FILES['vgg_face']}: verified and placed")
        except DownloadError as exc:
            failures.append(f"VGG-Face from {vgg_url}: {exc}")

    if failures:
        done = ", ".join(OFFICIAL_FILES[n] for n in result) or "none"
        raise DownloadError(
            f"download into {root} incomplete (in place and valid: {done}).\n  - " + "\n  - ".join(failures)
        )
    return {name: result[name] for name in KINDS}


# --- importing ----------------------------------------------------------------------------------------------
_BASENAMES = {PurePosixPath(rel).name: name for name, rel in OFFICIAL_FILES.items()}


def import_weights(
    path: str | os.PathLike,
    dest: str | os.PathLike | None = None,
    *,
    move: bool = False,
    force: bool = False,
) -> dict[str, Path]:
    """Put weight files you downloaded by hand into the official layout, after verifying them.

    Args:
        path: the DG zip from Google Drive, a folder (e.g. where you unpacked it; searched by file name), or a
            single file: ``vgg_face_dag.pth`` or one of the two checkpoints. A single file with another name
            (e.g. ``vgg_face_dag (1).pth``) is recognised by its contents.
        dest: weights folder; default as in :func:`download_weights`.
        move: move the files instead of copying (for a zip: delete it once unpacked). Default: your files are
            left untouched.
        force: replace a valid file that is already in ``dest``.

    Returns:
        ``{name: Path}`` for the files imported (or already there, identical).

    Raises:
        WeightsNotFoundError: ``path`` does not exist or holds none of the files.
        CheckpointError / UnsafeCheckpointError: a file does not verify (then none of the files is placed).
        WeightsError: an unusable archive, or a different valid file already in ``dest`` (use ``force``).
    """
    return _import_weights(path, dest, move=move, force=force, kept=set())


def _import_weights(path, dest, *, move: bool, force: bool, kept: set[str]) -> dict[str, Path]:
    """:func:`import_weights`; ``kept`` receives the names whose identical file was already in place."""
    src = Path(path).expanduser()
    root = Path(dest).expanduser() if dest is not None else _default_dest()
    if not src.exists():
        raise WeightsNotFoundError(f"{src} does not exist. Give the zip, folder or file you downloaded.")
    _refuse_synthetic_dest(root)
    if synthetic_seed(src) is not None:  # copies would lose the marker and pass for real weights
        raise WeightsError(
            f"{src} holds dgkit's synthetic random weights, not the official files; they are not imported. Use the "
            "synthetic folder directly (weights_dir=...)."
        )
    source = f"imported from {src.resolve()}"
    wanted_list = ", ".join(PurePosixPath(rel).name for rel in OFFICIAL_FILES.values())

    if src.is_file() and zipfile.is_zipfile(src) and not _looks_like_torch_zip(src):
        placed, _ = _install_from_zip(src, root, list(KINDS), force=force, source=source, move_archive=move,
                                      kept=kept)
        if not placed:
            raise WeightsNotFoundError(f"{src} holds none of the weight files ({wanted_list}).")
        return placed

    if src.is_dir():
        found: dict[str, Path] = {}
        for folder, subfolders, files in os.walk(src):
            subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
            for filename in sorted(files):
                name = _BASENAMES.get(filename)
                if name and name not in found:
                    found[name] = Path(folder) / filename
        if not found:
            raise WeightsNotFoundError(f"no weight files ({wanted_list}) found anywhere in {src}.")
        placed, kept_now = _place_all([(name, found[name], move) for name in KINDS if name in found], root,
                                      source=source, force=force)
        kept.update(kept_now)
        return placed

    name = _BASENAMES.get(src.name)
    if name is None:  # renamed by the user or the browser: tell the kind from the contents
        obj = read_weights_file(src)
        name = guess_kind(obj)
        if name is None:
            raise CheckpointError(
                f"{src} is a PyTorch file but none of the DG weight files (its keys match neither the RFG, the "
                "IDSG nor the VGG-Face layout)."
            )
        verify_state_dicts(obj, name, source=src)
        del obj
    placed, kept_now = _place_all([(name, src, move)], root, source=source, force=force)
    kept.update(kept_now)
    return placed


def _looks_like_torch_zip(path: Path) -> bool:
    """torch.save's zip format also is a zip: tell it apart from a download archive."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.endswith("/data.pkl") for n in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


# --- synthetic weights --------------------------------------------------------------------------------------
def _synthetic_tensor(seed_key: str, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """One synthetic tensor (docs/weights.md): a fresh CPU generator seeded crc32(seed_key) ^ seed, randn(shape) * scale.

    scale = 1/sqrt(prod(shape[1:])) (fan-in) for 2-d and larger shapes, 0.1 for 1-d ones. float32, contiguous.
    """
    generator = torch.Generator().manual_seed(zlib.crc32(seed_key.encode("utf-8")) ^ seed)
    scale = 1.0 / math.sqrt(math.prod(shape[1:])) if len(shape) >= 2 else 0.1
    return torch.randn(shape, generator=generator, dtype=torch.float32) * scale


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise InputError(f"seed must be an integer in [0, 2**32), got {seed!r}.")
    return seed


def _synthetic_object(kind: str, seed: int) -> dict:
    """The object ``torch.save``d in a synthetic ``kind`` file: ``{net: {key: tensor}}``, or flat for VGG."""
    info = manifest()["files"][kind]
    nets: dict[str, dict[str, torch.Tensor]] = {}
    for net, net_info in info["nets"].items():
        # the rule: statistics buffers would need zeros/ones; the DG files have none, so the rule covers all
        if net_info.get("buffer_count", 0) != 0 or any(
            entry["dtype"] != "float32" or entry["key"].rsplit(".", 1)[-1] in
            ("running_mean", "running_var", "num_batches_tracked") for entry in net_info["entries"]
        ):
            raise AssertionError(f"manifest net {net!r} has buffers or non-float32 tensors; the synthetic rule does not cover it")
        nets[net] = {
            entry["key"]: _synthetic_tensor(entry["seed_key"], tuple(entry["shape"]), seed)
            for entry in net_info["entries"]
        }
    if kind == "vgg_face":
        return nets["vgg_face_dag"]
    return nets


def _refuse_official_folder(directory: Path) -> None:
    """Synthetic weights must not land where dgkit finds the official ones without being told."""
    protected = [_repo_weights_dir(), cache_dir() / "weights"]
    target = os.path.normcase(os.path.abspath(directory))
    for folder in protected:
        if target == os.path.normcase(os.path.abspath(folder)):
            raise WeightsError(
                f"refusing to write synthetic (random) weights into {directory}: dgkit looks there for the official "
                "weights and would then use random ones without notice. Pick another folder and pass it as "
                "weights_dir."
            )


def make_synthetic_weights(directory: str | os.PathLike, seed: int = 1234) -> dict[str, Path]:
    """Write the three weight files with deterministic random tensors (docs/weights.md), in the official layout.

    Every tensor of the manifest gets its own ``torch.Generator`` seeded ``zlib.crc32(seed_key) ^ seed`` and
    one ``torch.randn(shape) * scale`` call. With seed 1234 the result matches the packaged checksums and the
    golden file. About 820 MB on disk. A ``DGKIT_SYNTHETIC.json`` marker records the seed, so
    :func:`weights_status` and the pipeline can tell these files from real ones.

    Returns:
        ``{"rfg": Path, "idsg": Path, "vgg_face": Path}``.

    Raises:
        WeightsError: ``directory`` already holds weight files that are not synthetic, or it is one of the
            folders searched for the official weights.
    """
    seed = _check_seed(seed)
    directory = Path(directory).expanduser()
    _refuse_official_folder(directory)
    targets = {name: directory / rel for name, rel in OFFICIAL_FILES.items()}
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing and synthetic_seed(directory) is None:
        raise WeightsError(
            f"{directory} already holds weight files ({', '.join(existing)}) that are not synthetic; they were "
            "left untouched. Choose an empty folder for synthetic weights."
        )
    directory.mkdir(parents=True, exist_ok=True)
    marker = {
        "seed": seed,
        "recipe": "torch.randn(shape, generator=Generator().manual_seed(crc32(seed_key) ^ seed)) * scale",
        "warning": "synthetic random weights, for tests and offline try-outs only: outputs are meaningless",
        "torch_version": torch.__version__,
    }
    with _exclusive_lock(directory / _PLACEMENT_LOCK):  # two writers into one folder: one after the other
        _write_json_atomic(directory / SYNTHETIC_MARKER, marker)  # first: files here are never mistaken as real
        for name, path in targets.items():
            obj = _synthetic_object(name, seed)
            # the signature inside each file keeps it labelled untrained wherever it is copied or linked
            save_checkpoint(obj, path, fsync=False, signature={"synthetic": True, "seed": seed, "kind": name})
            del obj
    return targets


def synthetic_seed(path: str | os.PathLike) -> int | None:
    """The seed if ``path`` (a weights folder, or a file in one) holds dgkit's synthetic weights, else None."""
    path = Path(path).expanduser()
    candidates = [path] if path.is_dir() else []
    for name, rel in OFFICIAL_FILES.items():
        if path.as_posix().endswith(rel):
            candidates.append(_layout_root(path, name))
    for folder in candidates:
        seed = _read_json(folder / SYNTHETIC_MARKER).get("seed")
        if isinstance(seed, int):
            return seed
    return None


@functools.lru_cache(maxsize=1)
def _packaged_checksums() -> dict:
    text = importlib.resources.files("dgkit").joinpath("assets/weights_checksums_seed1234.json").read_text("utf-8")
    return json.loads(text)


def _tensor_sums(tensor: torch.Tensor) -> tuple[float, float]:
    """(sum, sum of |x|) in float64, in 16M-element chunks (bounded memory for the 102M-element fc6)."""
    flat = tensor.reshape(-1)
    total = absolute = 0.0
    for chunk in flat.split(1 << 24):
        chunk64 = chunk.double()
        total += float(chunk64.sum())
        absolute += float(chunk64.abs_().sum())
    return total, absolute


def _iter_seed_keyed(state: Mapping) -> Iterator[tuple[str, torch.Tensor]]:
    """(seed_key, tensor) for a mapping kind -> loaded object (as load_checkpoint returns)."""
    for kind, obj in state.items():
        flat_net = "vgg_face_dag" if kind == "vgg_face" else None
        if flat_net:
            for key, tensor in obj.items():
                yield f"{flat_net}.{key}", tensor
        else:
            for net, sd in obj.items():
                for key, tensor in sd.items():
                    yield f"{net}.{key}", tensor


def verify_synthetic_checksums(directory_or_state: str | os.PathLike | Mapping, seed: int = 1234) -> None:
    """Compare synthetic weights with the packaged checksums (seed 1234 only).

    Args:
        directory_or_state: a weights folder, or ``{"rfg": obj, "idsg": obj, "vgg_face": obj}`` as
            :func:`load_checkpoint` returns them (a subset is checked as far as it goes), or a flat
            ``{seed_key: tensor}`` mapping.
        seed: must be 1234 (the only seed with packaged checksums).

    Checks for each seed key: the derived integer seed, ``sum`` and ``abs_sum`` (float64; relative tolerance
    1e-6, because the summation order differs) and the first 4 values (exactly).

    Raises:
        InputError: another seed.
        CheckpointError: listing every tensor that differs or is missing (then torch's random number generator
            differs from the reference, torch 2.13.0).
    """
    reference = _packaged_checksums()
    if seed != reference.get("seed"):
        raise InputError(f"checksums are packaged for seed {reference.get('seed')} only, not {seed}.")
    expected_keys = [k for k in reference if k != "seed"]
    if isinstance(directory_or_state, (str, os.PathLike)):
        folder = Path(directory_or_state)
        problems = []
        for name, rel in OFFICIAL_FILES.items():  # one file at a time: at most 580 MB in memory
            try:
                verify_synthetic_checksums({name: load_checkpoint(folder / rel, name)}, seed)
            except CheckpointError as exc:
                problems.append(str(exc))
        if problems:
            raise CheckpointError("\n".join(problems))
        return
    if set(directory_or_state) <= set(KINDS):
        pairs = dict(_iter_seed_keyed(directory_or_state))
        nets = {net for kind in directory_or_state for net in expected_entries(kind)}
        expected_keys = [k for k in expected_keys if k.split(".", 1)[0] in nets]
    else:
        pairs = dict(directory_or_state)

    problems = []
    for seed_key in expected_keys:
        ref = reference[seed_key]
        tensor = pairs.get(seed_key)
        if tensor is None:
            problems.append(f"{seed_key}: missing")
            continue
        derived = zlib.crc32(seed_key.encode("utf-8")) ^ seed
        if derived != ref["seed"]:
            problems.append(f"{seed_key}: derived seed {derived} != {ref['seed']}")
        total, absolute = _tensor_sums(tensor)
        first = [float(v) for v in tensor.reshape(-1)[:4].tolist()]
        if first != [float(v) for v in ref["first"]]:
            problems.append(f"{seed_key}: first values {first} != {ref['first']}")
        elif not math.isclose(absolute, ref["abs_sum"], rel_tol=1e-6):
            problems.append(f"{seed_key}: abs_sum {absolute!r} != {ref['abs_sum']!r}")
        elif abs(total - ref["sum"]) > 1e-6 * abs(ref["sum"]) + 1e-9 * ref["abs_sum"]:
            problems.append(f"{seed_key}: sum {total!r} != {ref['sum']!r}")
    if problems:
        raise CheckpointError(
            f"{len(problems)} synthetic tensor(s) differ from weights_checksums_seed1234.json:\n  - "
            + "\n  - ".join(problems)
            + f"\nThe reference was made with torch 2.13.0 (this is {torch.__version__}); a different random number "
            "generator makes every golden comparison fail."
        )


def _exclusive_lock(lock_path: Path) -> contextlib.AbstractContextManager:
    """An inter-process lock that waits for its holder (see :func:`dgkit.io.lock_file`)."""
    return lock_file(lock_path, wait=True)


def _synthetic_complete(folder: Path, seed: int) -> bool:
    marker = _read_json(folder / _COMPLETE_MARKER)
    return marker.get("seed") == seed and all((folder / rel).is_file() for rel in OFFICIAL_FILES.values())


def synthetic_weights_dir(seed: int = 1234) -> Path:
    """A cached folder of synthetic weights (``cache_dir()/synthetic-seed{seed}``), generated on first use.

    Generation (~820 MB) happens in a temporary folder, is checked against the packaged checksums (seed
    1234), gets a completion marker and is then renamed into place, so other processes never see a partial
    folder; concurrent callers wait for one another (or, without file locks, the loser discards its copy).

    Returns:
        The folder, usable as ``weights_dir`` (never one of the folders searched for official weights).
    """
    seed = _check_seed(seed)
    root = cache_dir()
    final = root / f"synthetic-seed{seed}"
    if _synthetic_complete(final, seed):
        return final
    root.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(root / f".synthetic-seed{seed}.lock"):
        if _synthetic_complete(final, seed):
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".synthetic-seed{seed}.", suffix=".tmp", dir=root))
        try:
            tmp.chmod(0o755)  # mkdtemp makes it private; the cache is as readable as the rest of ~/.cache
            make_synthetic_weights(tmp, seed)
            if seed == _packaged_checksums().get("seed"):
                verify_synthetic_checksums(tmp, seed)
            _write_json_atomic(tmp / _COMPLETE_MARKER, {"seed": seed, "torch_version": torch.__version__})
            if final.exists():  # left incomplete by a crash before dgkit used markers, or edited by hand
                stale = root / f".synthetic-seed{seed}.stale-{secrets.token_hex(4)}"
                os.rename(final, stale)
                shutil.rmtree(stale, ignore_errors=True)
            try:
                os.rename(tmp, final)
            except OSError:
                if not _synthetic_complete(final, seed):  # not a lost race: a real failure
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


# --- command line -------------------------------------------------------------------------------------------
def _human_size(size: int | None) -> str:
    return "-" if size is None else f"{size / 1e6:.1f} MB"


def _cli_status(args: argparse.Namespace) -> int:
    statuses = weights_status(args.dir, recheck=args.recheck)
    ok = all(s.loads_ok for s in statuses)
    if args.json:
        print(json.dumps([s.to_dict() for s in statuses], indent=2))
        return 0 if ok else 1
    print("Searched: " + ", ".join(str(p) for p in weights_search_dirs(args.dir)))
    header = f"{'file':<9} {'size':>9}  {'sha256':<16}  {'loads':<13}  found at"
    print(header)
    print("-" * len(header))
    for s in statuses:
        where = str(s.path) if s.path else f"NOT FOUND ({s.relative_path})"
        sha = s.sha256[:16] if s.sha256 else "-"
        loads = ("yes UNTRAINED" if s.synthetic_seed is not None else "yes") if s.loads_ok else ("NO" if s.path else "-")
        print(f"{s.name:<9} {_human_size(s.size):>9}  {sha:<16}  {loads:<13}  {where}")
    notes: dict[str, list[str]] = {}  # message -> files, so a note shared by all files prints once
    for s in statuses:
        if s.path is not None and s.message != "ok":
            notes.setdefault(s.message, []).append(s.name)
    for message, names in notes.items():
        print(f"\n{', '.join(names)}: {message}")
    if ok and any(s.synthetic_seed is not None for s in statuses):
        print("\nAll three weight files load, but synthetic ones are UNTRAINED: load_dg labels the set "
              "'synthetic (untrained)' and its images are not real results.")
    elif ok:
        print("\nAll three weight files are present and load.")
    else:
        print("\nSome weight files are missing or broken.\n" + _how_to_get())
    return 0 if ok else 1


def _cli_download(args: argparse.Namespace) -> int:
    placed = download_weights(args.dest, force=args.force)
    for name, path in placed.items():
        print(f"{name:<9} {path}")
    return 0


def _cli_import(args: argparse.Namespace) -> int:
    kept: set[str] = set()
    placed = _import_weights(args.path, args.dest, move=args.move, force=args.force, kept=kept)
    for name, path in placed.items():
        what = "kept (the same file was already there)" if name in kept else "placed"
        print(f"{name:<9} {what}: {path}")
    missing = [n for n in KINDS if n not in placed]
    if missing:
        print("not in this import (get them separately): " + ", ".join(OFFICIAL_FILES[n] for n in missing))
    return 0


def _cli_synthetic(args: argparse.Namespace) -> int:
    paths = make_synthetic_weights(args.dir, seed=args.seed)
    for name, path in paths.items():
        print(f"{name:<9} {path}")
    print(f"Synthetic random weights (seed {args.seed}): for tests and offline try-outs only, outputs are meaningless.")
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dgkit weights status|download|import|synthetic``."""
    parser = subparsers.add_parser("weights", help="find, check, download or import the DG weight files",
                                   description="Find, check, download or import the DG weight files.")
    commands = parser.add_subparsers(dest="weights_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])

    status = commands.add_parser("status", help="where each file is, its size and sha256, and whether it loads")
    status.add_argument("--dir", default=None, help="look only in this folder")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.add_argument("--recheck", action="store_true", help="hash and load again instead of using the cache")
    status.set_defaults(func=_cli_status)

    download = commands.add_parser("download", help="download the official files (needs internet)")
    download.add_argument("--dest", default=None, help="weights folder (default: repository weights/ or cache)")
    download.add_argument("--force", action="store_true", help="replace valid files that are already there")
    download.set_defaults(func=_cli_download)

    imp = commands.add_parser("import", help="place a zip, folder or file you downloaded by hand")
    imp.add_argument("path", help="the DG zip, a folder, or vgg_face_dag.pth")
    imp.add_argument("--dest", default=None, help="weights folder (default: repository weights/ or cache)")
    imp.add_argument("--move", action="store_true", help="move instead of copy (default: your files stay)")
    imp.add_argument("--force", action="store_true", help="replace valid files that are already there")
    imp.set_defaults(func=_cli_import)

    synthetic = commands.add_parser("synthetic", help="write random weights in the official layout (untrained; for trying dgkit offline)")
    synthetic.add_argument("dir", help="an empty folder (not weights/)")
    synthetic.add_argument("--seed", type=int, default=1234, help="seed (1234 matches the golden file)")
    synthetic.set_defaults(func=_cli_synthetic)
