"""Training fails loudly and cleanly: NaN losses, damaged resume files, stale temporaries, logs across resume."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dgkit.errors import CheckpointError, DatasetError, DeviceError, TrainingError
from dgkit.training import task as task_mod
from dgkit.training.cli import short_run_note
from dgkit.training.config import config_from_dict
from dgkit.training.checkpoints import checkpoint_dir

sys.path.insert(0, str(Path(__file__).parent))
# the toy VGG, the tiny dataset and the one-thread rule of the training tests
from test_training import TinyVGG, _idsg, dataset, one_thread  # noqa: E402,F401


def test_nan_loss_stops_with_step_and_last_good_checkpoint(dataset, tmp_path, monkeypatch):
    run = tmp_path / "run"
    _idsg(dataset, run, steps=2)
    from dgkit.training import idsg as idsg_mod

    task_cls = next(c for c in vars(idsg_mod).values() if isinstance(c, type) and issubclass(c, task_mod.Task)
                    and c is not task_mod.Task)
    original = task_cls.train_step

    def poisoned(self, batches, gen):
        losses = original(self, batches, gen)
        if self.step == 4:
            losses = {**losses, "g_cyc": float("nan")}
        return losses

    monkeypatch.setattr(task_cls, "train_step", poisoned)
    with pytest.raises(TrainingError, match=r"step 4: loss g_cyc=nan is not finite; the last good checkpoint "
                                            r"is .*2_nets_ema\.ckpt"):
        _idsg(dataset, run, steps=6, resume=True)
    assert sorted(p.name for p in checkpoint_dir(run, "idsg").iterdir()) == ["2_nets_ema.ckpt",
                                                                          "2_train_state.pt"]


def test_resume_file_with_the_wrong_structure_is_a_checkpoint_error(dataset, tmp_path):
    run = tmp_path / "run"
    folder = checkpoint_dir(run, "idsg")
    folder.mkdir(parents=True)
    torch.save({"format": "dgkit-train-state", "kind": "idsg", "step": 1, "config": "{}"},
               folder / "1_train_state.pt")
    with pytest.raises(CheckpointError, match="has no 'nets' entry") as info:
        _idsg(dataset, run, steps=3, resume=True)
    assert "weights_only=False" not in str(info.value)


def test_resume_error_never_advises_weights_only_false(dataset, tmp_path):
    run = tmp_path / "run"
    folder = checkpoint_dir(run, "idsg")
    folder.mkdir(parents=True)
    torch.save({"format": "dgkit-train-state", "kind": "idsg", "obj": TinyVGG}, folder / "1_train_state.pt")
    with pytest.raises(CheckpointError, match="refuses to load") as info:
        _idsg(dataset, run, steps=3, resume=True)
    assert "weights_only" not in str(info.value)


def test_failed_train_leaves_no_empty_run_folder(tmp_path):
    run = tmp_path / "never"
    with pytest.raises(DatasetError):
        _idsg(tmp_path / "no-such-dataset", run)
    assert not run.exists()


def test_unknown_device_is_a_device_error(dataset, tmp_path):
    with pytest.raises(DeviceError, match="unknown device 'foo'"):
        _idsg(dataset, tmp_path / "run", device="foo")


def test_stale_temporaries_of_killed_saves_are_cleaned(dataset, tmp_path):
    run = tmp_path / "run"
    folder = checkpoint_dir(run, "idsg")
    folder.mkdir(parents=True)
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    stale = folder / f".7_train_state.pt.{dead}.0badf00d.tmp"
    stale.write_bytes(b"x" * 1000)
    _idsg(dataset, run, steps=1)
    assert not stale.exists()


def test_csv_time_continues_and_tensorboard_keeps_the_resumed_step(dataset, tmp_path, monkeypatch):
    purged = []

    class FakeWriter:  # records what the real SummaryWriter would be asked to do
        def __init__(self, logdir, purge_step=None):
            purged.append(purge_step)

        def add_scalar(self, *args):
            pass

        def close(self):
            pass

    import torch.utils.tensorboard as tb

    monkeypatch.setattr(tb, "SummaryWriter", FakeWriter)
    run = tmp_path / "run"
    _idsg(dataset, run, steps=3, tensorboard=True)
    res = _idsg(dataset, run, steps=5, resume=True, tensorboard=True)
    rows = list(csv.DictReader(res.log_path.open()))
    times = [float(r["time_s"]) for r in rows]
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5]
    assert times == sorted(times) and times[3] > times[2]  # no restart from 0 after the resume
    assert purged == [None, 4]  # events from step 4 on are replaced; step 3 (logged before) stays


@pytest.mark.parametrize(("steps", "beta", "expect"), [(50, 0.999, True), (5000, 0.999, False), (50, 0.5, False)])
def test_short_runs_get_a_note_with_the_two_settings(steps, beta, expect):
    cfg = config_from_dict("idsg", {"data": "d", "steps": steps, "ema_beta": beta})
    note = short_run_note(cfg)
    assert (note is not None) == expect
    if expect:
        assert "--set ema_beta=" in note and "--set ema_from_default_init=false" in note


def test_cli_prints_the_short_run_note_and_honours_threads(dataset, tmp_path, synthetic_weights):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
           "DGKIT_WEIGHTS": str(synthetic_weights)}
    code = ("import sys, torch; from dgkit.cli import main; rc = main(sys.argv[1:]); "
            "print('threads', torch.get_num_threads()); sys.exit(rc)")
    run = subprocess.run([sys.executable, "-c", code, "train", "idsg", "--data", str(dataset), "--out",
                          str(tmp_path / "run"), "--steps", "1", "--batch-size", "2", "--threads", "1", "--set",
                          "progress=false", "--set", "sample_every=0", "--set", "allow_synthetic_vgg=true",
                          "--device", "cpu"], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "note: 1 steps is short for ema_beta=0.999" in run.stdout and "threads 1" in run.stdout


def test_default_threads_is_one_on_small_cpu_machines(monkeypatch):
    from dgkit.training import cli

    monkeypatch.setattr(cli.os, "cpu_count", lambda: 2)
    assert cli.default_threads("cpu") == 1
    assert cli.default_threads("cuda") is None
    monkeypatch.setattr(cli.os, "cpu_count", lambda: 16)
    assert cli.default_threads("cpu") is None
