"""The ``dgkit reenact`` command line (photo -> image, video -> video) and the DG options every command shares.

::

    dgkit reenact SOURCE REFERENCE -o OUT [--sheet] [--synthetic] ...   # see `dgkit reenact --help`

:func:`add_dg_arguments` adds the options that choose the DG model (``--weights --synthetic --device --precision
--sketch-intensity``) to any parser and :func:`load_dg_from_args` loads the model they name; ``dgkit live`` uses
both. The work itself is :mod:`dgkit.reenact` (orchestration) and :mod:`dgkit.sheet` (``--sheet``).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from .sheet import contact_sheet
from .device import resolve_device
from .errors import InputError, OutputExistsError, WeightsNotFoundError
from .io import (IMAGE_SUFFIXES, VIDEO_SUFFIXES, _refuse_protected, check_input_file, is_video_path,
                 make_output_folder, photo_or_sample, write_image)
from .reenact import reenact_photos, reenact_video, weights_of

__all__ = ["add_dg_arguments", "load_dg_from_args", "register_cli"]


def add_dg_arguments(p: argparse.ArgumentParser) -> None:
    """The options that choose the DG model (``--weights --synthetic --device --precision --sketch-intensity --compile``),
    shared by every command that runs DG; :func:`load_dg_from_args` reads them."""
    p.add_argument("--weights", default=None, help="folder with the official DG weights (default: search)")
    p.add_argument("--synthetic", action="store_true",
                   help="fall back to UNTRAINED synthetic weights when the official ones are missing")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, mps (default cpu)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16", "tf32"), default="fp32",
                   help="numeric precision: fp32 (exact, default), bf16 (faster on GPUs and CPUs with native "
                        "bfloat16), fp16 / tf32 (GPU only)")
    p.add_argument("--sketch-intensity", choices=("demo", "train"), default="demo",
                   help="sketch line value fed to the generator: demo (1/255, as released) or train (1.0)")
    p.add_argument("--compile", action="store_true",
                   help="compile the generator (torch.compile): faster video/live after a one-time compile per "
                        "batch size, cached in dgkit's cache folder; within a grey level of the exact default")


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dgkit reenact SOURCE REFERENCE -o OUT`` (photo -> PNG, video -> video)."""
    p = subparsers.add_parser(
        "reenact", help="reenact a source photo with a reference photo or a driving video",
        description="Give the SOURCE photo's person the pose and expression of REFERENCE (a photo or a video). "
                    "A photo reference writes an image (the DG output, or with --sheet a contact sheet of every "
                    "stage); a video reference (.mp4, .avi, .mov, ...) writes a 256x256 video.")
    p.add_argument("source", help="source photo (the identity), or a sample name (astronaut, ...)")
    p.add_argument("reference", help="reference photo or driving video (the pose and expression), or a sample name")
    p.add_argument("-o", "--output", required=True, help="output image (.png, .jpg) or video (.mp4, .avi)")
    p.add_argument("--sheet", action="store_true", help="photo: write the contact sheet of all stages")
    p.add_argument("--backend", default="auto", help="landmark backend: auto, mediapipe, fan, fan2d")
    add_dg_arguments(p)
    p.add_argument("--baseline-only", action="store_true", help="no DG: write the warp baseline")
    p.add_argument("--batch-size", type=int, default=None,
                   help="video: frames per DG batch (default 1 on a CPU, 8 on a GPU: measured fastest per frame)")
    p.add_argument("--smoothing", type=float, default=0.0, help="video: landmark EMA factor in [0,1) (default 0)")
    p.add_argument("--max-frames", type=int, default=None, help="video: stop after N frames")
    p.add_argument("--on-no-face", choices=("hold", "source"), default="hold",
                   help="video frames without a face: repeat the last output (hold) or show the source crop")
    p.add_argument("--no-progress", action="store_true", help="video: no progress bar")
    p.add_argument("--no-audio", action="store_true",
                   help="video: write no sound (default: keep the driving video's audio, cut to the frames written)")
    p.add_argument("--force", action="store_true", help="replace OUTPUT if it exists (default: refuse)")
    p.set_defaults(func=_cli_reenact)


