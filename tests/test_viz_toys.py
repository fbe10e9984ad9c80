"""The toys' animations: content checked against direct computations."""

import numpy as np
import pytest
import torch

from lejepa_viz.multivariate.slicing import directions
from lejepa_viz.sigreg import null_level
from lejepa_viz.toys.clouds import make_cloud
from lejepa_viz.toys.descent import sigreg_flow
from lejepa_viz.toys.tiny import lambda_runs
from lejepa_viz.toys.trajectory import Trajectory
from lejepa_viz.viz.convergence import plane
from lejepa_viz.viz.toys import LambdaAnimation, flow_animation


@pytest.fixture(scope="module")
def runs():
    return lambda_runs((0.0, 0.1), "digits", steps=20, every=5)


def test_lambda_animation_shows_each_run_on_the_plane(runs):
    animation = LambdaAnimation(runs, seed=3)
    frames = animation.frames(progress=False)
    assert len(frames) == 5 and frames[0].shape == (450, 760, 3)
    assert not np.array_equal(frames[0], frames[-1])
    np.testing.assert_array_equal(animation.plane, plane(16, 3).numpy())
    for r, run in enumerate(runs):
        for i in (0, -1):
            expected = run.snapshots[i].double().numpy() @ animation.plane
            np.testing.assert_allclose(animation.xy[r, i], expected, atol=1e-12)
        assert f"{run.values['sigreg'][-1]:7.2f}" in animation.readout(run, -1)
    assert animation.null == null_level(256, 16, num_slices=1024)  # the judge's band


@pytest.mark.parametrize("dim", [2, 16])
def test_lambda_animation_draws_a_true_gaussian_round(dim):
    """N(0, I) projects on the plane with identity covariance, as the 1σ / 2σ circles say; two
    raw random directions (the default seed's are far from orthogonal) draw an ellipse."""
    n, seed = 3000, 0
    x = torch.randn(n, dim, generator=torch.Generator().manual_seed(dim))
    gaussian = Trajectory(steps=[0], snapshots=[x], values={"sigreg": [1.0], "std": [1.0]}, lam=0.1)
    xy = LambdaAnimation([gaussian], seed=seed).xy[0, 0]  # (n, 2)
    np.testing.assert_allclose(np.cov(xy.T), np.eye(2), atol=0.12)  # sampling sd ≈ 0.026
    raw = directions(dim, 2, seed=seed).double().numpy()
    assert abs(raw[:, 0] @ raw[:, 1]) > 0.4
    assert np.abs(np.cov((x.double().numpy() @ raw).T) - np.eye(2)).max() > 0.4


def test_lambda_animation_needs_runs_at_the_same_steps(runs):
    other = Trajectory(steps=[0, 5], snapshots=runs[0].snapshots[:2], lam=0.5)
    with pytest.raises(ValueError, match="same steps"):
        LambdaAnimation([runs[0], other])
    with pytest.raises(ValueError, match="non-empty"):
        LambdaAnimation([])


def test_flow_animation_shows_the_cloud_and_its_sigreg_curve():
    flow = sigreg_flow(make_cloud("line", 128, 3), steps=20, every=10, progress=False)
    animation = flow_animation(flow, "line", seed=2)
    data = animation.data
    assert len(animation) == 3 and data.steps == [0, 10, 20] and data.view_points is None
    np.testing.assert_allclose(
        data.points[-1], flow.final.double().numpy() @ plane(3, 2).numpy(), atol=1e-12
    )
    assert data.sigreg.tolist() == flow.values["sigreg"]  # the flow's judged values, as is
    assert data.null == null_level(128, 3, num_slices=1024)
    assert data.heading(1) == "line   ·   step 10"
    frames = animation.frames(progress=False)
    assert len(frames) == 3 and frames[0].shape == (620, 1000, 3)
