"""The gradient-flow and λ-comparison animations: content checked against direct computations."""

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from lejepa_viz import SIGReg
from lejepa_viz.cli import main
from lejepa_viz.flow import LambdaRun, lambda_flow
from lejepa_viz.multivariate.slicing import directions
from lejepa_viz.viz.flow import LambdaAnimation, flow_gif


@pytest.fixture(scope="module")
def runs():
    return lambda_flow((0.0, 0.1), steps=40, every=10, progress=False)


def spread(z: torch.Tensor) -> float:
    return float(z.std(0).mean())


def test_lambda_zero_collapses_and_sigreg_spreads(runs):
    zero, some = runs
    assert zero.steps == some.steps == [0, 10, 20, 30, 40]
    torch.testing.assert_close(zero.snapshots[0], some.snapshots[0])  # same start
    assert spread(zero.snapshots[-1]) < 0.6 * spread(zero.snapshots[0])  # collapse
    assert 0.7 < spread(some.snapshots[-1]) < 1.4  # unit spread, as N(0, I)
    judge = SIGReg(num_slices=512, seed=99)  # directions neither run has seen
    assert judge(some.snapshots[-1]) < judge(some.snapshots[0]) / 3
    assert judge(zero.snapshots[-1]) > judge(zero.snapshots[0])
    assert len(zero.pred) == 40 and zero.pred[-1] < some.pred[-1]  # λ = 0 only has to agree


def test_lambda_animation_shows_each_run_on_two_unit_directions(runs):
    animation = LambdaAnimation(runs, seed=3)
    frames = animation.frames(progress=False)
    assert len(frames) == 5 and frames[0].shape == (400, 720, 3)
    assert not np.array_equal(frames[0], frames[-1])
    plane = directions(16, 2, seed=3, step=0).numpy()
    for r, run in enumerate(runs):
        expected = run.snapshots[-1].numpy() @ plane
        np.testing.assert_allclose(animation.points[r].get_offsets(), expected, rtol=1e-5)
        assert f"{run.sigreg[-1]:7.2f}" in animation.labels[r].get_text()


def test_lambda_animation_needs_runs_at_the_same_steps(runs):
    other = LambdaRun(lam=0.5, steps=[0, 5], snapshots=runs[0].snapshots[:2], sigreg=[1.0, 0.5])
    with pytest.raises(ValueError, match="same steps"):
        LambdaAnimation([runs[0], other])
    with pytest.raises(ValueError, match="non-empty"):
        LambdaAnimation([])


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
