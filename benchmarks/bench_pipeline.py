"""Per-stage timings of dgkit's DG pipeline on this machine, next to the original code's timings on this VM type.

    python benchmarks/bench_pipeline.py [--repeats 7] [--threads 2] [--device cpu] [--batches 1 4]
                                        [--precisions fp32 bf16] [--json out.json]

Two paths are timed in the same run, interleaved repetition by repetition (so that other load on the machine
hits both alike; compare their ratio, not absolute numbers across runs):

* ``original``: the released demo's per-frame path, rebuilt from dgkit's networks in the demo's settings
  (contiguous NCHW tensors, torch's instance norm, ``torch.no_grad``): VGG-Face fc7 of the source + IDSG
  encoder/decoder + eye correction + target sketch + generator, *every frame* (the demo re-ran VGG-Face per
  frame; its style code was cached).
* ``dgkit``: a per-reference update with an already encoded source (:class:`dgkit.SourceEncoding`), i.e.
  ``dg.reenact(encoding, reference)``: IDSG + eye correction + sketch + generator, channels_last, inference mode,
  once per precision asked for (``load_dg(..., precision=...)``; default fp32, plus bf16 where the CPU has native
  bfloat16 or on a GPU).
* ``shape-only``: ``dg.run_chain(reference, id_feature)`` without a style code (IDSG + eye correction + sketch),
  the update a pose slider needs before the face is ready.

Uses the synthetic weights (timings do not depend on the values). Reports medians in ms.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from dgkit.pipeline import cpu_has_fast_bf16, load_dg
from dgkit.weights import synthetic_weights_dir

# the released code measured on this VM type, torch 2.13.0+cpu, 2 threads (ms, batch 1 / batch 4)
SPEC_MS = {
    "vgg_face": (129.8, 612.6),
    "idsg (encoder+decoder)": (0.25, 0.78),
    "sketch (show_map)": (0.70, 2.99),
    "style_encoder": (156.8, 785.0),
    "generator": (376.5, 2069.0),
}


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync()
        t0 = time.perf_counter()
        fn()
        _sync()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def interleaved_ms(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median ms of each function, alternating between them every repetition."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            _sync()
            t0 = time.perf_counter()
            fn()
            _sync()
            times[name].append((time.perf_counter() - t0) * 1000)
    return {k: statistics.median(v) for k, v in times.items()}


def inputs(batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic aligned sources (noise images) and reference landmarks (golden-like mean face)."""
    from dgkit.geometry import mean_face_3d

    rng = np.random.default_rng(0)
    sources = rng.integers(0, 256, size=(batch, 256, 256, 3), dtype=np.uint8)
    base = mean_face_3d("crop")[:, :2]
    refs = np.stack([base + rng.normal(0, 1.5, base.shape) for _ in range(batch)]).astype(np.float32)
    return sources, refs


def demo_networks(dg):
    """A contiguous (NCHW) copy of dg's networks whose instance norms are torch's own, as in the released code."""
    import types

    import torch.nn.functional as F

    from dgkit.models.blocks import AdaIN, InstanceNorm

    def instance_norm(self, x):
        return F.instance_norm(x, weight=getattr(self, "weight", None), bias=getattr(self, "bias", None),
                               eps=self.eps)

    def adain(self, x, s):
        gamma, beta = torch.chunk(self.fc(s)[:, :, None, None], chunks=2, dim=1)
        return (1 + gamma) * self.norm(x) + beta

    nets = copy.deepcopy(dg).to(memory_format=torch.contiguous_format)
    for module in nets.modules():
        if isinstance(module, InstanceNorm):
            module.forward = types.MethodType(instance_norm, module)
        elif isinstance(module, AdaIN):
            module.forward = types.MethodType(adain, module)
    return nets


