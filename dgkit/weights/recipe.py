"""The synthetic-weights rule (one seeded ``randn`` per tensor) and its packaged seed-1234 checksums.

Pure functions of the manifest and a seed: nothing here reads or writes weight folders (see
:mod:`dgkit.weights.synthetic` for that). The rule is described in docs/weights.md.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import math
import os
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch

from .. import checkpoint
from ..errors import CheckpointError, InputError
from .manifest import OFFICIAL_FILES

__all__ = [
    "check_seed",
    "matches_seed1234",
    "synthetic_state",
    "synthetic_tensor",
    "verify_synthetic_checksums",
]

CHECKSUMS_ASSET = "assets/weights_checksums_seed1234.json"  # inside the dgkit package


def synthetic_tensor(seed_key: str, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """One synthetic tensor: a fresh CPU generator seeded ``crc32(seed_key) ^ seed``, ``randn(shape) * scale``.

    scale = 1/sqrt(prod(shape[1:])) (fan-in) for 2-d and larger shapes, 0.1 for 1-d ones. float32, contiguous.
    ``seed_key`` is ``"<net>.<key>"`` (``"vgg_face_dag.<key>"`` for VGG-Face).
    """
    generator = torch.Generator().manual_seed(zlib.crc32(seed_key.encode("utf-8")) ^ seed)
    scale = 1.0 / math.sqrt(math.prod(shape[1:])) if len(shape) >= 2 else 0.1
    return torch.randn(shape, generator=generator, dtype=torch.float32) * scale


def check_seed(seed: int) -> int:
    """``seed`` if it is an integer in [0, 2**32); else :class:`InputError`."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise InputError(f"seed must be an integer in [0, 2**32), got {seed!r}.")
    return seed


def synthetic_state(kind: str, seed: int) -> dict:
    """What a synthetic ``kind`` file holds: ``{net: {key: tensor}}``, or one flat ``{key: tensor}`` for VGG-Face.

    Every tensor of the manifest, made by :func:`synthetic_tensor` (``torch.save`` it to get the file).
    """
    info = checkpoint.manifest()["files"][kind]
    nets: dict[str, dict[str, torch.Tensor]] = {}
    for net, net_info in info["nets"].items():
        # the rule: statistics buffers would need zeros/ones; the DG files have none, so the rule covers all
        if net_info.get("buffer_count", 0) != 0 or any(
            entry["dtype"] != "float32" or entry["key"].rsplit(".", 1)[-1] in
            ("running_mean", "running_var", "num_batches_tracked") for entry in net_info["entries"]
        ):
            raise AssertionError(f"manifest net {net!r} has buffers or non-float32 tensors; the synthetic rule does not cover it")
        nets[net] = {
            entry["key"]: synthetic_tensor(entry["seed_key"], tuple(entry["shape"]), seed)
            for entry in net_info["entries"]
        }
    if kind == "vgg_face":
        return nets["vgg_face_dag"]
    return nets


@functools.lru_cache(maxsize=1)
def packaged_checksums() -> dict:
    """The packaged seed-1234 checksums: ``{"seed": 1234, seed_key: {"seed", "sum", "abs_sum", "first"}}``."""
    text = importlib.resources.files("dgkit").joinpath(CHECKSUMS_ASSET).read_text("utf-8")
    return json.loads(text)


def _tensor_sums(tensor: torch.Tensor) -> tuple[float, float]:
    """(sum, sum of |x|) in float64, in 16M-element chunks (bounded memory for the 102M-element fc6)."""
    flat = tensor.reshape(-1)
    total = absolute = 0.0
    for chunk in flat.split(1 << 24):
        chunk64 = chunk.double()
        total += float(chunk64.sum())
        absolute += float(chunk64.abs_().sum())
    return total, absolute


def _iter_seed_keyed(state: Mapping) -> Iterator[tuple[str, torch.Tensor]]:
    """(seed_key, tensor) for a mapping kind -> loaded object (as load_checkpoint returns)."""
    for kind, obj in state.items():
        flat_net = "vgg_face_dag" if kind == "vgg_face" else None
        if flat_net:
            for key, tensor in obj.items():
                yield f"{flat_net}.{key}", tensor
        else:
            for net, sd in obj.items():
                for key, tensor in sd.items():
                    yield f"{net}.{key}", tensor


