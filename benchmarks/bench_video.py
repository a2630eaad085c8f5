"""End-to-end video reenactment speed on this machine, and where the time goes.

A synthetic driving video (the astronaut, gently moving; 256x256) is reenacted with the astronaut photo as
source, once with DG on the synthetic (untrained) weights, which cost exactly what the official ones cost,
and once with the warp baseline (no DG). DG runs once per precision x batch size, with the frames read and
detected on a producer thread overlapping the networks (``iter_reenact_video(..., overlap=True)``, the
default on GPUs), and once without overlap (every stage in turn, the CPU default) for comparison; with
``--repeats`` the configurations alternate run by run and the median run is shown. A warm-up run on
the first batch (models built, caches filled) is excluded. Reported: frames per second end to end (source
preparation and encoding included, writing the video excluded), peak resident memory of the process during
the run (sampled every 20 ms), and per stage the seconds, ms per frame and share of the wall time (with the
overlap, read/detect/align run on the other thread, so the shares add up to more than 100 %). Then the
landmark detection time per image of each available backend (median; see benchmarks/bench_landmarks.py).

    python benchmarks/bench_video.py [--frames 12] [--batch-sizes 1 8] [--precisions fp32 bf16] [--repeats 3]
                                     [--backend auto] [--device cpu] [--skip-dg] [--compile]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch

from dgkit.io import make_test_video, sample_image
from dgkit.landmarks import available_backends, detect_faces, get_backend
from dgkit.pipeline import load_dg
from dgkit.reenact import iter_reenact_video, prepare_face
from dgkit.weights import synthetic_weights_dir

# stage -> what it covers (the names dgkit.reenact records in VideoReport.seconds)
STAGES = {
    "read": "read/decode frames",
    "detect": "detect landmarks",
    "align": "ArcFace align",
    "encode_source": "VGG-Face + style (once)",
    "idsg": "IDSG (baseline: rel. 3D)",
    "sketch": "draw sketch",
    "generator": "RFG generator",
    "warp": "warp baseline",
    "write": "encode/write frames",
}


class PeakRss:
    """Peak resident set size (bytes) of this process while the block runs, sampled on a thread."""

    def __init__(self, interval: float = 0.02):
        import psutil

        self.process, self.interval, self.peak = psutil.Process(), interval, 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakRss":
        self.peak = self.process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_once(source: np.ndarray, video: Path, dg, args, batch_size: int, overlap: bool = True) -> dict[str, float]:
    """Warm up on one batch, then time the whole video; returns the stage seconds, "total", "frames", "rss"."""
    for _ in iter_reenact_video(source, video, dg=dg, backend=args.backend, batch_size=batch_size,
                                max_frames=batch_size, overlap=overlap):
        pass
    seconds: dict[str, float] = {}
    frames = 0
    with PeakRss() as rss:
        start = time.perf_counter()
        face = prepare_face(source, backend=args.backend)
        for _ in iter_reenact_video(face, video, dg=dg, backend=args.backend, batch_size=batch_size,
                                    timings=seconds, overlap=overlap):
            frames += 1
        seconds["total"] = time.perf_counter() - start
    seconds["frames"], seconds["rss"] = frames, rss.peak
    return seconds


def print_table(title: str, seconds: dict[str, float]) -> None:
    total, frames = seconds["total"], seconds["frames"]
    print(f"\n{title}: {frames} frames in {total:.2f} s -> {frames / total:.2f} frames/s "
          f"({1e3 * total / frames:.0f} ms/frame), peak RSS {seconds['rss'] / 2**30:.2f} GiB")
    print(f"  {'stage':<28}{'seconds':>9}{'ms/frame':>10}{'share':>8}")
    accounted = 0.0
    for key, label in STAGES.items():
        if key in seconds:
            accounted += seconds[key]
            print(f"  {label:<28}{seconds[key]:>9.2f}{1e3 * seconds[key] / frames:>10.1f}"
                  f"{100 * seconds[key] / total:>7.1f}%")
    other = total - accounted
    if other > 0:
        print(f"  {'other (source prep, glue)':<28}{other:>9.2f}{1e3 * other / frames:>10.1f}"
              f"{100 * other / total:>7.1f}%")


def detection_times(runs: int) -> None:
    frame = cv2.resize(sample_image(), (256, 256), interpolation=cv2.INTER_AREA)
    images = {"astronaut 512x512": sample_image(), "video frame 256x256": frame}
    print(f"\nlandmark detection, median of {runs} runs after 2 warm-up runs")
    print(f"  {'backend':<12}{'image':<22}{'faces':>6}{'ms/image':>10}")
    for name in available_backends():
        backend = get_backend(name)
        for label, image in images.items():
            for _ in range(2):
                faces = detect_faces(image, backend)
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                detect_faces(image, backend)
                times.append(1e3 * (time.perf_counter() - start))
            print(f"  {name:<12}{label:<22}{len(faces):>6}{statistics.median(times):>10.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=12, help="frames in the synthetic video")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--precisions", nargs="+", default=["fp32"], help="DG precisions (fp32, bf16, ...)")
    parser.add_argument("--backend", default="auto", help="landmark backend")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--detect-runs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=1, help="interleaved runs of each configuration (median)")
    parser.add_argument("--skip-dg", action="store_true", help="time only the warp baseline")
    parser.add_argument("--compile", action="store_true",
                        help="add DG with the first precision compiled (load_dg(compile=True)) at the first batch "
                             "size; its compile (or cache load) time is printed and excluded")
    args = parser.parse_args(argv)

    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads "
          f"{torch.get_num_threads()}, device {args.device}; load average {os.getloadavg()[0]:.1f} at start")
    source = sample_image()
    with tempfile.TemporaryDirectory() as tmp:
        video = make_test_video(Path(tmp) / "drive.mp4", n_frames=args.frames, fps=24.0)
        configs = [("warp baseline (no DG, 256 px)", None, args.batch_sizes[0], True)]
        if not args.skip_dg:
            warnings.filterwarnings("ignore", message="precision='bf16' on a CPU without")
            for precision in args.precisions:
                dg = load_dg(synthetic_weights_dir(1234), device=args.device, precision=precision)
                for batch in args.batch_sizes:
                    configs.append((f"DG {precision}, batch {batch}, overlap (synthetic weights, 256 px)", dg, batch,
                                    True))
                    if precision == args.precisions[0] and batch == args.batch_sizes[-1]:
                        configs.append((f"DG {precision}, batch {batch}, no overlap (synthetic weights, 256 px)", dg,
                                        batch, False))
            if args.compile:
                dg = load_dg(synthetic_weights_dir(1234), device=args.device, precision=args.precisions[0],
                             compile=True)
                batch = args.batch_sizes[0]
                start = time.perf_counter()
                for _ in iter_reenact_video(source, video, dg=dg, backend=args.backend, batch_size=batch,
                                            max_frames=batch, overlap=False):
                    pass
                print(f"compiled generator, batch {batch}: first call (compile or cache load) "
                      f"{time.perf_counter() - start:.1f} s")
                configs.append((f"DG {args.precisions[0]} compiled, batch {batch}, no overlap (synthetic weights, "
                                "256 px)", dg, batch, False))
        runs: dict[str, list[dict[str, float]]] = {label: [] for label, *_ in configs}
        for _ in range(args.repeats):  # interleaved: load from other processes hits every configuration alike
            for label, dg, batch, overlap in configs:
                runs[label].append(run_once(source, video, dg, args, batch, overlap))
        for label, results in runs.items():
            results.sort(key=lambda r: r["total"])
            print_table(label + (f", median of {len(results)}" if len(results) > 1 else ""),
                        results[len(results) // 2])
    detection_times(args.detect_runs)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end (other processes share this CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
