"""The ``dgkit`` command line. Each feature module registers its own sub-command.

    dgkit weights status|download|import     weight files (dgkit.weights)
    dgkit reenact SOURCE REFERENCE -o OUT    photos and videos (dgkit.reenact)
    dgkit figure SPEC.json -o STEM           paper figures from a recorded configuration (dgkit.figures)
    dgkit prepare-data ...                   training sets (dgkit.training.prepare)
    dgkit train idsg|rfg ...                 training (dgkit.training.cli)
    dgkit live SOURCE [--video PATH]         live reenactment from a camera (dgkit.live.desktop)
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import DgkitError

# module -> function(subparsers) that adds its sub-command(s)
_COMMANDS = [
    ("dgkit.weights", "register_cli"),
    ("dgkit.reenact", "register_cli"),
    ("dgkit.figures", "register_cli"),
    ("dgkit.training.prepare", "register_cli"),
    ("dgkit.training.cli", "register_cli"),
    ("dgkit.live.desktop", "register_cli"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dgkit", description="Dual-Generator face reenactment toolkit")
    parser.add_argument("--version", action="version", version=f"dgkit {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name, function in _COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a feature not built yet must not break the others
            if exc.name and exc.name.startswith("dgkit"):
                continue
            raise
        getattr(module, function)(subparsers)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    """Entry point. Each sub-command sets ``func(args) -> int``. dgkit errors print as one clear line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # e.g. `dgkit weights status | head`
        return 0
    except DgkitError as exc:
        print(f"dgkit: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dgkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
