"""Weight folders are never mixed from two sources, synthetic files stay labelled untrained, zips are bounded."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch

import dgkit.weights as W
import dgkit.weights.synthetic
from dgkit.checkpoint import read_signature, save_checkpoint
from dgkit.cli import main
from dgkit.errors import CheckpointError, WeightsError
from dgkit.weights.install import zip_member_limit

REPO = Path(__file__).resolve().parents[1]
RFG, IDSG, VGG = (W.OFFICIAL_FILES[k] for k in ("rfg", "idsg", "vgg_face"))


def _tiny_synthetic(name: str, seed: int) -> dict:
    """A small stand-in for a synthetic file's contents (the real ones are 15-580 MB)."""
    generator = torch.Generator().manual_seed(seed)
    return {"net": {"w": torch.randn(4, 4, generator=generator)}}


# --- two installs into one folder at once ---------------------------------------------------------------------
_IMPORTER = textwrap.dedent("""
    import sys, time
    import dgkit.checkpoint
    import dgkit.weights as W
    from dgkit.errors import WeightsError
    # tiny stand-in files instead of the 800 MB of real ones: every file "verifies", slowly, so the two
    # processes overlap
    dgkit.checkpoint.load_checkpoint = lambda path, name: time.sleep(0.4) or {}
    try:
        W.install_weights(sys.argv[1], sys.argv[2])
    except WeightsError as exc:
        print(exc, file=sys.stderr)
        sys.exit(3)
""")


def test_two_concurrent_installs_never_mix_sources(tmp_path):
    sources = {}
    for tag in ("A", "B"):
        folder = tmp_path / f"download_{tag}"
        for rel in (RFG, IDSG, VGG):
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(tag.encode() * 1000)
        sources[tag] = folder
    dest = tmp_path / "weights"
    env = {**os.environ, "PYTHONPATH": str(REPO), "DGKIT_CACHE": str(tmp_path / "cache")}
    runs = [subprocess.Popen([sys.executable, "-c", _IMPORTER, str(sources[t]), str(dest)], env=env,
                             stderr=subprocess.PIPE, text=True) for t in ("A", "B")]
    errors = [run.communicate(timeout=300)[1] for run in runs]
    codes = sorted(run.returncode for run in runs)
    assert codes == [0, 3], errors  # one placed all three; the other was refused, placing nothing
    assert any("differs" in e and "nothing else was placed" in e for e in errors)
    contents = {(dest / rel).read_bytes()[:1] for rel in (RFG, IDSG, VGG)}
    assert len(contents) == 1  # all three files from the same source
    assert [p.name for p in dest.rglob(".*")] == []  # no temporaries, no lock file


def test_a_file_that_fails_verification_means_none_is_placed(tmp_path, synthetic_weights, isolated_weights):
    src = tmp_path / "download"
    for rel in (RFG, IDSG):  # two good files (links, to save copying 240 MB) and a broken third one
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).symlink_to(synthetic_weights / rel)
    (src / VGG).write_bytes(b"not a weight file")
    dest = tmp_path / "weights"
    with pytest.raises(CheckpointError):
        W.install_weights(src, dest)
    assert [p for p in dest.rglob("*") if p.is_file()] == []  # the two good files were not placed either


# --- synthetic files are recognised wherever they are ----------------------------------------------------------
def test_synthetic_files_of_any_seed_carry_a_signature_that_survives_symlinks(tmp_path, monkeypatch):
    monkeypatch.setattr(dgkit.weights.synthetic, "synthetic_state", _tiny_synthetic)
    made = W.make_synthetic_weights(tmp_path / "synthetic", seed=7)
    linked = tmp_path / "linked"
    for name, path in made.items():
        target = linked / W.OFFICIAL_FILES[name]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(path)
    assert not (linked / W.SYNTHETIC_MARKER).exists()  # no marker beside the links
    for name in made:
        assert read_signature(linked / W.OFFICIAL_FILES[name]) == {"synthetic": True, "seed": 7, "kind": name}
        assert W.file_synthetic_seed(linked / W.OFFICIAL_FILES[name]) == 7
    copied = tmp_path / "copied.ckpt"
    shutil.copy(made["idsg"], copied)
    assert W.file_synthetic_seed(copied) == 7
    assert torch.load(copied, weights_only=True)["net"]["w"].shape == (4, 4)  # torch ignores the signature


