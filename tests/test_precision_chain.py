"""The one DG step chain (``DualGenerator.run_chain``), per-call options, load-time precision and the
channels-last instance norm."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dgkit.errors import InputError
from dgkit.models.blocks import InstanceNorm
from dgkit.models.rfg import calibrate_contrast
from dgkit.pipeline import ChainResult, ReferenceEncoding, load_dg

# bf16 fidelity floor against fp32 on the contrast-calibrated synthetic generator (measured ~43 dB here;
# benchmarks/bench_precision.py reports it per source x reference)
BF16_MIN_PSNR_DB = 38.0


def _refs(n: int, seed: int = 0) -> np.ndarray:
    from dgkit.geometry import mean_face_3d

    rng = np.random.default_rng(seed)
    base = mean_face_3d("crop")[:, :2]
    return np.stack([base + rng.normal(0, 1.5, base.shape) for _ in range(n)]).astype(np.float32)


@pytest.fixture(scope="module")
def source(synthetic_dg):
    rng = np.random.default_rng(1)
    return synthetic_dg.encode_source(rng.integers(0, 256, (1, 256, 256, 3), dtype=np.uint8))


@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_instance_norm_matches_torch_and_keeps_layout(affine, channels_last):
    torch.manual_seed(0)
    x = torch.randn(2, 8, 16, 16) * 3 + 1
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    ours, ref = InstanceNorm(8, affine=affine), nn.InstanceNorm2d(8, affine=affine)
    if affine:
        with torch.no_grad():
            for p in (ours.weight, ours.bias):
                p.normal_()
        ref.load_state_dict(ours.state_dict())
    assert set(ours.state_dict()) == set(ref.state_dict())
    out = ours(x)
    torch.testing.assert_close(out, ref(x), atol=1e-5, rtol=0)
    assert out.is_contiguous(memory_format=torch.channels_last) == channels_last


def test_instance_norm_statistics_bf16_and_gradients():
    torch.manual_seed(0)
    x = (torch.randn(2, 16, 32, 32) * 3 + 1).to(memory_format=torch.channels_last)
    ours, ref = InstanceNorm(16, affine=True), nn.InstanceNorm2d(16, affine=True)
    ref.load_state_dict(ours.state_dict())
    # the statistics: two float32 passes, within float32 rounding of float64
    from dgkit.models.blocks import _instance_stats

    mean, inv_std = _instance_stats(x, 1e-5)
    var64, mean64 = torch.var_mean(x.double(), dim=(2, 3), keepdim=True, correction=0)
    torch.testing.assert_close(mean.double(), mean64, atol=1e-5, rtol=0)
    torch.testing.assert_close(inv_std.double(), torch.rsqrt(var64 + 1e-5), atol=0, rtol=1e-5)
    # bfloat16 input: what is left is bfloat16's rounding of the input and the output
    low = ours.to(torch.bfloat16)(x.bfloat16()).float()
    assert low.dtype == torch.float32 and (low - ref(x)).abs().max() < 0.04
    # gradients flow (the in-place square is used only without autograd)
    ours = InstanceNorm(16, affine=True)
    xg, xr = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ours(xg).square().sum().backward()
    nn.InstanceNorm2d(16, affine=True)(xr).square().sum().backward()
    torch.testing.assert_close(xg.grad, xr.grad, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_run_chain_equals_the_steps(synthetic_dg, source):
    dg, refs = synthetic_dg, _refs(2)
    chain = dg.run_chain(refs, source.id_feature, source.style_code)
    ref = dg.encode_reference(refs)
    decoded = dg.decode(ref.landmark_code, source.id_feature)
    target = dg.correct_eyes(decoded, refs)
    sketch = dg.draw(target)
    assert isinstance(chain, ChainResult) and len(chain) == 2
    np.testing.assert_array_equal(chain.decoded_landmarks, decoded)
    np.testing.assert_array_equal(chain.target_landmarks, target)
    np.testing.assert_array_equal(chain.sketch, sketch)
    np.testing.assert_array_equal(chain.image, dg.generate(sketch, source.style_code))
    np.testing.assert_array_equal(chain.reference.landmark_code, ref.landmark_code)
    # the same from an encoding (e.g. interpolated codes), and shape-only without a style code
    shape_only = dg.run_chain(ReferenceEncoding(refs, ref.landmark_code), source.id_feature)
    assert shape_only.image is None
    np.testing.assert_array_equal(shape_only.sketch, sketch)


def test_run_chain_timer_sees_each_stage(synthetic_dg, source):
    from contextlib import contextmanager

    seen = []

    @contextmanager
    def timer(stage):
        seen.append(stage)
        yield

    synthetic_dg.run_chain(_refs(1), source.id_feature, source.style_code, timer=timer)
    assert seen == ["idsg", "sketch", "generator"]
    seen.clear()
    synthetic_dg.run_chain(_refs(1), source.id_feature, timer=timer)
    assert seen == ["idsg", "sketch"]


@pytest.mark.slow
def test_sketch_intensity_is_a_call_argument(synthetic_dg, source):
    dg = synthetic_dg
    sketch = dg.run_chain(_refs(1), source.id_feature).sketch
    assert dg.sketch_intensity == "demo"
    x = dg.sketch_tensor(sketch, "train")
    assert float(x.max()) == 1.0 and dg.sketch_intensity == "demo"
    run = dg.reenact(source, _refs(1), sketch_intensity="train")
    assert run.sketch_intensity == "train" and dg.sketch_intensity == "demo"
    np.testing.assert_array_equal(run.image, dg.generate(run.sketch, source.style_code, sketch_intensity="train"))
    assert not np.array_equal(run.image, dg.generate(run.sketch, source.style_code))
    with pytest.raises(InputError, match="sketch_intensity"):
        dg.generate(sketch, source.style_code, sketch_intensity="bright")


@pytest.mark.slow
def test_results_record_precision(synthetic_dg, source):
    assert synthetic_dg.precision == "fp32" and not synthetic_dg.allow_tf32
    assert synthetic_dg.reenact(source, _refs(1)).precision == "fp32"


def test_fp16_on_cpu_and_unknown_precisions_are_refused(synthetic_weights, synthetic_dg):
    with pytest.raises(InputError, match="GPU"):
        load_dg(synthetic_weights, precision="fp16")
    with pytest.raises(InputError, match="precision"):
        load_dg(synthetic_weights, precision="int8")
    with pytest.raises(InputError, match="GPU"):
        synthetic_dg.to_precision("fp16")


def test_meta_device_load_has_every_tensor_real(synthetic_dg):
    tensors = list(synthetic_dg.parameters()) + list(synthetic_dg.buffers())
    assert tensors and not any(t.is_meta for t in tensors)
    torch.testing.assert_close(synthetic_dg.vgg.mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:precision='bf16' on a CPU without")
def test_bf16_stays_close_to_fp32_on_a_contrast_calibrated_generator(synthetic_dg, source):
    fp32 = synthetic_dg.to_precision("fp32")  # a copy: the shared model is not recalibrated
    chain = fp32.run_chain(_refs(1, seed=3), source.id_feature)
    # the face's central 128x128 window: the generator is convolutional, and bfloat16 convolutions are slow on
    # CPUs without native support (CI); the full-size numbers are in benchmarks/bench_precision.py
    x = fp32.sketch_tensor(chain.sketch)[..., 64:192, 64:192]
    style = torch.from_numpy(source.style_code)
    assert calibrate_contrast(fp32.generator, x, style) > 1
    bf16 = fp32.to_precision("bf16")
    assert bf16.precision == "bf16" and bf16.generator.decode[0].conv1.weight.dtype == torch.bfloat16
    assert bf16.generator.from_rgb.weight.dtype == torch.float32  # the faint sketch lines stay exact
    with torch.inference_mode():
        exact, low = fp32.generator(x, style), bf16.generator(x, style)
    assert low.dtype == torch.float32 and 0.2 < float(exact.std()) < 0.3
    psnr = 10 * np.log10(1.0 / float(((low - exact) ** 2).mean()))
    assert psnr >= BF16_MIN_PSNR_DB
    assert bf16.reenact(source, _refs(1)).precision == "bf16"


def test_tensor_sketch_renderer_matches_opencv_within_tolerance():
    import cv2

    from dgkit.geometry import mean_face_3d, pose_landmarks
    from dgkit.sketch import draw_sketch, draw_sketches_torch, sketch_branch

    rng = np.random.default_rng(0)
    base = mean_face_3d("crop")
    yaws = np.r_[rng.uniform(-60, 60, 16), rng.uniform(-90, -78, 4), rng.uniform(80, 90, 4)]
    lms = np.stack([pose_landmarks(base, yaw=yaw, pitch=rng.uniform(-20, 20))[:, :2]
                    + rng.normal(0, 1, (68, 2)) for yaw in yaws]).astype(np.float32)
    assert {sketch_branch(lm) for lm in lms} == {"frontal", "left", "right"}
    for kind in ("target", "reference"):
        ours = draw_sketches_torch(torch.from_numpy(lms), kind=kind).numpy()
        assert ours.shape == (24, 256, 256) and ours.dtype == np.uint8 and set(np.unique(ours)) <= {0, 255}
        kernel = np.ones((3, 3), np.uint8)
        for mine, lm in zip(ours, lms):
            ref = draw_sketch(lm, kind=kind)
            lit = (mine > 0) | (ref > 0)
            assert ((mine > 0) == (ref > 0))[lit].mean() >= 0.90
            assert not ((mine > 0) & (cv2.dilate(ref, kernel) == 0)).any()
            assert not ((ref > 0) & (cv2.dilate(mine, kernel) == 0)).any()


def test_tensor_sketch_renderer_is_exact_on_axis_and_diagonal_lines():
    import cv2

    from dgkit.sketch import _rasterize_segments

    for a, b in [((3, 5), (12, 5)), ((3, 3), (3, 10)), ((3, 3), (10, 10)), ((20, 9), (4, 25)), ((5, 5), (5, 5)),
                 ((250, 3), (258, 3))]:  # the last one leaves the canvas
        ref = np.zeros((256, 256), np.uint8)
        cv2.line(ref, a, b, 255, 2)
        ours = _rasterize_segments(torch.tensor([[a]]), torch.tensor([[b]]), torch.tensor([[True]]))[0].numpy()
        np.testing.assert_array_equal(ours, ref)


def test_video_producer_thread_keeps_order_raises_and_stops(monkeypatch):
    import threading

    import dgkit.reenact as rn
    from dgkit.errors import VideoError

    monkeypatch.setattr(rn, "_frame_landmarks", lambda frame, backend, timer: None if frame[0, 0, 0] % 3 else
                        np.full((68, 3), float(frame[0, 0, 0])))
    frames = [np.full((4, 4, 3), i, np.uint8) for i in range(10)]
    timer = rn._Timer({})
    got = list(rn._detected_frames(iter(frames), "mediapipe", timer, depth=2))
    assert [i for i, _, _ in got] == list(range(10))
    assert all(np.array_equal(f, frames[i]) for i, f, _ in got)
    assert [lm is not None for _, _, lm in got] == [i % 3 == 0 for i in range(10)]
    assert "read" in timer.seconds

    def broken():
        yield frames[0]
        raise VideoError("the video stops here")

    with pytest.raises(VideoError, match="stops here"):
        list(rn._detected_frames(broken(), "mediapipe", timer, depth=2))

    endless = rn._detected_frames((frames[0] for _ in iter(int, 1)), "mediapipe", timer, depth=2)
    next(endless)
    endless.close()  # the consumer stops early: the producer thread ends too
    assert not any(t.name == "dgkit-video-frames" and t.is_alive() for t in threading.enumerate())


@pytest.mark.slow
def test_tensor_update_follows_the_numpy_chain(synthetic_dg, source):
    from dgkit.sketch import draw_sketches_torch

    refs = _refs(2, seed=5)
    chain = synthetic_dg.run_chain(refs, source.id_feature)
    out = synthetic_dg.reenact_tensors(torch.from_numpy(refs), torch.from_numpy(source.id_feature),
                                       torch.from_numpy(source.style_code))
    assert out.shape == (2, 3, 256, 256) and out.dtype == torch.float32
    # same target landmarks -> same tensor sketch -> the generator's own output for that sketch
    sketch = draw_sketches_torch(torch.from_numpy(chain.target_landmarks)).numpy()
    expected = synthetic_dg.generate(sketch, source.style_code, output="float")
    np.testing.assert_allclose(out.permute(0, 2, 3, 1).numpy(), expected, atol=1e-5)


@pytest.mark.slow
def test_gpu_benchmark_runs_on_cpu(tmp_path, synthetic_weights, capsys):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "bench_gpu.py"
    spec = importlib.util.spec_from_file_location("bench_gpu", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "gpu.json"
    assert bench.main(["--device", "cpu", "--batches", "2", "--repeats", "1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [(r["precision"], r["variant"], r["batch"]) for r in rows] == [("fp32", "eager", 2)]
    assert rows[0]["frames_per_s"] > 0 and "frames/s" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_precision_option(tmp_path, synthetic_weights, capsys):
    from dgkit import cli
    from dgkit.io import sample_image, write_image

    src = write_image(tmp_path / "src.png", sample_image())
    out = tmp_path / "out.png"
    code = cli.main(["reenact", str(src), str(src), "-o", str(out), "--weights", str(synthetic_weights),
                     "--precision", "fp16"])
    assert code == 1 and "GPU" in capsys.readouterr().err and not out.exists()
    with pytest.raises(SystemExit):
        cli.main(["reenact", str(src), str(src), "-o", str(out), "--precision", "int8"])
