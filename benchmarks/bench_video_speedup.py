"""Video throughput before and after the speed work, interleaved in one run: the issue's "2x" check.

    python benchmarks/bench_video_speedup.py [--frames 16] [--repeats 3]

``before``: exact float32, instance-norm statistics from ``torch.var_mean`` (what dgkit used before), batch 8
(the earlier video default), every stage in turn. ``after``: ``precision="bf16"``, the current float32
statistics, batch 1 (the CPU default now) with frames read and detected on a producer thread
(``overlap=True``). Both reenact the same synthetic 256x256 driving clip of the sample face with the synthetic
weights (speed does not depend on the values); source preparation and encoding are included. Reports frames/s
per run, the medians and their ratio. Needs a CPU with native bfloat16 (AVX-512 BF16 / AMX) or a GPU for
bf16 to pay off.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch

from dgkit.io import make_test_video, sample_image
from dgkit.models import blocks
from dgkit.pipeline import load_dg
from dgkit.reenact import iter_reenact_video, prepare_face
from dgkit.weights import synthetic_weights_dir


def _var_mean_stats(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)  # the earlier statistics
    return mean, torch.rsqrt(var + eps)


@contextlib.contextmanager
def _stats(fn):
    saved = blocks._instance_stats
    blocks._instance_stats = fn
    try:
        yield
    finally:
        blocks._instance_stats = saved


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(2)  # the 2-core VM the targets are stated for
    clip = make_test_video(Path(tempfile.mkdtemp()) / "drive.mp4", sample_image(), n_frames=args.frames, fps=15,
                           size=(256, 256))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = {"before": load_dg(synthetic_weights_dir(), device=args.device),
                  "after": load_dg(synthetic_weights_dir(), device=args.device, precision="bf16")}
    face = prepare_face(sample_image(), backend="mediapipe")
    config = {"before": dict(batch_size=8, overlap=False, stats=_var_mean_stats),
              "after": dict(batch_size=1, overlap=True, stats=blocks._instance_stats)}
    fps: dict[str, list[float]] = {k: [] for k in config}
    for r in range(args.repeats + 1):  # the first round warms up and is not counted
        for name in (list(config) if r % 2 == 0 else list(config)[::-1]):
            c = config[name]
            with _stats(c["stats"]):
                t0 = time.perf_counter()
                n = sum(1 for _ in iter_reenact_video(face, clip, dg=models[name], backend="mediapipe",
                                                      batch_size=c["batch_size"], overlap=c["overlap"]))
                rate = n / (time.perf_counter() - t0)
            if r:
                fps[name].append(rate)
                print(f"round {r} {name:6s} {rate:5.2f} frames/s", flush=True)
    med = {k: statistics.median(v) for k, v in fps.items()}
    print(f"before (fp32, var_mean statistics, batch 8, in turn): {med['before']:.2f} frames/s")
    print(f"after  (bf16, float32 statistics, batch 1, overlap):  {med['after']:.2f} frames/s")
    print(f"after / before: {med['after'] / med['before']:.2f}x (median of {args.repeats} interleaved rounds)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
