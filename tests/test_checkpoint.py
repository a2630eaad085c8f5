"""dgkit.checkpoint: safe loading, the manifest structure check, atomic saving."""

from __future__ import annotations

import builtins
import copy
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from dgkit.checkpoint import (
    expected_entries,
    guess_kind,
    load_checkpoint,
    read_weights_file,
    save_checkpoint,
    verify_state_dicts,
)
from dgkit.errors import (
    CheckpointError,
    InputError,
    UnsafeCheckpointError,
    WeightsNotFoundError,
)
from dgkit.weights import synthetic_state


@pytest.fixture(scope="module")
def idsg() -> dict:
    """A valid IDSG object (15 MB, synthetic seed 7)."""
    return synthetic_state("idsg", 7)


@pytest.fixture
def idsg_file(idsg: dict, tmp_path: Path) -> Path:
    path = tmp_path / "30000_nets_ema.ckpt"
    torch.save(idsg, path)
    return path


# --- manifest -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kind, net, tensors, params",
    [
        ("rfg", "generator", 112, 34_982_919),
        ("rfg", "style_encoder", 33, 20_916_928),
        ("idsg", "linear_decoder", 12, 3_287_688),
        ("idsg", "lm_linear_encoder", 12, 111_792),
        ("idsg", "linear_discriminator", 12, 93_297),
        ("idsg", "linear_classfier", 12, 292_358),
        ("vgg_face", "vgg_face_dag", 32, 145_002_878),
    ],
)
def test_expected_entries_match_spec_table(kind, net, tensors, params):
    entries = expected_entries(kind)[net]
    assert len(entries) == tensors
    assert sum(torch.Size(shape).numel() for shape in entries.values()) == params


def test_expected_entries_rejects_unknown_kind():
    with pytest.raises(InputError, match="rfg"):
        expected_entries("vgg")


# --- loading good files -------------------------------------------------------------------------------------
@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_load_roundtrip_both_torch_formats(idsg, tmp_path, zip_format):
    path = tmp_path / "idsg.ckpt"
    torch.save(idsg, path, _use_new_zipfile_serialization=zip_format)
    loaded = load_checkpoint(path, "idsg")
    assert list(loaded) == list(idsg)
    for net in idsg:
        for key, tensor in idsg[net].items():
            assert torch.equal(loaded[net][key], tensor)


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_gpu_saved_file_loads_on_cpu(idsg, tmp_path, monkeypatch, zip_format):
    # CheckpointIO saved the official checkpoints from CUDA tensors: their storages are tagged "cuda:0"
    path = tmp_path / "idsg.ckpt"
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save(idsg, path, _use_new_zipfile_serialization=zip_format)
    loaded = load_checkpoint(path, "idsg")
    assert loaded["linear_decoder"]["main.0.weight"].device.type == "cpu"


# --- structure errors ---------------------------------------------------------------------------------------
def test_missing_unexpected_and_misshaped_keys_are_all_named(idsg, tmp_path):
    bad = copy.deepcopy(idsg)
    del bad["linear_decoder"]["main.10.bias"]
    bad["lm_linear_encoder"]["main.12.weight"] = torch.zeros(3, 3)
    bad["linear_classfier"]["main_3.0.weight"] = torch.zeros(1000, 136)
    bad["linear_discriminator"]["main.0.bias"] = torch.zeros(136, dtype=torch.float64)
    bad["optimizer"] = {"state": {}}
    path = tmp_path / "bad.ckpt"
    torch.save(bad, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, "idsg")
    message = str(info.value)
    assert "linear_decoder.main.10.bias [136]" in message  # missing, with its expected shape
    assert "lm_linear_encoder.main.12.weight" in message  # unexpected
    assert "linear_classfier.main_3.0.weight: expected [1454, 136], found [1000, 136]" in message
    assert "linear_discriminator.main.0.bias is float64" in message
    assert "optimizer" in message  # extra top-level entries are not accepted silently
    assert "What to do" in message


def test_missing_network_is_named(idsg):
    bad = {k: v for k, v in idsg.items() if k != "linear_classfier"}
    with pytest.raises(CheckpointError, match="network 'linear_classfier' \\(all 12 of its tensors\\)"):
        verify_state_dicts(bad, "idsg")


def test_wrong_kind_gets_a_hint(idsg):
    with pytest.raises(CheckpointError, match="looks like the IDSG"):
        verify_state_dicts(idsg, "rfg")
    assert guess_kind(idsg) == "idsg"


