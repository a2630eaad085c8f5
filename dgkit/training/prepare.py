"""``dgkit prepare-data``: turn photos/videos of people into a training dataset (layout: :mod:`dgkit.training.data`).

Input layout (VoxCeleb-like; one folder per person)::

    INPUT/<identity>/<video>/<frame>.jpg|png|...     a video as a folder of frames (sorted by name), or
    INPUT/<identity>/<video>.mp4|avi|mov|mkv|webm    a video file

For every frame: detect the largest face (:func:`dgkit.landmarks.detect_landmarks`), align it to the 256x256
ArcFace crop (:func:`dgkit.align.align_face`), and write the crop, its sketch
(``draw_sketch(lm, "reference")``) and its landmarks. What cannot be used is skipped and counted by reason:

* ``no_face``: frames where the detector found no face;
* ``unreadable``: image files that are not readable images;
* ``bad_video``: video files that cannot be opened or have no decodable frame (empty, corrupt, wrong codec);
* ``empty_folder``: video folders without image files;
* ``single_frame_identity``: people with only one kept frame. They are *kept* (the RFG can reconstruct them)
  but give no same-person pair for the IDSG (see the pair rule in :mod:`dgkit.training.data`).

Resuming: each finished video leaves ``OUTPUT/.partial/<identity>/<video>.npz`` (its frame names, landmarks
and skip counts). A second run with the same input and options reuses those and only processes new or changed
videos; the index (frames.csv, landmarks.npy, manifest.json) is assembled from them at the end. Stopping a
run (Ctrl-C) loses at most the videos in progress.

Input files are only read, never modified or deleted; an output folder inside the input is refused.

Example::

    dgkit prepare-data voxceleb_raw/ data/vox --workers 2 --every 5 --max-frames 50
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DatasetError, ImageReadError, InputError, NoFaceError, VideoError
from ..io import IMAGE_SUFFIXES, is_video_path, iter_video_frames, read_image, write_image
from ..landmarks import detect_landmarks

__all__ = ["PrepareReport", "VideoJob", "prepare_dataset", "register_cli", "scan_input"]

PARTIAL = ".partial"
_LAYOUT = ("INPUT/<identity>/<video>/<frames>.jpg|png (a folder of frames per video) or "
           "INPUT/<identity>/<video>.mp4 (a video file)")


# --- the input ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VideoJob:
    """One video of one person: a folder of frame images (``frames`` = its image files) or a video file."""

    identity: str
    video: str
    path: Path
    frames: tuple[Path, ...] = ()  # empty for a video file

    @property
    def is_file(self) -> bool:
        return self.path.is_file()


def scan_input(input_dir: str | os.PathLike) -> list[VideoJob]:
    """List the videos of an input folder (layout in the module docstring), sorted by identity then video.

    Raises:
        DatasetError: the folder does not exist or holds no ``<identity>/<video>`` entries.
    """
    root = Path(input_dir)
    if not root.is_dir():
        raise DatasetError(f"input folder {root} does not exist. Expected {_LAYOUT}.")
    jobs: list[VideoJob] = []
    for person in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        names: set[str] = set()
        for entry in sorted(person.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                frames = tuple(sorted(f for f in entry.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES))
                video = entry.name
            elif entry.is_file() and is_video_path(entry):
                frames, video = (), entry.stem
            else:
                continue  # images directly in an identity folder, notes, ...: not part of the layout
            if video in names:  # "v1/" and "v1.mp4" side by side
                video = f"{video}_{entry.suffix.lstrip('.') or 'dir'}"
            names.add(video)
            jobs.append(VideoJob(person.name, video, entry, frames))
    if not jobs:
        raise DatasetError(f"{root} holds no videos. Expected {_LAYOUT}: one folder per person, in it one "
                           "folder of frames or one video file per video.")
    return jobs


def _fingerprint(job: VideoJob, every: int, max_frames: int | None, backend: str) -> str:
    """Changes when the video's files or the options change (then a resumed run redoes the video)."""
    h = hashlib.sha1(f"{every}|{max_frames}|{backend}|{job.identity}|{job.video}".encode())
    for f in (job.frames or (job.path,)):
        st = f.stat()
        h.update(f"{f.name}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()


# --- one video ----------------------------------------------------------------------------------------------
@dataclass
class VideoResult:
    """What one video gave: kept frame names, their crop landmarks (k,68,2) float32, skip counts."""

    identity: str
    video: str
    frames: list[str]
    landmarks: np.ndarray
    skipped: dict[str, int]
    backend: str
    resumed: bool = False


def _frames_of(job: VideoJob, every: int, max_frames: int | None, skipped: Counter) -> Iterator[tuple[str, np.ndarray]]:
    """(frame name, RGB uint8 image) of the frames to use; unreadable ones are counted and left out."""
    if job.frames or not job.is_file:
        chosen = job.frames[::every][:max_frames]
        if not chosen:
            skipped["empty_folder"] += 1
        for f in chosen:
            try:
                yield f.stem, read_image(f)
            except ImageReadError:
                skipped["unreadable"] += 1
        return
    stop = None if max_frames is None else max_frames * every
    try:
        frames = iter_video_frames(job.path, step=every, stop=stop)
    except VideoError:
        skipped["bad_video"] += 1
        return
    for i, rgb in enumerate(frames):
        yield f"{i * every:05d}", rgb


def _partial_file(output: Path, job: VideoJob) -> Path:
    return output / PARTIAL / job.identity / f"{job.video}.npz"


def _load_partial(output: Path, job: VideoJob, key: str) -> VideoResult | None:
    """The saved result of a finished video, if it was made with the same inputs/options and its files exist."""
    path = _partial_file(output, job)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            frames = [str(s) for s in z["frames"]]
            lm = z["landmarks"].astype(np.float32).reshape(len(frames), 68, 2)
            skipped = {k: int(v) for k, v in json.loads(str(z["skipped"])).items()}
            backend = str(z["backend"])
    except (OSError, ValueError, KeyError):
        return None  # broken partial: redo the video
    for name in frames:
        for kind in ("crops", "sketches"):
            if not (output / kind / job.identity / job.video / f"{name}.png").is_file():
                return None
    return VideoResult(job.identity, job.video, frames, lm, skipped, backend, resumed=True)


def _process_video(job: VideoJob, output: str, backend: str, every: int, max_frames: int | None) -> VideoResult:
    """Detect, align and write every chosen frame of one video; save the partial result (picklable worker)."""
    from ..align import align_face  # noqa: PLC0415
    from ..landmarks import resolve_backend  # noqa: PLC0415
    from ..sketch import draw_sketch  # noqa: PLC0415

    out = Path(output)
    key = _fingerprint(job, every, max_frames, backend)
    done = _load_partial(out, job, key)
    if done is not None:
        return done
    used = resolve_backend(backend).name
    skipped: Counter = Counter()
    names, landmarks = [], []
    for name, rgb in _frames_of(job, every, max_frames, skipped):
        try:
            lm_image = detect_landmarks(rgb, backend=backend)
        except NoFaceError:
            skipped["no_face"] += 1
            continue
        crop, lm_crop = align_face(rgb, lm_image)
        lm2 = np.asarray(lm_crop[:, :2], dtype=np.float32)
        rel = Path(job.identity) / job.video / f"{name}.png"
        write_image(out / "crops" / rel, crop, overwrite=True)
        write_image(out / "sketches" / rel, draw_sketch(lm2, "reference"), overwrite=True)
        names.append(name)
        landmarks.append(lm2)
    lm_arr = np.stack(landmarks) if landmarks else np.zeros((0, 68, 2), np.float32)
    path = _partial_file(out, job)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, key=key, frames=np.array(names, dtype=str), landmarks=lm_arr,
             skipped=json.dumps(dict(skipped)), backend=used)
    os.replace(tmp, path)  # atomic: an interrupted run never leaves a half-written partial
    return VideoResult(job.identity, job.video, names, lm_arr, dict(skipped), used)


