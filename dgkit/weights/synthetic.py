"""Writing synthetic (random, untrained) weight folders, and the cached seed-1234 folder tests and demos use.

The tensors follow :mod:`dgkit.weights.recipe`; this module puts them on disk in the official layout, with a
``DGKIT_SYNTHETIC.json`` marker and a signature inside every file so they are never taken for real weights.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path

import torch

from .. import checkpoint
from ..errors import WeightsError
from .manifest import COMPLETE_MARKER, OFFICIAL_FILES, PLACEMENT_LOCK, SYNTHETIC_MARKER
from .placing import exclusive_lock
from .recipe import check_seed, packaged_checksums, synthetic_state, verify_synthetic_checksums
from .records import read_json, write_json_atomic
from .search import cache_dir, repo_weights_dir
from .status import synthetic_seed

__all__ = ["make_synthetic_weights", "synthetic_weights_dir"]


def _refuse_official_folder(directory: Path) -> None:
    """Synthetic weights must not land where dgkit finds the official ones without being told."""
    protected = [repo_weights_dir(), cache_dir() / "weights"]
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
    one ``torch.randn(shape) * scale`` call (:func:`dgkit.weights.recipe.synthetic_state`). With seed 1234 the
    result matches the packaged checksums and the golden file. About 820 MB on disk. A ``DGKIT_SYNTHETIC.json``
    marker records the seed, so :func:`dgkit.weights.weights_status` and the pipeline can tell these files from
    real ones.

    Returns:
        ``{"rfg": Path, "idsg": Path, "vgg_face": Path}``.

    Raises:
        InputError: ``seed`` is not an integer in [0, 2**32).
        WeightsError: ``directory`` already holds weight files that are not synthetic, or it is one of the
            folders searched for the official weights.
    """
    seed = check_seed(seed)
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
    with exclusive_lock(directory / PLACEMENT_LOCK):  # two writers into one folder: one after the other
        write_json_atomic(directory / SYNTHETIC_MARKER, marker)  # first: files here are never mistaken as real
        for name, path in targets.items():
            obj = synthetic_state(name, seed)
            # the signature inside each file keeps it labelled untrained wherever it is copied or linked
            checkpoint.save_checkpoint(obj, path, fsync=False,
                                       signature={"synthetic": True, "seed": seed, "kind": name})
            del obj
    return targets


def _synthetic_complete(folder: Path, seed: int) -> bool:
    marker = read_json(folder / COMPLETE_MARKER)
    return marker.get("seed") == seed and all((folder / rel).is_file() for rel in OFFICIAL_FILES.values())


def synthetic_weights_dir(seed: int = 1234) -> Path:
    """A cached folder of synthetic weights (``cache_dir()/synthetic-seed{seed}``), generated on first use.

    Generation (~820 MB) happens in a temporary folder, is checked against the packaged checksums (seed
    1234), gets a completion marker and is then renamed into place, so other processes never see a partial
    folder; concurrent callers wait for one another (or, without file locks, the loser discards its copy).

    Returns:
        The folder, usable as ``weights_dir`` (never one of the folders searched for official weights).
    """
    seed = check_seed(seed)
    root = cache_dir()
    final = root / f"synthetic-seed{seed}"
    if _synthetic_complete(final, seed):
        return final
    root.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(root / f".synthetic-seed{seed}.lock"):
        if _synthetic_complete(final, seed):
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".synthetic-seed{seed}.", suffix=".tmp", dir=root))
        try:
            tmp.chmod(0o755)  # mkdtemp makes it private; the cache is as readable as the rest of ~/.cache
            make_synthetic_weights(tmp, seed)
            if seed == packaged_checksums().get("seed"):
                verify_synthetic_checksums(tmp, seed)
            write_json_atomic(tmp / COMPLETE_MARKER, {"seed": seed, "torch_version": torch.__version__})
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
