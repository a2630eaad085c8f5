"""Training throughput of dgkit's IDSG and RFG steps (dgkit.training), on CPU and, when present, CUDA.

    python benchmarks/bench_training.py              # CPU: IDSG batch 32, RFG 64 px batch 4
    python benchmarks/bench_training.py --cuda       # + CUDA: fp32 vs bf16 at 256 px, lazy R1 (r1_every 4, 16),
                                                     #   largest bf16 RFG batch, short engine runs bf16/fp16
    python benchmarks/bench_training.py --loop BASE  # whole training loop (data loading, logging included),
                                                     #   interleaved: the dgkit in folder BASE (an older
                                                     #   version) vs this one, and this one's data-loading modes

``--loop BASE``: BASE is a folder holding another dgkit package (e.g. ``git archive 386e2d8 dgkit | tar -x -C
/tmp/base``). Each variant runs in its own process (1 torch thread, as ``dgkit train`` on a 2-core CPU), the
variants alternate for ``--rounds`` rounds, and the time per step is taken from the run's own CSV log between
its first and last row (set-up excluded). Variants: ``base``; ``new`` (defaults: thread prefetch);
``new_noprefetch`` (loading on the main thread); ``new_workers1`` (one DataLoader worker process).

What is timed: one full optimizer step (every sub-step: discriminator, classifier, generator(s), EMA update)
on a batch already on the device; data loading is excluded. VGG-Face has random weights here (timing does not
depend on them). Reported: median seconds per step over ``--steps`` timed steps after one warm-up step,
steps/s and samples/s. With ``r1_every`` k > 1 the median is a step without R1; the amortized time is
((k-1) * median + one R1 step) / k. The machine's other load is not controlled: on a shared CPU read the
numbers as rough.

Measured (2026-11-26): this 2-core CPU (torch 2.13 CPU, 2 threads, load average ~6 from other jobs): IDSG batch
32 0.042 s/step (~760 samples/s); RFG 64 px batch 4 3.9 s/step (~1 sample/s). NVIDIA H200 (torch 2.11+cu130),
256 px: IDSG batch 32 0.014-0.016 s/step (~2000 samples/s, fp32 and bf16 alike); RFG batch 4 0.17-0.18 s/step
(~22-24 samples/s); RFG batch 32 fp32 50, bf16 59 samples/s; bf16 with r1_every=4 118 samples/s for steps
without R1 (~94 amortized); largest bf16 RFG batch that fits 240 (timed at 210: 57 samples/s, 118 GiB peak).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dgkit.models import VGGFace
from dgkit.training.config import config_from_dict
from dgkit.training.data import make_synthetic_dataset
from dgkit.training.runtime import Runtime, step_generator
from dgkit.training.sampler import EpochItems
from dgkit.training.idsg import IDSGTask
from dgkit.training.rfg import RFGTask


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(kind: str, data: Path, vgg: torch.nn.Module, **values):
    cfg = config_from_dict(kind, {"data": str(data), "out": str(data.parent / "run"), "progress": False,
                                  "tensorboard": False, **values})
    rt = Runtime(cfg)
    task = (IDSGTask if kind == "idsg" else RFGTask)(cfg, rt, vgg=vgg)
    dataset = task.build_dataset()
    items = [EpochItems(dataset)[(0, i)] for i in range(len(dataset))]
    return task, items


def make_batch(task, items: list[dict], batch_size: int) -> dict:
    """A batch of ``batch_size`` items (cycling through the dataset), on the task's device."""
    from torch.utils.data import default_collate

    return task.batch_to_device(default_collate([items[i % len(items)] for i in range(batch_size)]))


def time_steps(task, batch: dict, steps: int) -> float:
    """Median seconds per optimizer step (after one warm-up step)."""
    device = task.rt.device
    times = []
    for i in range(steps + 1):
        _sync(device)
        t = time.perf_counter()
        task.step = i + 1
        task.train_step([batch], step_generator(0, 0, i))
        task.rt.end_iteration()
        task.update_ema()
        _sync(device)
        if i:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def row(name: str, device: str, batch: int, sec: float, **extra) -> dict:
    out = {"bench": name, "device": device, "batch": batch, "s_per_step": round(sec, 4),
           "steps_per_s": round(1 / sec, 3), "samples_per_s": round(batch / sec, 2), **extra}
    print(json.dumps(out), flush=True)
    return out