# --- the whole folder ---------------------------------------------------------------------------------------
@dataclass
class PrepareReport:
    """Summary of a :func:`prepare_dataset` run.

    Attributes:
        output: the dataset folder.
        num_frames, num_identities, num_videos: frames kept, people with at least one kept frame, videos seen.
        resumed_videos: videos taken from an earlier run's partial results (no work redone).
        skipped: counts by reason (see the module docstring).
        backend: landmark backend(s) used.
        seconds: wall time of the run.
    """

    output: Path
    num_frames: int
    num_identities: int
    num_videos: int
    resumed_videos: int
    skipped: dict[str, int] = field(default_factory=dict)
    backend: str = ""
    seconds: float = 0.0

    def __str__(self) -> str:
        skipped = ", ".join(f"{k}: {v}" for k, v in sorted(self.skipped.items()) if v) or "nothing"
        return (f"dataset {self.output}: {self.num_frames} frames of {self.num_identities} identities from "
                f"{self.num_videos} videos ({self.resumed_videos} resumed) in {self.seconds:.1f} s; "
                f"backend {self.backend or '-'}; skipped: {skipped}")


def _check_output(input_dir: Path, output: Path) -> None:
    inp, out = input_dir.resolve(), output.resolve()
    if out == inp or inp in out.parents:
        raise DatasetError(f"output {output} is inside the input {input_dir}; choose a folder outside it "
                           "(dgkit never writes into your input).")
    if out.exists() and not out.is_dir():
        raise DatasetError(f"output {output} exists and is not a folder.")
    if out.is_dir() and any(out.iterdir()) and not ((out / PARTIAL).is_dir() or (out / "manifest.json").is_file()):
        raise DatasetError(f"output {output} is a non-empty folder that is not a dgkit dataset; choose a new or "
                           "empty folder (nothing in it is overwritten).")


