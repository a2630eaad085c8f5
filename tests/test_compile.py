"""``load_dg(..., compile=True)``: the compiled generator, its persistent cache and what results record.

The fast tests check the wiring without compiling (``torch.compile`` is lazy: nothing is compiled before the
first call). The slow test compiles the full generator once, at batch 1 and 256 px: inductor's compile time
depends on the graph (the same at any input size), not on the image size, so a smaller input would not make
it cheaper. It costs minutes on a 2-core CPU the first time (130 s measured with the CPU shared) and about
20 s once the code is in the cache (``dgkit.pipeline.compile_cache_dir()``, kept between runs).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dgkit import cli
from dgkit.pipeline import compile_cache_dir


@pytest.fixture
def fp32_copy(synthetic_dg):
    """A private float32 copy of the shared synthetic model (compiling must not change the shared one)."""
    return synthetic_dg.to_precision("fp32")


@pytest.mark.slow
def test_compile_is_opt_in_and_keeps_the_state_dict(synthetic_dg, fp32_copy):
    assert not synthetic_dg.compiled
    keys = list(fp32_copy.state_dict())
    assert fp32_copy.compile_generator() is fp32_copy and fp32_copy.compiled
    assert list(fp32_copy.state_dict()) == keys  # the compiled wrapper is not a registered sub-module
    eager_copy = fp32_copy.to_precision("fp32")
    assert not eager_copy.compiled and fp32_copy.compiled


def test_compile_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("DGKIT_CACHE", str(tmp_path / "dg"))
    assert compile_cache_dir() == tmp_path / "dg" / "inductor"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    assert compile_cache_dir() == tmp_path / "mine"


def test_cli_compile_option_reaches_load_dg(tmp_path, monkeypatch):
    seen = {}

    def fake_load_dg(*args, **kwargs):
        seen.update(kwargs)
        raise SystemExit(0)

    monkeypatch.setattr("dgkit.pipeline.load_dg", fake_load_dg)
    from dgkit.io import sample_image, write_image

    src = write_image(tmp_path / "src.png", sample_image())
    with pytest.raises(SystemExit):
        cli.main(["reenact", str(src), str(src), "-o", str(tmp_path / "out.png"), "--synthetic", "--compile"])
    assert seen.get("compile") is True


@pytest.mark.slow
def test_compiled_generator_matches_eager_fp32(fp32_copy):
    rng = np.random.default_rng(3)
    source = rng.integers(0, 256, (1, 256, 256, 3), dtype=np.uint8)
    from dgkit.geometry import mean_face_3d

    reference = mean_face_3d("crop")[:, :2].astype(np.float32)
    eager = fp32_copy.reenact(source, reference)
    fp32_copy.compile_generator()
    compiled = fp32_copy.reenact(source, reference)
    assert compiled.compiled and not eager.compiled and compiled.precision == "fp32"
    diff = np.abs(compiled.image.astype(int) - eager.image.astype(int))
    assert diff.max() <= 1  # the compiler reorders float sums: a grey level at most (truncation to uint8)
    floats = [fp32_copy.generate(eager.sketch, eager.style_code, output="float")]
    with torch.inference_mode():
        x = fp32_copy.sketch_tensor(eager.sketch)
        floats.append(fp32_copy.generator(x, torch.from_numpy(eager.style_code)).permute(0, 2, 3, 1).numpy())
    assert np.abs(floats[0] - floats[1]).max() < 1e-4
    assert any(compile_cache_dir().rglob("*.py"))  # the generated code is kept for the next session
