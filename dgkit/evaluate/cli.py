"""``dgkit evaluate``: measure DG and the weight-free baselines on pairs, write tables and the large-pose plot.

::

    dgkit evaluate sweep -o eval/ --synthetic                 # pose sweep on the bundled photos, no dataset
    dgkit evaluate folders SOURCES/ REFERENCES/ -o eval/      # every source with every reference (or --pairing zip)
    dgkit evaluate csv pairs.csv -o eval/                     # source,reference[,same_person]
    dgkit evaluate video driving.mp4 [--source me.jpg] -o eval/   # self-reenactment: frame 0 drives the rest
    dgkit evaluate plot eval/large_pose.json                  # rebuild an exported plot

Re-running the same command continues where it stopped (pairs already in ``OUT/results.csv`` are skipped).
"""

from __future__ import annotations

import argparse
import textwrap
import time
from pathlib import Path

from ..errors import DgkitError, InputError, WeightsNotFoundError

__all__ = ["register_cli"]


def _common(p: argparse.ArgumentParser) -> None:
    from .runner import METHODS

    p.add_argument("-o", "--output", required=True, help="results folder (created; an existing one is resumed)")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma-separated methods among {','.join(METHODS)} (default: all)")
    p.add_argument("--limit", type=int, default=None, help="measure at most N pairs (a quick look)")
    p.add_argument("--weights", default=None, help="folder with the DG weights (default: the usual places)")
    p.add_argument("--synthetic", action="store_true",
                   help="use synthetic UNTRAINED weights when the official ones are missing (DG rows are then "
                        "marked UNTRAINED and mean nothing; the baselines' numbers stay real)")
    p.add_argument("--no-identity", action="store_true", help="skip the identity cosine (saves VGG-Face time)")
    p.add_argument("--device", default="cpu", help="torch device for DG (cpu, cuda, mps)")
    p.add_argument("--backend", default="auto", help="landmark backend for references and outputs (auto, mediapipe, fan)")
    p.add_argument("--bins", type=float, nargs="+", default=None, help="|yaw| bin edges in degrees (default 0 30 60 90)")
    p.add_argument("--no-plot", action="store_true", help="write the tables only")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def register_cli(subparsers) -> None:
    """Add ``dgkit evaluate MODE ...``."""
    p = subparsers.add_parser(
        "evaluate", help="measure DG and the baselines: pose, expression, identity, quality, by pose",
        description=textwrap.fill("Measure DG and the weight-free baselines on the same pairs: pose error, NME, mouth/eye "
                    "opening errors, identity cosine, PSNR/SSIM (self-reenactment), jitter (videos), detection "
                    "failures. Outputs in OUT: results.csv / results.json (one row per pair and method), "
                    "summary.md / summary.tex (mean ± std per method), by_yaw.md, and large_pose.png/.pdf/.svg "
                    "with large_pose.json (rebuilds the plot). Re-running the same command continues where it "
                    "stopped. Each MODE has its own --help.", width=100),
        epilog="examples:\n" + "\n".join(line for line in __doc__.split("::")[1].splitlines()
                                         if line.strip().startswith("dgkit")),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = p.add_subparsers(dest="mode", metavar="MODE")

    sw = modes.add_parser("sweep", help="pose sweep: bundled photos (or --sources) x mean-face references turned "
                                        "from -90 to +90 yaw and over pitches")
    sw.add_argument("--sources", nargs="+", default=None,
                    help="source photos (paths or sample:NAME; default: every bundled sample photo)")
    sw.add_argument("--yaw-step", type=float, default=15.0, help="yaw step in degrees from -90 to 90 (default 15)")
    sw.add_argument("--pitches", type=float, nargs="+", default=[-40.0, 0.0, 40.0], help="pitches (default -40 0 40)")
    _common(sw)

    fo = modes.add_parser("folders", help="photos of two folders")
    fo.add_argument("sources_dir")
    fo.add_argument("references_dir")
    fo.add_argument("--pairing", choices=("all", "zip"), default="all",
                    help="all: every source with every reference; zip: i-th with i-th (equal counts)")
    fo.add_argument("--same-person", action="store_true", help="references are ground truth (PSNR/SSIM)")
    _common(fo)

    cs = modes.add_parser("csv", help="a CSV of pairs: source,reference[,same_person] (videos expand to frames)")
    cs.add_argument("pairs")
    _common(cs)

    vi = modes.add_parser("video", help="a driving video; without --source its frame 0 is the source "
                                        "(self-reenactment: PSNR/SSIM/jitter against the real frames)")
    vi.add_argument("video")
    vi.add_argument("--source", default=None, help="source photo (default: the video's frame 0)")
    vi.add_argument("--step", type=int, default=1, help="use every N-th frame")
    _common(vi)

    pl = modes.add_parser("plot", help="rebuild a large-pose plot from its exported JSON configuration")
    pl.add_argument("config", help="STEM.json written next to the plot")
    pl.add_argument("-o", "--output", default=None, help="output STEM (default: the config's own stem)")
    pl.add_argument("--no-check", action="store_true", help="accept a results file that changed")
    p.set_defaults(func=_run, _parser=p)


def _pairs(args):
    from . import pairs

    if args.mode == "sweep":
        if not args.yaw_step > 0:
            raise InputError(f"--yaw-step must be > 0, got {args.yaw_step}.")
        n = int(round(180.0 / args.yaw_step))
        yaws = [-90.0 + i * args.yaw_step for i in range(n + 1) if -90.0 + i * args.yaw_step <= 90.0 + 1e-9]
        return pairs.pose_sweep_pairs(args.sources, yaws=yaws, pitches=args.pitches)
    if args.mode == "folders":
        return pairs.pairs_from_folders(args.sources_dir, args.references_dir, pairing=args.pairing,
                                        same_person=args.same_person)
    if args.mode == "csv":
        return pairs.pairs_from_csv(args.pairs)
    return pairs.pairs_from_video(args.video, source=args.source, step=args.step)


def _load_dg(args, methods):
    from ..pipeline import load_dg

    if "dg" not in methods and args.no_identity:
        return None
    try:
        return load_dg(args.weights, device=args.device, allow_synthetic=args.synthetic)
    except WeightsNotFoundError as exc:
        raise WeightsNotFoundError(
            f"{exc}\nTo measure anyway add --synthetic (UNTRAINED weights: DG rows are marked and mean nothing), "
            "or leave DG out with --methods naive,relative3d,warp --no-identity."
        ) from None


def _run(args) -> int:
    if args.mode is None:
        args._parser.print_help()
        return 2
    from .report import YAW_BINS, binned_markdown, export_large_pose, large_pose_from_config, latex_table, markdown_table
    from .results import atomic_write_text
    from .runner import evaluate

    if args.mode == "plot":
        from ..figures import export_figure

        fig = large_pose_from_config(args.config, check=not args.no_check)
        stem = Path(args.output) if args.output else Path(args.config).with_suffix("")
        import json

        for path in export_figure(fig, stem, config=json.loads(Path(args.config).read_text())):
            print(path)
        return 0
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    pairs = _pairs(args)  # checks every listed file before any slow work
    dg = _load_dg(args, methods)
    if dg is not None and not dg.weights.trained:
        print(f"dgkit: warning: DG weights are {dg.weights.label}: DG rows are marked UNTRAINED and mean nothing")
    out = Path(args.output)
    t0 = time.perf_counter()
    try:
        result = evaluate(pairs, dg=dg, methods=methods, identity=None if args.no_identity else "auto",
                          backend=args.backend, out_dir=out, limit=args.limit, progress=not args.no_progress)
    except DgkitError as exc:
        saved = out / "results.csv"
        if not saved.exists():
            raise
        raise type(exc)(f"{exc}\nThe rows measured so far are saved in {saved}; fix the input and run the same "
                        "command again to continue.") from None
    seconds = time.perf_counter() - t0
    bins = args.bins or YAW_BINS
    summary = markdown_table(result.rows)
    atomic_write_text(out / "summary.md", summary)
    atomic_write_text(out / "summary.tex", latex_table(result.rows))
    atomic_write_text(out / "by_yaw.md", binned_markdown(result.rows, bins=bins))
    written = [result.files["csv"], result.files["json"], out / "summary.md", out / "summary.tex", out / "by_yaw.md"]
    if not args.no_plot and result.rows:
        _, files = export_large_pose(result.files["csv"], out / "large_pose", bins=bins, overwrite=True)
        written += files
    print(summary)
    print(f"evaluate: {result.new_rows} new rows, {result.skipped_pairs} pairs already measured, "
          f"{len(result.rows)} rows in all, {seconds:.0f} s")
    for path in written:
        print(f"  wrote {path}")
    return 0