def matches_seed1234(obj: Mapping, kind: str) -> bool:
    """True when a loaded ``kind`` file's first tensor starts with the values of the seed-1234 synthetic file."""
    sums = packaged_checksums()
    for key, tensor in _iter_seed_keyed({kind: obj}):
        recorded = sums.get(key)
        if isinstance(recorded, dict) and "first" in recorded:
            first = torch.tensor(recorded["first"], dtype=torch.float32)
            return bool(torch.equal(tensor.reshape(-1)[: first.numel()].float(), first))
    return False


def verify_synthetic_checksums(directory_or_state: str | os.PathLike | Mapping, seed: int = 1234) -> None:
    """Compare synthetic weights with the packaged checksums (seed 1234 only).

    Args:
        directory_or_state: a weights folder, or ``{"rfg": obj, "idsg": obj, "vgg_face": obj}`` as
            :func:`dgkit.checkpoint.load_checkpoint` returns them (a subset is checked as far as it goes), or
            a flat ``{seed_key: tensor}`` mapping.
        seed: must be 1234 (the only seed with packaged checksums).

    Checks for each seed key: the derived integer seed, ``sum`` and ``abs_sum`` (float64; relative tolerance
    1e-6, because the summation order differs) and the first 4 values (exactly).

    Raises:
        InputError: another seed.
        CheckpointError: listing every tensor that differs or is missing (then torch's random number generator
            differs from the reference, torch 2.13.0).
    """
    reference = packaged_checksums()
    if seed != reference.get("seed"):
        raise InputError(f"checksums are packaged for seed {reference.get('seed')} only, not {seed}.")
    expected_keys = [k for k in reference if k != "seed"]
    if isinstance(directory_or_state, (str, os.PathLike)):
        folder = Path(directory_or_state)
        problems = []
        for name, rel in OFFICIAL_FILES.items():  # one file at a time: at most 580 MB in memory
            try:
                verify_synthetic_checksums({name: checkpoint.load_checkpoint(folder / rel, name)}, seed)
            except CheckpointError as exc:
                problems.append(str(exc))
        if problems:
            raise CheckpointError("\n".join(problems))
        return
    if set(directory_or_state) <= set(checkpoint.KINDS):
        pairs = dict(_iter_seed_keyed(directory_or_state))
        nets = {net for kind in directory_or_state for net in checkpoint.expected_entries(kind)}
        expected_keys = [k for k in expected_keys if k.split(".", 1)[0] in nets]
    else:
        pairs = dict(directory_or_state)

    problems = []
    for seed_key in expected_keys:
        ref = reference[seed_key]
        tensor = pairs.get(seed_key)
        if tensor is None:
            problems.append(f"{seed_key}: missing")
            continue
        derived = zlib.crc32(seed_key.encode("utf-8")) ^ seed
        if derived != ref["seed"]:
            problems.append(f"{seed_key}: derived seed {derived} != {ref['seed']}")
        total, absolute = _tensor_sums(tensor)
        first = [float(v) for v in tensor.reshape(-1)[:4].tolist()]
        if first != [float(v) for v in ref["first"]]:
            problems.append(f"{seed_key}: first values {first} != {ref['first']}")
        elif not math.isclose(absolute, ref["abs_sum"], rel_tol=1e-6):
            problems.append(f"{seed_key}: abs_sum {absolute!r} != {ref['abs_sum']!r}")
        elif abs(total - ref["sum"]) > 1e-6 * abs(ref["sum"]) + 1e-9 * ref["abs_sum"]:
            problems.append(f"{seed_key}: sum {total!r} != {ref['sum']!r}")
    if problems:
        raise CheckpointError(
            f"{len(problems)} synthetic tensor(s) differ from weights_checksums_seed1234.json:\n  - "
            + "\n  - ".join(problems)
            + f"\nThe reference was made with torch 2.13.0 (this is {torch.__version__}); a different random number "
            "generator makes every golden comparison fail."
        )
