"""The patch-feature video: camera path, video and frame input, heat-map frames, the GIF."""

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import COLOURS
from lejepa_viz.data import photo_original, read_video
from lejepa_viz.model import Encoder, patch_tokens
from lejepa_viz.viz.pca import object_sign
from lejepa_viz.viz.video import camera_path, patch_video, read_frames, video_gif

SIZE = 64  # test_vit at 64 px: a 4 x 4 patch grid


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return Encoder.build("test_vit", 3, SIZE, mean=(0.5,) * 3, std=(0.25,) * 3).eval()


def test_camera_path_pans_and_zooms_smoothly_around_a_loop():
    frames = camera_path("astronaut", num_frames=12, size=32)
    assert frames.shape == (12, 3, 32, 32) and frames.dtype == torch.uint8
    whole = Image.fromarray(photo_original("astronaut")).resize((32, 32), Image.Resampling.LANCZOS)
    np.testing.assert_array_equal(frames[0].permute(1, 2, 0).numpy(), np.asarray(whole))  # zoom 1
    step = (frames[1:].float() - frames[:-1].float()).abs().mean((1, 2, 3))
    assert (step > 1).all()  # every frame moves
    far = (frames[6].float() - frames[0].float()).abs().mean()
    wrap = (frames[-1].float() - frames[0].float()).abs().mean()
    assert wrap < far  # the last frame leads back into the first
    assert torch.equal(camera_path("astronaut", 12, 32, seed=0), frames)
    assert not torch.equal(camera_path("astronaut", 12, 32, seed=1), frames)
    array = np.zeros((40, 80, 3), np.uint8)
    assert camera_path(array, num_frames=3, size=16).shape == (3, 3, 16, 16)
    with pytest.raises(ValueError, match="unknown bundled photo 'dog'"):
        camera_path("dog")


def test_read_frames_takes_images_in_natural_order(tmp_path):
    for k in (10, 2, 1):
        Image.fromarray(np.full((20, 30, 3), COLOURS[k % 8], np.uint8)).save(tmp_path / f"f{k}.png")
    frames = read_frames(tmp_path, size=16)
    np.testing.assert_array_equal(frames[:, :, 8, 8].numpy(), COLOURS[[1, 2, 10 % 8]])
    assert torch.equal(read_frames(tmp_path, size=16, max_frames=2), frames[:2])
    with pytest.raises(ValueError, match="not a folder"):
        read_frames(tmp_path / "f1.png")


def test_patch_video_shows_each_frame_beside_its_first_component(encoder):
    frames = camera_path("coffee", num_frames=6, size=SIZE)
    out = patch_video(frames, encoder)
    assert len(out) == 6 and {(f.shape, str(f.dtype)) for f in out} == {((SIZE, 128, 3), "uint8")}
    for frame, picture in zip(frames, out, strict=True):
        np.testing.assert_array_equal(picture[:, :SIZE], frame.permute(1, 2, 0).numpy())
    heat = np.stack([f[:, SIZE:] for f in out])  # (F, 64, 64, 3)
    blocks = heat[:, ::16, ::16]  # one pixel per 16 px patch
    np.testing.assert_array_equal(heat, blocks.repeat(16, 1).repeat(16, 2))  # blocky
    # the first component of all frames' patches together, computed here with numpy's SVD
    tokens = patch_tokens(encoder, frames.float() / 255).double().numpy().reshape(-1, 64)
    centred = tokens - tokens.mean(0)
    pc1 = (centred @ np.linalg.svd(centred, full_matrices=False)[2][0]).reshape(6, 4, 4)
    pc1 = pc1 * object_sign(pc1)
    clear = np.abs(pc1) > 1e-4 * np.abs(pc1).max()  # signs that float32 cannot blur
    np.testing.assert_array_equal(blocks.any(-1)[clear], (pc1 > 0)[clear])  # black: pc1 <= 0
    brightness = blocks.astype(int).sum(-1)[pc1 > 0]
    assert np.corrcoef(brightness, pc1[pc1 > 0])[0, 1] > 0.9  # inferno brightens with heat
    hottest = blocks.reshape(-1, 3)[pc1.argmax()]
    assert hottest.tolist() == [252, 255, 164]  # the top of inferno


def test_video_gif_loops_at_100_ms_a_frame_and_stays_small(tmp_path, encoder, mp4):
    drawn = video_gif(encoder, read_video(mp4, max_frames=5, size=SIZE), tmp_path / "clip.gif")
    assert iio.imread(drawn.path, index=None).shape == (5, SIZE, 2 * SIZE, 3)
    assert drawn.numbers == {"frames": 5, "method": "attention"}  # a [CLS] token: attention
    # a camera path across the astronaut, 60 frames at 224 px (the model at 64 px)
    out = video_gif(encoder, camera_path(num_frames=60), tmp_path / "default.gif").path
    frames = iio.imread(out, index=None)
    assert frames.shape == (60, 224, 448, 3)
    meta = iio.immeta(out, index=0)
    assert meta["duration"] == 100 and meta["loop"] == 0
    assert out.stat().st_size < 3_000_000
    clip = camera_path(num_frames=2, size=SIZE)
    with pytest.raises(ValueError, match=r"must end in \.gif or \.mp4"):
        video_gif(encoder, clip, tmp_path / "x.png")
    with pytest.raises(ValueError, match="method must be one of"):
        video_gif(encoder, clip, tmp_path / "x.gif", method="edges")
