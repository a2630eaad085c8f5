"""Training data for DG: the dataset folder, its loaders, and a tiny synthetic dataset.

Dataset layout
--------------
``dgkit prepare-data INPUT DATASET`` (:mod:`dgkit.training.prepare`) writes, and every loader here reads::

    DATASET/
      manifest.json   {"format": "dgkit-dataset", "version": 1, "crop": 256, "identities": [names...],
                       "num_frames": N, "skipped": {"no_face": k, "unreadable": k, ...},
                       "backend": "...", "source": "..."}
      frames.csv      one row per kept frame, in this column order:
                      index,identity,identity_id,video,frame,crop_path,sketch_path
                      (index = row number 0..N-1; identity_id = position of `identity` in manifest
                      "identities"; paths relative to DATASET, "/"-separated)
      landmarks.npy   (N, 68, 2) float32 landmarks in *crop pixels*, columns x then y (row i = frames.csv row i)
      crops/<identity>/<video>/<frame>.png      256x256 RGB ArcFace-aligned crop (dgkit.align.align_face)
      sketches/<identity>/<video>/<frame>.png   256x256 uint8 {0,255} sketch of the crop's landmarks,
                                                dgkit.sketch.draw_sketch(lm, "reference")
      id_features.npy (optional cache)          (N, 4096) float32 VGG-Face fc7, see :func:`identity_features`

What each loader gives (docs/how-dg-works.md §9, docs/conventions.md)
---------------------------------------
* :class:`LandmarkDataset` (IDSG): normalized shape vectors (crop px / 256, interleaved
  ``x0, y0, x1, y1, ...``; (136,) float32), the identity id, the index of *another frame of the same person*
  (its VGG-Face feature is the identity input x1) and of a frame of *another person* (x3).
* :class:`FaceDataset` (RFG): the crop as (3,256,256) float32 RGB in [0, 1], its sketch as
  (3,256,256) float32 with lines at 1.0 (the training intensity, not the demo's 1/255, docs/how-dg-works.md §6), the
  landmarks, the identity, and another frame of the same person as the style source ("reference_image").

The pair rule (identities with one frame)
-----------------------------------------
A person seen in one frame only cannot form a same-identity pair of two different frames. Such frames are
kept in the folder and

* :class:`FaceDataset` uses them, with the frame itself as its own style source (self-reconstruction, as
  in the paper's "in_paper" data path);
* :class:`LandmarkDataset` leaves them out (the IDSG would learn to copy the shape from its own identity
  feature) and warns how many it left out. It raises :class:`~dgkit.errors.DatasetError` when no identity
  has two frames.

Pairs are drawn by a random generator seeded with ``(seed, epoch, index)``: the same item gives the same
pair every time; call ``set_epoch(k)`` for new pairs in epoch ``k``.

Example::

    from dgkit.training.data import make_synthetic_dataset, FaceDataset, LandmarkDataset
    root = make_synthetic_dataset("/tmp/tiny")            # 3 people x 2 videos x 4 frames, < 2 s
    item = FaceDataset(root)[0]                           # dict of tensors, see the class docstring
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DatasetError, InputError
from ..face68 import CROP_SIZE, REGIONS, check_landmarks
from ..io import write_image

__all__ = [
    "FORMAT",
    "FRAMES_COLUMNS",
    "VERSION",
    "DatasetManifest",
    "FaceDataset",
    "FrameRecord",
    "LandmarkDataset",
    "identity_features",
    "load_manifest",
    "make_synthetic_dataset",
    "normalize_landmarks",
    "write_index",
]

FORMAT = "dgkit-dataset"
VERSION = 1
FRAMES_COLUMNS = ("index", "identity", "identity_id", "video", "frame", "crop_path", "sketch_path")
ID_FEATURE_DIM = 4096
_HOW_TO_CREATE = (
    "Create a dataset with `dgkit prepare-data INPUT {root}` (INPUT/<identity>/<video>/<frames>.jpg|png or "
    "INPUT/<identity>/<video>.mp4), or a tiny synthetic one with "
    "dgkit.training.data.make_synthetic_dataset({root!r})."
)
_MAX_LISTED = 5  # missing files named in an error message


# --- the index ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FrameRecord:
    """One row of ``frames.csv`` (paths relative to the dataset root, "/"-separated)."""

    index: int
    identity: str
    identity_id: int
    video: str
    frame: str
    crop_path: str
    sketch_path: str


@dataclass
class DatasetManifest:
    """A validated dataset folder: ``manifest.json`` plus the frame table and the landmarks.

    Attributes:
        root: the dataset folder.
        version, crop: layout version (1) and crop size in pixels (256).
        identities: identity names; ``identity_id`` i is ``identities[i]``.
        num_frames: N, the number of frames (rows of frames.csv).
        skipped: what preparation left out, by reason (e.g. ``{"no_face": 3, "unreadable": 1}``).
        backend: the landmark backend used (``"synthetic"`` for :func:`make_synthetic_dataset`).
        source: where the frames came from (input folder or a description).
        frames: the N rows of frames.csv.
        landmarks: (N, 68, 2) float32 crop pixels, x then y.
    """

    root: Path
    version: int
    crop: int
    identities: list[str]
    num_frames: int
    skipped: dict[str, int]
    backend: str
    source: str
    frames: list[FrameRecord] = field(repr=False)
    landmarks: np.ndarray = field(repr=False)

    @functools.cached_property
    def identity_ids(self) -> np.ndarray:
        """(N,) int64 identity id of every frame."""
        return np.array([f.identity_id for f in self.frames], dtype=np.int64)

    @functools.cached_property
    def frames_by_identity(self) -> dict[int, np.ndarray]:
        """identity id -> (k,) int64 frame indices of that person (identities without frames are absent)."""
        ids = self.identity_ids
        return {int(i): np.flatnonzero(ids == i).astype(np.int64) for i in np.unique(ids)}

    @property
    def single_frame_identities(self) -> list[str]:
        """Names of the identities with exactly one frame (see the pair rule in the module docstring)."""
        return [self.identities[i] for i, idx in self.frames_by_identity.items() if len(idx) == 1]

    def crop_file(self, index: int) -> Path:
        return self.root / self.frames[index].crop_path

    def sketch_file(self, index: int) -> Path:
        return self.root / self.frames[index].sketch_path

    def normalized_landmarks(self, index: int | np.ndarray | slice | None = None) -> np.ndarray:
        """Landmarks / crop, interleaved: (136,) for one index, (k, 136) otherwise; float32."""
        lm = self.landmarks if index is None else self.landmarks[index]
        return normalize_landmarks(lm, self.crop)


def normalize_landmarks(landmarks: np.ndarray, crop: int = CROP_SIZE) -> np.ndarray:
    """Crop-pixel landmarks (..., 68, 2) -> the networks' shape vectors (..., 136) float32 (x0, y0, x1, ...)."""
    lm = np.asarray(landmarks, dtype=np.float32)
    return (lm / np.float32(crop)).reshape(*lm.shape[:-2], 136)


