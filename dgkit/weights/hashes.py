"""sha256 and verification results of weight files, cached by (path, size, mtime) in the user cache.

Hashing 820 MB and loading every tensor takes seconds; :func:`file_sha256` and :func:`verify_file` do it once per
version of a file and remember the answer in ``cache_dir()/file-hashes.json`` (a read-only cache only costs
speed).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from .. import checkpoint
from .manifest import HASH_CACHE_NAME
from .recipe import matches_seed1234
from .records import read_json, write_json_atomic
from .search import cache_dir

__all__ = ["cached_facts", "file_sha256", "remember", "sha256_file", "verify_file"]

CHUNK = 1 << 20  # bytes read or copied at a time


def _hash_cache_file() -> Path:
    return cache_dir() / HASH_CACHE_NAME


def _file_identity(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


def cached_facts(path: Path) -> dict:
    """The cached facts about ``path`` if it has not changed since (same size and mtime), else {}."""
    key, size, mtime = _file_identity(path)
    entry = read_json(_hash_cache_file()).get(key)
    if isinstance(entry, dict) and entry.get("size") == size and entry.get("mtime_ns") == mtime:
        return entry
    return {}


def remember(path: Path, **facts: object) -> None:
    """Store facts (sha256, verified kind) about ``path``; a read-only cache only costs speed."""
    key, size, mtime = _file_identity(path)
    with contextlib.suppress(OSError):
        data = read_json(_hash_cache_file())
        entry = data.get(key)
        if not (isinstance(entry, dict) and entry.get("size") == size and entry.get("mtime_ns") == mtime):
            entry = {"size": size, "mtime_ns": mtime}
        entry.update(facts)
        data[key] = entry
        data = {k: v for k, v in data.items() if k == key or os.path.exists(k)}  # forget deleted files
        write_json_atomic(_hash_cache_file(), data)


def sha256_file(path: Path) -> str:
    """sha256 (hex) of a file, read in 1 MiB blocks (no cache; see :func:`file_sha256`)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike, *, recheck: bool = False) -> str:
    """sha256 (hex) of a file, cached by (path, size, mtime) in ``cache_dir()/file-hashes.json``."""
    path = Path(path)
    if not recheck and (cached := cached_facts(path).get("sha256")):
        return str(cached)
    value = sha256_file(path)
    remember(path, sha256=value)
    return value


def verify_file(path: Path, kind: str, *, recheck: bool = False) -> None:
    """:func:`dgkit.checkpoint.load_checkpoint` ``(path, kind)``, skipped when this exact file verified before.

    Also remembers whether the contents are the synthetic tensors of seed 1234 (files written before
    dgkit signed its synthetic files; see :func:`dgkit.weights.file_synthetic_seed`).

    Raises:
        CheckpointError / UnsafeCheckpointError: as ``load_checkpoint``.
    """
    facts = cached_facts(path)
    if not recheck and facts.get("verified") == kind and "seed1234_content" in facts:
        return
    obj = checkpoint.load_checkpoint(path, kind)
    remember(path, verified=kind, seed1234_content=matches_seed1234(obj, kind))
