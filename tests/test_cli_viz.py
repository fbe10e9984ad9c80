"""The picture commands of ``lejepa-viz``: each writes its file, bad input ends in one message."""

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from test_viz_convergence import write_run

from lejepa_viz.cli import main
from lejepa_viz.model import Encoder


@pytest.fixture(scope="module")
def vit_weights(tmp_path_factory):
    """A random test_vit's weights as a local file, as a user without a network would pass."""
    torch.manual_seed(0)
    enc = Encoder.build("test_vit", 3, 64, mean=(0.5,) * 3, std=(0.25,) * 3)
    path = tmp_path_factory.mktemp("weights") / "test_vit.pt"
    torch.save(enc.backbone.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(3):
        iio.imwrite(folder / f"frame{i:02d}.png", rng.integers(0, 256, (80, 96, 3), np.uint8))
    return folder


def test_animate_writes_one_frame_per_snapshot(tmp_path, capsys):
    snapshots = write_run(tmp_path / "run")
    out = tmp_path / "convergence.gif"
    assert main(["animate", "--snapshots", str(snapshots), "--out", str(out)]) == 0
    assert iio.improps(out).shape[0] == len(torch.load(snapshots)["steps"])
    assert str(out) in capsys.readouterr().out


def test_pca_writes_a_pair_per_image(tmp_path, vit_weights, photos):
    argv = [
        "pca",
        "--images",
        str(photos),
        "--backbone",
        "test_vit",
        "--weights",
        str(vit_weights),
        "--out",
        str(tmp_path / "maps"),
    ]
    assert main(argv) == 0
    pairs = sorted((tmp_path / "maps").glob("*.png"))
    assert [p.stem for p in pairs] == ["frame00", "frame01", "frame02"]
    assert iio.imread(pairs[0]).shape == (224, 448, 3)


def test_video_from_a_folder_of_frames(tmp_path, vit_weights, photos):
    out = tmp_path / "video.gif"
    argv = [
        "video",
        "--frames",
        str(photos),
        "--backbone",
        "test_vit",
        "--weights",
        str(vit_weights),
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert iio.improps(out).shape[0] == 3


@pytest.mark.parametrize(
    "argv,message",
    [
        (
            ["animate", "--snapshots", "nowhere/snapshots.pt", "--out", "a.gif"],
            "nowhere/snapshots.pt",
        ),
        (["pca", "--out", "maps"], "give --weights SOURCE (or --checkpoint FILE)"),
        (["pca", "--weights", "w.pt", "--out", "maps"], "weights file w.pt does not exist"),
        (["maps", "--checkpoint", "c.pt", "--out", "m.png"], "weights file c.pt does not exist"),
        (
            ["evolve", "--weights", "a", "b", "--labels", "x", "--out", "e.gif"],
            "1 --labels for 2 --weights",
        ),
        (["pca", "--images", "nowhere/", "--backbone", "test_vit", "--out", "m"], "nowhere"),
        (["pca", "--backbone", "test_resnet", "--out", "maps"], "ViT"),
        (["video", "--backbone", "test_vit", "--out", "video.png"], ".gif or .mp4"),
    ],
)
def test_bad_input_ends_in_a_message(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not any(tmp_path.rglob("*.png")) and not any(tmp_path.rglob("*.gif"))
