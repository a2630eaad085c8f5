"""Training (dgkit.training: loop/idsg/rfg/losses/config/cli/export) on the tiny synthetic dataset, on CPU.

A tiny stand-in VGG replaces VGG-Face in the fast tests (identity features and perceptual loss need only
its interface); the slow tests use the synthetic VGG-Face weights and the full networks.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dgkit.errors import ConfigError, DatasetError
from dgkit.training import losses
from dgkit.training.config import config_from_dict, load_config, parse_overrides
from dgkit.training import export_trained_weights, latest_checkpoint, train_idsg, train_rfg

QUIET = {"progress": False, "tensorboard": False}


class TinyVGG(nn.Module):
    """VGGFace's interface at toy cost: forward -> (N,4096) non-negative, perceptual_features -> 2 maps."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv1, self.conv2 = nn.Conv2d(3, 8, 3, 4, 1), nn.Conv2d(8, 8, 3, 2, 1)
        self.fc = nn.Linear(8 * 16, 4096)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        self.requires_grad_(False)

    def perceptual_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        a = torch.relu(self.conv1(x))
        return [a, torch.relu(self.conv2(a))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.adaptive_avg_pool2d(self.perceptual_features(x)[1], 4)
        return torch.relu(self.fc(h.flatten(1)))


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread per test: on the shared 2-core machine, spinning OpenMP threads slow small ops 3-5x."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from dgkit.training.data import make_synthetic_dataset

    return make_synthetic_dataset(tmp_path_factory.mktemp("train") / "data")


def _idsg(dataset: Path, out: Path, **kw):
    values = {"data": str(dataset), "out": str(out), "steps": 3, "batch_size": 4, "log_every": 1,
              "sample_every": 0, **QUIET, **kw}
    return train_idsg(vgg=TinyVGG(), **values)


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


# --- config -------------------------------------------------------------------------------------------------
def test_config_precedence_and_parsing(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"lr": 1e-3, "steps": 50, "data": "d"}))
    cfg = load_config("rfg", path, ["steps=7", "betas=[0.5,0.9]", "aligned_crops=true", "crop_scale=0.5,1"],
                      batch_size=3, device=None)
    assert (cfg.lr, cfg.steps, cfg.batch_size, cfg.betas) == (1e-3, 7, 3, (0.5, 0.9))
    assert cfg.aligned_crops is True and cfg.crop_scale == (0.5, 1.0) and cfg.device == "auto"
    assert parse_overrides(["weights_dir=/x/y", "lambda_tp=2"]) == {"weights_dir": "/x/y", "lambda_tp": 2}
    idsg = config_from_dict("idsg", {"data": "d"})  # published defaults
    assert (idsg.batch_size, idsg.lr, idsg.betas, idsg.ema_beta) == (32, 2e-5, (0.99, 0.999), 0.999)
    assert (idsg.classifier_loss, idsg.local_shape_mode) == ("sigmoid_ce", "reflect")


def test_config_yaml(tmp_path):
    pytest.importorskip("yaml")
    path = tmp_path / "cfg.yaml"
    path.write_text("data: d\nimage_size: 64\nstyle_source: reference\n")
    cfg = load_config("rfg", path)
    assert (cfg.image_size, cfg.style_source) == (64, "reference")


@pytest.mark.parametrize("values, names", [
    ({"data": "d", "lamda_adv": 1}, ["lamda_adv", "Did you mean lambda_adv"]),
    ({"data": "d", "image_size": 300}, ["image_size"]),
    ({"data": "d", "amp": "fp8"}, ["amp"]),
    ({"data": "d", "steps": "many"}, ["steps"]),
    ({}, ["data"]),
])
def test_bad_config_raises_config_error(values, names):
    with pytest.raises(ConfigError) as err:
        config_from_dict("rfg", values)
    for name in names:
        assert name in str(err.value)