@pytest.mark.slow
def test_status_and_load_dg_agree_on_a_symlinked_synthetic_set(tmp_path, synthetic_weights, capsys):
    from dgkit.pipeline import load_dg

    linked = tmp_path / "linked"
    for rel in (RFG, IDSG, VGG):
        (linked / rel).parent.mkdir(parents=True, exist_ok=True)
        (linked / rel).symlink_to(synthetic_weights / rel)
    dg = load_dg(linked)
    assert dg.weights.trained is False and "synthetic" in dg.weights.label
    statuses = W.weights_status(linked)
    assert all(s.synthetic_seed == 1234 for s in statuses)
    assert main(["weights", "status", "--dir", str(linked)]) == 0
    out = capsys.readouterr().out
    assert out.count("yes UNTRAINED") == 3 and "synthetic (untrained)" in out


# --- zips -----------------------------------------------------------------------------------------------------
def test_zip_member_far_beyond_the_official_size_is_refused_before_writing(tmp_path, isolated_weights):
    archive = tmp_path / "DG.zip"
    limit = zip_member_limit("idsg")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("DG/" + IDSG, "w", force_zip64=True) as member:
            block = bytes(1 << 20)
            for _ in range(limit // len(block) + 2):
                member.write(block)
    assert archive.stat().st_size < limit // 100  # a small zip that unpacks to much more
    dest = tmp_path / "weights"
    with pytest.raises(WeightsError, match="far more than the official IDSG file") as info:
        W.install_weights(archive, dest)
    assert "nothing was placed" in str(info.value)
    written = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file()) if dest.exists() else 0
    assert written == 0


def test_bad_zip_member_message_names_the_member_not_a_deleted_temp_file(tmp_path, isolated_weights):
    archive = tmp_path / "DG.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("DG/" + IDSG, b"garbage" * 100)
    with pytest.raises(CheckpointError) as info:
        W.install_weights(archive, tmp_path / "weights")
    message = str(info.value)
    assert f"{archive} (member DG/{IDSG})" in message
    assert ".tmp" not in message and "Delete it" not in message


def test_reinstall_says_kept(tmp_path, synthetic_weights, isolated_weights, capsys):
    single = tmp_path / "download" / "30000_nets_ema.ckpt"
    single.parent.mkdir()
    shutil.copy(synthetic_weights / IDSG, single)
    dest = tmp_path / "weights"
    assert main(["weights", "install", str(single), "--dest", str(dest)]) == 0
    assert "placed:" in capsys.readouterr().out
    assert main(["weights", "install", str(single), "--dest", str(dest)]) == 0
    out = capsys.readouterr().out
    assert "kept (the same file was already there)" in out and "placed" not in out


def test_save_checkpoint_signature_round_trip(tmp_path):
    path = save_checkpoint({"a": torch.zeros(2)}, tmp_path / "x.pt", signature={"synthetic": True, "seed": 3})
    assert read_signature(path) == {"synthetic": True, "seed": 3}
    assert read_signature(save_checkpoint({"a": torch.zeros(2)}, tmp_path / "y.pt")) is None


_SYNTHESIZER = textwrap.dedent("""
    import sys, time, torch
    import dgkit.weights as W
    import dgkit.weights.synthetic
    def tiny(name, seed):  # small stand-ins for the 820 MB of real synthetic tensors
        time.sleep(0.3)   # slow enough for the two processes to overlap
        return {"net": {"w": torch.full((2,), float(seed))}}
    dgkit.weights.synthetic.synthetic_state = tiny
    W.make_synthetic_weights(sys.argv[1], seed=int(sys.argv[2]))
""")


def test_two_concurrent_synthetic_runs_leave_one_consistent_set(tmp_path):
    dest = tmp_path / "synthetic"
    env = {**os.environ, "PYTHONPATH": str(REPO), "DGKIT_CACHE": str(tmp_path / "cache")}
    runs = [subprocess.Popen([sys.executable, "-c", _SYNTHESIZER, str(dest), seed], env=env) for seed in ("5", "6")]
    assert [run.wait(timeout=300) for run in runs] == [0, 0]
    seeds = {read_signature(dest / rel)["seed"] for rel in (RFG, IDSG, VGG)}
    values = {float(torch.load(dest / rel, weights_only=True)["net"]["w"][0]) for rel in (RFG, IDSG, VGG)}
    marker = W.synthetic_seed(dest)
    assert len(seeds) == 1 and values == {float(marker)} and seeds == {marker}
