#!/usr/bin/env python
# usage: python benchmarks/bench_threads.py   (about 15 min on the 2-core VM; prints each run and the medians)
"""Interleaved: seconds per IDSG training step (real-size synthetic VGG-Face) and per RFG step at 64 px,
torch threads 1 vs 2 (torch's default on this 2-core VM). Prints each run as it finishes."""
import time, tempfile, statistics
from pathlib import Path
import torch
from dgkit.training.data import make_synthetic_dataset
from dgkit.training import train_idsg, train_rfg
from dgkit.training.vgg import load_vgg_face
from dgkit.weights import synthetic_weights_dir
tmp = Path(tempfile.mkdtemp())
data = make_synthetic_dataset(tmp / "data")
vgg = load_vgg_face(synthetic_weights_dir() / "vgg_face_dag.pth")
res = {}
for rep in range(3):
    for kind, steps in (("idsg", 4), ("rfg", 2)):
        for threads in ((1, 2) if rep % 2 == 0 else (2, 1)):
            torch.set_num_threads(threads)
            fn = train_idsg if kind == "idsg" else train_rfg
            extra = {"image_size": 64} if kind == "rfg" else {}
            kw = dict(data=str(data), batch_size=4, log_every=100, sample_every=0, progress=False,
                      tensorboard=False, vgg=vgg, **extra)
            fn(out=str(tmp / f"w{kind}{threads}{rep}"), steps=1, **kw)  # warm-up step, not timed
            t = time.perf_counter()
            fn(out=str(tmp / f"{kind}{threads}{rep}"), steps=steps, **kw)
            per = (time.perf_counter() - t) / steps
            res.setdefault((kind, threads), []).append(per)
            print(kind, "threads", threads, "rep", rep, f"{per:.2f} s/step", flush=True)
for k, v in sorted(res.items()):
    print(k, "median s/step", round(statistics.median(v), 2), flush=True)
for kind in ("idsg", "rfg"):
    print(kind, "median ratio threads1/threads2", round(statistics.median(res[(kind, 1)]) / statistics.median(res[(kind, 2)]), 2), flush=True)
