"""Fidelity of dgkit's lower precisions against exact float32: what ``load_dg(..., precision=...)`` costs.

    python benchmarks/bench_precision.py [--precisions bf16] [--sources 2] [--references 3] [--device cpu]
                                         [--weights DIR] [--no-calibrate] [--json out.json]

For a fixed set of sources x references (the astronaut photo and its mirror image, aligned; references: the
mean face with deterministic jitter and a turned head), every pair is reenacted end to end (source encoding
included, since VGG-Face and the style encoder also run in the lower precision) by a float32 model and by
the same weights at each precision. Reported per precision: PSNR of the generated image (float output, [0,1]),
max abs error of the uint8 image in grey levels, and max error of the target landmarks in crop pixels, as
median / worst over the pairs.

Synthetic (untrained) weights give a nearly flat grey face, which hides rounding errors; so, unless
``--no-calibrate``, the generator's last 1x1 convolution is first scaled (``dgkit.models.rfg.calibrate_contrast``)
so that its output's standard deviation is 0.25, like real faces. With official weights (``--weights``) nothing
is changed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import warnings

import numpy as np
import torch

from dgkit.geometry import mean_face_3d, pose_landmarks
from dgkit.io import sample_image
from dgkit.models.rfg import calibrate_contrast
from dgkit.pipeline import load_dg
from dgkit.reenact import prepare_face
from dgkit.weights import synthetic_weights_dir


def fixed_inputs(n_sources: int, n_references: int) -> tuple[np.ndarray, np.ndarray]:
    """(S,256,256,3) uint8 aligned sources and (R,68,2) crop-px references, the same on every run."""
    face = prepare_face(sample_image(), backend="mediapipe")
    sources = np.stack([face.crop, face.crop[:, ::-1]][:n_sources])
    rng = np.random.default_rng(0)
    base = mean_face_3d("crop")
    refs = [base[:, :2] + rng.normal(0, 1.5, (68, 2)) for _ in range(max(n_references - 1, 1))]
    refs.append(pose_landmarks(base, yaw=35.0)[:, :2])  # a turned head: the sketch hides one side
    return np.ascontiguousarray(sources), np.stack(refs[-n_references:]).astype(np.float32)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def run_pairs(dg, sources: np.ndarray, refs: np.ndarray) -> dict[str, np.ndarray]:
    """Every source x reference pair, end to end: float and uint8 images, target landmarks."""
    enc = dg.encode_source(sources)
    si, ri = np.repeat(np.arange(len(sources)), len(refs)), np.tile(np.arange(len(refs)), len(sources))
    chain = dg.run_chain(refs[ri], enc.id_feature[si])
    image = dg.generate(chain.sketch, enc.style_code[si], output="float")
    return {"float": image, "uint8": np.floor(image * 255).astype(np.uint8), "target": chain.target_landmarks}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--precisions", nargs="+", default=["bf16"])
    ap.add_argument("--sources", type=int, default=2, choices=(1, 2))
    ap.add_argument("--references", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights", default=None, help="official weights folder (default: synthetic seed 1234)")
    ap.add_argument("--no-calibrate", action="store_true", help="keep the synthetic generator's flat output")
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="precision='bf16' on a CPU without")

    dg = load_dg(args.weights or synthetic_weights_dir(), device=args.device)
    sources, refs = fixed_inputs(args.sources, args.references)
    factor = None
    if not dg.weights.trained and not args.no_calibrate:
        chain = dg.run_chain(refs, dg.encode_source(sources[:1]).id_feature)
        style = torch.from_numpy(dg.encode_source(sources[:1]).style_code).to(dg.device)
        factor = calibrate_contrast(dg.generator, dg.sketch_tensor(chain.sketch), style.expand(len(refs), -1))
    exact = run_pairs(dg, sources, refs)
    print(f"fidelity vs fp32: weights {dg.weights.label}, {len(sources)} sources x {len(refs)} references, "
          f"device {args.device}, torch {torch.__version__}; generator output std {exact['float'].std():.3f}"
          + (f" (contrast-calibrated, to_rgb.2 x{factor:.1f})" if factor else ""))
    print(f"{'precision':<10}{'PSNR dB median':>16}{'PSNR dB worst':>15}{'max |d| grey':>14}{'landmarks max px':>18}")
    results = {"weights": dg.weights.label, "calibration_factor": factor, "precisions": {}}
    for precision in args.precisions:
        low = run_pairs(dg.to_precision(precision), sources, refs)
        psnrs = [psnr(a, b) for a, b in zip(low["float"], exact["float"])]
        grey = int(np.abs(low["uint8"].astype(int) - exact["uint8"].astype(int)).max())
        lm = float(np.abs(low["target"] - exact["target"]).max())
        results["precisions"][precision] = {"psnr_db": psnrs, "max_abs_grey": grey, "max_landmark_px": lm}
        print(f"{precision:<10}{statistics.median(psnrs):>16.1f}{min(psnrs):>15.1f}{grey:>14d}{lm:>18.3f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