def prepare_dataset(
    input_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    backend: str = "auto",
    workers: int = 1,
    every: int = 1,
    max_frames_per_video: int | None = None,
    progress: bool = True,
) -> PrepareReport:
    """Build (or resume) a dataset folder from photos/videos of people.

    Args:
        input_dir: ``INPUT/<identity>/<video>/<frames>`` or ``INPUT/<identity>/<video>.mp4`` (module docstring).
        output_dir: a new or empty folder, or one an earlier run of this function started (it resumes).
        backend: landmark backend: ``"auto"``, ``"mediapipe"``, ``"fan"``, ``"fan2d"``.
        workers: processes working on different videos at once (1 = in this process).
        every: take every ``every``-th frame of each video (video files and frame folders alike).
        max_frames_per_video: take at most this many frames (after ``every``) from each video.
        progress: show a tqdm bar over the videos.

    Returns:
        A :class:`PrepareReport`; the folder is readable with :func:`dgkit.training.data.load_manifest`.

    Raises:
        DatasetError: the input does not match the layout, the output is inside the input or is a foreign
            non-empty folder, or no frame with a face was found.
        InputError: invalid ``workers``, ``every`` or ``max_frames_per_video``.
    """
    from .data import write_index  # noqa: PLC0415

    start = time.perf_counter()
    for label, value in (("workers", workers), ("every", every)):
        if not isinstance(value, int) or value < 1:
            raise InputError(f"{label} must be an integer >= 1, got {value!r}.")
    if max_frames_per_video is not None and (not isinstance(max_frames_per_video, int) or max_frames_per_video < 1):
        raise InputError(f"max_frames_per_video must be None or an integer >= 1, got {max_frames_per_video!r}.")
    input_dir, output = Path(input_dir), Path(output_dir)
    jobs = scan_input(input_dir)
    _check_output(input_dir, output)
    output.mkdir(parents=True, exist_ok=True)
    (output / PARTIAL).mkdir(exist_ok=True)

    bar = None
    if progress:
        from tqdm.auto import tqdm  # noqa: PLC0415

        bar = tqdm(total=len(jobs), desc="prepare-data", unit="video")
    results: dict[int, VideoResult] = {}
    try:
        if workers == 1:
            for i, job in enumerate(jobs):
                results[i] = _process_video(job, str(output), backend, every, max_frames_per_video)
                if bar is not None:
                    bar.update(1)
        else:
            # spawn: landmark backends (mediapipe graphs, torch threads) are not fork-safe
            ctx = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = {pool.submit(_process_video, job, str(output), backend, every, max_frames_per_video): i
                           for i, job in enumerate(jobs)}
                for fut in concurrent.futures.as_completed(futures):
                    results[futures[fut]] = fut.result()
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()

    ordered = [results[i] for i in range(len(jobs))]
    skipped: Counter = Counter()
    records, landmarks, per_identity = [], [], Counter()
    for r in ordered:
        skipped.update(r.skipped)
        records += [(r.identity, r.video, name) for name in r.frames]
        landmarks.append(r.landmarks)
        per_identity[r.identity] += len(r.frames)
    skipped["single_frame_identity"] = sum(1 for n in per_identity.values() if n == 1)
    backends = sorted({r.backend for r in ordered if r.frames})
    if not records:
        raise DatasetError(f"no usable frame in {input_dir}: skipped {dict(+skipped)}. Check that the photos/videos "
                           f"show faces and follow {_LAYOUT}.")
    write_index(output, records, np.concatenate(landmarks), skipped=dict(skipped), backend="+".join(backends),
                source=str(input_dir.resolve()))
    return PrepareReport(
        output=output, num_frames=len(records), num_identities=sum(1 for n in per_identity.values() if n),
        num_videos=len(jobs), resumed_videos=sum(r.resumed for r in ordered), skipped=dict(skipped),
        backend="+".join(backends), seconds=time.perf_counter() - start,
    )


# --- command line -------------------------------------------------------------------------------------------
def register_cli(subparsers) -> None:
    """Add ``dgkit prepare-data INPUT OUTPUT [--backend] [--workers N] [--every K] [--max-frames N]``."""
    p = subparsers.add_parser(
        "prepare-data", help="build a training dataset from photos/videos of people",
        description=f"Detect, align and sketch every frame of {_LAYOUT} into a dgkit dataset folder "
                    "(resumable: run it again to continue).",
    )
    p.add_argument("input", help="input folder: INPUT/<identity>/<video>/<frames> or INPUT/<identity>/<video>.mp4")
    p.add_argument("output", help="dataset folder to create (or to resume)")
    p.add_argument("--backend", default="auto", help="landmark backend: auto, mediapipe, fan, fan2d (default auto)")
    p.add_argument("--workers", type=int, default=1, help="parallel processes over videos (default 1)")
    p.add_argument("--every", type=int, default=1, metavar="K", help="use every K-th frame (default 1)")
    p.add_argument("--max-frames", type=int, default=None, metavar="N", help="at most N frames per video")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_cli)


def _run_cli(args: argparse.Namespace) -> int:
    report = prepare_dataset(args.input, args.output, backend=args.backend, workers=args.workers, every=args.every,
                             max_frames_per_video=args.max_frames, progress=not args.quiet)
    print(report)
    return 0