def test_torchvision_named_vgg_gets_a_hint():
    renamed = {"features.0.weight": torch.zeros(64, 3, 3, 3), "features.0.bias": torch.zeros(64)}
    with pytest.raises(CheckpointError, match="torchvision's VGG names") as info:
        verify_state_dicts(renamed, "vgg_face")
    assert "conv1_1.weight [64, 3, 3, 3]" in str(info.value)  # every missing source key is listed


def test_non_tensor_values_and_non_dicts_are_refused(idsg):
    bad = copy.deepcopy(idsg)
    bad["linear_decoder"]["main.0.bias"] = [0.0] * 512
    with pytest.raises(CheckpointError, match="main.0.bias is a list"):
        verify_state_dicts(bad, "idsg")
    with pytest.raises(CheckpointError, match="holds a list"):
        verify_state_dicts([1, 2], "vgg_face")


def test_half_precision_file_is_refused(idsg, tmp_path):
    half = {net: {k: v.half() for k, v in sd.items()} for net, sd in idsg.items()}
    path = tmp_path / "half.ckpt"
    torch.save(half, path)
    with pytest.raises(CheckpointError, match="float16, expected dense float32"):
        load_checkpoint(path, "idsg")


# --- unreadable files ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_truncated_file(idsg_file, tmp_path, zip_format):
    obj = torch.load(idsg_file, weights_only=True)
    full = tmp_path / "full.ckpt"
    torch.save(obj, full, _use_new_zipfile_serialization=zip_format)
    data = full.read_bytes()
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted") as info:
        load_checkpoint(cut, "idsg")
    assert "15,140,540" in str(info.value)  # the expected size from the manifest


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.pth"
    path.touch()
    with pytest.raises(CheckpointError, match="empty \\(0 bytes\\)"):
        load_checkpoint(path, "vgg_face")


@pytest.mark.parametrize(
    "content, phrase",
    [
        (b"this is a text file\nnot weights\n", "text"),
        (b"<!DOCTYPE html><html><body>Google Drive - Quota exceeded</body></html>", "HTML"),
        (b"\x1f\x8b\x08\x00" + bytes(60), "compressed"),
    ],
    ids=["text", "html", "gzip"],
)
def test_not_a_torch_file(tmp_path, content, phrase):
    path = tmp_path / "vgg_face_dag.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a PyTorch weight file") as info:
        load_checkpoint(path, "vgg_face")
    assert phrase in str(info.value)


def test_plain_zip_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "DG.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("expr/readme.txt", "hello")
    with pytest.raises(CheckpointError, match="dgkit weights install"):
        load_checkpoint(path, "rfg")


def test_missing_file(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.ckpt", "rfg")


# --- malicious pickles --------------------------------------------------------------------------------------
class _Payload:
    """Unpickling this creates ``marker`` (exec of a one-line script): a stand-in for arbitrary code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",))


def test_payload_really_runs_when_unpickled_unsafely(tmp_path):
    # guards the test below: the payload is live, so "marker absent" there means "not executed"
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.exists()


@pytest.mark.parametrize("container", ["torch-zip", "torch-legacy", "pickle-protocol-2", "pickle-protocol-4"])
def test_malicious_pickle_is_refused_and_never_executed(idsg, tmp_path, container):
    marker = tmp_path / "PWNED"
    obj = {**idsg, "x": _Payload(marker)}
    path = tmp_path / "evil.ckpt"
    if container == "torch-zip":
        torch.save(obj, path)
    elif container == "torch-legacy":
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(_Payload(marker), protocol=int(container[-1])))
    with pytest.raises(UnsafeCheckpointError, match="exec") as info:
        load_checkpoint(path, "idsg")
    assert "NOT loaded" in str(info.value)
    assert not marker.exists()
    with pytest.raises(UnsafeCheckpointError):
        read_weights_file(path)
    assert not marker.exists()


# --- saving -------------------------------------------------------------------------------------------------
def test_save_checkpoint_creates_folders_and_leaves_no_temp_files(idsg, tmp_path):
    path = tmp_path / "a" / "b" / "30000_nets_ema.ckpt"
    assert save_checkpoint(idsg, path) == path
    assert load_checkpoint(path, "idsg").keys() == idsg.keys()
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_failed_save_keeps_the_previous_file(tmp_path):
    path = tmp_path / "w.ckpt"
    save_checkpoint({"a": torch.ones(2)}, path)
    before = path.read_bytes()
    with pytest.raises((pickle.PicklingError, AttributeError)):  # lambdas cannot be pickled
        save_checkpoint({"a": lambda: None}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["w.ckpt"]
