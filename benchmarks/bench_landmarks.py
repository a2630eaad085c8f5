"""Milliseconds per image of each available landmark backend on this machine's CPU.

Median of N timed runs after warm-up runs (the first call also builds the models; it is reported
apart). Images: the astronaut (512x512, one face ~95 px wide) and a 1280x720 frame with the astronaut's
head pasted at 1.5x over a plain background.

    python benchmarks/bench_landmarks.py [--runs 20] [--warmup 3] [--backend mediapipe]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import cv2
import numpy as np
import skimage.data

from dgkit.landmarks import available_backends, detect_faces, get_backend


def test_images() -> dict[str, np.ndarray]:
    astronaut = skimage.data.astronaut()
    frame = np.full((720, 1280, 3), (60, 90, 120), np.uint8)
    head = cv2.resize(astronaut[10:300, 80:370], None, fx=1.5, fy=1.5, interpolation=cv2.INTER_LINEAR)
    frame[150:150 + head.shape[0], 700:700 + head.shape[1]] = head
    return {"astronaut 512x512": astronaut, "frame 1280x720": frame}


def time_backend(name: str, image: np.ndarray, runs: int, warmup: int) -> tuple[float, float, int]:
    """(first call ms, median ms of ``runs``, faces found)."""
    backend = get_backend(name)
    start = time.perf_counter()
    faces = detect_faces(image, backend)
    first = (time.perf_counter() - start) * 1e3
    for _ in range(warmup):
        detect_faces(image, backend)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        detect_faces(image, backend)
        times.append((time.perf_counter() - start) * 1e3)
    return first, statistics.median(times), len(faces)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--backend", action="append", help="backend name (repeatable); default: all available")
    args = parser.parse_args(argv)
    backends = args.backend or available_backends()
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"median of {args.runs} runs after {args.warmup} warm-up runs")
    print(f"{'backend':<12}{'image':<20}{'faces':>6}{'first call ms':>15}{'median ms':>12}")
    for name in backends:
        for label, image in test_images().items():
            first, median, n_faces = time_backend(name, image, args.runs, args.warmup)
            print(f"{name:<12}{label:<20}{n_faces:>6}{first:>15.1f}{median:>12.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
