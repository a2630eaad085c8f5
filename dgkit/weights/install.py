"""Installing weight files you have: a downloaded zip (unpacked safely), a folder, or a single file.

:func:`install_weights` finds the files, verifies them and places them in the official layout with
:mod:`dgkit.weights.placing` (all or none). Zips are read member by member with size limits, so a damaged or
hostile archive cannot write outside the folder or fill the disk.
"""

from __future__ import annotations

import os
import re
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from .. import checkpoint
from ..errors import CheckpointError, WeightsError, WeightsNotFoundError
from .hashes import CHUNK
from .manifest import LABELS, OFFICIAL_FILES, kind_of_basename, official_bytes
from .placing import Staged, default_destination, place_all, refuse_synthetic_destination, stage, temp_beside
from .status import synthetic_seed

__all__ = ["ZIP_SIZE_FACTOR", "install_from_zip", "install_weights", "zip_member_limit"]

ZIP_SIZE_FACTOR = 1.5  # a zip member more than this times the official file's size is refused


def zip_member_limit(kind: str) -> int:
    """The most bytes a zip member for weight file ``kind`` may unpack to (1.5 x the official size + 1 MiB)."""
    return int(official_bytes(kind) * ZIP_SIZE_FACTOR) + (1 << 20)


def _unsafe_member(member: str) -> bool:
    """Absolute paths, drive letters and '..' parts are refused (a zip must not write outside its folder)."""
    posix = member.replace("\\", "/")
    return posix.startswith("/") or bool(re.match(r"^[A-Za-z]:", posix)) or ".." in PurePosixPath(posix).parts


def _check_member_size(archive_path: Path, member: zipfile.ZipInfo, name: str, size: int) -> None:
    if size > zip_member_limit(name):
        raise WeightsError(
            f"{archive_path} was refused: its member {member.filename} is {size:,} bytes or more once unpacked, "
            f"far more than the official {LABELS[name]} file ({official_bytes(name):,} bytes). It is not "
            "the DG download (or it is damaged); nothing was placed."
        )


def _unpack_member(archive: zipfile.ZipFile, archive_path: Path, member: zipfile.ZipInfo, name: str,
                   tmp: Path) -> None:
    """Stream one member to ``tmp``, stopping as soon as it grows beyond the allowed size."""
    limit, written = zip_member_limit(name), 0
    try:
        with archive.open(member) as inp, open(tmp, "wb") as out:
            while block := inp.read(CHUNK):
                written += len(block)
                if written > limit:
                    _check_member_size(archive_path, member, name, written)
                out.write(block)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise WeightsError(
            f"{archive_path} is corrupted: {member.filename} could not be unpacked ({exc}). Download it again."
        ) from None


