"""lejepa_viz.toys: the clouds and the gradient flows, judged on directions they never saw."""

import math

import pytest
import torch

from conftest import plain_sigreg
from lejepa_viz import SIGReg
from lejepa_viz.cli import main
from lejepa_viz.toys.clouds import CLOUD_SHAPES, make_cloud
from lejepa_viz.toys.descent import clouds_table, descend, sigreg_flow, statistic_flow
from lejepa_viz.toys.simulate import STATISTICS, draw


@pytest.mark.parametrize("shape", CLOUD_SHAPES)
def test_clouds_are_reproducible_and_far_from_gaussian(shape):
    x = make_cloud(shape, n=512, dim=3, seed=1)
    assert x.shape == (512, 3)
    assert torch.equal(x, make_cloud(shape, n=512, dim=3, seed=1))
    judge = SIGReg(num_slices=256, seed=5)
    reference = judge(torch.randn(512, 3, generator=torch.Generator().manual_seed(0)), step=0)
    assert judge(x, step=0) > 10 * reference


def test_flow_ends_close_to_standard_normal():
    ring = make_cloud("ring", n=512, dim=2)
    flow = sigreg_flow(ring, steps=300, every=100, past_null=True, progress=False)
    assert flow.steps == [0, 100, 200, 300] and len(flow.snapshots) == 4
    judge = SIGReg(num_slices=512, seed=7)
    reference = judge(torch.randn(512, 2, generator=torch.Generator().manual_seed(0)), step=0)
    assert judge(flow.final, step=0) < reference
    assert flow.values["sigreg"][-1] < flow.values["sigreg"][0] / 100
    # the recorded curve is the judge's: 1024 fixed directions of seed 12345, plain formula
    assert flow.values["sigreg"][1] == pytest.approx(
        plain_sigreg(flow.snapshots[1], 1024, 12345), rel=1e-5
    )


def test_descend_is_adam_on_the_points():
    x = torch.tensor([[3.0, -1.0], [0.5, 2.0]])
    traj = descend(lambda p: p.square().sum(), x, steps=3, lr=0.1, every=1)
    points = x.clone().requires_grad_(True)  # the same steps by hand with torch's Adam
    opt = torch.optim.Adam([points], lr=0.1)
    for step in range(3):
        torch.testing.assert_close(traj.snapshots[step], points.detach())
        opt.zero_grad()
        points.square().sum().backward()
        opt.step()
    torch.testing.assert_close(traj.final, points.detach())
    assert torch.equal(x, torch.tensor([[3.0, -1.0], [0.5, 2.0]]))  # not modified


def test_descend_with_sgd_is_plain_gradient_descent():
    x = torch.tensor([[3.0, -1.0], [0.5, 2.0]])
    traj = descend(lambda p: p.pow(4).sum(), x, steps=2, lr=0.01, every=1, optimizer="sgd")
    expected = x.clone()
    for step in range(2):  # x ← x − lr·∇, the gradient 4x³ in closed form
        torch.testing.assert_close(traj.snapshots[step], expected)
        expected = expected - 0.01 * 4 * expected**3
    torch.testing.assert_close(traj.final, expected)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        descend(lambda p: p.sum(), x, steps=1, lr=0.1, every=1, optimizer="lbfgs")


def test_descend_stops_when_the_rule_says_so():
    traj = descend(
        lambda p: p.square().sum(),
        torch.ones(3, 1),
        steps=50,
        lr=0.1,
        every=5,
        measures={"norm": lambda p: p.norm().item()},
        until=lambda t: "small" if t.values["norm"][-1] < 1.0 else None,
    )
    assert traj.stopped == "small" and traj.values["norm"][-1] < 1.0 <= traj.values["norm"][-2]
    assert traj.steps[-1] < 50


def test_statistic_flow_moves_towards_normal():
    flow = statistic_flow(STATISTICS["CramerVonMises"], draw("bimodal", 128, 2), steps=60, every=30)
    assert flow.steps == [0, 30, 60] and flow.finite and flow.final.shape == (128, 2)
    w1 = flow.values["w1"]
    assert all(end < start / 3 for start, end in zip(w1[0], w1[-1], strict=True))


def test_statistic_flow_stops_on_non_finite_gradient():
    flow = statistic_flow(lambda x: x.sum(-2) * math.nan, draw("normal", 16, 1), steps=5)
    assert not flow.finite and flow.steps == [0] and flow.stopped == "not finite"
    # a loss that breaks between two snapshots: the points where it stopped are the last one
    start = draw("normal", 16, 1)
    blows_up = lambda x: x.sum(-2) * (math.nan if (x - start).abs().max() > 0.1 else 1.0)  # noqa: E731
    flow = statistic_flow(blows_up, start, steps=50, lr=0.05, every=10)
    assert not flow.finite and flow.steps[-1] % 10 != 0
    assert (flow.final - start).abs().max() > 0.1 and torch.isfinite(flow.final).all()


def test_clouds_table_judges_on_directions_the_flows_never_saw():
    table = clouds_table(n=256, dim=2, steps=60)
    assert [row["cloud"] for row in table["rows"]] == list(CLOUD_SHAPES)
    line = make_cloud("line", 256, 2)
    assert table["rows"][0]["before"] == pytest.approx(plain_sigreg(line, 1024, 12345), rel=1e-5)
    assert all(row["after"] < row["before"] / 10 for row in table["rows"])
    gaussian = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))
    assert table["gaussian"] == pytest.approx(plain_sigreg(gaussian, 1024, 12345), rel=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="shape"):
        make_cloud("cube")
    with pytest.raises(ValueError, match="dim"):
        make_cloud("ring", dim=1)
    with pytest.raises(ValueError, match="steps"):
        sigreg_flow(torch.randn(10, 2), steps=0)
    with pytest.raises(ValueError, match="x"):
        statistic_flow(STATISTICS["VCReg"], torch.zeros(5))
    with pytest.raises(ValueError, match="lr"):
        statistic_flow(STATISTICS["VCReg"], torch.zeros(5, 1), lr=0)


def test_cli_clouds_prints_the_table(capsys):
    assert main(["clouds", "--n", "256", "--dim", "2", "--steps", "60"]) == 0
    out = capsys.readouterr().out
    assert all(shape in out for shape in CLOUD_SHAPES) and "N(0, I) sample" in out


def test_cli_reports_bad_arguments_without_traceback(capsys):
    assert main(["clouds", "--n", "1"]) == 2
    assert "error: n must be an integer >= 2" in capsys.readouterr().err


def test_the_flow_stops_at_the_null_level_unless_told_to_go_on():
    from lejepa_viz import null_level

    x = make_cloud("moons", 256, 2)
    flow = sigreg_flow(x, steps=300, every=5, progress=False)
    null = null_level(256, 2, num_slices=1024)
    values = flow.values["sigreg"]
    assert flow.stopped == "null level" and flow.steps[-1] < 300
    assert values[-1] <= null.mean < min(values[:-1])  # the first snapshot at the level
    on = sigreg_flow(x, steps=300, every=5, past_null=True, progress=False)
    assert on.stopped is None and on.steps[-1] == 300
    assert on.values["sigreg"][-1] < null.mean / 10  # far below a Gaussian sample: the knots
