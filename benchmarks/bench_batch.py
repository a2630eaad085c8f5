"""CPU generator cost per frame at several batch sizes, and peak memory: what the video batch default rests on.

    python benchmarks/bench_batch.py [--batches 1 2 4 8] [--repeats 3] [--precision fp32]

``dg.generate`` on the same target sketches (synthetic weights; timings do not depend on the values) at each
batch size, interleaved batch by batch (other load on the machine hits all alike: compare the ratios), median
seconds per frame and its ratio to the first batch size, and the peak resident memory of the process during
the calls (models included, sampled every 20 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_video import PeakRss  # noqa: E402

from dgkit.geometry import mean_face_3d  # noqa: E402
from dgkit.pipeline import load_dg  # noqa: E402
from dgkit.weights import synthetic_weights_dir  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", default="fp32")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="precision='bf16' on a CPU without")
    print(f"load average {os.getloadavg()[0]:.1f} at start (other processes share this CPU)")
    dg = load_dg(synthetic_weights_dir(), device="cpu", precision=args.precision)
    rng = np.random.default_rng(0)
    encoding = dg.encode_source(rng.integers(0, 256, (1, 256, 256, 3), dtype=np.uint8))
    base = mean_face_3d("crop")[:, :2]
    references = np.stack([base + rng.normal(0, 1.0, base.shape) for _ in range(max(args.batches))])
    sketches = dg.run_chain(references.astype(np.float32), encoding.id_feature).sketch
    dg.generate(sketches[:1], encoding.style_code)  # warm-up
    per_frame: dict[int, list[float]] = {b: [] for b in args.batches}
    peak = dict.fromkeys(args.batches, 0)
    for _ in range(args.repeats):
        for batch in args.batches:
            with PeakRss() as rss:
                start = time.perf_counter()
                dg.generate(sketches[:batch], encoding.style_code)
                per_frame[batch].append((time.perf_counter() - start) / batch)
            peak[batch] = max(peak[batch], rss.peak)
    first = statistics.median(per_frame[args.batches[0]])
    for batch in args.batches:
        median = statistics.median(per_frame[batch])
        print(json.dumps({"precision": args.precision, "batch": batch, "s_per_frame": round(median, 3),
                          "vs_first": round(median / first, 3), "peak_rss_gib": round(peak[batch] / 2**30, 2)}))
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
