"""Putting verified weight files into a weights folder: all of a set or none, under a lock, recorded.

Every file is verified (safe load, the manifest's keys and shapes) and copied next to its final place first;
only when all files of a set are ready are they renamed into place, and each one's size and sha256 is added to
the folder's ``CHECKSUMS.json``. Used by :mod:`dgkit.weights.install` and :mod:`dgkit.weights.download`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from .. import checkpoint
from ..errors import DgkitError, WeightsError
from ..io import lock_file
from .hashes import CHUNK, file_sha256, remember, sha256_file, verify_file
from .manifest import CHECKSUMS_NAME, LABELS, OFFICIAL_FILES, PLACEMENT_LOCK, SYNTHETIC_MARKER
from .recipe import matches_seed1234
from .records import read_json, write_json_atomic
from .search import labelled_search_dirs
from .status import synthetic_seed

__all__ = ["Staged", "default_destination", "exclusive_lock", "is_valid", "place", "place_all",
           "refuse_synthetic_destination", "stage", "temp_beside"]


def default_destination() -> Path:
    """Where downloads and installs go: the first writable of $DGKIT_WEIGHTS, the repo's weights/, the user cache.

    Folders of synthetic weights are skipped (official files never go there).

    Raises:
        WeightsError: none of them can be written to.
    """
    candidates = [path for path, _label in labelled_search_dirs(None) if synthetic_seed(path) is None]
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


def refuse_synthetic_destination(root: Path) -> None:
    """Official files must not be mixed into a folder of synthetic weights (status would call them synthetic)."""
    seed = synthetic_seed(root)
    if seed is not None:
        raise WeightsError(
            f"{root} holds synthetic random weights (seed {seed}, see {SYNTHETIC_MARKER}); official files do not go "
            "there. Choose another folder (dest=... or --dest)."
        )


def exclusive_lock(lock_path: Path) -> contextlib.AbstractContextManager:
    """An inter-process lock that waits for its holder (see :func:`dgkit.io.lock_file`)."""
    return lock_file(lock_path, wait=True)


def _record_checksum(root: Path, name: str, path: Path, sha: str, source: str) -> None:
    """Add size and sha256 of a verified file to ``root/CHECKSUMS.json``."""
    record_path = root / CHECKSUMS_NAME
    data = read_json(record_path)
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
    write_json_atomic(record_path, data)


def is_valid(path: Path, name: str) -> bool:
    """True when ``path`` loads as weight file ``name`` (cached, see :func:`dgkit.weights.hashes.verify_file`)."""
    try:
        verify_file(path, name)
        return True
    except DgkitError:
        return False


def temp_beside(final: Path) -> Path:
    """A fresh temporary name in ``final``'s folder (created), for a file that will be renamed to ``final``."""
    final.parent.mkdir(parents=True, exist_ok=True)
    return final.with_name(f".{final.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _copy_hashing(src: Path, dst: Path) -> str:
    """Copy ``src`` to ``dst`` in 1 MiB blocks and return the sha256 of the bytes written."""
    digest = hashlib.sha256()
    with open(src, "rb") as inp, open(dst, "wb") as out:
        while block := inp.read(CHUNK):
            digest.update(block)
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def _check_replaceable(final: Path, name: str, force: bool) -> bool:
    """True if ``final`` may be (re)written. False: a valid file is already there and force is off."""
    if not final.exists() or force:
        return True
    return not is_valid(final, name)


@dataclasses.dataclass
class Staged:
    """One file ready to be placed: verified, copied (or moved) to ``tmp`` beside ``final``; tmp None = kept."""

    name: str
    src: Path
    final: Path
    tmp: Path | None = None
    sha: str | None = None
    moved: bool = False  # src was renamed to tmp (put back if the transaction fails)
    delete_src: bool = False  # move requested across file systems: delete src once placed
    seed1234_content: bool = False


def stage(src: Path, root: Path, name: str, *, move: bool, force: bool) -> Staged:
    """Verify ``src`` as weight file ``name`` and copy/move it next to its final place (nothing replaced yet)."""
    final = root / OFFICIAL_FILES[name]
    if final.exists() and src.resolve() == final.resolve():
        verify_file(final, name)
        return Staged(name, src, final)
    obj = checkpoint.load_checkpoint(src, name)
    seed_content = matches_seed1234(obj, name)
    del obj
    if not _check_replaceable(final, name, force):
        if file_sha256(final) == file_sha256(src):
            return Staged(name, src, final)
        raise WeightsError(
            f"{final} already holds a valid {LABELS[name]} file that differs from {src}; it was left as it is "
            "(and nothing else was placed). Pass force=True (`--force` on the command line) to replace it."
        )
    staged = Staged(name, src, final, tmp=temp_beside(final), seed1234_content=seed_content)
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


def _unstage(staged: Staged) -> None:
    if staged.tmp is None:
        return
    with contextlib.suppress(OSError):
        if staged.moved:
            os.replace(staged.tmp, staged.src)  # give the user's file back
        else:
            staged.tmp.unlink()


def place_all(items: list[tuple[str, Path, bool]], root: Path, *, source: str, force: bool,
              stager: Callable[[str, Path, bool], Staged] | None = None) -> tuple[dict[str, Path], set[str]]:
    """Place several weight files into ``root`` as one transaction, under an inter-process lock on the folder.

    Every file is verified and copied next to its final place first; only when all of them are ready are they
    renamed into place. One that fails to verify (or a different valid file already there without ``force``)
    means none is placed. A second process placing files into the same folder waits for the first.

    Args:
        items: ``(name, source file, move)`` triples.
        stager: optional replacement for :func:`stage` (the zip install stages members it unpacks itself).

    Returns:
        ``({name: final path}, names that were kept because an identical valid file was already there)``.
    """
    stager = stager or (lambda name, src, move: stage(src, root, name, move=move, force=force))
    root.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(root / PLACEMENT_LOCK):
        staged: list[Staged] = []
        try:
            for name, src, move in items:
                staged.append(stager(name, src, move))
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
            sha = item.sha or sha256_file(item.final)
            remember(item.final, sha256=sha, verified=item.name, seed1234_content=item.seed1234_content)
            with contextlib.suppress(OSError):
                _record_checksum(root, item.name, item.final, sha, source)
    return placed, kept


def place(src: Path, root: Path, name: str, *, move: bool, source: str, force: bool) -> Path:
    """Verify ``src`` as weight file ``name`` and put it at ``root/OFFICIAL_FILES[name]`` (see :func:`place_all`)."""
    return place_all([(name, src, move)], root, source=source, force=force)[0][name]
