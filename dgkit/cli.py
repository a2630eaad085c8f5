"""The ``dgkit`` command line. Each feature module registers its own sub-command.

    dgkit weights status|download|install    weight files (dgkit.weights)
    dgkit reenact SOURCE REFERENCE -o OUT    photos and videos (dgkit.reenact_cli)
    dgkit figure CONFIG.json -o STEM         paper figures from a recorded configuration (dgkit.figures)
    dgkit prepare-data ...                   training sets (dgkit.training.prepare)
    dgkit train idsg|rfg ...                 training (dgkit.training.cli)
    dgkit live SOURCE [--video PATH]         live reenactment from a camera (dgkit.live.desktop)

Exit status: 0 success, 1 a dgkit error (one line on stderr: what happened and what to do), 2 a usage error,
130 interrupted with Ctrl-C (SIGINT), 143 stopped with SIGTERM (128 + the signal number, as shells report it).
In both interrupted cases unfinished outputs are removed and existing ones are left as they were.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

from .errors import DgkitError, Terminated

EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM

# module -> function(subparsers) that adds its sub-command(s)
_COMMANDS = [
    ("dgkit.weights", "register_cli"),
    ("dgkit.reenact_cli", "register_cli"),
    ("dgkit.figures", "register_cli"),
    ("dgkit.training.prepare", "register_cli"),
    ("dgkit.training.cli", "register_cli"),
    ("dgkit.evaluate.cli", "register_cli"),
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


def _raise_terminated(signum, frame) -> None:
    raise Terminated(f"received signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Entry point. Each sub-command sets ``func(args) -> int``. dgkit errors print as one clear line.

    SIGTERM is handled like Ctrl-C: it raises :class:`~dgkit.errors.Terminated` where the program is, so
    ``with`` blocks (e.g. :func:`dgkit.io.atomic_output`) remove their unfinished files on the way out.
    """
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread (e.g. called from a worker thread): keep the default
        previous = None
    try:
        return _run(argv)
    except Terminated:
        print("dgkit: stopped by SIGTERM; unfinished outputs were removed", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:  # also while the heavy modules are being imported
        print("dgkit: interrupted (Ctrl-C); unfinished outputs were removed", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(argv: list[str] | None) -> int:
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
