"""Reading and writing the three DG weight files safely, and checking them against the manifest.

The official files are ``torch.save`` pickles:

* ``"rfg"``  ``expr/checkpoints/501500_nets_ema.ckpt``    ``{"generator": sd, "style_encoder": sd}``
* ``"idsg"`` ``expr_lm/checkpoints/30000_nets_ema.ckpt``  ``{"linear_decoder": sd, "lm_linear_encoder": sd,
  "linear_discriminator": sd, "linear_classfier": sd}``
* ``"vgg_face"`` ``vgg_face_dag.pth``  a flat ``{"conv1_1.weight": t, ..., "fc8.bias": t}`` (source key names)

where each ``sd`` maps parameter names to float32 tensors. ``dgkit/assets/manifest.json`` lists every key with
its shape (docs/weights.md). Files are only ever read with ``torch.load(..., weights_only=True)``, so a
pickle that would run code is refused, never executed.

    >>> nets = load_checkpoint("weights/expr/checkpoints/501500_nets_ema.ckpt", "rfg")
    >>> sorted(nets)
    ['generator', 'style_encoder']
"""

from __future__ import annotations

import functools
import importlib.resources
import io
import json
import os
import pickle
import pickletools
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .errors import (
    CheckpointError,
    InputError,
    UnsafeCheckpointError,
    WeightsNotFoundError,
)
from .io import check_input_file, clean_stale_temporaries, make_output_folder, temporary_name

__all__ = [
    "KINDS",
    "expected_entries",
    "guess_kind",
    "load_checkpoint",
    "read_signature",
    "manifest",
    "read_weights_file",
    "save_checkpoint",
    "verify_state_dicts",
]

KINDS = ("rfg", "idsg", "vgg_face")

# kinds saved as one flat state dict: kind -> the net name the manifest (and the seed keys) use for it
_FLAT_NET = {"vgg_face": "vgg_face_dag"}

_TITLES = {
    "rfg": "RFG checkpoint (Reenacted Face Generator)",
    "idsg": "IDSG checkpoint (ID-preserving Shape Generator)",
    "vgg_face": "VGG-Face weights",
}

_HOW_TO_GET = (
    "Get the official files with `dgkit weights download`, or download them by hand and run "
    "`dgkit weights install PATH` (see weights/README.md)."
)

_ZIP_MAGIC = b"PK\x03\x04"
# torch's legacy (pre-1.6) format starts with the pickled magic number 0x1950a86a20f9469cfc6c
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"

# pickle GLOBALs a plain tensor state dict may reference; anything else in a refused file is reported as unsafe
_SAFE_GLOBAL = re.compile(
    r"^(collections\.OrderedDict|torch\._utils\._rebuild_\w+|torch\.(cuda\.|storage\.)?\w*Storage"
    r"|torch\.(float|half|bfloat|double|int|uint|long|short|bool|complex)\w*|torch\.Size|torch\.device"
    r"|torch\._tensor\._rebuild_from_type_v2|torch\.nn\.parameter\.Parameter|torch\.Tensor)$"
)
# phrases torch's weights_only unpickler uses when it refuses a callable or class
_UNSAFE_MESSAGE = re.compile(
    r"GLOBAL (\S+) was not an allowed global|unsupported GLOBAL (\S+) whose module|"
    r"reduce for unrecognized function|Can only create new object|must be imported to load"
)


# --- manifest -----------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def manifest() -> dict[str, Any]:
    """The packaged tensor manifest (``dgkit/assets/manifest.json``), parsed once. Treat it as read-only."""
    text = importlib.resources.files("dgkit").joinpath("assets/manifest.json").read_text(encoding="utf-8")
    return json.loads(text)


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InputError(f"unknown weight file kind {kind!r}; use one of {', '.join(map(repr, KINDS))}.")
    return kind


def expected_entries(kind: str) -> dict[str, dict[str, tuple[int, ...]]]:
    """Every tensor a weight file must hold, from the packaged manifest.

    Args:
        kind: ``"rfg"``, ``"idsg"`` or ``"vgg_face"``.

    Returns:
        ``{net_name: {state_dict_key: shape}}`` in file order. For ``"vgg_face"`` the single net is
        ``"vgg_face_dag"`` and its keys are the source keys (``conv1_1.weight`` ... ``fc8.bias``) that the
        flat file uses. All tensors are float32.
    """
    nets = manifest()["files"][_check_kind(kind)]["nets"]
    return {
        net: {entry["key"]: tuple(int(n) for n in entry["shape"]) for entry in info["entries"]}
        for net, info in nets.items()
    }


