"""torch.compile variants of the DG generator: compile time (cold / warm cache), speed and difference vs eager.

    python benchmarks/bench_compile.py [--cache /tmp/dg-compile] [--repeats 5] [--batch 1] [--jit]
                                       [--variants freeze+prepack freeze,no-prepack no-freeze]

Each variant compiles the float32 generator (synthetic weights; timings do not depend on the values) into its
own inductor cache folder under ``--cache``. Run the script twice with the same ``--cache``: the first run
reports the cold compile time, the second the time with the cache filled (what a later session pays; the
FX-graph cache counters say whether the graph was found). Then eager and every variant are timed interleaved,
call by call (other load on the machine hits all alike: compare the ratios), and each compiled output is
compared with eager (max grey-level difference after the demo's truncation to uint8, PSNR).

Variants: ``freeze+prepack`` is inductor's weight freezing with oneDNN weight prepacking (prepacked weights
cannot be pickled, so that graph is never cached); ``freeze,no-prepack`` freezes without prepacking;
``no-freeze`` keeps the weights as inputs (what ``load_dg(compile=True)`` uses). ``--jit`` adds TorchScript
(``torch.jit.trace`` + ``torch.jit.freeze``); ``--variants`` with no name times only eager and that.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

VARIANTS = {"freeze+prepack": {"freezing": True}, "freeze,no-prepack": {"freezing": True, "cpp.weight_prepack": False},
            "no-freeze": {}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default="/tmp/dgkit-bench-compile", help="parent folder of the inductor caches")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--jit", action="store_true",
                        help="also time torch.jit.trace + torch.jit.freeze of the generator (TorchScript)")
    args = parser.parse_args(argv)

    from torch._dynamo.utils import counters

    from dgkit.pipeline import load_dg
    from dgkit.weights import synthetic_weights_dir

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")
    generator = load_dg(synthetic_weights_dir(), device="cpu").generator
    sketch = torch.zeros(args.batch, 3, 256, 256).contiguous(memory_format=torch.channels_last)
    sketch[:, :, 100:110, 50:200] = 1 / 255  # a sketch line at the demo's intensity
    style = torch.randn(args.batch, 128, generator=torch.Generator().manual_seed(0))
    fns = {"eager": generator}
    with torch.inference_mode():
        reference = generator(sketch, style)
        for name in args.variants:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(args.cache, name)
            torch._dynamo.reset()
            counters.clear()
            compiled = torch.compile(generator, dynamic=False, options=VARIANTS[name])
            start = time.perf_counter()
            out = compiled(sketch, style)
            seconds = time.perf_counter() - start
            grey = ((reference * 255).to(torch.uint8).int() - (out * 255).to(torch.uint8).int()).abs().max().item()
            mse = ((reference - out) ** 2).mean().item()
            print(json.dumps({"variant": name, "first_call_s": round(seconds, 1), "max_grey": grey,
                              "psnr_db": round(10 * torch.log10(torch.tensor(1 / mse)).item(), 1) if mse else "inf",
                              "fx_graph_cache": {k: v for k, v in counters["inductor"].items() if "fxgraph" in k}}),
                  flush=True)
            fns[name] = compiled
    if args.jit:
        with torch.no_grad():
            start = time.perf_counter()
            frozen = torch.jit.freeze(torch.jit.trace(generator, (sketch, style)).eval())
            for _ in range(2):  # the profiling executor specialises on the first calls
                out = frozen(sketch, style)
            print(json.dumps({"variant": "jit.freeze", "build_and_2_calls_s": round(time.perf_counter() - start, 1),
                              "max_abs": (reference - out).abs().max().item()}), flush=True)
        fns["jit.freeze"] = frozen
    with torch.inference_mode():
        times: dict[str, list[float]] = {k: [] for k in fns}
        for _ in range(args.repeats):
            for name, fn in fns.items():
                start = time.perf_counter()
                fn(sketch, style)
                times[name].append(time.perf_counter() - start)
    eager = statistics.median(times["eager"])
    for name, values in times.items():
        print(json.dumps({"variant": name, "median_s": round(statistics.median(values), 3),
                          "vs_eager": round(statistics.median(values) / eager, 3)}), flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end (other processes share this CPU)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
