"""The picture commands of ``lejepa-viz``: each writes its file, bad input ends in one message."""

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from test_viz_convergence import write_run

from lejepa_viz.backbones import load_encoder
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


def test_maps_of_scenes_scored_on_held_out_scenes_of_each_kind(tmp_path, vit_weights, capsys):
    """``--scenes N`` draws held-out scenes with their masks; ``--score N`` returns (and prints)
    the IoU tables the library computes on the held-out scenes of each kind."""
    from lejepa_viz.cli import run
    from lejepa_viz.data.shapes import HELD_OUT, held_out_scenes
    from lejepa_viz.viz.scenes import scene_iou

    out = tmp_path / "maps.png"
    model = ["--backbone", "test_vit", "--weights", str(vit_weights)]
    drawn = run(
        ["maps", *model, "--scenes", "3", "--size", "64", "--score", "12", "--out", str(out)]
    )
    printed = capsys.readouterr().out
    assert drawn.numbers["rows"][:2] == ["image", "true mask"]
    assert iio.imread(out).shape[1] > 3 * 64  # three scenes side by side
    enc = load_encoder(str(vit_weights), backbone="test_vit")  # as the command loads it
    scores = drawn.numbers["iou"]
    assert list(scores) == list(HELD_OUT)
    for kind, (images, masks) in held_out_scenes(12).items():
        assert f"IoU on 12 {HELD_OUT[kind]}" in printed
        expected = scene_iou(enc.eval(), images, masks)
        for map_kind in ("joint", "per-image", "attention"):
            for model_name, score in expected[map_kind].items():
                got = scores[kind][map_kind][model_name]
                torch.testing.assert_close(got.ious, score.ious)


def test_evolve_draws_the_iou_curve_of_each_checkpoint(tmp_path, vit_weights):
    from lejepa_viz.cli import run
    from lejepa_viz.data.shapes import held_out_scenes
    from lejepa_viz.viz.scenes import encoder_iou

    torch.manual_seed(1)
    other = Encoder.build("test_vit", 3, 64, mean=(0.5,) * 3, std=(0.25,) * 3)
    second = tmp_path / "second.pt"
    torch.save(other.backbone.state_dict(), second)
    argv = ["evolve", "--backbone", "test_vit", "--weights", str(vit_weights), str(second)]
    argv += ["--scenes", "2", "--size", "64", "--score", "10", "--out", str(tmp_path / "e.gif")]
    drawn = run(argv)
    frames = iio.imread(tmp_path / "e.gif")
    assert len(frames) == 2 and not np.array_equal(frames[0], frames[1])
    images, masks = held_out_scenes(10)["world"]
    for i, weights in enumerate((vit_weights, second)):
        enc = load_encoder(str(weights), backbone="test_vit")
        expected = encoder_iou(enc.eval(), images, masks, resamples=1)
        for kind in ("per-image", "attention"):
            assert drawn.numbers["iou"][kind][i] == pytest.approx(expected[kind].iou)
    assert "IoU PCA, one fit per image" in drawn.summary
