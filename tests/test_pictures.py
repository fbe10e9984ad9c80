"""lejepa_viz.pictures and its commands: each writes its animation, bad input ends in a message."""

import imageio.v3 as iio

from lejepa_viz.cli import main
from lejepa_viz.pictures import flow_gif, lambda_gif
from lejepa_viz.sigreg import null_level
from lejepa_viz.toys.tiny import lambda_runs
from lejepa_viz.viz.export import Drawn


def test_flow_gif_has_one_frame_per_snapshot(tmp_path):
    out = flow_gif(tmp_path / "flow.gif", "line", dim=4, n=256, steps=40, every=10, progress=False)
    assert iio.improps(out.path).shape[0] == 5  # 40 steps do not reach the null level
    assert iio.immeta(out.path)["duration"] == 800 and iio.immeta(out.path)["loop"] == 0  # 4 s
    many = flow_gif(tmp_path / "f.gif", "line", dim=4, n=64, steps=60, every=1, progress=False)
    assert iio.improps(many.path).shape[0] == 61 and iio.immeta(many.path)["duration"] == 100


def test_cli_flow_writes_the_gif_and_refuses_bad_shapes(tmp_path, capsys):
    out = tmp_path / "ring.gif"
    assert main(["flow", "--shape", "ring", "--n", "128", "--steps", "20", "--out", str(out)]) == 0
    assert iio.improps(out).shape[0] == 5  # every 5 steps: 0, 5, ..., 20
    assert main(["flow", "--shape", "ring", "--steps", "20", "--out", str(tmp_path / "a.png")]) == 2
    assert ".gif or .mp4" in capsys.readouterr().err
    assert not (tmp_path / "a.png").exists()


def test_lambda_gif_and_its_command(tmp_path):
    drawn = lambda_gif(tmp_path / "l.gif", (0.0, 0.5), steps=8, every=4, progress=False)
    assert isinstance(drawn, Drawn)
    assert iio.improps(drawn.path).shape == (3, 450, 760, 3)  # steps 0, 4, 8; two panels
    assert set(drawn.numbers) == {"0", "0.5", "null_mean", "null_sd"}
    (run,) = lambda_runs((0.5,), "cloud", steps=8, every=4)  # the same run, again
    assert drawn.numbers["0.5"] == {
        "sigreg": run.values["sigreg"][-1],
        "std": run.values["std"][-1],
    }
    null = null_level(512, 2, num_slices=1024)  # the judge's band for the cloud's outputs
    assert (drawn.numbers["null_mean"], drawn.numbers["null_sd"]) == (null.mean, null.sd)
    assert f"λ = 0.5: SIGReg {run.values['sigreg'][-1]:.2f}" in drawn.summary
    assert f"a true N(0, I) sample: SIGReg {null}, std 1" in drawn.summary
    argv = ["lambda", "--lambdas", "0", "0.1", "--steps", "4", "--out", str(tmp_path / "c.gif")]
    assert main(argv) == 0
    assert iio.improps(tmp_path / "c.gif").shape[0] == 2  # every 5 steps: 0 and the last, 4


def test_flow_gif_says_where_it_stopped(tmp_path):
    drawn = flow_gif(tmp_path / "f.gif", "moons", n=256, steps=300, every=5, progress=False)
    assert drawn.numbers["stopped"] == "null level" and drawn.numbers["step"] < 300
    assert drawn.numbers["final"] <= drawn.numbers["null_mean"]
    null = null_level(256, 2, num_slices=1024)
    assert (drawn.numbers["null_mean"], drawn.numbers["null_sd"]) == (null.mean, null.sd)
    assert "stopped at the null level" in drawn.summary and f"points: {null}" in drawn.summary
    assert iio.improps(drawn.path).shape[0] == drawn.numbers["step"] // 5 + 1
