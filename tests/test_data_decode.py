"""lejepa_viz.data.decode: videos decoded frame by frame, images found in natural order."""

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from conftest import COLOURS
from lejepa_viz.data import find_images, read_image, read_video


def test_read_video_gives_square_frames_in_order(mp4):
    frames = read_video(mp4, size=32)
    assert frames.shape == (8, 3, 32, 32) and frames.dtype == torch.uint8
    colours = frames.float().mean((2, 3)).numpy()
    np.testing.assert_allclose(colours, COLOURS, atol=12)  # H.264 shifts colours a little
    assert len(read_video(mp4, max_frames=3, size=32)) == 3
    np.testing.assert_allclose(
        read_video(mp4, size=16, every=2).float().mean((2, 3)).numpy(), COLOURS[::2], atol=12
    )


def test_bad_videos_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="video file .*nope.mp4 does not exist"):
        read_video(tmp_path / "nope.mp4")
    (tmp_path / "bad.mp4").write_text("not a video")
    with pytest.raises(ValueError, match="cannot read video file .*bad.mp4"):
        read_video(tmp_path / "bad.mp4")


def test_find_images_is_recursive_natural_and_skips_hidden(tmp_path):
    for name in ("b/img10.png", "b/img2.PNG", "a.jpg", ".hidden/x.png", "b/._y.png", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in find_images(tmp_path)]
    assert found == ["a.jpg", "b/img2.PNG", "b/img10.png"]
    assert find_images(tmp_path / ".hidden") == [tmp_path / ".hidden" / "x.png"]  # its own files


def test_read_image_is_square_rgb_and_names_bad_files(tmp_path):
    iio.imwrite(tmp_path / "wide.png", np.full((20, 40), 200, np.uint8))  # greyscale, 2:1
    pixels = read_image(tmp_path / "wide.png", 10)
    assert pixels.shape == (10, 10, 3) and (pixels == 200).all()
    (tmp_path / "bad.jpg").write_text("not an image")
    with pytest.raises(ValueError, match="cannot read image file .*bad.jpg"):
        read_image(tmp_path / "bad.jpg", 10)
