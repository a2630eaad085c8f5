"""``dgkit train idsg|rfg|export``: the command line of :mod:`dgkit.training`.

    dgkit train idsg --data DATASET --out RUN [--config FILE] [--set key=value ...] [--steps N]
                     [--batch-size N] [--device D] [--resume] [--amp bf16|fp16|none]
    dgkit train rfg  ... (same options; e.g. --set image_size=64 for a CPU smoke run)
    dgkit train export RUN [RUN ...] --out WEIGHTS [--weights-dir DIR]   -> a folder dgkit.load_dg reads

Precedence: defaults < --config file < --set < the explicit options. Multi-GPU:
``torchrun --nproc_per_node=4 -m dgkit train rfg --data D --out RUN`` (batch size is per process).
"""

from __future__ import annotations

import argparse
import os

from ..errors import ConfigError

__all__ = ["default_threads", "register_cli", "short_run_note"]


def _plain(doc: str | None) -> str:
    """The module docstring without reStructuredText markup, for ``--help``."""
    import re

    return re.sub(r":\w+:`([^`]+)`", r"\1", (doc or "").replace("``", "`"))


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="dataset folder (made by `dgkit prepare-data`)")
    p.add_argument("--out", help="run folder (checkpoints, logs, samples); may hold both stages")
    p.add_argument("--config", help="JSON or YAML file of config keys")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key (repeatable), e.g. --set lr=1e-4 --set aligned_crops=true")
    p.add_argument("--steps", type=int, help="optimizer steps in total")
    p.add_argument("--batch-size", type=int, help="samples per micro-batch and process")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, mps")
    p.add_argument("--resume", action="store_true", default=None, help="continue from the latest train state")
    p.add_argument("--amp", choices=["bf16", "fp16", "none"], help="mixed precision (CUDA only)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads torch uses. Default: 1 when training on the CPU of a machine with at most "
                        f"{SMALL_MACHINE_CORES} cores (measured about 5x faster for IDSG and no slower for RFG "
                        "there), else torch's default (one per core)")


def _run_train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .entry import train_idsg, train_rfg

    cfg = load_config(args.kind, args.config, args.overrides, data=args.data, out=args.out, steps=args.steps,
                      batch_size=args.batch_size, device=args.device, resume=args.resume, amp=args.amp)
    threads = default_threads(cfg.device) if args.threads is None else args.threads
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"--threads must be at least 1, got {threads}")
        import torch

        torch.set_num_threads(threads)
    note = short_run_note(cfg)
    if note:
        print(f"note: {note}")
    result = (train_idsg if args.kind == "idsg" else train_rfg)(cfg)
    if result.checkpoint is not None:
        losses = ", ".join(f"{k}={v:.4g}" for k, v in result.final_losses.items())
        print(f"{args.kind.upper()} trained to step {result.steps}: {result.checkpoint}")
        print(f"final losses: {losses}")
        print(f"log: {result.log_path}")
        if note:
            print(f"note: {note}")
    return 0


SMALL_MACHINE_CORES = 2


def default_threads(device: str) -> int | None:
    """``--threads`` when not given: 1 for CPU training on a machine with at most 2 cores, else None (torch's).

    On the project's 2-core VM (shared with other jobs) one thread made an IDSG step about 5 times faster
    than torch's default of two (median 0.59 s vs 3.19 s) and an RFG step at 64 px no slower (37.9 s vs
    40.7 s); ``python benchmarks/bench_threads.py`` measures it on your machine.
    """
    import torch

    on_cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
    return 1 if on_cpu and (os.cpu_count() or 1) <= SMALL_MACHINE_CORES else None


def short_run_note(cfg) -> str | None:
    """A message when ``cfg.steps`` is too short for the EMA settings, else None.

    The exported networks are an exponential moving average (EMA) of the trained ones with decay ``ema_beta``,
    which averages over about ``1 / (1 - ema_beta)`` steps (1000 for the default 0.999) and, by default, starts
    from PyTorch's default initialisation. A run much shorter than that exports networks that are still close
    to their start: shapes collapse to an average blob. Two settings fix it for short runs.
    """
    horizon = 1.0 / max(1.0 - float(cfg.ema_beta), 1e-9)
    if cfg.steps >= 3 * horizon:
        return None
    fixes = [f"--set ema_beta={_short_beta(cfg.steps)}"]
    if cfg.ema_from_default_init:
        fixes.append("--set ema_from_default_init=false")
    return (f"{cfg.steps} steps is short for ema_beta={cfg.ema_beta:g} (the exported EMA networks average over "
            f"~{horizon:.0f} steps), so they stay close to their initial weights and images/shapes look "
            f"collapsed. For a short run add {' '.join(fixes)}.")


def _short_beta(steps: int) -> str:
    """An EMA decay that averages over about a tenth of the run (at least 0.5)."""
    return f"{max(0.5, 1.0 - 10.0 / max(steps, 1)):.2g}"


def _run_export(args: argparse.Namespace) -> int:
    from .export import export_trained_weights

    out = export_trained_weights(*args.runs, out_dir=args.out, weights_dir=args.weights_dir,
                                 allow_synthetic_vgg=args.allow_synthetic_vgg, link=not args.copy)
    print(f"weights folder: {out}  (load with dgkit.load_dg({str(out)!r}))")
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dgkit train`` with the sub-commands ``idsg``, ``rfg`` and ``export``."""
    train = subparsers.add_parser("train", help="train DG's IDSG or RFG on a dataset",
                                  description=_plain(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    stages = train.add_subparsers(dest="kind", metavar="STAGE", required=True)
    for kind, text in (("idsg", "the shape generator (landmark encoder/decoder); losses: docs/how-dg-works.md section 9"),
                       ("rfg", "the face generator and style encoder; losses: docs/how-dg-works.md section 9")):
        p = stages.add_parser(kind, help=f"train {text}")
        _add_common(p)
        p.set_defaults(func=_run_train, kind=kind)
    p = stages.add_parser("export", help="assemble a load_dg weights folder from trained runs")
    p.add_argument("runs", nargs="+", help="run folder(s) (the latest checkpoint of each stage is used)")
    p.add_argument("--out", required=True, help="new folder for the weights")
    p.add_argument("--weights-dir", help="where VGG-Face (and a stage no run has) come from")
    p.add_argument("--allow-synthetic-vgg", action="store_true", help="fall back to the synthetic VGG-Face")
    p.add_argument("--copy", action="store_true", help="copy VGG-Face instead of symlinking it")
    p.set_defaults(func=_run_export)