def _expected_file_bytes(kind: str) -> int:
    """Bytes of tensor data in a file of this kind (the file is slightly larger)."""
    return int(manifest()["files"][kind]["fp32_bytes"])


def _relative_path(kind: str) -> str:
    return str(manifest()["files"][kind]["path"])


# --- structure check ----------------------------------------------------------------------------------------
def _shape_str(shape: tuple[int, ...] | torch.Size) -> str:
    return "[" + ", ".join(str(int(n)) for n in shape) + "]"


def _describe_value(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"{_shape_str(value.shape)} {str(value.dtype).replace('torch.', '')}"
    if isinstance(value, Mapping):
        return f"a dict with {len(value)} entries"
    return f"a {type(value).__name__}"


def guess_kind(obj: object) -> str | None:
    """Which of the three files ``obj`` looks like, judged by its top-level keys (None: none of them)."""
    if not isinstance(obj, Mapping):
        return None
    keys = set(obj)
    if keys & {"conv1_1.weight", "fc6.weight", "features.0.weight", "classifier.0.weight"}:
        return "vgg_face"
    for kind in ("rfg", "idsg"):
        if keys & set(expected_entries(kind)):
            return kind
    return None


def verify_state_dicts(obj: object, kind: str, *, source: str | os.PathLike | None = None) -> None:
    """Check that ``obj`` holds exactly the tensors of a ``kind`` weight file; raise if not.

    Args:
        obj: for ``"rfg"``/``"idsg"`` a dict ``{net_name: state_dict}``; for ``"vgg_face"`` the flat state
            dict. State dicts map keys to tensors.
        kind: ``"rfg"``, ``"idsg"`` or ``"vgg_face"``.
        source: the file it came from, used in the message only.

    Raises:
        CheckpointError: naming every missing key, unexpected key or entry (optimizer state, step counters,
            ...), tensor with another shape (expected vs found), non-float32 or non-dense tensor.
    """
    kind = _check_kind(kind)
    expected = expected_entries(kind)
    where = f"{source}" if source is not None else "the given state dicts"
    title = _TITLES[kind]
    flat_net = _FLAT_NET.get(kind)

    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{where} is not a {title}: it holds {_describe_value(obj)}, expected a dict of tensors"
            f"{'' if flat_net else ' per network'}. {_HOW_TO_GET}"
        )

    missing: list[str] = []
    unexpected: list[str] = []
    bad_shape: list[str] = []
    bad_type: list[str] = []

    if flat_net:
        nets: dict[str, Mapping] = {flat_net: obj}
    else:
        nets = {}
        for name, value in obj.items():
            if name not in expected:
                unexpected.append(f"{name!s} ({_describe_value(value)})")
            elif not isinstance(value, Mapping):
                bad_type.append(f"{name} is {_describe_value(value)}, expected a state dict")
            else:
                nets[name] = value
        for name, keys in expected.items():
            if name not in obj:
                missing.append(f"network {name!r} (all {len(keys)} of its tensors)")

    for net, state in nets.items():
        wanted = expected[net]
        prefix = "" if flat_net else f"{net}."
        for key, value in state.items():
            label = f"{prefix}{key}"
            if key not in wanted:
                unexpected.append(f"{label} ({_describe_value(value)})")
            elif not isinstance(value, torch.Tensor):
                bad_type.append(f"{label} is {_describe_value(value)}, expected a float32 tensor")
            elif tuple(value.shape) != wanted[key]:
                bad_shape.append(
                    f"{label}: expected {_shape_str(wanted[key])}, found {_shape_str(value.shape)}"
                )
            elif value.dtype != torch.float32 or value.layout != torch.strided:
                bad_type.append(
                    f"{label} is {str(value.dtype).replace('torch.', '')}"
                    f"{'' if value.layout == torch.strided else ' ' + str(value.layout)}, expected dense float32"
                )
        for key, shape in wanted.items():
            if key not in state:
                missing.append(f"{prefix}{key} {_shape_str(shape)}")

    if not (missing or unexpected or bad_shape or bad_type):
        return

    lines = [f"{where} does not match the {title} layout (dgkit/assets/manifest.json):"]
    for heading, items in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("wrong shape", bad_shape),
        ("wrong type", bad_type),
    ):
        if items:
            lines.append(f"  {heading} ({len(items)}):")
            lines.extend(f"    - {item}" for item in items)
    lines.extend(_structure_hints(obj, kind, nets))
    lines.append(
        "What to do: use the official, unmodified file. If it is a checkpoint you trained yourself, save only the "
        "networks' state dicts (no optimizer state) with the demo's model settings. " + _HOW_TO_GET
    )
    raise CheckpointError("\n".join(lines))