def install_from_zip(
    archive_path: Path, root: Path, names: list[str], *, force: bool, source: str, move_archive: bool = False,
    kept: set[str] | None = None,
) -> tuple[dict[str, Path], list[str]]:
    """Unpack the wanted weight files from a zip into the layout under ``root``: all verified, then all placed.

    Members are found by file name, wherever they sit in the archive (e.g. under a top folder). A member whose
    declared size, or whose bytes while unpacking, exceed :func:`zip_member_limit` is refused before more is
    written (a "zip bomb" cannot fill the disk). ``kept`` (optional) receives the names kept as they were.

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

        def stage_member(name: str, _src: Path, _move: bool) -> Staged:
            member = chosen[name]
            tmp = temp_beside(root / OFFICIAL_FILES[name])
            try:
                _unpack_member(archive, archive_path, member, name, tmp)
                staged = stage(tmp, root, name, move=True, force=force)
                staged.moved = False  # our own temporary: discard it (not put back) if the transaction fails
                return staged
            except CheckpointError as exc:  # name the member, not dgkit's temporary file
                text = str(exc).replace(str(tmp), f"{archive_path} (member {member.filename})")
                text = text.replace("Delete it and get the file again.", "Download the archive again.")
                raise type(exc)(text) from None
            finally:
                tmp.unlink(missing_ok=True)

        placed, kept_now = place_all([(name, archive_path, True) for name in chosen], root, source=source,
                                     force=force, stager=stage_member)
    if kept is not None:
        kept.update(kept_now)
    if move_archive and placed:
        archive_path.unlink()
    return placed, absent


def _looks_like_torch_zip(path: Path) -> bool:
    """torch.save's zip format also is a zip: tell it apart from a download archive."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.endswith("/data.pkl") for n in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def install_weights(
    path: str | os.PathLike,
    dest: str | os.PathLike | None = None,
    *,
    move: bool = False,
    force: bool = False,
    kept: set[str] | None = None,
) -> dict[str, Path]:
    """Put weight files you downloaded by hand into the official layout, after verifying them.

    Args:
        path: the DG zip from Google Drive, a folder (e.g. where you unpacked it; searched by file name), or a
            single file: ``vgg_face_dag.pth`` or one of the two checkpoints. A single file with another name
            (e.g. ``vgg_face_dag (1).pth``) is recognised by its contents.
        dest: weights folder; default: the first writable of ``$DGKIT_WEIGHTS``, the repository's ``weights/``
            and ``cache_dir()/weights``.
        move: move the files instead of copying (for a zip: delete it once unpacked). Default: your files are
            left untouched.
        force: replace a valid file that is already in ``dest``.
        kept: optional set that receives the names whose identical file was already in place (nothing copied).

    Returns:
        ``{name: Path}`` for the files installed (or already there, identical).

    Raises:
        WeightsNotFoundError: ``path`` does not exist or holds none of the files.
        CheckpointError / UnsafeCheckpointError: a file does not verify (then none of the files is placed).
        WeightsError: an unusable archive, synthetic weights, or a different valid file already in ``dest``
            (use ``force``).
    """
    kept = set() if kept is None else kept
    src = Path(path).expanduser()
    root = Path(dest).expanduser() if dest is not None else default_destination()
    if not src.exists():
        raise WeightsNotFoundError(f"{src} does not exist. Give the zip, folder or file you downloaded.")
    refuse_synthetic_destination(root)
    if synthetic_seed(src) is not None:  # copies would lose the marker and pass for real weights
        raise WeightsError(
            f"{src} holds dgkit's synthetic random weights, not the official files; they are not installed. Use "
            "the synthetic folder directly (weights_dir=...)."
        )
    source = f"installed from {src.resolve()}"
    wanted_list = ", ".join(PurePosixPath(rel).name for rel in OFFICIAL_FILES.values())

    if src.is_file() and zipfile.is_zipfile(src) and not _looks_like_torch_zip(src):
        placed, _ = install_from_zip(src, root, list(checkpoint.KINDS), force=force, source=source,
                                     move_archive=move, kept=kept)
        if not placed:
            raise WeightsNotFoundError(f"{src} holds none of the weight files ({wanted_list}).")
        return placed

    if src.is_dir():
        found: dict[str, Path] = {}
        for folder, subfolders, files in os.walk(src):
            subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
            for filename in sorted(files):
                name = kind_of_basename(filename)
                if name and name not in found:
                    found[name] = Path(folder) / filename
        if not found:
            raise WeightsNotFoundError(f"no weight files ({wanted_list}) found anywhere in {src}.")
        placed, kept_now = place_all([(name, found[name], move) for name in checkpoint.KINDS if name in found],
                                     root, source=source, force=force)
        kept.update(kept_now)
        return placed

    name = kind_of_basename(src.name)
    if name is None:  # renamed by the user or the browser: tell the kind from the contents
        obj = checkpoint.read_weights_file(src)
        name = checkpoint.guess_kind(obj)
        if name is None:
            raise CheckpointError(
                f"{src} is a PyTorch file but none of the DG weight files (its keys match neither the RFG, the "
                "IDSG nor the VGG-Face layout)."
            )
        checkpoint.verify_state_dicts(obj, name, source=src)
        del obj
    placed, kept_now = place_all([(name, src, move)], root, source=source, force=force)
    kept.update(kept_now)
    return placed