def _missing_layout_error(root: Path, missing: list[str]) -> DatasetError:
    looks_raw = root.is_dir() and any(p.is_dir() for p in root.iterdir() if p.name not in ("crops", "sketches"))
    hint = (
        " It looks like raw input (identity folders): prepare it first." if looks_raw and "manifest.json" in missing
        else ""
    )
    return DatasetError(
        f"{root} is not a dgkit dataset: missing {', '.join(missing)}.{hint} " + _HOW_TO_CREATE.format(root=str(root))
    )


def load_manifest(root: str | os.PathLike, *, check_files: bool = True) -> DatasetManifest:
    """Read and validate a dataset folder (layout in the module docstring).

    Args:
        root: the dataset folder.
        check_files: also check that every crop and sketch file exists (one ``stat`` per file).

    Raises:
        DatasetError: the folder does not exist or does not match the layout; the message says what is
            missing or inconsistent and how to create a dataset.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist. " + _HOW_TO_CREATE.format(root=str(root)))
    missing = [n for n in ("manifest.json", "frames.csv", "landmarks.npy") if not (root / n).is_file()]
    if missing:
        raise _missing_layout_error(root, missing)
    try:
        meta = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{root / 'manifest.json'} is not valid JSON ({exc}). Re-run `dgkit prepare-data`.") from exc
    if not isinstance(meta, dict):
        raise DatasetError(f"{root / 'manifest.json'} must hold a JSON object. " + _HOW_TO_CREATE.format(root=str(root)))
    if meta.get("format") != FORMAT:
        raise DatasetError(f"{root / 'manifest.json'} is not a {FORMAT!r} manifest (format={meta.get('format')!r}). "
                           + _HOW_TO_CREATE.format(root=str(root)))
    if meta.get("version") != VERSION:
        raise DatasetError(f"{root} has dataset version {meta.get('version')!r}; this dgkit reads version {VERSION}. "
                           "Re-create it with this version's `dgkit prepare-data`.")
    for key in ("crop", "identities", "num_frames"):
        if key not in meta:
            raise DatasetError(f"{root / 'manifest.json'} lacks the key {key!r}. Re-run `dgkit prepare-data`.")
    crop, identities, n = int(meta["crop"]), [str(s) for s in meta["identities"]], int(meta["num_frames"])
    if crop != CROP_SIZE:
        raise DatasetError(f"{root}: crop size {crop} is not supported; DG works on {CROP_SIZE}x{CROP_SIZE} crops.")

    frames = _read_frames_csv(root / "frames.csv", identities)
    if len(frames) != n:
        raise DatasetError(f"{root}: manifest.json says {n} frames but frames.csv has {len(frames)} rows; "
                           "the dataset is incomplete. Re-run `dgkit prepare-data` (it resumes).")
    if n == 0:
        raise DatasetError(f"{root} holds no frames (every input was skipped: {meta.get('skipped', {})}). "
                           "Check the input photos/videos show faces.")
    try:
        landmarks = np.load(root / "landmarks.npy", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{root / 'landmarks.npy'} cannot be read ({exc}). Re-run `dgkit prepare-data`.") from exc
    if landmarks.shape != (n, 68, 2):
        raise DatasetError(f"{root / 'landmarks.npy'} has shape {landmarks.shape}, expected ({n}, 68, 2) "
                           "(one row per frames.csv row, x then y in crop pixels).")
    if not np.all(np.isfinite(landmarks)):
        bad = np.unique(np.nonzero(~np.isfinite(landmarks))[0])[:_MAX_LISTED].tolist()
        raise DatasetError(f"{root / 'landmarks.npy'} has NaN/inf values (rows {bad}...). Re-run `dgkit prepare-data`.")

    if check_files:
        absent = [p for f in frames for p in (f.crop_path, f.sketch_path) if not (root / p).is_file()]
        if absent:
            listed = ", ".join(absent[:_MAX_LISTED]) + (f" and {len(absent) - _MAX_LISTED} more" if len(absent) > _MAX_LISTED else "")
            raise DatasetError(f"{root}: {len(absent)} file(s) listed in frames.csv are missing: {listed}. "
                               "Re-run `dgkit prepare-data` with the same input and output (it resumes), "
                               "or restore the files.")
    return DatasetManifest(
        root=root, version=VERSION, crop=crop, identities=identities, num_frames=n,
        skipped={str(k): int(v) for k, v in dict(meta.get("skipped", {})).items()},
        backend=str(meta.get("backend", "")), source=str(meta.get("source", "")),
        frames=frames, landmarks=landmarks.astype(np.float32, copy=False),
    )


def _read_frames_csv(path: Path, identities: list[str]) -> list[FrameRecord]:
    try:
        with path.open(newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None or tuple(header) != FRAMES_COLUMNS:
                raise DatasetError(f"{path} must start with the header {','.join(FRAMES_COLUMNS)}; got {header}.")
            rows = list(reader)
    except OSError as exc:
        raise DatasetError(f"{path} cannot be read ({exc}).") from exc
    frames = []
    for i, row in enumerate(rows):
        if len(row) != len(FRAMES_COLUMNS):
            raise DatasetError(f"{path} row {i + 2} has {len(row)} columns, expected {len(FRAMES_COLUMNS)}.")
        try:
            index, ident_id = int(row[0]), int(row[2])
        except ValueError as exc:
            raise DatasetError(f"{path} row {i + 2}: index and identity_id must be integers ({exc}).") from exc
        if index != i:
            raise DatasetError(f"{path} row {i + 2}: index is {index}, expected {i} (rows are numbered 0..N-1).")
        if not (0 <= ident_id < len(identities)) or identities[ident_id] != row[1]:
            raise DatasetError(f"{path} row {i + 2}: identity {row[1]!r} with id {ident_id} does not match "
                               "manifest.json's identities list.")
        frames.append(FrameRecord(index, row[1], ident_id, row[3], row[4], row[5], row[6]))
    return frames


def write_index(
    root: str | os.PathLike,
    records: Sequence[tuple[str, str, str]],
    landmarks: np.ndarray,
    *,
    skipped: dict[str, int] | None = None,
    backend: str = "",
    source: str = "",
) -> Path:
    """Write frames.csv, landmarks.npy and manifest.json for crops/sketches already in ``root``.

    Args:
        root: the dataset folder (crops and sketches already written under ``crops/`` and ``sketches/``).
        records: one ``(identity, video, frame)`` per frame, in the order of ``landmarks``; the file paths are
            ``crops/<identity>/<video>/<frame>.png`` and ``sketches/...``. Identity ids follow sorted names.
        landmarks: (N, 68, 2) crop pixels, x then y (z columns, if any, are dropped).
        skipped, backend, source: written to manifest.json.

    Returns:
        ``root``. The manifest is written last, so a folder with a manifest has a complete index.
    """
    root = Path(root)
    lm = check_landmarks(landmarks, "landmarks", batch=True, dtype=np.float32)
    if len(lm) != len(records):
        raise InputError(f"landmarks must be (N, 68, 2) with N = len(records) = {len(records)}; got {lm.shape}.")
    identities = sorted({r[0] for r in records})
    ids = {name: i for i, name in enumerate(identities)}
    with (root / "frames.csv").open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(FRAMES_COLUMNS)
        for i, (ident, video, frame) in enumerate(records):
            rel = f"{ident}/{video}/{frame}.png"
            writer.writerow([i, ident, ids[ident], video, frame, f"crops/{rel}", f"sketches/{rel}"])
    np.save(root / "landmarks.npy", np.ascontiguousarray(lm[:, :, :2]))
    manifest = {
        "format": FORMAT, "version": VERSION, "crop": CROP_SIZE, "identities": identities, "num_frames": len(records),
        "skipped": dict(skipped or {}), "backend": backend, "source": source,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return root


# --- reading samples ----------------------------------------------------------------------------------------
def _read_png(path: Path, *, gray: bool) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetError(f"{path} is missing or not a readable image. Re-run `dgkit prepare-data` (it resumes).")
    return img if gray else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_crop(path: Path) -> torch.Tensor:
    """A crop PNG as (3, H, W) float32 RGB in [0, 1] (like torchvision's ToTensor)."""
    rgb = _read_png(path, gray=False)
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().div_(255.0)


def read_sketch(path: Path) -> torch.Tensor:
    """A sketch PNG as (3, H, W) float32: lines 1.0, background 0.0 (training intensity)."""
    gray = _read_png(path, gray=True)
    return torch.from_numpy(gray > 0).float().unsqueeze(0).expand(3, -1, -1).contiguous()


def _as_manifest(root_or_manifest: str | os.PathLike | DatasetManifest) -> DatasetManifest:
    if isinstance(root_or_manifest, DatasetManifest):
        return root_or_manifest
    return load_manifest(root_or_manifest)


class _PairedDataset(Dataset):
    """Shared pair drawing: same-identity partner and other-identity partner, seeded per (seed, epoch, index)."""

    def __init__(self, root: str | os.PathLike | DatasetManifest, *, seed: int = 0,
                 transform: Callable[[dict], dict] | None = None):
        self.manifest = _as_manifest(root)
        self.seed = int(seed)
        self.epoch = 0
        self.transform = transform
        self.single_frame_identities = self.manifest.single_frame_identities

    def set_epoch(self, epoch: int) -> None:
        """Draw different pairs in another epoch (items stay deterministic for a given (seed, epoch))."""
        self.epoch = int(epoch)

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def _same_identity_partner(self, index: int, rng: np.random.Generator) -> int:
        """Another frame of the same person; the frame itself when the person has only one."""
        pool = self.manifest.frames_by_identity[int(self.manifest.identity_ids[index])]
        others = pool[pool != index]
        return int(others[rng.integers(len(others))]) if len(others) else int(index)

    def _other_identity_partner(self, index: int, rng: np.random.Generator) -> int:
        """A frame of another person (uniform over frames), or -1 when the dataset has one person."""
        ids = self.manifest.identity_ids
        candidates = np.flatnonzero(ids != ids[index])
        return int(candidates[rng.integers(len(candidates))]) if len(candidates) else -1

    def _finish(self, item: dict) -> dict:
        return self.transform(item) if self.transform is not None else item


class LandmarkDataset(_PairedDataset):
    """Shape samples for the IDSG.

    Only frames of identities with at least two frames are items (pair rule, module docstring); a warning
    says how many identities were left out.

    Item (a dict):
        ``landmarks``: (136,) float32, crop px / 256 interleaved x0, y0, ... (the shape to reconstruct, x2);
        ``identity``: int64 tensor, its identity id;
        ``index``: int, its row in frames.csv;
        ``source_index``: int, another frame of the same identity (use its VGG-Face feature as x1);
        ``other_index``: int, a frame of another identity (x3), -1 if the dataset has one identity;
        ``other_identity``: int64 tensor, that frame's identity id (-1 if none).
    Indices are rows of frames.csv, so ``identity_features(root, dg)[item["source_index"]]`` is x1's feature.

    Args:
        root: dataset folder or a :class:`DatasetManifest`.
        seed: seeds the pair drawing (see :meth:`set_epoch`).
        transform: optional callable applied to each item dict (e.g. augmentation); returns the new dict.
    """

    def __init__(self, root: str | os.PathLike | DatasetManifest, *, seed: int = 0,
                 transform: Callable[[dict], dict] | None = None):
        super().__init__(root, seed=seed, transform=transform)
        m = self.manifest
        usable = [i for i, idx in m.frames_by_identity.items() if len(idx) >= 2]
        if not usable:
            raise DatasetError(f"{m.root}: no identity has two or more frames, so the IDSG has no same-person "
                               "pairs. Add more frames per person (e.g. more frames per video: --every 1).")
        if self.single_frame_identities:
            warnings.warn(f"{len(self.single_frame_identities)} identit{'y' if len(self.single_frame_identities) == 1 else 'ies'} "
                          f"with one frame left out of the IDSG dataset (no same-person pair): "
                          f"{', '.join(self.single_frame_identities[:_MAX_LISTED])}", stacklevel=2)
        self.indices = np.sort(np.concatenate([m.frames_by_identity[i] for i in usable]))
        self._shapes = m.normalized_landmarks()  # (N, 136) float32, computed once

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> dict:
        index = int(self.indices[item])
        rng = self._rng(index)
        other = self._other_identity_partner(index, rng)
        ids = self.manifest.identity_ids
        return self._finish({
            "landmarks": torch.from_numpy(self._shapes[index].copy()),
            "identity": torch.tensor(ids[index], dtype=torch.int64),
            "index": index,
            "source_index": self._same_identity_partner(index, rng),
            "other_index": other,
            "other_identity": torch.tensor(ids[other] if other >= 0 else -1, dtype=torch.int64),
        })


class FaceDataset(_PairedDataset):
    """Photo + sketch samples for the RFG; every frame is an item.

    Item (a dict):
        ``image``: (3, 256, 256) float32 RGB in [0, 1], the target crop;
        ``sketch``: (3, 256, 256) float32, its sketch with lines 1.0 and background 0.0;
        ``landmarks``: (136,) float32 normalized shape of the crop;
        ``identity``: int64 tensor;
        ``index``: int, row of frames.csv;
        ``reference_image``: (3, 256, 256) float32 in [0, 1], another frame of the same person (the style
            source; the frame itself for a person with one frame, see the pair rule);
        ``reference_index``: int, that frame's row.

    Args:
        root: dataset folder or a :class:`DatasetManifest`.
        seed: seeds the choice of the reference frame (see :meth:`set_epoch`).
        transform: optional callable applied to each item dict (e.g. random-resized-crop augmentation).
    """

    def __init__(self, root: str | os.PathLike | DatasetManifest, *, seed: int = 0,
                 transform: Callable[[dict], dict] | None = None):
        super().__init__(root, seed=seed, transform=transform)
        if self.single_frame_identities:
            warnings.warn(f"{len(self.single_frame_identities)} identit{'y' if len(self.single_frame_identities) == 1 else 'ies'} "
                          "with one frame: their frames are their own style reference (self-reconstruction): "
                          f"{', '.join(self.single_frame_identities[:_MAX_LISTED])}", stacklevel=2)
        self._shapes = self.manifest.normalized_landmarks()

    def __len__(self) -> int:
        return self.manifest.num_frames

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} frames")
        m = self.manifest
        reference = self._same_identity_partner(index, self._rng(index))
        return self._finish({
            "image": read_crop(m.crop_file(index)),
            "sketch": read_sketch(m.sketch_file(index)),
            "landmarks": torch.from_numpy(self._shapes[index].copy()),
            "identity": torch.tensor(m.identity_ids[index], dtype=torch.int64),
            "index": index,
            "reference_image": read_crop(m.crop_file(reference)),
            "reference_index": reference,
        })