def test_bad_override_and_cli_error(tmp_path, capsys):
    from dgkit.cli import main

    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["lr"])
    assert main(["train", "idsg", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--set", "bogus=1"]) == 1
    assert "bogus" in capsys.readouterr().err


# --- losses -------------------------------------------------------------------------------------------------
def test_local_shape_loss_reflect_vs_hinge():
    real = torch.rand(2, 136)
    same = real + 0.0  # perfect self-reconstruction
    cross = real + 0.05  # every point 0.05*sqrt(2) away
    part_gap = {name: (b - a) * 0.05 * 2 ** 0.5 for name, (a, b) in losses.PARTS.items()}
    expected_reflect = sum(abs((0.2 if n == "jaw" else 0.01) - g) for n, g in part_gap.items())
    expected_hinge = sum(max(0.0, (0.2 if n == "jaw" else 0.01) - g) for n, g in part_gap.items())
    got_r = losses.local_shape_loss(cross, same, real, mode="reflect")
    got_h = losses.local_shape_loss(cross, same, real, mode="hinge")
    assert got_r.item() == pytest.approx(expected_reflect, rel=1e-4)
    assert got_h.item() == pytest.approx(expected_hinge, abs=1e-5)
    assert got_r.item() > got_h.item()


def test_classifier_quirk_and_r1():
    from dgkit.models import IdentityClassifier

    clf = IdentityClassifier()
    x, ids = torch.rand(3, 136), torch.tensor([0, 5, 7])
    quirk, plain = losses.identity_loss(clf, x, ids, "sigmoid_ce"), losses.identity_loss(clf, x, ids, "ce")
    assert quirk.item() == pytest.approx(torch.nn.functional.cross_entropy(clf(x), ids).item(), rel=1e-6)
    assert quirk.item() != pytest.approx(plain.item())
    xin = torch.rand(4, 5, requires_grad=True)
    assert losses.r1_penalty((xin * 3).sum(1), xin).item() == pytest.approx(0.5 * 9 * 5)


def test_crops_aligned_or_independent():
    from dgkit.training.config import RFGConfig
    from dgkit.training.rfg import random_resized_crop

    cfg = RFGConfig(data="d", crop_prob=1.0, crop_scale=(0.3, 0.5))
    img = torch.rand(3, 3, 32, 32)
    a, b = random_resized_crop([img, img], cfg, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, img)
    gen = torch.Generator().manual_seed(1)
    (c,), (d,) = random_resized_crop([img], cfg, gen), random_resized_crop([img], cfg, gen)
    assert not torch.equal(c, d)


def test_small_size_networks_keep_the_checkpoint_layout():
    from dgkit.checkpoint import expected_entries
    from dgkit.models import StyleEncoder
    from dgkit.training.rfg import make_discriminator

    assert make_discriminator(32)(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)).shape == (2,)
    enc = StyleEncoder()
    assert enc(torch.rand(2, 3, 64, 64)).shape == (2, 128)
    assert enc(torch.rand(1, 3, 32, 32)).shape == (1, 128)
    # a smaller image only skips the last 512->512 blocks: those blocks do not change the code at 64 px
    image = torch.rand(1, 3, 64, 64)
    before = enc(image)
    with torch.no_grad():
        for p in enc.shared[5].parameters():
            p.add_(1.0)
    assert torch.equal(enc(image), before)
    for bad in (torch.rand(1, 3, 48, 48), torch.rand(1, 3, 64, 32), torch.rand(1, 3, 16, 16),
                torch.rand(1, 3, 512, 512)):
        with pytest.raises(ValueError, match="StyleEncoder takes square images"):
            enc(bad)
    shapes = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    assert shapes == expected_entries("rfg")["style_encoder"]


# --- IDSG training --------------------------------------------------------------------------------------------
def test_idsg_steps_checkpoint_log_and_samples(dataset, tmp_path):
    from dgkit.checkpoint import load_checkpoint

    res = _idsg(dataset, tmp_path / "run", sample_every=3)
    assert res.steps == 3 and res.checkpoint == tmp_path / "run/expr_lm/checkpoints/3_nets_ema.ckpt"
    assert all(np.isfinite(v) for v in res.final_losses.values()) and len(res.final_losses) == 10
    blob = load_checkpoint(res.checkpoint, "idsg")  # the exact manifest layout load_dg needs
    assert torch.equal(blob["linear_decoder"]["main.0.weight"], res.nets["linear_decoder"].main[0].weight.cpu())
    rows = res.log_path.read_text().splitlines()
    assert rows[0].startswith("step,time_s,samples_per_s,d_real") and len(rows) == 4
    assert [p.name for p in res.samples] == ["000003.png"]


def test_idsg_losses_decrease_on_tiny_overfit(dataset, tmp_path):
    import csv

    res = _idsg(dataset, tmp_path / "run", steps=30, lr=2e-4, betas=(0.9, 0.999), log_every=10)
    rows = list(csv.DictReader(res.log_path.open()))
    first, last = float(rows[0]["g_cyc"]), float(rows[-1]["g_cyc"])
    assert last < 0.5 * first, (first, last)
    assert float(rows[-1]["c_real"]) < float(rows[0]["c_real"])


@pytest.mark.parametrize("log_every", [1, 4])  # 4: the losses stay on the device across saves
def test_resume_equals_uninterrupted(dataset, tmp_path, log_every):
    full = _idsg(dataset, tmp_path / "full", steps=6, save_every=3, log_every=log_every)
    _idsg(dataset, tmp_path / "split", steps=3, log_every=log_every)
    resumed = _idsg(dataset, tmp_path / "split", steps=6, resume=True, log_every=log_every)
    assert resumed.steps == 6
    a, b = _load(full.checkpoint), _load(resumed.checkpoint)
    for net in a:
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), (net, key)
    sa, sb = _load(full.state_path), _load(resumed.state_path)
    assert torch.equal(sa["optims"]["linear_decoder"]["state"][0]["exp_avg"],
                       sb["optims"]["linear_decoder"]["state"][0]["exp_avg"])
    rows = [line.split(",")[0] for line in resumed.log_path.read_text().splitlines()[1:]]
    assert rows == (["1", "2", "3", "4", "5", "6"] if log_every == 1 else ["3", "4", "6"])  # no duplicates
    with pytest.raises(ConfigError, match="already holds a trained IDSG"):  # no silent overwrite of a run
        _idsg(dataset, tmp_path / "split", steps=6)


