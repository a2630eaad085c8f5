"""dgkit.io: images and videos in and out (edge cases of real files, arrays, protected outputs)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from dgkit.errors import ImageReadError, InputError, OutputExistsError, VideoError
from dgkit.io import (
    VideoInfo,
    VideoWriter,
    READ_VIDEO_SUFFIXES,
    VIDEO_SUFFIXES,
    as_rgb_uint8,
    is_video_path,
    iter_video_frames,
    make_test_video,
    read_image,
    sample_image,
    sample_names,
    video_info,
    write_image,
)


def gradient(h: int = 24, w: int = 32) -> np.ndarray:
    """A small RGB uint8 image whose three channels differ (catches RGB/BGR swaps)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, 40)], axis=2).astype(np.uint8)


# --- reading files ------------------------------------------------------------------------------------------
def test_png_round_trip_keeps_pixels_and_channel_order(tmp_path):
    img = gradient()
    path = write_image(tmp_path / "a.png", img)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (24, 32, 3)
    np.testing.assert_array_equal(out, img)
    np.testing.assert_array_equal(read_image(str(path)), img)  # str paths too


def test_exif_orientation_is_applied(tmp_path):
    # stored 20 rows x 40 columns, top-left quadrant red; orientation 6 = display rotated 90 deg clockwise
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :] = (0, 0, 255)
    stored[:10, :20] = (255, 0, 0)
    pil = Image.fromarray(stored)
    exif = pil.getexif()
    exif[0x0112] = 6
    pil.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    out = read_image(tmp_path / "rot.jpg")
    assert out.shape == (40, 20, 3)
    # after a clockwise quarter turn the stored top-left lands top-right
    assert out[2:18, 12:18, 0].mean() > 200 and out[2:18, 12:18, 2].mean() < 60
    assert out[2:18, 2:8, 2].mean() > 200


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = np.arange(24 * 32, dtype=np.uint8).reshape(24, 32)
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (24, 32, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((4, 3, 4), np.uint8)
    rgba[..., 0] = 200  # red-ish colour
    rgba[0, :, 3] = 0  # transparent row -> white
    rgba[1, :, 3] = 255  # opaque row -> colour
    rgba[2, :, 3] = 128
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(out[0], np.full((3, 3), 255))
    np.testing.assert_array_equal(out[1], np.tile([200, 0, 0], (3, 1)))
    np.testing.assert_allclose(out[2, 0], [200 * 128 / 255 + 255 * 127 / 255, 255 * 127 / 255, 255 * 127 / 255], atol=1)
    # LA (gray + alpha) goes the same way
    la = Image.fromarray(np.stack([np.full((2, 2), 10, np.uint8), np.array([[0, 255], [255, 0]], np.uint8)], 2), "LA")
    la.save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la.png")[:, :, 1], [[255, 10], [10, 255]])


def test_palette_image_is_converted(tmp_path):
    img = Image.fromarray(gradient()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    img.save(tmp_path / "p.png")
    out = read_image(tmp_path / "p.png")
    assert out.shape == (24, 32, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.asarray(img.convert("RGB")))


def test_16bit_gray_png_is_scaled_not_truncated(tmp_path):
    values = np.array([[0, 257 * 100, 511, 65535]], dtype=np.uint16)  # low byte of 511 is 255
    assert cv2.imwrite(str(tmp_path / "g16.png"), values)
    out = read_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(out[0, :, 0], [0, 100, 2, 255])


def test_16bit_colour_png_is_scaled_and_rgb(tmp_path):
    bgr = np.zeros((2, 2, 3), np.uint16)
    bgr[..., 2] = 65535  # red channel in OpenCV's BGR order
    bgr[..., 1] = 257 * 7 + 128  # 7.498 -> 7
    bgr[..., 0] = 511  # blue: would be 1 from the high byte, 255 from the low byte
    assert cv2.imwrite(str(tmp_path / "c16.png"), bgr)
    out = read_image(tmp_path / "c16.png")
    np.testing.assert_array_equal(out[0, 0], [255, 7, 2])


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_file_raises_image_read_error(tmp_path, suffix):
    path = tmp_path / f"full{suffix}"
    write_image(path, np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    data = path.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(cut)


def test_text_file_directory_and_missing_path(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(ImageReadError, match="not an image"):
        read_image(text)
    with pytest.raises(ImageReadError, match="directory"):
        read_image(tmp_path)
    with pytest.raises(ImageReadError, match="not found") as info:
        read_image(tmp_path / "missing.png")
    assert "missing.png" in str(info.value)
    with pytest.raises(InputError):
        read_image(12345)


# --- arrays -------------------------------------------------------------------------------------------------
def test_arrays_are_copied_and_never_modified():
    img = gradient()
    before = img.copy()
    out = read_image(img)
    assert not np.shares_memory(out, img)
    out[:] = 0
    np.testing.assert_array_equal(img, before)
    rgba = np.dstack([img, np.full(img.shape[:2], 100, np.uint8)])
    rgba_before = rgba.copy()
    read_image(rgba)
    np.testing.assert_array_equal(rgba, rgba_before)


def test_array_dtypes_and_shapes():
    f = np.array([[0.0, 0.5, 1.0]])
    np.testing.assert_array_equal(read_image(f)[0, :, 0], [0, 128, 255])
    assert read_image(np.zeros((5, 6, 1), np.uint8)).shape == (5, 6, 3)
    assert read_image(np.zeros((5, 6), np.float32)).shape == (5, 6, 3)
    rgba = np.zeros((1, 1, 4), np.uint8)
    np.testing.assert_array_equal(read_image(rgba)[0, 0], [255, 255, 255])  # alpha 0 -> white
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        read_image(np.full((2, 2, 3), 255.0))
    with pytest.raises(InputError, match="dtype"):
        read_image(np.zeros((2, 2, 3), np.uint16))
    with pytest.raises(InputError, match="shape"):
        read_image(np.zeros((3, 2, 2), np.uint8))
    with pytest.raises(InputError, match="NaN"):
        read_image(np.full((2, 2), np.nan))
    with pytest.raises(InputError, match="empty"):
        as_rgb_uint8(np.zeros((0, 4, 3), np.uint8))


def test_sample_image_is_the_astronaut_and_fresh():
    assert sample_names() == ("astronaut",)
    a = sample_image()
    assert a.shape == (512, 512, 3) and a.dtype == np.uint8
    a[:] = 0
    assert sample_image("astronaut").max() > 0  # callers get a new array every time
    with pytest.raises(InputError, match="astronaut"):
        sample_image("lena")


# --- writing images -----------------------------------------------------------------------------------------
def test_write_creates_folders_and_jpeg(tmp_path):
    out = write_image(tmp_path / "a" / "b" / "c.jpg", gradient())
    assert out.is_file()
    assert np.abs(read_image(out).astype(int) - gradient()).mean() < 3


def test_write_refuses_to_overwrite_inputs(tmp_path):
    src = write_image(tmp_path / "in.png", gradient())
    with pytest.raises(InputError, match="inputs"):
        write_image(src, gradient(), protect=[src])
    with pytest.raises(InputError, match="inputs"):
        write_image(tmp_path / "sub" / ".." / "in.png", gradient(), protect=str(src))
    link = tmp_path / "link.png"
    os.symlink(src, link)
    with pytest.raises(InputError, match="inputs"):
        write_image(link, gradient(), protect=[src])
    with pytest.raises(InputError, match="suffix"):
        write_image(tmp_path / "out.gif", gradient())
    # arrays in protect are ignored (callers pass their inputs as they got them)
    assert write_image(tmp_path / "other.png", gradient(), protect=[src, gradient()]).is_file()


# --- videos -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_written_video_has_requested_frames_and_fps(tmp_path, suffix):
    path = make_test_video(tmp_path / f"clip{suffix}", gradient(48, 64), n_frames=7, fps=9)
    info = video_info(path)
    assert info == VideoInfo(fps=9.0, frame_count=7, width=64, height=48)
    assert info.duration == pytest.approx(7 / 9)
    frames = iter_video_frames(path)
    assert iter(frames) is frames  # streamed, not a list
    frames = list(frames)
    assert len(frames) == 7
    assert all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in frames)


def test_video_frames_are_rgb_and_sliceable(tmp_path):
    red = np.zeros((32, 32, 3), np.uint8)
    red[..., 0] = 220
    path = tmp_path / "red.mp4"
    with VideoWriter(path, fps=5, size=(32, 32)) as writer:
        for _ in range(10):
            writer.write(red)
    assert writer.frames_written == 10
    first = next(iter_video_frames(path))
    assert first[..., 0].mean() > 180 and first[..., 2].mean() < 40
    assert len(list(iter_video_frames(path, start=2, stop=9, step=3))) == 3  # frames 2, 5, 8
    assert len(list(iter_video_frames(path, start=8))) == 2


def test_video_errors(tmp_path):
    empty = tmp_path / "empty.mp4"
    VideoWriter(empty, fps=10, size=(32, 32)).close()  # no frames written
    for bad in (empty, tmp_path / "garbage.mp4", tmp_path / "missing.mp4", tmp_path):
        if bad.name == "garbage.mp4":
            bad.write_bytes(np.random.default_rng(0).integers(0, 255, 4096, dtype=np.uint8).tobytes())
        with pytest.raises(VideoError):
            video_info(bad)
        with pytest.raises(VideoError):
            iter_video_frames(bad)  # raises at the call, before iteration


def test_video_writer_checks(tmp_path):
    src = make_test_video(tmp_path / "in.mp4", gradient(), n_frames=2, fps=5)
    with pytest.raises(InputError, match="inputs"):
        VideoWriter(src, fps=5, size=(32, 24), protect=[src])
    with pytest.raises(InputError, match="inputs"):
        make_test_video(src, gradient(), n_frames=2, protect=src)
    with pytest.raises(VideoError, match=".mp4"):
        VideoWriter(tmp_path / "x.mkv", fps=5, size=(32, 24))
    with pytest.raises(InputError, match="fps"):
        VideoWriter(tmp_path / "x.mp4", fps=0, size=(32, 24))
    with VideoWriter(tmp_path / "x.mp4", fps=5, size=(32, 24)) as writer:
        with pytest.raises(InputError, match="shape"):
            writer.write(np.zeros((32, 24, 3), np.uint8))  # (height, width) swapped
    assert Path(tmp_path / "x.mp4").exists()


# --- the one image normaliser (docs/conventions.md, "Images") ----------------------------------------------
def test_rgba_is_composited_on_white_like_a_transparent_png_file(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., :3] = (10, 200, 30)
    rgba[0, 0, 3], rgba[0, 1, 3], rgba[0, 2, 3] = 0, 255, 128  # transparent, opaque, half
    out = as_rgb_uint8(rgba)
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])  # transparent -> white, never the hidden colour
    np.testing.assert_array_equal(out[0, 1], [10, 200, 30])
    np.testing.assert_array_equal(out[0, 2], np.rint(np.array([10, 200, 30]) * 128 / 255 + 255 * 127 / 255))
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    np.testing.assert_array_equal(read_image(tmp_path / "t.png"), out)  # a file and an array: the same rule


def test_grey_and_grey_alpha_become_three_equal_channels(tmp_path):
    grey = np.array([[0, 7], [128, 255]], np.uint8)
    for arr in (grey, grey[:, :, None]):
        out = as_rgb_uint8(arr)
        assert out.shape == (2, 2, 3) and (out == grey[:, :, None]).all()
    la = np.dstack([grey, np.array([[255, 0], [255, 255]], np.uint8)])
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    out = read_image(tmp_path / "la.png")
    np.testing.assert_array_equal(out[..., 0], [[0, 255], [128, 255]])  # transparent grey pixel -> white
    assert (out == out[..., :1]).all()


def test_float_images_must_be_in_0_1_and_bool_is_black_and_white():
    np.testing.assert_array_equal(as_rgb_uint8(np.array([[0.0, 0.5, 1.0]]))[0, :, 0], [0, 128, 255])
    with pytest.raises(InputError, match=r"\[0, 1\].*Divide a 0-255 float image by 255"):
        as_rgb_uint8(np.array([[0.0, 128.0, 255.0]]))  # refused, never guessed
    with pytest.raises(InputError, match="NaN"):
        as_rgb_uint8(np.array([[0.0, np.nan]]))
    mask = np.array([[True, False]])
    out = as_rgb_uint8(mask)
    assert out.dtype == np.uint8 and out.shape == (1, 2, 3)
    np.testing.assert_array_equal(out[0, :, 0], [255, 0])


def test_landmark_detection_uses_the_same_normaliser():
    from dgkit.landmarks import api

    assert api.as_rgb_uint8 is as_rgb_uint8


def test_write_image_keeps_grey_grey_and_is_the_dataset_writer(tmp_path):
    grey = np.array([[0, 7], [128, 255]], np.uint8)
    path = write_image(tmp_path / "s.png", grey)
    with Image.open(path) as img:
        assert img.mode == "L"
    np.testing.assert_array_equal(read_image(path)[..., 0], grey)
    with pytest.raises(OutputExistsError):
        write_image(path, grey)
    write_image(path, grey * 0, overwrite=True)
    assert read_image(path).max() == 0
    assert [p.name for p in tmp_path.iterdir()] == ["s.png"]  # atomic: no temporary left behind


def test_one_list_of_video_suffixes():
    assert set(VIDEO_SUFFIXES) <= set(READ_VIDEO_SUFFIXES)
    assert is_video_path("clip.MP4") and is_video_path(Path("a/b.mkv")) and not is_video_path("face.png")
    from dgkit.training import prepare

    assert not hasattr(prepare, "VIDEO_FILE_SUFFIXES")