def _structure_hints(obj: Mapping, kind: str, nets: Mapping[str, Mapping]) -> list[str]:
    """Likely causes of a mismatch, as extra message lines."""
    hints = []
    guess = guess_kind(obj)
    if guess is not None and guess != kind:
        hints.append(
            f"Hint: this looks like the {_TITLES[guess]} ({_relative_path(guess)}), not the {_TITLES[kind]} "
            f"({_relative_path(kind)}). Check which file went where."
        )
    keys = [key for state in nets.values() for key in state if isinstance(key, str)]
    if keys and all(key.startswith("module.") for key in keys):
        hints.append("Hint: every key starts with 'module.': it was saved from a DataParallel wrapper.")
    if kind == "vgg_face" and any(key.startswith(("features.", "classifier.")) for key in keys):
        hints.append(
            "Hint: the keys use torchvision's VGG names (features.N / classifier.N); dgkit expects the original "
            "vgg_face_dag.pth with its source names (conv1_1 ... fc8)."
        )
    return hints


# --- loading ------------------------------------------------------------------------------------------------
def _sniff(head: bytes) -> str | None:
    """The container format from a file's first bytes: "zip", "legacy", "pickle" or None (something else)."""
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if head.startswith(_LEGACY_MAGIC):
        return "legacy"
    if head[:1] == b"\x80":  # PROTO opcode: a bare pickle
        return "pickle"
    return None


def _describe_bytes(head: bytes) -> str:
    """A short, human description of what a non-torch file starts with."""
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml")):
        return (
            "an HTML/XML page, not weights (a download that returned a web page, e.g. Google Drive's "
            "quota or virus-scan page, or a login page)"
        )
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"7z\xbc\xaf")):
        return "a compressed archive (gzip/bzip2/xz/7z), not a PyTorch file; unpack it first"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"unknown binary data (first bytes {head[:8].hex(' ')})"
    snippet = text[:40].replace("\n", " ").strip()
    return f"text ({snippet!r}...), not a PyTorch file"


def _pickle_globals(data: bytes, max_pickles: int) -> list[str]:
    """Names of the classes/functions the pickle stream(s) in ``data`` refer to, found without unpickling.

    Reads up to ``max_pickles`` consecutive pickles (torch's legacy format writes 5 before its raw tensor
    bytes). ``STACK_GLOBAL`` takes its names from the two strings pushed before it, which is how pickle
    writes them; a hand-crafted stream could hide a name, but torch refuses such a file anyway.
    """
    found: list[str] = []
    stream = io.BytesIO(data)
    for _ in range(max_pickles):
        if stream.read(1) != b"\x80":
            break
        stream.seek(-1, io.SEEK_CUR)
        strings: list[str] = []
        memo: dict[int, object] = {}
        last: object = None
        try:
            for opcode, arg, _pos in pickletools.genops(stream):
                name = opcode.name
                if name in ("GLOBAL", "INST"):
                    found.append(str(arg).replace(" ", ".").replace("__builtin__.", "builtins."))
                elif name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]}.{strings[-1]}")
                if isinstance(arg, str) and ("UNICODE" in name or "STRING" in name):
                    strings.append(str(arg))
                    last = arg
                elif name in ("BINGET", "LONG_BINGET", "GET"):
                    last = memo.get(int(arg))
                    if isinstance(last, str):
                        strings.append(last)
                elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
                    memo[int(arg)] = last
                elif name == "MEMOIZE":
                    memo[len(memo)] = last
                else:
                    last = None
        except Exception:  # noqa: BLE001 - a truncated or garbled stream: report what was seen so far
            break
    return found


