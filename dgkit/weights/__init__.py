"""Where the DG weight files live, and how to get them: locate, status, download, install, synthetic weights.

The three files keep the official layout (relative to a weights folder)::

    expr/checkpoints/501500_nets_ema.ckpt     RFG   about 224 MB   Google Drive zip
    expr_lm/checkpoints/30000_nets_ema.ckpt   IDSG   about 15 MB   (same zip)
    vgg_face_dag.pth                          VGG   about 580 MB   Oxford VGG-Face, converted to PyTorch

Each file is searched for in, in order: ``$DGKIT_WEIGHTS``, the repository's ``weights/`` folder
(``$DGKIT_REPO_WEIGHTS`` replaces it), and the user cache (``$DGKIT_CACHE``, else ``$XDG_CACHE_HOME/dgkit``, else
``~/.cache/dgkit``) ``/weights``. The first hit wins, file by file; the variables are read at every call. Every
file is checked with :func:`dgkit.checkpoint.load_checkpoint` (safe loading and the manifest's keys and shapes)
before dgkit places it anywhere.

Synthetic weights (random tensors made by a fixed rule, docs/weights.md) have the same layout and let everything
run offline; their outputs are meaningless.

    >>> from dgkit import weights
    >>> weights.locate_weights()          # {"rfg": Path, "idsg": Path, "vgg_face": Path} or WeightsNotFoundError
    >>> weights.download_weights()        # needs internet
    >>> weights.install_weights("~/Downloads/DG_checkpoints.zip")

The modules, one job each:

- :mod:`~dgkit.weights.manifest`: the official file list, sizes, sources and marker file names;
- :mod:`~dgkit.weights.search`: the cache and search folders, :func:`locate_weights`;
- :mod:`~dgkit.weights.hashes`: sha256 and verification results cached by (path, size, mtime);
- :mod:`~dgkit.weights.status`: :func:`weights_status` and whether files are synthetic;
- :mod:`~dgkit.weights.info`: :class:`WeightsInfo` (label, trained) of a loaded set;
- :mod:`~dgkit.weights.placing`: verified, all-or-nothing placement into a weights folder;
- :mod:`~dgkit.weights.install`: :func:`install_weights` from a zip, folder or file;
- :mod:`~dgkit.weights.download`: :func:`download_weights` (gdown and resumable HTTP);
- :mod:`~dgkit.weights.recipe`: the synthetic-weights rule and its packaged checksums;
- :mod:`~dgkit.weights.synthetic`: writing synthetic folders and the cached one;
- :mod:`~dgkit.weights.records`: the small JSON records kept beside weights;
- :mod:`~dgkit.weights.cli`: ``dgkit weights ...``.
"""

from __future__ import annotations

from .cli import register_cli
from .download import download_weights
from .hashes import file_sha256
from .info import WeightsInfo, read_trained_marker, weights_info
from .install import install_weights
from .manifest import (
    CHECKSUMS_NAME,
    DG_GDRIVE_ID,
    DG_GDRIVE_URL,
    OFFICIAL_FILES,
    SYNTHETIC_MARKER,
    TRAINED_MARKER,
    VGG_FACE_URL,
)
from .placing import default_destination
from .recipe import synthetic_state, synthetic_tensor, verify_synthetic_checksums
from .search import cache_dir, locate_weights, repo_weights_dir, weights_search_dirs
from .status import WeightFileStatus, file_synthetic_seed, synthetic_seed, synthetic_set_seed, weights_status
from .synthetic import make_synthetic_weights, synthetic_weights_dir

__all__ = [
    "CHECKSUMS_NAME",
    "DG_GDRIVE_ID",
    "DG_GDRIVE_URL",
    "OFFICIAL_FILES",
    "SYNTHETIC_MARKER",
    "TRAINED_MARKER",
    "VGG_FACE_URL",
    "WeightFileStatus",
    "WeightsInfo",
    "cache_dir",
    "default_destination",
    "download_weights",
    "file_sha256",
    "file_synthetic_seed",
    "install_weights",
    "locate_weights",
    "make_synthetic_weights",
    "read_trained_marker",
    "register_cli",
    "repo_weights_dir",
    "synthetic_seed",
    "synthetic_set_seed",
    "synthetic_state",
    "synthetic_tensor",
    "synthetic_weights_dir",
    "verify_synthetic_checksums",
    "weights_info",
    "weights_search_dirs",
    "weights_status",
]
