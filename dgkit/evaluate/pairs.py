"""Where (source, reference) pairs come from: two folders, two lists, a CSV, a driving video, a pose sweep.

Every function returns (or yields, for videos) :class:`Pair` objects *lazily enough to keep memory bounded*:
a pair holds paths and small arrays, never decoded photos, except video pairs, which carry their one decoded
frame (frames are streamed, one at a time).

Input names ("specs"): a file path; ``"sample:NAME"`` for a bundled photo (:func:`dgkit.io.sample_names`);
``"VIDEO#N"`` for frame N of a video. Pair ids are built from these names, so a re-run with the same inputs
recognises the pairs it has already measured.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ImageReadError, InputError
from ..io import IMAGE_SUFFIXES, is_video_path, iter_video_frames, read_image, sample_image, sample_names

__all__ = [
    "Pair",
    "load_image_spec",
    "pairs_from_lists",
    "pairs_from_folders",
    "pairs_from_csv",
    "pairs_from_video",
    "pose_sweep_pairs",
    "SWEEP_YAWS",
    "SWEEP_PITCHES",
]

SWEEP_YAWS = tuple(float(v) for v in range(-90, 91, 15))
SWEEP_PITCHES = (-40.0, 0.0, 40.0)


@dataclass(frozen=True, eq=False)
class Pair:
    """One (source, reference) pair to reenact and measure.

    Attributes:
        pair_id: unique, stable name of the pair (what resuming matches on).
        source: spec of the source photo (path, ``"sample:NAME"`` or ``"VIDEO#N"``).
        reference: spec of the reference: a photo spec, ``"VIDEO#N"``, or ``"sweep:..."`` for generated landmarks.
        kind: ``"photo"``, ``"video"`` (a frame of a driving video) or ``"landmarks"`` (no reference photo).
        same_person: source and reference show the same person (self-reenactment): the reference image is then
            a ground truth for PSNR / SSIM.
        group: pairs of one driving video share a group (for temporal jitter); "" otherwise.
        frame: frame index in the driving video (-1 when not a video).
        reference_landmarks: ``(68, 3)`` crop px (x, y, z) for ``"landmarks"`` pairs, else None.
        reference_pose: the (yaw, pitch, roll) degrees the landmarks were posed at (``"landmarks"`` pairs).
        reference_image: the decoded (H,W,3) uint8 frame for ``"video"`` pairs, else None.
    """

    pair_id: str
    source: str
    reference: str
    kind: str = "photo"
    same_person: bool = False
    group: str = ""
    frame: int = -1
    reference_landmarks: np.ndarray | None = None
    reference_pose: tuple[float, float, float] | None = None
    reference_image: np.ndarray | None = None


def load_image_spec(spec: str) -> np.ndarray:
    """Read the photo a spec names: ``"sample:NAME"``, ``"VIDEO#N"`` (frame N) or a file path; (H,W,3) uint8."""
    if spec.startswith("sample:"):
        return sample_image(spec.split(":", 1)[1])
    if "#" in spec and is_video_path(spec.rsplit("#", 1)[0]):
        path, index = spec.rsplit("#", 1)
        frame = next(iter_video_frames(path, start=int(index), stop=int(index) + 1), None)
        if frame is None:
            raise ImageReadError(f"{path} has no frame {index}; check the video or the pair list.")
        return frame
    return read_image(spec)


def _check_exists(spec: str, what: str) -> None:
    if spec.startswith("sample:"):
        name = spec.split(":", 1)[1]
        if name not in sample_names():
            raise InputError(f"unknown sample photo {name!r} for the {what}; choose one of {sample_names()}.")
        return
    path = spec.rsplit("#", 1)[0] if "#" in spec and is_video_path(spec.rsplit("#", 1)[0]) else spec
    if not Path(path).is_file():
        raise ImageReadError(f"the {what} {path!r} does not exist (or is not a file); fix the path or the pair list.")


def pairs_from_lists(sources: Sequence[str | Path], references: Sequence[str | Path], *,
                     same_person: bool = False) -> list[Pair]:
    """Pairs ``(sources[i], references[i])``; both lists must have the same length (InputError otherwise).

    Every file is checked before anything runs, so a typo fails at once instead of after an hour.
    """
    if len(sources) != len(references):
        raise InputError(f"mismatched pair lists: {len(sources)} sources but {len(references)} references; "
                         "give one reference per source (or pair every source with every reference).")
    pairs = []
    for s, r in zip(sources, references):
        s, r = str(s), str(r)
        _check_exists(s, "source")
        _check_exists(r, "reference")
        pairs.append(Pair(pair_id=f"{s}|{r}", source=s, reference=r, kind="photo", same_person=same_person))
    return pairs


def _images_in(folder: str | Path, what: str) -> list[str]:
    path = Path(folder)
    if not path.is_dir():
        raise InputError(f"the {what} folder {str(path)!r} does not exist; give a folder of photos.")
    files = sorted(str(p) for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"the {what} folder {str(path)!r} holds no photos ({', '.join(IMAGE_SUFFIXES)}).")
    return files


def pairs_from_folders(sources_dir: str | Path, references_dir: str | Path, *, pairing: str = "all",
                       same_person: bool = False) -> list[Pair]:
    """Pairs from two folders of photos (sorted by file name).

    Args:
        pairing: ``"all"``: every source with every reference; ``"zip"``: the i-th source with the i-th
            reference (the folders must hold as many photos; InputError otherwise).
    """
    srcs, refs = _images_in(sources_dir, "sources"), _images_in(references_dir, "references")
    if pairing == "all":
        return pairs_from_lists([s for s in srcs for _ in refs], [r for _ in srcs for r in refs],
                                same_person=same_person)
    if pairing == "zip":
        return pairs_from_lists(srcs, refs, same_person=same_person)
    raise InputError(f"pairing must be 'all' or 'zip', got {pairing!r}.")


def _truthy(text: str) -> bool:
    return str(text).strip().lower() in ("1", "true", "yes", "y")


def pairs_from_csv(path: str | Path) -> Iterator[Pair]:
    """Pairs from a CSV file with a header ``source,reference[,same_person]``.

    Relative paths are relative to the CSV's folder. A reference that is a video expands into one pair per
    frame (a driving video per source). ``same_person`` (1/true/yes) marks self-reenactment pairs, for which
    PSNR and SSIM are measured against the reference. All rows and files are checked before the first pair is
    yielded.
    """
    csv_path = Path(path)
    if not csv_path.is_file():
        raise InputError(f"the pair list {str(csv_path)!r} does not exist.")
    with csv_path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        if "source" not in header or "reference" not in header:
            raise InputError(f"{csv_path} must have a header row with the columns 'source' and 'reference' "
                             f"(and optionally 'same_person'); found {header}.")
        rows = []
        for line, row in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            if not row.get("source") or not row.get("reference"):
                raise InputError(f"{csv_path} line {line}: mismatched pair list, a row needs both a source and a "
                                 f"reference (got {row.get('source')!r}, {row.get('reference')!r}).")
            rows.append(row)
    if not rows:
        raise InputError(f"{csv_path} lists no pairs.")

    def resolve(spec: str) -> str:
        if spec.startswith("sample:") or Path(spec).is_absolute():
            return spec
        return str(csv_path.parent / spec)

    resolved = [(resolve(r["source"]), resolve(r["reference"]), _truthy(r.get("same_person", ""))) for r in rows]
    for s, r, _ in resolved:
        _check_exists(s, "source")
        _check_exists(r, "reference")
    return _csv_pairs(resolved)


def _csv_pairs(resolved: list[tuple[str, str, bool]]) -> Iterator[Pair]:
    for s, r, same in resolved:
        if is_video_path(r):
            yield from pairs_from_video(r, source=s, same_person=same)
        else:
            yield Pair(pair_id=f"{s}|{r}", source=s, reference=r, kind="photo", same_person=same)


def pairs_from_video(video: str | Path, *, source: str | Path | None = None, same_person: bool | None = None,
                     step: int = 1, max_frames: int | None = None) -> Iterator[Pair]:
    """One pair per frame of a driving video, streamed (one decoded frame in memory at a time).

    Args:
        video: the driving video.
        source: the source photo; None uses the video's frame 0 (self-reenactment: the other frames are then
            ground truth for PSNR / SSIM).
        same_person: whether source and video show the same person (default: True exactly when ``source`` is None).
        step: use every ``step``-th frame.
        max_frames: stop after this many pairs.
    """
    video = str(video)
    _check_exists(video, "driving video")
    src = f"{video}#0" if source is None else str(source)
    if source is not None:
        _check_exists(src, "source")
    same = (source is None) if same_person is None else bool(same_person)
    start = 1 if source is None else 0
    frames = iter_video_frames(video, start=start, step=max(1, int(step)))
    return _video_pairs(frames, video, src, same, start, max(1, int(step)), max_frames)


def _video_pairs(frames: Iterable[np.ndarray], video: str, src: str, same: bool, start: int, step: int,
                 max_frames: int | None) -> Iterator[Pair]:
    for n, frame in enumerate(frames):
        if max_frames is not None and n >= max_frames:
            return
        index = start + n * step
        yield Pair(pair_id=f"{src}|{video}#{index}", source=src, reference=f"{video}#{index}", kind="video",
                   same_person=same, group=f"{src}|{video}", frame=index, reference_image=frame)


def pose_sweep_pairs(sources: Sequence[str] | None = None, *, yaws: Sequence[float] = SWEEP_YAWS,
                     pitches: Sequence[float] = SWEEP_PITCHES, reference: str = "mean") -> list[Pair]:
    """A pose sweep that needs no dataset: references are 3D landmarks turned to every (yaw, pitch).

    Args:
        sources: photo specs; default every bundled sample photo (``"sample:NAME"``).
        yaws, pitches: degrees; every combination is one reference (roll 0). Default yaw -90..90 in 15° steps,
            pitch -40, 0, 40: 39 references per source.
        reference: whose 3D landmarks are turned: ``"mean"``, the kit's neutral mean face
            (:func:`dgkit.geometry.mean_face_3d`, in the 256 crop), i.e. a reference of another person.

    There is no reference *photo*: pose errors are measured against the commanded (yaw, pitch, 0), NME and
    the mouth/eye openings against the generated landmarks, and PSNR/SSIM are not defined (left empty).
    """
    from ..geometry import mean_face_3d, pose_landmarks

    if reference != "mean":
        raise InputError(f"reference must be 'mean' (the kit's mean face), got {reference!r}.")
    specs = [f"sample:{n}" for n in sample_names()] if sources is None else [str(s) for s in sources]
    if not specs:
        raise InputError("a pose sweep needs at least one source photo.")
    for s in specs:
        _check_exists(s, "source")
    base = mean_face_3d("crop")
    pairs = []
    for s in specs:
        for pitch in pitches:
            for yaw in yaws:
                lm = pose_landmarks(base, float(yaw), float(pitch), 0.0)
                name = f"sweep:yaw{float(yaw):+06.1f},pitch{float(pitch):+05.1f}"
                pairs.append(Pair(pair_id=f"{s}|{name}", source=s, reference=name, kind="landmarks",
                                  reference_landmarks=lm, reference_pose=(float(yaw), float(pitch), 0.0)))
    return pairs
