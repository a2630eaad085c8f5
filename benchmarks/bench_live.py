"""Live mode speed: can the shape path keep a 15 frames/s camera's pace, and does the DG panel reach the
generator's own rate with a latency under 1.5 generator times?

    python benchmarks/bench_live.py [--seconds 15] [--device cpu] [--threads 2] [--json out.json]

A 640x480 clip of the sample face (gently moving) plays as a 15 frames/s camera (``VideoFileSource``: frames
are dropped when processing is slower, as with a real camera). For each precision the kit offers (float32,
and bfloat16 when ``load_dg(precision="bf16")`` exists):

* ``generator``: median seconds of ``dg.generate`` at batch 1, alone (no other work running);
* ``shape path``: median seconds per frame of detect + align + One-Euro smooth + IDSG + sketch, alone, and
  the engine's processed frames/s with the generator off (target: >= 15);
* ``full engine``: shape path + generator (+ warp baseline) together, as the app runs them: sketch-panel and
  DG-panel frames/s, camera-to-sketch and camera-to-DG latency; targets: DG fps >= 0.9 / generator time,
  DG latency < 1.5 generator times.

Synthetic (untrained) weights: speed does not depend on the values. Landmarks: mediapipe.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

import dgkit
from dgkit.io import make_test_video
from dgkit.live import LiveEngine, OneEuroFilter, VideoFileSource


def _load(device: str, precision: str | None):
    if precision is None:
        return dgkit.load_dg(allow_synthetic=True, device=device)
    try:
        return dgkit.load_dg(allow_synthetic=True, device=device, precision=precision)
    except TypeError:
        return None  # this dgkit has no precision option


def _median_s(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def shape_path_s(dg, encoding, frames, repeats: int) -> float:
    """Median seconds per frame of detect + align + smooth + IDSG + sketch (the sketch panel's work)."""
    from dgkit.align import alignment_matrix, transform_landmarks
    from dgkit.landmarks import detect_faces

    filt = OneEuroFilter()
    state = {"i": 0}

    def one():
        i = state["i"] = state["i"] + 1
        frame = frames[i % len(frames)]
        lm = detect_faces(frame, "mediapipe")[0].landmarks
        crop = filt(transform_landmarks(lm, alignment_matrix(lm)), i / 15)
        ref = dg.encode_reference(crop[:, :2])
        target = dg.correct_eyes(dg.decode(ref.landmark_code, encoding.id_feature), ref.landmarks)
        dg.draw(target)

    return _median_s(one, repeats)


def run_engine(dg, clip: Path, seconds: float, *, generator: bool) -> dict:
    engine = LiveEngine(dg, dgkit.sample_image("astronaut"), VideoFileSource(clip), backend="mediapipe",
                        generator=generator, warp=generator)
    engine.warm_up()
    stats = engine.run(timeout=seconds)
    return {"captured": stats.captured, "processed": stats.processed, "dropped": stats.dropped,
            "dg_frames": stats.dg_frames, "sketch_fps": stats.fps["sketch"], "dg_fps": stats.fps["dg"],
            "latency_ms": 1000 * stats.latency_mean_s, "latency_p95_ms": 1000 * stats.latency_p95_s,
            "dg_latency_ms": 1000 * stats.dg_latency_mean_s, "dg_latency_p95_ms": 1000 * stats.dg_latency_p95_s,
            "stage_fps": stats.stage_fps, "seconds": stats.seconds}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=15.0, help="length of each engine run (default 15)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", default=None, help="also write the results to this file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    tmp = Path(tempfile.mkdtemp(prefix="dgkit-bench-live-"))
    n = int(15 * (args.seconds + 5))
    clip = make_test_video(tmp / "camera.mp4", dgkit.sample_image("astronaut"), n_frames=n, fps=15, size=(640, 480))
    frames = [f for f, _ in zip(dgkit.iter_video_frames(clip), range(30))]
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"camera: 640x480 at 15 frames/s, {args.seconds:g} s per run")

    results = {}
    for precision in (None, "bf16"):
        dg = _load(args.device, precision)
        name = precision or "fp32"
        if dg is None:
            print(f"{name}: load_dg has no precision option here; skipped")
            continue
        face = dgkit.prepare_face(dgkit.sample_image("astronaut"), backend="mediapipe")
        encoding = dg.encode_source(face.crop)
        sketch = dg.draw(face.crop_landmarks[None, :, :2])
        gen_s = _median_s(lambda: dg.generate(sketch, encoding.style_code), args.repeats)
        shape_s = shape_path_s(dg, encoding, frames, args.repeats * 4)
        shape_run = run_engine(dg, clip, args.seconds, generator=False)
        full_run = run_engine(dg, clip, args.seconds, generator=True)
        r = {"generator_s": gen_s, "shape_path_s": shape_s, "shape_only": shape_run, "full": full_run}
        results[name] = r
        print(f"\n== {name} ==")
        print(f"generator alone, batch 1:        {1000 * gen_s:8.1f} ms  -> target DG fps >= {0.9 / gen_s:.2f}, "
              f"DG latency < {1500 * gen_s:.0f} ms")
        print(f"shape path alone (per frame):    {1000 * shape_s:8.1f} ms  = {1 / shape_s:.1f} frames/s")
        print(f"engine, generator off:           sketch {shape_run['sketch_fps']:.1f} frames/s "
              f"({shape_run['processed']}/{shape_run['captured']} camera frames, {shape_run['dropped']} dropped), "
              f"latency {shape_run['latency_ms']:.0f} ms (p95 {shape_run['latency_p95_ms']:.0f})")
        print(f"engine, full:                    sketch {full_run['sketch_fps']:.1f} frames/s, DG "
              f"{full_run['dg_fps']:.2f} frames/s ({full_run['dg_frames']} faces), latency sketch "
              f"{full_run['latency_ms']:.0f} ms, DG {full_run['dg_latency_ms']:.0f} ms "
              f"(p95 {full_run['dg_latency_p95_ms']:.0f})")
        print(f"  DG fps / (0.9 / generator time) = {full_run['dg_fps'] * gen_s / 0.9:.2f}   "
              f"DG latency / generator time = {full_run['dg_latency_ms'] / 1000 / gen_s:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