def original_path(dg) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """The demo's per-frame computation with a contiguous (NCHW) copy of the networks under no_grad."""
    nets = demo_networks(dg)
    intensity = 1 / 255

    device = dg.device

    @torch.no_grad()
    def run(sources: np.ndarray, refs: np.ndarray, style: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(sources).to(device).permute(0, 3, 1, 2).float().div(255).contiguous()
        id_feature = nets.vgg(x)
        code = nets.landmark_encoder(torch.from_numpy(refs.reshape(len(refs), -1) / 256).float().to(device))
        decoded = nets.landmark_decoder(code, id_feature).cpu().numpy().reshape(-1, 68, 2) * 256
        target = dg.correct_eyes(decoded, refs)
        sketch = torch.from_numpy(dg.draw(target)).to(device).float().gt(0).float().mul(intensity)
        out = nets.generator(sketch[:, None].repeat(1, 3, 1, 1), torch.from_numpy(style).to(device))
        return out.cpu().numpy()

    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    ap.add_argument("--tf32", action="store_true", help="CUDA: allow TF32 convolutions in both paths (not exact)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--precisions", nargs="+", default=None,
                    help="precisions of the dgkit update (default: fp32, and bf16 on a GPU or a CPU with native "
                         "bfloat16)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    # one float32 policy for both paths (cuDNN defaults to TF32 convolutions; dgkit's steps default to exact)
    torch.backends.cudnn.allow_tf32 = args.tf32

    fp32 = "tf32" if args.tf32 else "fp32"
    dg = load_dg(synthetic_weights_dir(), device=args.device, precision=fp32)
    precisions = args.precisions or ([fp32] + (["bf16"] if dg.device.type != "cpu" or cpu_has_fast_bf16() else []))
    low = {p: dg.to_precision(p) for p in precisions if p != fp32}
    device_name = torch.cuda.get_device_name() if dg.device.type == "cuda" else "cpu"
    print(f"dgkit pipeline benchmark: torch {torch.__version__}, device {args.device} ({device_name}), {args.threads} threads, "
          f"median of {args.repeats} (interleaved)\n")
    results: dict[str, dict] = {}
    rows = []
    for batch in args.batches:
        sources, refs = inputs(batch)
        enc = dg.encode_source(sources)
        ref = dg.encode_reference(refs)
        decoded = dg.decode(ref.landmark_code, enc.id_feature)
        target = dg.correct_eyes(decoded, refs)
        sketch = dg.draw(target)
        x = dg._images_to_tensor(sources)
        with torch.inference_mode():
            stages = {
                "vgg_face": lambda: dg.vgg(x),
                "idsg (encoder+decoder)": lambda: dg.decode(dg.encode_reference(refs).landmark_code, enc.id_feature),
                "sketch (show_map)": lambda: dg.draw(target),
                "style_encoder": lambda: dg.style_encoder(x),
                "generator": lambda: dg.generate(sketch, enc.style_code),
            }
            stage_ms = {name: median_ms(fn, args.repeats) for name, fn in stages.items()}
        original = original_path(dg)
        models = {fp32: dg, **low}
        candidates = {"original per-frame (VGG+IDSG+sketch+generator)": lambda: original(sources, refs, enc.style_code)}
        for p, model in models.items():
            candidates[f"dgkit update {p} (encoded source)"] = lambda model=model: model.reenact(enc, refs)
        candidates["dgkit shape-only update (IDSG+eyes+sketch)"] = lambda: dg.run_chain(refs, enc.id_feature)
        paths = interleaved_ms(candidates, args.repeats)
        base = paths["original per-frame (VGG+IDSG+sketch+generator)"]
        ratios = {p: paths[f"dgkit update {p} (encoded source)"] / base for p in models}
        results[f"batch{batch}"] = {"stages_ms": stage_ms, "paths_ms": paths, "ratio": ratios[fp32],
                                    "ratios": ratios}
        for name, ms in stage_ms.items():
            rows.append((batch, name, ms, SPEC_MS[name][0 if batch == 1 else 1]))
        for name, ms in paths.items():
            rows.append((batch, name, ms, None))
        for p, ratio in ratios.items():
            rows.append((batch, f"ratio dgkit {p} / original", ratio, None))

    print(f"{'batch':>5}  {'stage / path':<52} {'dgkit ms':>10} {'original ms':>11}")
    for batch, name, ms, spec in rows:
        if name.startswith("ratio"):
            print(f"{batch:>5}  {name:<52} {ms:>10.2f}x")
        else:
            print(f"{batch:>5}  {name:<52} {ms:>10.2f} {spec if spec is not None else '':>11}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