# --- identity features --------------------------------------------------------------------------------------
def _vgg_of(dg_or_vgg) -> torch.nn.Module:
    vgg = getattr(dg_or_vgg, "vgg", dg_or_vgg)
    if not isinstance(vgg, torch.nn.Module):
        raise InputError("identity_features needs a DualGenerator (dgkit.load_dg()) or a VGGFace module, "
                         f"got {type(dg_or_vgg).__name__}.")
    return vgg


def _fingerprint(vgg: torch.nn.Module) -> str:
    """Short hash of a few weight tensors: tells which VGG-Face produced a feature cache."""
    h = hashlib.sha1()
    params = list(vgg.parameters())
    for p in (params[0], params[-1]):
        h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def identity_features(
    root: str | os.PathLike | DatasetManifest,
    dg_or_vgg,
    batch_size: int = 16,
    *,
    progress: bool = False,
    cache: bool = True,
) -> np.ndarray:
    """VGG-Face fc7 features of every crop: (N, 4096) float32, row i = frames.csv row i (IDSG input).

    Computed once and cached in ``DATASET/id_features.npy`` (with ``id_features.json`` recording which VGG
    weights and how many frames); a cache made by other weights or for another frame count is recomputed.
    About 0.15 s per crop on a 2-core CPU.

    Args:
        root: dataset folder or :class:`DatasetManifest`.
        dg_or_vgg: a :class:`dgkit.DualGenerator` (its ``vgg``) or a :class:`dgkit.models.vggface.VGGFace`.
        batch_size: crops per forward pass.
        progress: show a tqdm bar.
        cache: read/write the cache files (a read-only folder falls back to no cache, with a warning).
    """
    m = _as_manifest(root)
    vgg = _vgg_of(dg_or_vgg)
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}.")
    key = {"num_frames": m.num_frames, "vgg": _fingerprint(vgg)}
    feat_file, meta_file = m.root / "id_features.npy", m.root / "id_features.json"
    if cache and feat_file.is_file() and meta_file.is_file():
        try:
            if json.loads(meta_file.read_text()) == key:
                cached = np.load(feat_file, allow_pickle=False)
                if cached.shape == (m.num_frames, ID_FEATURE_DIM):
                    return cached.astype(np.float32, copy=False)
        except (OSError, ValueError):
            pass  # a broken cache is simply recomputed
    device = next(vgg.parameters()).device
    out = np.empty((m.num_frames, ID_FEATURE_DIM), dtype=np.float32)
    starts = range(0, m.num_frames, batch_size)
    if progress:
        from tqdm.auto import tqdm  # noqa: PLC0415

        starts = tqdm(starts, desc="VGG-Face features", unit="batch")
    was_training = vgg.training
    vgg.eval()
    try:
        with torch.inference_mode():
            for s in starts:
                batch = torch.stack([read_crop(m.crop_file(i)) for i in range(s, min(s + batch_size, m.num_frames))])
                out[s:s + len(batch)] = vgg(batch.to(device)).float().cpu().numpy()
    finally:
        vgg.train(was_training)
    if cache:
        try:
            np.save(feat_file, out)
            meta_file.write_text(json.dumps(key) + "\n")
        except OSError as exc:
            warnings.warn(f"could not cache identity features in {m.root} ({exc}); they will be recomputed.",
                          stacklevel=2)
    return out