def _unsafe_globals(path: Path, fmt: str) -> list[str]:
    """Globals referenced by the file's pickle(s) that a tensor state dict never needs."""
    try:
        if fmt == "zip":
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.endswith(".pkl")]
                data = b"".join(archive.read(n) for n in names)
            return sorted({g for g in _pickle_globals(data, 64) if not _SAFE_GLOBAL.match(g)})
        with open(path, "rb") as handle:
            data = handle.read(64 << 20)  # the pickles come first; tensor bytes follow
        return sorted({g for g in _pickle_globals(data, 5) if not _SAFE_GLOBAL.match(g)})
    except (OSError, zipfile.BadZipFile, ValueError):
        return []


def _unsafe_error(path: Path, names: list[str]) -> UnsafeCheckpointError:
    listed = ", ".join(names) if names else "objects torch refuses to rebuild"
    return UnsafeCheckpointError(
        f"{path} was refused and NOT loaded: besides tensors it contains pickled Python objects that would run "
        f"code when unpickled ({listed}). Genuine DG weight files hold only tensors, so this one is not an "
        f"official file or was tampered with. Do not load it with weights_only=False. Delete it and get the file "
        f"again from its official source. {_HOW_TO_GET}"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def load_checkpoint(path: str | os.PathLike, kind: str, *, map_location: Any = "cpu") -> dict:
    """Load one DG weight file safely and check every tensor against the manifest.

    Args:
        path: the file (either torch format: the zip format of torch >= 1.6 or the older legacy format).
        kind: ``"rfg"``, ``"idsg"`` or ``"vgg_face"``.
        map_location: passed to ``torch.load`` (default ``"cpu"``).

    Returns:
        ``"rfg"``: ``{"generator": sd, "style_encoder": sd}``; ``"idsg"``: ``{"linear_decoder": sd,
        "lm_linear_encoder": sd, "linear_discriminator": sd, "linear_classfier": sd}``; ``"vgg_face"``: the flat
        dict with source keys (``conv1_1.weight`` ... ``fc8.bias``). Each ``sd`` maps keys to float32 tensors
        of the shapes in ``expected_entries(kind)``.

    Raises:
        WeightsNotFoundError: the file does not exist.
        CheckpointError: empty, truncated, not a PyTorch file, or a tensor/key mismatch (all listed).
        UnsafeCheckpointError: the pickle references code; it is refused and never executed.
    """
    kind = _check_kind(kind)
    obj = read_weights_file(path, kind, map_location=map_location)
    verify_state_dicts(obj, kind, source=Path(path).expanduser())
    return obj


def read_weights_file(path: str | os.PathLike, kind: str | None = None, *, map_location: Any = "cpu") -> object:
    """``torch.load(path, weights_only=True)`` with clear errors, but without the structure check.

    ``kind`` (optional) only improves the messages. Use :func:`load_checkpoint` unless the kind is unknown
    (e.g. a file the user renamed); :func:`guess_kind` then tells which file the result looks like.

    Raises:
        WeightsNotFoundError, CheckpointError, UnsafeCheckpointError: as :func:`load_checkpoint`.
    """
    title = _TITLES[_check_kind(kind)] if kind is not None else "DG weight file"
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir() and not path.is_file():  # FIFO, socket, device: never opened
        check_input_file(path, title, CheckpointError)
    if not path.is_file():
        raise WeightsNotFoundError(
            f"{title} not found: {path} does not exist{' (it is a folder)' if path.is_dir() else ''}. "
            f"Run `dgkit weights status` to see where dgkit looks. {_HOW_TO_GET}"
        )
    size = path.stat().st_size
    size_note = f"it has {size:,} bytes"
    if kind is not None:
        size_note += f"; the official file has about {_expected_file_bytes(kind):,}"
    if size == 0:
        raise CheckpointError(
            f"{path} is empty (0 bytes): an interrupted download or copy. Delete it and get the file again. "
            f"{_HOW_TO_GET}"
        )
    with open(path, "rb") as handle:
        head = handle.read(64)
    fmt = _sniff(head)
    if fmt is None:
        raise CheckpointError(
            f"{path} is not a PyTorch weight file: it is {_describe_bytes(head)}. Expected the {title}. "
            f"{_HOW_TO_GET}"
        )
    if fmt == "zip":
        _check_torch_zip(path, size_note)

    try:
        with warnings.catch_warnings():
            # a bare protocol-4 pickle triggers a torch warning before it is refused below
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        names = _unsafe_globals(path, fmt)
        match = _UNSAFE_MESSAGE.search(str(exc))
        if names or match:
            if not names and match:
                names = [g for g in match.groups() if g]
            raise _unsafe_error(path, names) from None
        raise CheckpointError(
            f"{path} could not be read as a PyTorch weight file ({_first_line(exc)[:120]}); it is corrupted or "
            f"not a weight file ({size_note}). Delete it and get the file again. {_HOW_TO_GET}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - torch reports truncation as RuntimeError, EOFError, KeyError...
        raise CheckpointError(
            f"{path} could not be read: it is truncated or corrupted ({size_note}; torch said "
            f"{_first_line(exc)}). Delete it and get the file again. {_HOW_TO_GET}"
        ) from None


def _check_torch_zip(path: Path, size_note: str) -> None:
    """Refuse zips that are truncated, or are not a ``torch.save`` archive (e.g. the DG download itself)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        raise CheckpointError(
            f"{path} is truncated or corrupted: its zip directory is missing or damaged ({size_note}). "
            f"Delete it and get the file again. {_HOW_TO_GET}"
        ) from None
    if any(name.endswith("constants.pkl") or "/code/" in name for name in names):
        raise CheckpointError(
            f"{path} is a TorchScript archive (a compiled model), not a weight file; dgkit reads only the "
            f"official state-dict files. {_HOW_TO_GET}"
        )
    if not any(name.endswith("/data.pkl") or name == "data.pkl" for name in names):
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        raise CheckpointError(
            f"{path} is a zip archive but not a PyTorch weight file (it holds {shown}). If it is the DG download "
            f"from Google Drive, unpack it into place with `dgkit weights install {path}`."
        )


# --- saving -------------------------------------------------------------------------------------------------
SIGNATURE_MEMBER = "dgkit_signature.json"  # an extra zip member of files dgkit wrote (torch.load ignores it)


def save_checkpoint(obj: object, path: str | os.PathLike, *, fsync: bool = True,
                    signature: Mapping | None = None) -> Path:
    """``torch.save`` atomically: write a temporary file beside ``path``, then rename it over ``path``.

    A reader never sees a half-written file, and an interrupted save leaves any previous file untouched.
    Temporary files of earlier saves whose process died (e.g. killed with SIGKILL) are removed first.
    Parent folders are created. ``fsync=False`` skips flushing to disk (for caches that can be regenerated).

    Args:
        signature: optional JSON-able facts stored *inside* the file as an extra zip member
            (``<archive>/dgkit_signature.json``; torch ignores it) and read back by :func:`read_signature`.
            dgkit marks its synthetic weights this way, so a copy or a symlink of the file stays recognisable.

    Returns:
        ``path`` as a ``Path``.
    """
    path = Path(path).expanduser()
    make_output_folder(path.parent)
    clean_stale_temporaries(path.parent, path.name)  # left by a save that was killed (SIGKILL, power loss)
    tmp = temporary_name(path, keep_suffix=False)
    # os.open with 0o666 honours the umask (tempfile.mkstemp would make the file private)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
        if signature is not None:
            with zipfile.ZipFile(tmp, "a") as archive:
                top = archive.namelist()[0].split("/", 1)[0]
                archive.writestr(f"{top}/{SIGNATURE_MEMBER}", json.dumps(dict(signature), sort_keys=True))
        if fsync:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_signature(path: str | os.PathLike) -> dict | None:
    """The facts :func:`save_checkpoint` stored inside a weight file (``signature=``), or None (cheap: reads
    only the zip directory and one small member, never the tensors)."""
    try:
        with zipfile.ZipFile(Path(path).expanduser()) as archive:
            member = next((n for n in archive.namelist() if n.endswith("/" + SIGNATURE_MEMBER)), None)
            if member is None or archive.getinfo(member).file_size > 65536:
                return None
            data = json.loads(archive.read(member))
    except (zipfile.BadZipFile, OSError, ValueError, KeyError):
        return None
    return data if isinstance(data, dict) else None
