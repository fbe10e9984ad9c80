"""lejepa_viz.pictures and its commands: each writes its animation, bad input ends in a message."""

import imageio.v3 as iio

from lejepa_viz.cli import main
from lejepa_viz.pictures import flow_gif, lambda_gif


def test_flow_gif_has_one_frame_per_snapshot(tmp_path):
    out = flow_gif(tmp_path / "flow.gif", "line", dim=4, n=256, steps=40, every=10, progress=False)
    assert iio.improps(out).shape[0] == 5
    assert iio.immeta(out)["duration"] == 100 and iio.immeta(out)["loop"] == 0


def test_cli_flow_writes_the_gif_and_refuses_bad_shapes(tmp_path, capsys):
    out = tmp_path / "ring.gif"
    assert main(["flow", "--shape", "ring", "--n", "128", "--steps", "20", "--out", str(out)]) == 0
    assert iio.improps(out).shape[0] == 5  # every 5 steps: 0, 5, ..., 20
    assert main(["flow", "--shape", "ring", "--steps", "20", "--out", str(tmp_path / "a.png")]) == 2
    assert ".gif or .mp4" in capsys.readouterr().err
    assert not (tmp_path / "a.png").exists()


def test_lambda_gif_and_its_command(tmp_path, capsys):
    out = lambda_gif(tmp_path / "l.gif", (0.0, 0.5), steps=8, every=4, progress=False)
    assert iio.improps(out).shape == (3, 400, 720, 3)  # steps 0, 4, 8; two panels
    assert (
        main(["lambda", "--lambdas", "0", "0.1", "--steps", "4", "--out", str(tmp_path / "c.gif")])
        == 0
    )
    assert iio.improps(tmp_path / "c.gif").shape[0] == 2  # every 4 steps: 0, 4
    # the old spelling still works and says the new one
    assert (
        main(["flow", "--lambdas", "0", "0.1", "--steps", "4", "--out", str(tmp_path / "o.gif")])
        == 0
    )
    assert "is now `lejepa-viz lambda --lambdas`" in capsys.readouterr().err
    assert iio.improps(tmp_path / "o.gif").shape[0] == 2