# --- a tiny synthetic dataset -------------------------------------------------------------------------------
# Outer eye corners (points 36, 45) of the astronaut sample in image pixels (as tests/test_landmarks.py checks).
_ASTRONAUT_EYE_CORNERS = np.array([[195.0, 100.5], [256.0, 104.0]])


@functools.lru_cache(maxsize=1)
def _astronaut_with_mean_face() -> tuple[np.ndarray, np.ndarray]:
    """The astronaut photo and the mean face placed on it (68, 2) image px by the eye-corner similarity.

    No detector: the two outer eye corners fix a similarity crop -> image, so warping the photo onto
    landmarks in crop pixels yields an ArcFace-like crop of her face.
    """
    from ..geometry import mean_face_3d  # noqa: PLC0415
    from ..io import sample_image  # noqa: PLC0415

    photo = sample_image("astronaut")
    mean = mean_face_3d("crop")[:, :2]
    src, dst = mean[[36, 45]], _ASTRONAUT_EYE_CORNERS
    # complex-number form of the 2-point similarity: z -> a z + b
    zs, zd = src[:, 0] + 1j * src[:, 1], dst[:, 0] + 1j * dst[:, 1]
    a = (zd[1] - zd[0]) / (zs[1] - zs[0])
    b = zd[0] - a * zs[0]
    z = a * (mean[:, 0] + 1j * mean[:, 1]) + b
    placed = np.column_stack([z.real, z.imag])
    photo.setflags(write=False)
    placed.setflags(write=False)
    return photo, placed