def test_lazy_r1_every_k_steps(dataset, tmp_path):
    import csv

    res = _idsg(dataset, tmp_path / "run", steps=4, r1_every=2)
    d_reg = [float(r["d_reg"]) for r in csv.DictReader(res.log_path.open())]
    assert d_reg[0] == d_reg[2] == 0.0 and d_reg[1] > 0 and d_reg[3] > 0


def test_amp_on_cpu_falls_back_with_a_message(dataset, tmp_path, caplog):
    res = _idsg(dataset, tmp_path / "run", steps=1, amp="bf16", device="cpu")
    assert res.steps == 1
    assert "needs a CUDA device" in caplog.text


def test_grad_accumulation_matches_a_larger_batch_for_the_classifier(dataset, tmp_path):
    # the classifier step is a plain supervised step: 2 x 2 accumulated == 1 x 4 on the same items
    from torch.utils.data import DataLoader

    from dgkit.training.config import config_from_dict
    from dgkit.training.runtime import Runtime
    from dgkit.training.sampler import EpochItems
    from dgkit.training.idsg import IDSGTask

    cfgs = [config_from_dict("idsg", {"data": str(dataset), "out": str(tmp_path), "batch_size": b,
                                      "grad_accum": k, **QUIET}) for b, k in ((4, 1), (2, 2))]
    weights = []
    for cfg in cfgs:
        task = IDSGTask(cfg, Runtime(cfg), vgg=TinyVGG())
        ds = task.build_dataset()
        items = next(iter(DataLoader(EpochItems(ds), batch_size=4, sampler=[(0, i) for i in range(4)])))
        chunks = [items] if cfg.grad_accum == 1 else [{k: v[:2] for k, v in items.items()},
                                                      {k: v[2:] for k, v in items.items()}]
        task.train_step(chunks, torch.Generator())
        weights.append(task.nets["linear_classfier"].main_3[0].weight.detach().clone())
    torch.testing.assert_close(weights[0], weights[1], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_rfg_step_runs_the_generator_once_and_equals_two_passes(dataset, tmp_path):
    """The generator's output is reused: D learns on a detached copy, G/E back-propagate the same tensor. The
    networks after one step equal those of the original two-pass step (generator re-run for G/E)."""
    import copy

    from torch.utils.data import DataLoader

    from dgkit.training.losses import adversarial_loss, perceptual_loss, r1_penalty
    from dgkit.training.rfg import DIS, GEN, STY, RFGTask
    from dgkit.training.runtime import Runtime
    from dgkit.training.sampler import EpochItems

    cfg = config_from_dict("rfg", {"data": str(dataset), "out": str(tmp_path), "batch_size": 2, "image_size": 32,
                                   "crop_prob": 0.0, **QUIET})
    task = RFGTask(cfg, Runtime(cfg), vgg=TinyVGG())
    ref = copy.deepcopy(task)
    ds = task.build_dataset()
    batch = next(iter(DataLoader(EpochItems(ds), batch_size=2, sampler=[(0, 0), (0, 1)])))
    calls = []
    task.nets[GEN].register_forward_hook(lambda *_: calls.append(1))
    task.step = ref.step = 1  # r1 active (r1_every 1)
    task.train_step([batch], torch.Generator())
    assert len(calls) == 1

    # the original step: a no-grad generator pass for D, a second pass for G and E
    g, e, d = ref.nets[GEN], ref.nets[STY], ref.nets[DIS]
    photo, sketch, source = ref._inputs(batch, torch.Generator())
    ref.optims[DIS].zero_grad()
    with torch.no_grad():
        fake = g(sketch, e(source))
    x_real = photo.detach().requires_grad_(True)
    real_logits = d(x_real, sketch)
    r1 = ref.r1_weight()
    (adversarial_loss(real_logits, 1.0) + adversarial_loss(d(fake, sketch), 0.0)
     + r1 * r1_penalty(real_logits, x_real)).backward()
    ref.optims[DIS].step()
    d.requires_grad_(False)
    ref.optims[GEN].zero_grad()
    ref.optims[STY].zero_grad()
    fake = g(sketch, e(source))
    (cfg.lambda_adv * adversarial_loss(d(fake, sketch), 1.0) + cfg.lambda_pixel * (fake - photo).abs().mean()
     + cfg.lambda_perceptual * perceptual_loss(ref.vgg, fake, photo)).backward()
    ref.optims[GEN].step()
    ref.optims[STY].step()
    for name in (GEN, STY, DIS):
        for (key, new), old in zip(task.nets[name].state_dict().items(), ref.nets[name].state_dict().values()):
            torch.testing.assert_close(new, old, rtol=1e-5, atol=1e-6, msg=f"{name}.{key}")


def _ddp_worker(rank: int, world: int, port: int, dataset: str, out: str, result_dir: str) -> None:
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    res = _idsg(Path(dataset), Path(out), steps=3, batch_size=2)
    torch.save({k: v.state_dict() for k, v in res.nets.items()}, Path(result_dir) / f"rank{rank}.pt")


@pytest.mark.slow
def test_ddp_two_cpu_processes_keep_identical_parameters(dataset, tmp_path):
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(dataset), str(tmp_path / "run"), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = _load(tmp_path / "rank0.pt"), _load(tmp_path / "rank1.pt")
    for net in r0:
        for key in r0[net]:
            assert torch.equal(r0[net][key], r1[net][key]), (net, key)
    # rank 0 alone wrote the checkpoint, holding those same weights
    ckpt = _load(latest_checkpoint(tmp_path / "run", "idsg"))
    assert torch.equal(ckpt["linear_decoder"]["main.10.weight"], r1["linear_decoder"]["main.10.weight"])


# --- RFG and load_dg ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_rfg_steps_finite_and_checkpoint_loads(dataset, tmp_path):
    from dgkit.checkpoint import load_checkpoint

    res = train_rfg(vgg=TinyVGG(), data=str(dataset), out=str(tmp_path / "run"), steps=2, batch_size=2,
                    image_size=32, log_every=1, sample_every=2, aligned_crops=True, style_source="reference",
                    **QUIET)
    assert all(np.isfinite(v) for v in res.final_losses.values())
    assert set(load_checkpoint(res.checkpoint, "rfg")) == {"generator", "style_encoder"}
    assert res.samples[0].is_file()


@pytest.mark.slow
def test_export_and_load_dg_round_trip(dataset, tmp_path, synthetic_weights):
    import dgkit

    res = _idsg(dataset, tmp_path / "run", steps=2)
    out = export_trained_weights(tmp_path / "run", out_dir=tmp_path / "weights", weights_dir=synthetic_weights)
    dg = dgkit.load_dg(out)
    for name, net in (("linear_decoder", dg.landmark_decoder), ("lm_linear_encoder", dg.landmark_encoder)):
        trained = res.nets[name].state_dict()
        for key, value in net.state_dict().items():
            assert torch.equal(value, trained[key]), (name, key)
    marker = json.loads((out / "DGKIT_TRAINED.json").read_text())["files"]
    assert (marker["idsg"]["origin"], marker["idsg"]["placed"], marker["idsg"]["synthetic"]) == ("trained", "copy", False)
    assert (marker["vgg_face"]["placed"], marker["vgg_face"]["synthetic"]) == ("symlink", True)
    with pytest.raises(dgkit.WeightsError, match="already holds"):
        export_trained_weights(tmp_path / "run", out_dir=out, weights_dir=synthetic_weights)


@pytest.mark.slow
def test_cli_trains_with_synthetic_vgg(dataset, tmp_path, synthetic_weights_env):
    from dgkit.cli import main

    run = tmp_path / "run"
    assert main(["train", "idsg", "--data", str(dataset), "--out", str(run), "--steps", "2", "--batch-size", "4",
                 "--set", "progress=false", "--set", "sample_every=0", "--device", "cpu"]) == 0
    assert latest_checkpoint(run, "idsg").name == "2_nets_ema.ckpt"


# --- loop helpers ----------------------------------------------------------------------------------------------
def test_prefetcher_keeps_the_order_and_raises_the_loaders_error_in_place():
    from dgkit.training.prefetch import Prefetcher

    with Prefetcher(iter(range(7)), depth=2) as it:
        assert list(it) == list(range(7))

    def broken():
        yield 1
        yield 2
        raise DatasetError("bad png")

    it = Prefetcher(broken())
    assert next(it) == 1 and next(it) == 2
    with pytest.raises(DatasetError, match="bad png"):
        next(it)
    it.close()

    endless = Prefetcher(iter(int, 1), depth=1)  # an endless source: close() must still stop the thread
    assert next(endless) == 0
    endless.close()
    assert not endless._thread.is_alive()


def test_loss_window_means_and_first_non_finite_step():
    from dgkit.errors import TrainingError
    from dgkit.training.loop import LossWindow

    w = LossWindow(("a", "b"), torch.device("cpu"))
    w.add(1, {"a": torch.tensor(1.0), "b": torch.tensor(4.0)})
    w.add(2, {"a": torch.tensor(3.0), "b": 2.0})
    assert w.read(lambda: None) == {"a": 2.0, "b": 3.0} and len(w) == 2
    w.add(3, {"a": torch.tensor(float("inf")), "b": 0.0})
    w.add(4, {"a": 0.0, "b": float("nan")})
    with pytest.raises(TrainingError, match=r"step 3: loss a=inf is not finite; the last good checkpoint is X"):
        w.read(lambda: "X")
    w.clear()
    assert w.read(lambda: None) == {} and len(w) == 0
