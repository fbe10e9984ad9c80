"""The toys' animations: content checked against direct computations."""

import numpy as np
import pytest

from lejepa_viz.multivariate.slicing import directions
from lejepa_viz.toys.clouds import make_cloud
from lejepa_viz.toys.descent import sigreg_flow
from lejepa_viz.toys.tiny import lambda_runs
from lejepa_viz.toys.trajectory import Trajectory
from lejepa_viz.viz.toys import LambdaAnimation, flow_animation


@pytest.fixture(scope="module")
def runs():
    return lambda_runs((0.0, 0.1), "digits", steps=20, every=5)


def test_lambda_animation_shows_each_run_on_two_unit_directions(runs):
    animation = LambdaAnimation(runs, seed=3)
    frames = animation.frames(progress=False)
    assert len(frames) == 5 and frames[0].shape == (450, 760, 3)
    assert not np.array_equal(frames[0], frames[-1])
    plane = directions(16, 2, seed=3, step=0).numpy()
    for r, run in enumerate(runs):
        expected = run.snapshots[-1].numpy() @ plane
        np.testing.assert_allclose(animation.points[r].get_offsets(), expected, rtol=1e-5)
        assert f"{run.values['sigreg'][-1]:7.2f}" in animation.labels[r].get_text()


def test_lambda_animation_needs_runs_at_the_same_steps(runs):
    other = Trajectory(steps=[0, 5], snapshots=runs[0].snapshots[:2], lam=0.5)
    with pytest.raises(ValueError, match="same steps"):
        LambdaAnimation([runs[0], other])
    with pytest.raises(ValueError, match="non-empty"):
        LambdaAnimation([])


def test_flow_animation_shows_the_cloud_and_its_sigreg_curve():
    flow = sigreg_flow(make_cloud("line", 128, 3), steps=20, every=10, progress=False)
    animation = flow_animation(flow, "line", seed=2)
    assert len(animation) == 3 and animation.steps == [0, 10, 20]
    np.testing.assert_allclose(
        animation.points[-1], flow.final.double().numpy() @ animation.plane.numpy(), rtol=1e-6
    )
    assert animation.sigreg.tolist() == pytest.approx(flow.values["sigreg"])  # the flow's judge
