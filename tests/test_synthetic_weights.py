"""Synthetic weights (docs/weights.md): the rule, the packaged seed-1234 checksums, the cached folder."""

from __future__ import annotations

import json
import threading
import zlib
from pathlib import Path

import pytest
import torch

import dgkit.weights as W
import dgkit.weights.synthetic
from dgkit.checkpoint import expected_entries, load_checkpoint
from dgkit.errors import CheckpointError, InputError, WeightsError


# --- the rule, on worked examples of the rule (small tensors only) ------------------------------------------
def test_crc32_example_from_recipe():
    assert zlib.crc32(b"generator.from_rgb.weight") == 284957779
    assert zlib.crc32(b"generator.from_rgb.weight") ^ 1234 == 284956801


@pytest.mark.parametrize(
    "seed_key, sum_, first",
    [
        ("generator.from_rgb.weight", 10.5451162854, -0.0651492327),
        ("generator.from_rgb.bias", 0.6005008939, 0.0673777983),
        ("linear_decoder.main.0.weight", 2.1023283793, -0.0009137146),
        ("style_encoder.fc.bias", -2.7860782130, -0.1121354476),
    ],
)
def test_recipe_table_values(seed_key, sum_, first):
    net, key = seed_key.split(".", 1)
    kind = "idsg" if net == "linear_decoder" else "rfg"
    tensor = W.synthetic_tensor(seed_key, expected_entries(kind)[net][key], 1234)
    assert tensor.dtype == torch.float32 and tensor.is_contiguous()
    assert float(tensor.double().sum()) == pytest.approx(sum_, abs=1e-9)
    assert float(tensor.reshape(-1)[0]) == pytest.approx(first, abs=1e-10)


def test_other_seeds_give_other_tensors(tmp_path):
    a = W.synthetic_state("idsg", 1234)
    b = W.synthetic_state("idsg", 1235)
    assert not torch.equal(a["linear_decoder"]["main.0.weight"], b["linear_decoder"]["main.0.weight"])
    # the net prefix keeps identical inner keys and shapes apart
    assert not torch.equal(a["lm_linear_encoder"]["main.0.weight"], a["linear_discriminator"]["main.0.weight"])
    with pytest.raises(InputError, match="1234 only"):
        W.verify_synthetic_checksums({"idsg": b}, seed=1235)
    with pytest.raises(InputError):
        W.make_synthetic_weights(tmp_path / "bad-seed", seed=-1)
    assert not (tmp_path / "bad-seed").exists()  # refused before anything was written


# --- the cached folder against the packaged checksums -------------------------------------------------------
def test_cached_synthetic_weights_match_checksums(synthetic_weights):
    W.verify_synthetic_checksums(synthetic_weights, seed=1234)  # raises on any difference


def test_cached_folder_layout_and_sizes(synthetic_weights):
    sizes_mb = {"rfg": 223.6, "idsg": 15.2, "vgg_face": 580.0}  # the official files' sizes
    for name, rel in W.OFFICIAL_FILES.items():
        path = synthetic_weights / rel
        assert round(path.stat().st_size / 1e6, 1) == sizes_mb[name]
    assert W.synthetic_seed(synthetic_weights) == 1234
    assert W.synthetic_seed(synthetic_weights / W.OFFICIAL_FILES["rfg"]) == 1234
    assert synthetic_weights.name == "synthetic-seed1234"
    assert W.synthetic_weights_dir(1234) == synthetic_weights  # reused, not regenerated


def test_checksum_check_catches_a_changed_tensor(synthetic_weights):
    idsg = load_checkpoint(synthetic_weights / W.OFFICIAL_FILES["idsg"], "idsg")
    W.verify_synthetic_checksums({"idsg": idsg})  # a subset is fine
    idsg["linear_classfier"]["main_3.0.bias"][5] += 1e-3
    with pytest.raises(CheckpointError, match="linear_classfier.main_3.0.bias") as info:
        W.verify_synthetic_checksums({"idsg": idsg})
    assert "1 synthetic tensor(s) differ" in str(info.value)
    flat = {f"linear_decoder.{k}": v for k, v in idsg["linear_decoder"].items()}
    with pytest.raises(CheckpointError, match="generator.from_rgb.weight: missing"):
        W.verify_synthetic_checksums(flat)


# --- where synthetic weights may go -------------------------------------------------------------------------
def test_refuses_a_folder_with_real_files(tmp_path):
    real = tmp_path / "vgg_face_dag.pth"
    real.write_bytes(b"pretend these are 580 MB of real weights")
    with pytest.raises(WeightsError, match="not synthetic"):
        W.make_synthetic_weights(tmp_path)
    assert real.read_bytes() == b"pretend these are 580 MB of real weights"


def test_refuses_the_official_search_folders(isolated_weights):
    with pytest.raises(WeightsError, match="refusing"):
        W.make_synthetic_weights(isolated_weights / "repo-weights")
    with pytest.raises(WeightsError, match="refusing"):
        W.make_synthetic_weights(W.cache_dir() / "weights")


# --- the cache: atomic, reused, race-safe (generation replaced by a fast fake) -------------------------------
@pytest.fixture
def fake_generation(isolated_weights, monkeypatch):
    """make_synthetic_weights replaced by a fake that writes tiny files slowly and counts its calls."""
    calls = []

    def fake(directory, seed=1234):
        calls.append(Path(directory))
        for rel in W.OFFICIAL_FILES.values():
            (Path(directory) / rel).parent.mkdir(parents=True, exist_ok=True)
            (Path(directory) / rel).write_bytes(b"x")
        threading.Event().wait(0.2)  # widen the race window
        return {}

    monkeypatch.setattr(dgkit.weights.synthetic, "make_synthetic_weights", fake)
    return calls


def test_cache_is_generated_once_even_when_two_callers_race(fake_generation):
    results = []
    threads = [threading.Thread(target=lambda: results.append(W.synthetic_weights_dir(77))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = W.cache_dir() / "synthetic-seed77"
    assert results == [final, final]
    assert len(fake_generation) == 1
    assert json.loads((final / ".complete").read_text())["seed"] == 77
    # no temporary folders left behind, and the lock file is removed once released
    assert sorted(p.name for p in W.cache_dir().iterdir() if p.name.startswith(".synthetic")) == []
    assert W.synthetic_weights_dir(77) == final
    assert len(fake_generation) == 1


def test_incomplete_cache_folder_is_replaced(fake_generation):
    final = W.cache_dir() / "synthetic-seed78"
    (final / "expr").mkdir(parents=True)  # e.g. a half-copied folder without the completion marker
    assert W.synthetic_weights_dir(78) == final
    assert (final / ".complete").is_file() and len(fake_generation) == 1


def test_failed_generation_leaves_nothing(isolated_weights, monkeypatch):
    def broken(directory, seed=1234):
        (Path(directory) / "partial").write_bytes(b"x")
        raise OSError("disk full")

    monkeypatch.setattr(dgkit.weights.synthetic, "make_synthetic_weights", broken)
    with pytest.raises(OSError, match="disk full"):
        W.synthetic_weights_dir(79)
    assert [p.name for p in W.cache_dir().iterdir()] == []  # nothing left, not even the lock file