def cpu_bench(data: Path, steps: int) -> list[dict]:
    vgg = VGGFace().requires_grad_(False)
    rows = []
    task, items = build("idsg", data, vgg, device="cpu", batch_size=32)
    rows.append(row("idsg", "cpu", 32, time_steps(task, make_batch(task, items, 32), steps),
                    threads=torch.get_num_threads()))
    task, items = build("rfg", data, vgg, device="cpu", batch_size=4, image_size=64)
    rows.append(row("rfg_64px", "cpu", 4, time_steps(task, make_batch(task, items, 4), steps),
                    threads=torch.get_num_threads()))
    return rows


def max_batch(task, items, start: int = 4, cap: int = 1024) -> int:
    """Largest batch whose training step fits in GPU memory: doubling, then bisection (to within 1/8)."""
    def fits(b: int) -> bool:
        try:
            batch = make_batch(task, items, b)
            task.train_step([batch], step_generator(0, 0, 0))
            _sync(task.rt.device)
            return True
        except torch.OutOfMemoryError:
            return False
        finally:
            batch = None
            for net in task.nets.values():
                net.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()

    ok, bad = 0, None
    b = start
    while b <= cap:
        if not fits(b):
            bad = b
            break
        ok, b = b, b * 2
    if bad is None:
        return ok
    while bad - ok > max(1, ok // 8):
        mid = (ok + bad) // 2
        ok, bad = (mid, bad) if fits(mid) else (ok, mid)
    return ok


def cuda_bench(data: Path, steps: int) -> list[dict]:
    dev = "cuda"
    name = torch.cuda.get_device_name()
    vgg = VGGFace().requires_grad_(False).to(dev)
    rows = []
    for amp in ("none", "bf16"):
        task, items = build("idsg", data, vgg, device=dev, batch_size=32, amp=amp)
        rows.append(row("idsg", name, 32, time_steps(task, make_batch(task, items, 32), steps), amp=amp))
        for b in (4, 32):
            task, items = build("rfg", data, vgg, device=dev, batch_size=b, amp=amp)
            rows.append(row("rfg_256px", name, b, time_steps(task, make_batch(task, items, b), steps), amp=amp))
            del task
            torch.cuda.empty_cache()
    for k in (4, 16):  # lazy R1 (the R1 double backward dominates the RFG step on a GPU)
        task, items = build("rfg", data, vgg, device=dev, batch_size=32, amp="bf16", r1_every=k)
        rows.append(row("rfg_256px", name, 32, time_steps(task, make_batch(task, items, 32), max(steps, 2 * k)),
                        amp="bf16", r1_every=k))
        del task
        torch.cuda.empty_cache()
    task, items = build("rfg", data, vgg, device=dev, batch_size=4, amp="bf16")
    best = max_batch(task, items)
    print(f"largest RFG 256 px bf16 batch whose step fits: {best}", flush=True)
    while best > 4:  # the bisection's last fit may leave no room for the timed run: step down by 1/8
        try:
            torch.cuda.reset_peak_memory_stats()
            sec = time_steps(task, make_batch(task, items, best), max(2, steps // 2))
            break
        except torch.OutOfMemoryError:
            for net in task.nets.values():
                net.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
            best -= max(1, best // 8)
    else:
        sec = time_steps(task, make_batch(task, items, best), max(2, steps // 2))
    rows.append(row("rfg_256px_maxbatch", name, best, sec, amp="bf16",
                    peak_mem_gib=round(torch.cuda.max_memory_allocated() / 2**30, 1)))
    del task
    torch.cuda.empty_cache()
    return rows


def cuda_engine_check(data: Path) -> list[dict]:
    """Short runs through the whole engine (checkpoints, logs) with bf16 and fp16 (GradScaler) on CUDA."""
    from dgkit.training import train_idsg, train_rfg

    vgg = VGGFace().requires_grad_(False).to("cuda")
    out = []
    for kind, fn, amp, kw in (("idsg", train_idsg, "bf16", {"batch_size": 32, "steps": 20}),
                              ("rfg", train_rfg, "fp16", {"batch_size": 8, "steps": 5}),
                              ("rfg", train_rfg, "bf16", {"batch_size": 8, "steps": 5})):
        res = fn(vgg=vgg, data=str(data), out=str(data.parent / f"engine_{kind}_{amp}"), device="cuda", amp=amp,
                 progress=False, tensorboard=False, log_every=1, sample_every=0, **kw)
        finite = all(torch.isfinite(torch.tensor(v)) for v in res.final_losses.values())
        entry = {"check": f"{kind}_{amp}", "steps": res.steps, "finite": bool(finite),
                 "losses": {k: round(v, 4) for k, v in res.final_losses.items()}}
        print(json.dumps(entry), flush=True)
        out.append(entry)
    return out


def two_pass_rfg_step(task, batch: dict) -> None:
    """The RFG step as the released code did it (generator run again for G/E), for --rfg-step."""
    from dgkit.training.losses import adversarial_loss, perceptual_loss, r1_penalty

    cfg = task.cfg
    g, e, d = task.nets["generator"], task.nets["style_encoder"], task.nets["discriminator"]
    photo, sketch, source = task._inputs(batch, step_generator(0, 0, task.step))
    task.optims["discriminator"].zero_grad(set_to_none=True)
    with torch.no_grad():
        fake = g(sketch, e(source))
    x_real = photo.detach().requires_grad_(True)
    real_logits = d(x_real, sketch)
    loss = adversarial_loss(real_logits, 1.0) + adversarial_loss(d(fake, sketch), 0.0)
    (loss + task.r1_weight() * r1_penalty(real_logits, x_real)).backward()
    task.optims["discriminator"].step()
    d.requires_grad_(False)
    for k in ("generator", "style_encoder"):
        task.optims[k].zero_grad(set_to_none=True)
    fake = g(sketch, e(source))
    (cfg.lambda_adv * adversarial_loss(d(fake, sketch), 1.0) + cfg.lambda_pixel * (fake - photo).abs().mean()
     + cfg.lambda_perceptual * perceptual_loss(task.vgg, fake, photo)).backward()
    task.optims["generator"].step()
    task.optims["style_encoder"].step()
    d.requires_grad_(True)
    [float(loss.detach()) for _ in range(7)]  # the released loop reads each of its 7 losses to the host


def rfg_step_compare(data: Path, rounds: int) -> list[dict]:
    """One RFG step (64 px, batch 2, 1 thread): the two-pass step vs dgkit's, alternating, median s/step."""
    torch.set_num_threads(1)
    vgg = VGGFace().requires_grad_(False)
    task, items = build("rfg", data, vgg, device="cpu", batch_size=2, image_size=64)
    batch = make_batch(task, items, 2)
    times: dict[str, list[float]] = {"two_pass": [], "once": []}
    for i in range(rounds + 1):
        for name in times:
            task.step = i + 1
            t = time.perf_counter()
            if name == "once":
                task.train_step([batch], step_generator(0, 0, i))
            else:
                two_pass_rfg_step(task, batch)
            if i:
                times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {"bench": "rfg_step_64px_b2", **{k: round(v, 3) for k, v in med.items()},
           "once/two_pass": round(med["once"] / med["two_pass"], 3),
           "all": {k: [round(x, 3) for x in v] for k, v in times.items()}}
    print(json.dumps(out), flush=True)
    return [out]


LOOP_CHILD = r"""
import csv, json, sys, time
import torch
torch.set_num_threads(1)
from dgkit.models import VGGFace
try:
    from dgkit.training import train_idsg, train_rfg
except ImportError:  # an older dgkit: the entry points lived in dgkit.training.engine
    from dgkit.training.engine import train_idsg, train_rfg
kind, data, out, extra = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
torch.manual_seed(0)
vgg = VGGFace().requires_grad_(False)
fn = train_idsg if kind == "idsg" else train_rfg
res = fn(vgg=vgg, data=data, out=out, progress=False, tensorboard=False, sample_every=0, save_every=0, **extra)
rows = list(csv.DictReader(open(res.log_path)))
span = int(rows[-1]["step"]) - int(rows[0]["step"])
print(json.dumps({"s_per_step": (float(rows[-1]["time_s"]) - float(rows[0]["time_s"])) / span,
                  "losses": res.final_losses}))
"""

LOOP_SETTINGS = {
    "idsg": {"batch_size": 32, "steps": 60, "log_every": 20},
    "rfg": {"batch_size": 2, "steps": 6, "log_every": 2, "image_size": 64},
}


def loop_compare(base: Path, data: Path, rounds: int, kinds: list[str]) -> list[dict]:
    """Interleaved whole-loop runs (see the module docstring); prints and returns one row per run."""
    import os
    import subprocess

    here = str(Path(__file__).resolve().parents[1])
    variants = {"base": (str(base), {}), "new": (here, {}), "new_noprefetch": (here, {"prefetch": False}),
                "new_workers1": (here, {"num_workers": 1})}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds + 1):  # round 0 warms the caches (identity features, files) and is not reported
            for kind in kinds:
                for name, (path, extra) in variants.items():
                    if (kind == "idsg" and name == "new_workers1") or (r == 0 and name != "new"):
                        continue  # IDSG data is in memory; one warm-up run per stage
                    out = Path(tmp) / f"{kind}_{name}_{r}"
                    env = {**os.environ, "PYTHONPATH": path}
                    proc = subprocess.run([sys.executable, "-c", LOOP_CHILD, kind, str(data), str(out),
                                           json.dumps({**LOOP_SETTINGS[kind], **extra})],
                                          env=env, capture_output=True, text=True, cwd=tmp)
                    if proc.returncode:
                        raise RuntimeError(f"{kind} {name}: {proc.stderr[-2000:]}")
                    result = json.loads(proc.stdout.strip().splitlines()[-1])
                    if r:
                        entry = {"bench": f"loop_{kind}", "variant": name, "round": r,
                                 "s_per_step": round(result["s_per_step"], 4)}
                        print(json.dumps(entry), flush=True)
                        rows.append(entry)
    for kind in kinds:
        med = {v: statistics.median(e["s_per_step"] for e in rows if e["bench"] == f"loop_{kind}"
                                    and e["variant"] == v)
               for v in variants if any(e["variant"] == v and e["bench"] == f"loop_{kind}" for e in rows)}
        summary = {"bench": f"loop_{kind}_median", **{v: round(t, 4) for v, t in med.items()},
                   **{f"{v}/base": round(t / med["base"], 3) for v, t in med.items() if v != "base"}}
        print(json.dumps(summary), flush=True)
        rows.append(summary)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per setting (after 1 warm-up)")
    parser.add_argument("--cuda", action="store_true", help="also benchmark CUDA (if available)")
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU part")
    parser.add_argument("--json", type=Path, help="write all results to this file")
    parser.add_argument("--loop", type=Path, metavar="BASE",
                        help="whole-loop comparison against the dgkit package in folder BASE (see above)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds for --loop / --rfg-step")
    parser.add_argument("--rfg-step", action="store_true",
                        help="one RFG step: the released two-pass step vs dgkit's (generator once), interleaved")
    parser.add_argument("--kinds", default="idsg,rfg", help="stages for --loop (comma-separated)")
    args = parser.parse_args()
    results: dict[str, list] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = make_synthetic_dataset(Path(tmp) / "data")
        if args.rfg_step:
            results["rfg_step"] = rfg_step_compare(data, args.rounds)
        elif args.loop is not None:
            results["loop"] = loop_compare(args.loop, data, args.rounds, args.kinds.split(","))
        elif not args.no_cpu:
            results["cpu"] = cpu_bench(data, args.steps)
        if args.cuda:
            if not torch.cuda.is_available():
                print("no CUDA device: CUDA part skipped")
            else:
                results["cuda"] = cuda_bench(data, args.steps)
                results["cuda_engine"] = cuda_engine_check(data)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
