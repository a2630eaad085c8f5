"""Batch throughput of the whole per-reference update on one device: reenacted frames per second.

    python benchmarks/bench_gpu.py --device cuda [--batches 1 8 32 64 128 256] [--precisions fp32 tf32 bf16 fp16]
                                   [--compile] [--cuda-graphs] [--repeats 10] [--json out.json]

One source is encoded once; every frame is a new reference (the mean face with deterministic jitter). A step is
``dg.reenact_tensors``: IDSG encoder + decoder, eye correction, the batched tensor sketch renderer
(``dgkit.sketch.draw_sketches_torch``) and the generator, all on the device with no host round trip. Each
precision is a model from ``load_dg(..., precision=...)`` (channels_last on CPU, the contiguous layout on
GPU). ``--compile`` adds ``torch.compile`` of the generator (compile seconds reported); ``--cuda-graphs``
captures the generator step in a CUDA graph per batch size (static input buffers). Medians over
``--repeats`` steps after warm-up; frames/s = batch / median step time.

It runs on CPU too (``--device cpu --batches 1 2``, what the tests do), slowly.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings

import numpy as np
import torch

from dgkit.geometry import mean_face_3d
from dgkit.pipeline import load_dg
from dgkit.weights import synthetic_weights_dir


def references(n: int, device: torch.device) -> torch.Tensor:
    rng = np.random.default_rng(0)
    base = mean_face_3d("crop")[:, :2]
    refs = np.stack([base + rng.normal(0, 1.5, base.shape) for _ in range(n)]).astype(np.float32)
    return torch.from_numpy(refs).to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step, device: torch.device, repeats: int, warmup: int = 3) -> float:
    """Median seconds of ``step()``."""
    for _ in range(warmup):
        step()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def make_step(dg, refs: torch.Tensor, ids: torch.Tensor, style: torch.Tensor, cuda_graph: bool):
    """A no-argument callable running one batched update (optionally replaying a CUDA graph)."""
    if not cuda_graph:
        return lambda: dg.reenact_tensors(refs, ids, style)
    static_refs = refs.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):  # warm up on a side stream before capture
            dg.reenact_tensors(static_refs, ids, style)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        dg.reenact_tensors(static_refs, ids, style)
    return graph.replay


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 64, 128, 256])
    ap.add_argument("--precisions", nargs="+", default=None, help="default: fp32 tf32 bf16 fp16 (GPU), fp32 (CPU)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile'd generators")
    ap.add_argument("--cuda-graphs", action="store_true", help="also time CUDA-graph replays (CUDA only)")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    precisions = args.precisions or (["fp32", "tf32", "bf16", "fp16"] if device.type == "cuda" else ["fp32"])
    warnings.filterwarnings("ignore", message="precision='bf16' on a CPU without")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"batch throughput: torch {torch.__version__}, {args.device} ({name}), median of {args.repeats}")
    print(f"{'precision':<10}{'variant':<14}{'batch':>6}{'ms/step':>10}{'frames/s':>10}")
    results = []
    for precision in precisions:
        dg = load_dg(synthetic_weights_dir(), device=device, precision=precision)
        rng = np.random.default_rng(1)
        enc = dg.encode_source(rng.integers(0, 256, (1, 256, 256, 3), dtype=np.uint8))
        ids, style = torch.from_numpy(enc.id_feature).to(device), torch.from_numpy(enc.style_code).to(device)
        variants = {"eager": dg}
        if args.compile:
            compiled = dg.to_precision(precision) if precision in ("fp32", "tf32") else dg
            t0 = time.perf_counter()
            compiled.generator = torch.compile(compiled.generator)
            with torch.inference_mode():
                compiled.reenact_tensors(references(1, device), ids, style)  # compiles
            print(f"  torch.compile ({precision}): first call {time.perf_counter() - t0:.1f} s")
            variants["compile"] = compiled
        for variant, model in variants.items():
            for graph in ([False, True] if args.cuda_graphs and device.type == "cuda" else [False]):
                label = variant + ("+graph" if graph else "")
                for batch in args.batches:
                    refs = references(batch, device)
                    try:
                        with torch.inference_mode():
                            step = make_step(model, refs, ids, style, graph)
                            seconds = time_steps(step, device, args.repeats)
                    except torch.OutOfMemoryError:
                        print(f"{precision:<10}{label:<14}{batch:>6}{'out of memory':>20}")
                        break
                    fps = batch / seconds
                    results.append({"precision": precision, "variant": label, "batch": batch,
                                    "ms_per_step": 1e3 * seconds, "frames_per_s": fps})
                    print(f"{precision:<10}{label:<14}{batch:>6}{1e3 * seconds:>10.2f}{fps:>10.1f}")
        del dg, variants
    if results:
        best = max(results, key=lambda r: r["frames_per_s"])
        print(f"best: {best['frames_per_s']:.0f} frames/s ({best['precision']}, {best['variant']}, "
              f"batch {best['batch']})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