def _identity_shape(mean3d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-person face shape: each part scaled (about its centroid) and shifted a little, (68, 3)."""
    out = mean3d.copy()
    for part in REGIONS.values():
        idx = list(part)
        centre = out[idx].mean(axis=0)
        scale = 1.0 + rng.uniform(-0.08, 0.08, size=2)
        out[idx, :2] = (out[idx, :2] - centre[:2]) * scale + centre[:2] + rng.uniform(-3.0, 3.0, size=2)
    return out


def make_synthetic_dataset(
    root: str | os.PathLike, *, identities: int = 3, videos: int = 2, frames: int = 4, seed: int = 0
) -> Path:
    """Write a tiny dataset in the documented layout, without a landmark detector (< 2 s for the default size).

    Every person has their own face shape (mean 3D face with parts scaled and shifted) and colour tint;
    every frame has its own head pose (yaw within +-30 deg, pitch +-10, roll +-8) and expression (mouth,
    eyes, smile). The crop is the astronaut sample photo warped onto the frame's landmarks by a simple, coarse
    piecewise-affine warp (see ``_coarse_warp``; not the occlusion-aware :func:`dgkit.baselines.warp_to_landmarks`)
    and tinted; the sketch is ``draw_sketch(lm, "reference")``.
    The output is the same for the same arguments.

    Args:
        root: a new or empty folder (an existing non-empty folder is refused: nothing is overwritten).
        identities, videos, frames: people, videos per person, frames per video (each >= 1).
        seed: random seed.

    Returns:
        ``Path(root)``; :func:`load_manifest` accepts it (backend ``"synthetic"``).
    """
    from ..geometry import edit_expression, mean_face_3d, pose_landmarks  # noqa: PLC0415
    from ..sketch import draw_sketch  # noqa: PLC0415

    for label, value in (("identities", identities), ("videos", videos), ("frames", frames)):
        if int(value) < 1:
            raise InputError(f"{label} must be >= 1, got {value}.")
    root = Path(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise DatasetError(f"{root} exists and is not an empty folder; choose a new folder for the dataset.")
    photo, photo_lm = _astronaut_with_mean_face()
    mean3d = mean_face_3d("crop")
    rng = np.random.default_rng(seed)
    records, landmarks = [], []
    for p in range(identities):
        ident = f"id{p:05d}"
        shape = _identity_shape(mean3d, rng)
        tint = rng.uniform(0.55, 1.15, size=3)
        for v in range(videos):
            video = f"vid{v:02d}"
            base_yaw, base_pitch = rng.uniform(-20, 20), rng.uniform(-6, 6)
            for f in range(frames):
                name = f"{f:05d}"
                lm3d = pose_landmarks(shape, yaw=float(np.clip(base_yaw + rng.uniform(-10, 10), -30, 30)),
                                      pitch=base_pitch + rng.uniform(-4, 4), roll=rng.uniform(-8, 8))
                lm3d = edit_expression(lm3d, mouth_open=rng.uniform(0.0, 0.3), eyes_open=rng.uniform(-0.4, 0.2),
                                       smile=rng.uniform(-0.05, 0.15))
                lm = lm3d[:, :2].astype(np.float32)
                crop = _coarse_warp(photo, photo_lm, lm)
                crop = np.clip(crop.astype(np.float32) * tint, 0, 255).astype(np.uint8)
                write_image(root / "crops" / ident / video / f"{name}.png", crop, overwrite=True)
                write_image(root / "sketches" / ident / video / f"{name}.png", draw_sketch(lm, "reference"),
                            overwrite=True)
                records.append((ident, video, name))
                landmarks.append(lm)
    return write_index(root, records, np.stack(landmarks), skipped={}, backend="synthetic",
                       source=f"make_synthetic_dataset(identities={identities}, videos={videos}, "
                              f"frames={frames}, seed={seed}) from the astronaut sample")


def _coarse_warp(photo: np.ndarray, photo_lm: np.ndarray, lm: np.ndarray, size: int = CROP_SIZE, cell: int = 4) -> np.ndarray:
    """Warp ``photo`` (landmarks ``photo_lm``, image px) so its landmarks land on ``lm`` (crop px); (size,size,3).

    A plain inverse piecewise-affine warp: the mesh is the Delaunay triangulation of the *target* landmarks
    ``lm`` plus 28 points on the crop's border (mapped into the photo by the similarity between ``lm`` and
    ``photo_lm``), and every crop pixel is looked up in the photo through its triangle's affine map. Unlike
    :func:`dgkit.baselines.warp_to_landmarks` it does not skip triangles that flip (a turned-away cheek) nor draw
    the face over the background; at this dataset's poses (yaw within +-30 deg) that makes no visible
    difference, and it is much cheaper: the map is evaluated only at the centres of ``cell``x``cell`` blocks and
    bilinearly upsampled (linear inside each triangle, so it differs from the exact map only near triangle edges;
    16x fewer points at ``cell=4``). Pixels mapping outside the photo are black.
    """
    from ..baselines import piecewise_affine_map  # noqa: PLC0415
    from ..geometry import similarity_fit  # noqa: PLC0415

    scale, rot, shift = similarity_fit(lm, photo_lm)  # crop -> photo, for the border points
    edge = np.linspace(-1.0, float(size), 8)
    frame = np.concatenate([np.column_stack([edge, np.full(8, -1.0)]), np.column_stack([edge, np.full(8, float(size))]),
                            np.column_stack([np.full(6, -1.0), edge[1:-1]]),
                            np.column_stack([np.full(6, float(size)), edge[1:-1]])])
    _, keep = np.unique(np.round(lm, 3), axis=0, return_index=True)  # coincident points: zero-area triangles
    keep = np.sort(keep)
    n = size // cell
    centres = cell * np.arange(n) + (cell - 1) / 2.0  # cv2.resize(n -> size) samples exactly these positions
    gx, gy = np.meshgrid(centres, centres)
    coords = piecewise_affine_map(np.concatenate([lm[keep], frame]),
                                  np.concatenate([photo_lm[keep], scale * frame @ rot.T + shift]),
                                  np.column_stack([gx.ravel(), gy.ravel()]))
    maps = [cv2.resize(coords[:, k].reshape(n, n).astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
            for k in (0, 1)]
    return cv2.remap(photo, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


