"""``dgkit weights status|download|install|synthetic``: the command line of :mod:`dgkit.weights`."""

from __future__ import annotations

import argparse
import json

from .. import checkpoint
# modules, not names: a test (or a wrapper) that replaces e.g. dgkit.weights.download.download_weights is honoured
from . import download as download_mod, install as install_mod, status as status_mod, synthetic as synthetic_mod
from .manifest import OFFICIAL_FILES, how_to_get
from .search import weights_search_dirs

__all__ = ["register_cli"]

def _human_size(size: int | None) -> str:
    return "-" if size is None else f"{size / 1e6:.1f} MB"


def _cli_status(args: argparse.Namespace) -> int:
    statuses = status_mod.weights_status(args.dir, recheck=args.recheck)
    ok = all(s.loads_ok for s in statuses)
    if args.json:
        print(json.dumps([s.to_dict() for s in statuses], indent=2))
        return 0 if ok else 1
    print("Searched: " + ", ".join(str(p) for p in weights_search_dirs(args.dir)))
    header = f"{'file':<9} {'size':>9}  {'sha256':<16}  {'loads':<13}  found at"
    print(header)
    print("-" * len(header))
    for s in statuses:
        where = str(s.path) if s.path else f"NOT FOUND ({s.relative_path})"
        sha = s.sha256[:16] if s.sha256 else "-"
        loads = ("yes UNTRAINED" if s.synthetic_seed is not None else "yes") if s.loads_ok else ("NO" if s.path else "-")
        print(f"{s.name:<9} {_human_size(s.size):>9}  {sha:<16}  {loads:<13}  {where}")
    notes: dict[str, list[str]] = {}  # message -> files, so a note shared by all files prints once
    for s in statuses:
        if s.path is not None and s.message != "ok":
            notes.setdefault(s.message, []).append(s.name)
    for message, names in notes.items():
        print(f"\n{', '.join(names)}: {message}")
    if ok and any(s.synthetic_seed is not None for s in statuses):
        print("\nAll three weight files load, but synthetic ones are UNTRAINED: load_dg labels the set "
              "'synthetic (untrained)' and its images are not real results.")
    elif ok:
        print("\nAll three weight files are present and load.")
    else:
        print("\nSome weight files are missing or broken.\n" + how_to_get())
    return 0 if ok else 1


def _cli_download(args: argparse.Namespace) -> int:
    placed = download_mod.download_weights(args.dest, force=args.force)
    for name, path in placed.items():
        print(f"{name:<9} {path}")
    return 0


def _cli_install(args: argparse.Namespace) -> int:
    kept: set[str] = set()
    placed = install_mod.install_weights(args.path, args.dest, move=args.move, force=args.force, kept=kept)
    for name, path in placed.items():
        what = "kept (the same file was already there)" if name in kept else "placed"
        print(f"{name:<9} {what}: {path}")
    missing = [n for n in checkpoint.KINDS if n not in placed]
    if missing:
        print("not in this install (get them separately): " + ", ".join(OFFICIAL_FILES[n] for n in missing))
    return 0


def _cli_synthetic(args: argparse.Namespace) -> int:
    paths = synthetic_mod.make_synthetic_weights(args.dir, seed=args.seed)
    for name, path in paths.items():
        print(f"{name:<9} {path}")
    print(f"Synthetic random weights (seed {args.seed}): for tests and offline try-outs only, outputs are meaningless.")
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dgkit weights status|download|install|synthetic``."""
    parser = subparsers.add_parser("weights", help="find, check, download or install the DG weight files",
                                   description="Find, check, download or install the DG weight files.")
    commands = parser.add_subparsers(dest="weights_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])

    status = commands.add_parser("status", help="where each file is, its size and sha256, and whether it loads")
    status.add_argument("--dir", default=None, help="look only in this folder")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.add_argument("--recheck", action="store_true", help="hash and load again instead of using the cache")
    status.set_defaults(func=_cli_status)

    download = commands.add_parser("download", help="download the official files (needs internet)")
    download.add_argument("--dest", default=None, help="weights folder (default: repository weights/ or cache)")
    download.add_argument("--force", action="store_true", help="replace valid files that are already there")
    download.set_defaults(func=_cli_download)

    inst = commands.add_parser("install", help="place a zip, folder or file you downloaded by hand")
    inst.add_argument("path", help="the DG zip, a folder, or vgg_face_dag.pth")
    inst.add_argument("--dest", default=None, help="weights folder (default: repository weights/ or cache)")
    inst.add_argument("--move", action="store_true", help="move instead of copy (default: your files stay)")
    inst.add_argument("--force", action="store_true", help="replace valid files that are already there")
    inst.set_defaults(func=_cli_install)

    synthetic = commands.add_parser("synthetic", help="write random weights in the official layout (untrained; for trying dgkit offline)")
    synthetic.add_argument("dir", help="an empty folder (not weights/)")
    synthetic.add_argument("--seed", type=int, default=1234, help="seed (1234 matches the golden file)")
    synthetic.set_defaults(func=_cli_synthetic)
