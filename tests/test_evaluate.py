"""dgkit.evaluate: metrics on known answers, pair sources, tables, the large-pose plot, resume, bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dgkit
from dgkit import evaluate as ev
from dgkit.errors import ConfigError, ImageReadError, InputError

BASELINES = ("naive", "relative3d")


# --- fixtures -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def source_face():
    from dgkit.reenact import prepare_face

    return prepare_face(dgkit.sample_image(), backend="mediapipe")


@pytest.fixture(scope="module")
def turned(source_face):
    """The astronaut warped to yaw 30 (relative-3D baseline): (image, detected (68,3) landmarks)."""
    from dgkit.geometry import mean_face_3d, pose_landmarks

    ref = pose_landmarks(mean_face_3d(), 30.0, 0.0, 0.0)
    out = ev.method_outputs(source_face, ref, methods=["relative3d"])["relative3d"]
    return out.image, dgkit.detect_landmarks(out.image, backend="mediapipe")


class MeanColour:
    """A tiny identity encoder (per-channel means and stds): shows the interface is pluggable."""

    name = "mean-colour (test)"
    trained = True

    def encode(self, crops):
        x = np.asarray(crops, np.float64)
        return np.concatenate([x.mean(axis=(1, 2)), x.std(axis=(1, 2))], axis=1)


def _sweep(yaws=(-60.0, 0.0, 60.0)):
    return ev.pose_sweep_pairs(["sample:astronaut"], yaws=yaws, pitches=[0.0])


# --- metrics: known answers ---------------------------------------------------------------------------------
def test_output_identical_to_reference_has_zero_pose_error_and_nme(source_face):
    reference = source_face.crop
    output = reference.copy()
    ref_lm = dgkit.detect_landmarks(reference, backend="mediapipe")
    out_lm = dgkit.detect_landmarks(output, backend="mediapipe")
    err = ev.pose_errors(out_lm, dgkit.geometry.head_pose(ref_lm))
    assert err.mean == pytest.approx(0.0, abs=1e-6)
    assert ev.nme(out_lm, ref_lm) == pytest.approx(0.0, abs=1e-9)
    assert ev.opening_errors(out_lm, ref_lm) == pytest.approx((0.0, 0.0), abs=1e-9)


def test_mirrored_face_has_opposite_yaw(turned):
    image, lm = turned
    yaw = dgkit.geometry.head_pose(lm).yaw
    assert yaw > 15  # the warp really turned the face
    mirrored = dgkit.detect_landmarks(np.ascontiguousarray(image[:, ::-1]), backend="mediapipe")
    assert dgkit.geometry.head_pose(mirrored).yaw == pytest.approx(-yaw, abs=3.0)
    # and the pose error against the un-mirrored pose is about twice the yaw
    assert ev.pose_errors(mirrored, dgkit.geometry.head_pose(lm)).yaw == pytest.approx(2 * yaw, abs=6.0)


def test_pose_error_wraps_angles():
    lm = dgkit.geometry.mean_face_3d()
    assert ev.pose_errors(lm, (0.0, 0.0, 0.0)).mean == pytest.approx(0.0, abs=1e-6)
    rolled = dgkit.geometry.pose_landmarks(lm, 0, 0, 179.0)
    assert ev.pose_errors(rolled, (0, 0, -179.0)).roll == pytest.approx(2.0, abs=1e-4)


def test_nme_of_a_known_shift():
    lm = dgkit.geometry.mean_face_3d()[:, :2]
    shifted = lm + [3.0, 4.0]  # every point 5 px away
    assert ev.nme(shifted, lm) == pytest.approx(5.0 / ev.metrics.box_size(lm))


def test_openings_follow_expression_edits():
    face = dgkit.geometry.mean_face_3d()
    opened = dgkit.geometry.edit_expression(face, mouth_open=0.3)
    closed_eyes = dgkit.geometry.edit_expression(face, eyes_open=-1.0)
    assert ev.mouth_opening(opened) > ev.mouth_opening(face) + 0.2
    assert ev.eye_opening(closed_eyes) == pytest.approx(0.0, abs=1e-9)
    mouth, eyes = ev.opening_errors(opened, face)
    assert mouth > 0.2 and eyes == pytest.approx(0.0, abs=1e-9)


def test_copy_of_the_source_has_identity_cosine_one(synthetic_dg, source_face):
    enc = ev.VggFaceIdentity(synthetic_dg)
    assert not enc.trained and "untrained" in enc.name
    assert isinstance(enc, ev.IdentityEncoder)
    feats = enc.encode(np.stack([source_face.crop, source_face.crop.copy()]))
    assert feats.shape == (2, 4096)
    assert ev.identity_cosine(feats[0], feats[1]) == pytest.approx(1.0, abs=1e-6)
    assert ev.identity_cosine([1.0, 0.0], [0.0, 2.0]) == pytest.approx(0.0)
    assert ev.identity_cosine([1.0, 2.0], [-1.0, -2.0]) == pytest.approx(-1.0)
    with pytest.raises(InputError):
        ev.identity_cosine([0.0, 0.0], [1.0, 1.0])


def test_psnr_of_an_image_with_itself_is_the_documented_cap(source_face):
    img = source_face.crop
    assert ev.psnr(img, img.copy()) == ev.PSNR_CAP_DB == 100.0
    assert ev.ssim(img, img.copy()) == pytest.approx(1.0)
    noisy = np.clip(img.astype(int) + np.random.default_rng(0).integers(-20, 21, img.shape), 0, 255).astype(np.uint8)
    assert 15.0 < ev.psnr(noisy, img) < 40.0
    assert ev.ssim(noisy, img) < 0.9
    with pytest.raises(InputError):
        ev.psnr(img, img[:100])


def test_jitter_is_motion_the_reference_did_not_have():
    ref = dgkit.geometry.mean_face_3d()[:, :2]
    assert ev.landmark_jitter(ref, ref, ref, ref) == 0.0
    assert ev.landmark_jitter(ref, ref + 2.0, ref, ref + 2.0) == pytest.approx(0.0)  # moves with the reference
    d = ev.landmark_jitter(ref, ref + [3.0, 4.0], ref, ref)
    assert d == pytest.approx(5.0 / ev.metrics.box_size(ref))


# --- pairs --------------------------------------------------------------------------------------------------
def test_pose_sweep_references_have_the_commanded_pose():
    pairs = ev.pose_sweep_pairs(yaws=[-90.0, 0.0, 45.0], pitches=[-40.0, 40.0])
    assert len(pairs) == 6 * len(dgkit.sample_names())
    assert len({p.pair_id for p in pairs}) == len(pairs)
    for p in pairs:
        assert p.kind == "landmarks" and p.reference_landmarks.shape == (68, 3)
        assert tuple(dgkit.geometry.head_pose(p.reference_landmarks)) == pytest.approx(p.reference_pose, abs=1e-4)


def test_pair_lists_check_inputs(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    dgkit.write_image(a, dgkit.sample_image())
    dgkit.write_image(b, dgkit.sample_image())
    with pytest.raises(InputError, match="mismatched pair lists"):
        ev.pairs_from_lists([a, b], [a])
    with pytest.raises(ImageReadError, match="missing.png"):
        ev.pairs_from_lists([a], [tmp_path / "missing.png"])
    with pytest.raises(InputError, match="unknown sample"):
        ev.pairs_from_lists(["sample:nobody"], [a])
    (tmp_path / "src").mkdir()
    (tmp_path / "ref").mkdir()
    for name in ("1.png", "2.png"):
        dgkit.write_image(tmp_path / "src" / name, dgkit.sample_image())
    dgkit.write_image(tmp_path / "ref" / "1.png", dgkit.sample_image())
    assert len(ev.pairs_from_folders(tmp_path / "src", tmp_path / "ref")) == 2
    with pytest.raises(InputError, match="mismatched"):
        ev.pairs_from_folders(tmp_path / "src", tmp_path / "ref", pairing="zip")
    with pytest.raises(InputError, match="does not exist"):
        ev.pairs_from_folders(tmp_path / "nope", tmp_path / "ref")


def test_pairs_from_csv(tmp_path):
    dgkit.write_image(tmp_path / "a.png", dgkit.sample_image())
    good = tmp_path / "pairs.csv"
    good.write_text("source,reference,same_person\na.png,a.png,1\nsample:astronaut,a.png,0\n")
    pairs = list(ev.pairs_from_csv(good))
    assert [p.same_person for p in pairs] == [True, False]
    assert pairs[0].source == str(tmp_path / "a.png")
    bad = tmp_path / "bad.csv"
    bad.write_text("src,ref\na.png,a.png\n")
    with pytest.raises(InputError, match="'source' and 'reference'"):
        ev.pairs_from_csv(bad)
    short = tmp_path / "short.csv"
    short.write_text("source,reference\na.png,\n")
    with pytest.raises(InputError, match="mismatched pair list"):
        ev.pairs_from_csv(short)
    missing = tmp_path / "missing.csv"
    missing.write_text("source,reference\na.png,nothere.jpg\n")
    with pytest.raises(ImageReadError, match="nothere.jpg"):
        ev.pairs_from_csv(missing)


# --- the runner ---------------------------------------------------------------------------------------------
def test_baselines_on_a_sweep_rows_and_failures(tmp_path):
    res = ev.evaluate(_sweep((0.0, 90.0)), methods=BASELINES, identity=MeanColour(), out_dir=tmp_path,
                      backend="mediapipe")
    assert res.new_rows == 4 and len(res.rows) == 4
    by = {(r.reference.split(",")[0], r.method): r for r in res.rows}
    front = by[("sweep:yaw+000.0", "relative3d")]
    assert front.detected and front.weights == "none (weight-free)" and not front.untrained
    assert front.pose_error < 5.0 and front.nme_target < 0.05
    assert front.identity_cosine > 0.99 and front.identity_encoder == "mean-colour (test)"
    assert math.isnan(front.psnr) and math.isnan(front.ssim)  # no reference photo in a sweep
    assert front.ref_yaw == 0.0
    for r in res.rows:  # every pair x method has a row, detected or not, never skipped
        assert r.detected or r.failure
    rows = ev.read_results(tmp_path / "results.csv")
    assert [r.key for r in rows] == [r.key for r in res.rows]
    assert ev.read_results(tmp_path / "results.json")[0].pose_error == pytest.approx(rows[0].pose_error, abs=1e-5)


class Interrupted(Exception):
    pass


def _interrupt_after(pairs, k):
    for i, p in enumerate(pairs):
        if i == k:
            raise KeyboardInterrupt  # like Ctrl-C during the run
        yield p


def test_resume_after_an_interruption_does_only_the_rest(tmp_path):
    pairs = _sweep((-30.0, 0.0, 30.0, 60.0))
    with pytest.raises(KeyboardInterrupt):
        ev.evaluate(_interrupt_after(pairs, 2), methods=BASELINES, identity=None, out_dir=tmp_path,
                    backend="mediapipe")
    saved = ev.read_results(tmp_path / "results.csv")
    assert {r.pair_id for r in saved} == {p.pair_id for p in pairs[:2]}
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files
    res = ev.evaluate(pairs, methods=BASELINES, identity=None, out_dir=tmp_path, backend="mediapipe")
    assert res.skipped_pairs == 2 and res.new_rows == 2 * len(BASELINES)
    keys = [r.key for r in res.rows]
    assert len(keys) == len(set(keys)) == len(pairs) * len(BASELINES)
    # the first two pairs' rows are the saved ones, untouched
    assert [r.key for r in res.rows[: len(saved)]] == [r.key for r in saved]
    again = ev.evaluate(pairs, methods=BASELINES, identity=None, out_dir=tmp_path, backend="mediapipe")
    assert again.new_rows == 0 and again.skipped_pairs == len(pairs)


def test_unreadable_image_mid_run_keeps_the_results(tmp_path):
    good = tmp_path / "good.png"
    dgkit.write_image(good, dgkit.sample_image())
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    pairs = ev.pairs_from_lists([good, good], [good, broken])
    out = tmp_path / "out"
    with pytest.raises(ImageReadError):
        ev.evaluate(pairs, methods=["naive"], identity=None, out_dir=out, backend="mediapipe")
    rows = ev.read_results(out / "results.csv")
    assert [r.pair_id for r in rows] == [pairs[0].pair_id]
    assert rows[0].same_person is False and rows[0].detected


def test_results_of_other_weights_are_not_mixed(tmp_path):
    ev.evaluate(_sweep((0.0,)), methods=["naive"], identity=MeanColour(), out_dir=tmp_path, backend="mediapipe")

    class Other(MeanColour):
        name = "other encoder"

    with pytest.raises(InputError, match="another folder"):
        ev.evaluate(_sweep((0.0,)), methods=["naive"], identity=Other(), out_dir=tmp_path, backend="mediapipe")
    with pytest.raises(InputError, match="unknown or no methods"):
        ev.evaluate([], methods=["magic"])
    with pytest.raises(InputError, match="needs a DG model"):
        ev.evaluate([], methods=["dg"])


def test_video_self_reenactment_measures_psnr_ssim_and_jitter(tmp_path):
    video = dgkit.io.make_test_video(tmp_path / "drive.mp4", n_frames=4)
    pairs = ev.pairs_from_video(video)
    res = ev.evaluate(pairs, methods=["naive"], identity=None, backend="mediapipe")
    assert [r.frame for r in res.rows] == [1, 2, 3]
    assert all(r.same_person and r.reference_kind == "video" for r in res.rows)
    assert all(15.0 < r.psnr < ev.PSNR_CAP_DB and 0.3 < r.ssim <= 1.0 for r in res.rows)
    assert math.isnan(res.rows[0].jitter)  # no previous frame
    assert all(0.0 <= r.jitter < 0.05 for r in res.rows[1:])


@pytest.mark.slow
def test_dg_rows_are_labelled_untrained(synthetic_dg, tmp_path):
    res = ev.evaluate(_sweep((30.0,)), dg=synthetic_dg, out_dir=tmp_path, backend="mediapipe")
    by = {r.method: r for r in res.rows}
    assert set(by) == set(ev.METHODS)
    assert by["dg"].untrained and by["dg"].weights == synthetic_dg.weights.label
    assert "untrained" in by["naive"].identity_encoder and by["naive"].identity_untrained
    assert by["warp"].target_from == "relative3d" and not by["warp"].untrained
    assert by["warp"].pose_error == by["relative3d"].pose_error  # the same image, measured once
    assert "[UNTRAINED]" in ev.markdown_table(res.rows)
    # the weights columns are derived from the typed WeightsInfo and read back to the same one (CSV and JSON)
    from dgkit.weights import WeightsInfo

    for name in ("results.csv", "results.json"):
        back = {r.method: r for r in ev.read_results(tmp_path / name)}
        assert back["dg"].weights_info == WeightsInfo(synthetic_dg.weights.label, trained=False)
        assert back["naive"].weights_info.trained and back["warp"].weights_info == by["warp"].weights_info


# --- tables and the plot ------------------------------------------------------------------------------------
def _rows():
    R = ev.ResultRow
    rows = []
    for yaw in (0.0, 20.0, 45.0, -80.0):
        rows.append(R(pair_id=f"p{yaw}", method="dg", untrained=True, weights="synthetic (untrained)", ref_yaw=yaw,
                      detected=False, failure="no face found on the output", identity_cosine=0.9))
        rows.append(R(pair_id=f"p{yaw}", method="naive", weights="none (weight-free)", ref_yaw=yaw, detected=True,
                      identity_encoder="vggface-fc7 (synthetic (untrained))", identity_untrained=True,
                      pose_error=abs(yaw) / 10, yaw_error=abs(yaw) / 5, nme_target=0.01 * (1 + abs(yaw) / 30),
                      identity_cosine=0.99))
    return rows


def test_summary_tables():
    rows = _rows()
    stats = ev.summarize(rows)
    assert stats["naive"]["pose_error"].mean == pytest.approx(14.5 / 4)
    assert stats["naive"]["pose_error"].n == 4 and stats["dg"]["pose_error"].n == 0
    assert stats["dg"]["failure_rate"].mean == 1.0 and stats["naive"]["failure_rate"].mean == 0.0
    md = ev.markdown_table(rows)
    assert "| dg [UNTRAINED] |" in md and "4/4" in md and "0/4" in md and " ± " in md
    assert "psnr" not in md.lower()  # columns without values are left out
    tex = ev.latex_table(rows)
    assert "\\toprule" in tex and "dg [UNTRAINED]" in tex and "$\\pm$" in tex and "UNTRAINED" in tex
    assert "\\textbackslash" not in tex
    by_bin = ev.binned(rows, "pose_error")
    assert [s.n for s in by_bin["naive"]] == [2, 1, 1]  # |yaw| 0, 20 | 45 | 80
    assert by_bin["naive"][2].mean == pytest.approx(8.0)
    assert "0–30°" in ev.binned_markdown(rows)


def test_large_pose_figure_has_one_line_per_method():
    from dgkit.viz import UNTRAINED_LABEL

    rows = _rows()
    fig = ev.large_pose_figure(rows, metrics=["pose_error", "nme_target", "identity_cosine", "failure_rate"])
    axes = fig.axes
    assert len(axes) == 4
    assert [t.get_gid() for t in axes[2].texts] == ["untrained-encoder"]
    for ax in axes:
        gids = sorted(line.get_gid() for line in ax.get_lines() if line.get_gid())
        assert gids == ["method:dg", "method:naive"]
    naive = next(line for line in axes[0].get_lines() if line.get_gid() == "method:naive")
    assert np.allclose(naive.get_ydata(), [1.0, 4.5, 8.0])
    legend = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert "dg [UNTRAINED]" in legend
    assert UNTRAINED_LABEL in fig._suptitle.get_text()
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["0–30°", "30–60°", "60–90°"]


@pytest.mark.slow
def test_plot_export_and_rebuild(tmp_path):
    from dgkit.figures import figure_png

    rows = _rows()
    csv_path = ev.write_results_csv(rows, tmp_path / "results.csv")
    fig, files = ev.export_large_pose(csv_path, tmp_path / "plot", metrics=["pose_error", "failure_rate"])
    assert [f.name for f in files] == ["plot.png", "plot.pdf", "plot.svg", "plot.json"]
    from PIL import Image

    assert Image.open(files[0]).info["dpi"][0] == pytest.approx(300, abs=1)
    again = ev.large_pose_from_config(files[-1])
    assert np.array_equal(figure_png(again), figure_png(fig))
    ev.write_results_csv([*rows, ev.ResultRow(pair_id="p9", method="naive")], csv_path)  # changed since
    with pytest.raises(ConfigError, match="changed"):
        ev.large_pose_from_config(files[-1])
    assert len(ev.large_pose_from_config(files[-1], check=False).axes) == 2


# --- command line -------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_sweep_and_errors(tmp_path, capsys):
    from dgkit.cli import main

    out = tmp_path / "eval"
    args = ["evaluate", "sweep", "-o", str(out), "--methods", "naive", "--no-identity", "--yaw-step", "90",
            "--pitches", "0", "--limit", "2", "--no-progress", "--backend", "mediapipe"]
    assert main(args) == 0
    for name in ("results.csv", "results.json", "summary.md", "summary.tex", "by_yaw.md", "large_pose.png",
                 "large_pose.pdf", "large_pose.svg", "large_pose.json"):
        assert (out / name).is_file(), name
    assert len(ev.read_results(out / "results.csv")) == 2
    assert main(args[:-5] + ["--no-progress", "--backend", "mediapipe", "--no-plot"]) == 0  # resumes: 1 more
    assert "2 pairs already measured" in capsys.readouterr().out
    assert main(["evaluate", "plot", str(out / "large_pose.json"), "-o", str(tmp_path / "re")]) == 1  # csv changed
    assert "changed" in capsys.readouterr().err
    assert main(["evaluate", "csv", str(tmp_path / "none.csv"), "-o", str(out)]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["evaluate", "sweep", "-o", str(out), "--methods", "bogus", "--no-identity"]) == 1
    capsys.readouterr()
    (tmp_path / "broken.png").write_text("not an image")
    dgkit.write_image(tmp_path / "good.png", dgkit.sample_image())
    (tmp_path / "pairs.csv").write_text("source,reference\ngood.png,good.png\ngood.png,broken.png\n")
    bad_out = tmp_path / "bad"
    assert main(["evaluate", "csv", str(tmp_path / "pairs.csv"), "-o", str(bad_out), "--methods", "naive",
                 "--no-identity", "--no-progress", "--backend", "mediapipe"]) == 1
    err = capsys.readouterr().err
    assert "broken.png" in err and "run the same command again" in err
    assert len(ev.read_results(bad_out / "results.csv")) == 1