def load_dg_from_args(args: argparse.Namespace):
    """The DG model the options of :func:`add_dg_arguments` ask for (None with ``--baseline-only``).

    Raises:
        WeightsNotFoundError: no weights found; the message says how to go on (``--synthetic``,
            ``--baseline-only``, ``dgkit weights download``).
    """
    if getattr(args, "baseline_only", False):
        return None
    from .pipeline import load_dg

    try:
        return load_dg(args.weights, device=args.device, sketch_intensity=args.sketch_intensity,
                       allow_synthetic=args.synthetic, precision=args.precision,
                       compile=args.compile)
    except WeightsNotFoundError as exc:
        raise WeightsNotFoundError(
            f"{exc}\nTo try the pipeline anyway, add --synthetic (UNTRAINED weights: the images are noise-like) "
            "or --baseline-only (warp baseline, no DG); to get the real weights run `dgkit weights download`."
        ) from None


def _check_cli_paths(args: argparse.Namespace, video: bool, inputs: list) -> None:
    out = Path(args.output).suffix.lower()
    if video and out not in VIDEO_SUFFIXES:
        raise InputError(f"the reference is a video, so the output must be a video: use {args.output!r} with "
                         f"one of {tuple(VIDEO_SUFFIXES)}.")
    if not video and out not in IMAGE_SUFFIXES:
        raise InputError(f"the reference is a photo, so the output must be an image ({', '.join(IMAGE_SUFFIXES)}); "
                         f"got {args.output!r}.")
    if is_video_path(args.source):
        raise InputError(f"SOURCE must be a photo (the identity), got the video {args.source!r}.")
    # everything that can be checked is checked before the slow work (loading weights, detecting faces)
    for given, what in zip(inputs, ("source photo", "driving video" if video else "reference photo")):
        if isinstance(given, str):  # not a sample photo
            check_input_file(given, what)
    _refuse_protected(Path(args.output), _paths(inputs))
    if Path(args.output).exists() and not args.force:
        raise OutputExistsError(f"{args.output} exists already; add --force to replace it, or choose another "
                                "output path.")
    make_output_folder(Path(args.output).parent)
    if not args.baseline_only:
        resolve_device(args.device)


def _paths(inputs: list) -> list[str]:
    return [given for given in inputs if isinstance(given, str)]


def _cli_reenact(args: argparse.Namespace) -> int:
    video = is_video_path(args.reference)
    # a sample name stands for the built-in photo (`dgkit reenact astronaut ref.jpg -o out.png`)
    source, reference = photo_or_sample(args.source), args.reference if video else photo_or_sample(args.reference)
    _check_cli_paths(args, video, [source, reference])
    dg = load_dg_from_args(args)
    info = weights_of(dg)
    if dg is not None and not info.trained:
        print(f"dgkit: warning: DG weights are {info.label}: the DG output is NOT a real result")
    if video:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            report = reenact_video(source, reference, args.output, dg=dg, backend=args.backend,
                                   batch_size=args.batch_size, smoothing=args.smoothing,
                                   progress=not args.no_progress, max_frames=args.max_frames,
                                   on_no_face=args.on_no_face, audio=not args.no_audio, overwrite=args.force)
        ours = set()
        for w in caught:  # dgkit's own warnings as one line each; anything else as Python shows it
            if str(w.message) in report.notes:
                ours.add(str(w.message))
                print(f"dgkit: warning: {w.message}", file=sys.stderr)
            else:
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        print(f"reenact: {report.summary()}")
        for note in report.notes:
            if note not in ours:
                print(f"  note: {note}")
        return 0
    result = reenact_photos(source, reference, dg=dg, backend=args.backend)
    image = contact_sheet(result) if args.sheet else result.image
    out = write_image(args.output, image, protect=_paths([source, reference]), overwrite=args.force)
    what = "contact sheet" if args.sheet else ("DG output" if result.dg is not None else "warp baseline")
    print(f"reenact: 1 frame, 0 faces missing, weights: {info.label}; wrote the {what} to {out}")
    for note in result.notes:
        print(f"  note: {note}")
    return 0
