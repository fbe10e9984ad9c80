import pytest
import torch

from lejepa_viz import SIGReg
from lejepa_viz.cli import main
from lejepa_viz.flow import SHAPES, make_cloud, sigreg_flow


@pytest.mark.parametrize("shape", SHAPES)
def test_clouds_are_reproducible_and_far_from_gaussian(shape):
    x = make_cloud(shape, n=512, dim=3, seed=1)
    assert x.shape == (512, 3)
    assert torch.equal(x, make_cloud(shape, n=512, dim=3, seed=1))
    judge = SIGReg(num_slices=256, seed=5)
    reference = judge(torch.randn(512, 3, generator=torch.Generator().manual_seed(0)))
    judge.step.zero_()
    assert judge(x) > 10 * reference


def test_flow_ends_close_to_standard_normal():
    flow = sigreg_flow(make_cloud("ring", n=512, dim=2), steps=300, every=100, progress=False)
    assert flow.steps == [0, 100, 200, 300] and len(flow.snapshots) == 4
    judge = SIGReg(num_slices=512, seed=7)
    reference = judge(torch.randn(512, 2, generator=torch.Generator().manual_seed(0))).item()
    judge.step.zero_()
    assert judge(flow.snapshots[-1]).item() < reference
    assert flow.sigreg[-1] < flow.sigreg[0] / 100


def test_bad_arguments():
    with pytest.raises(ValueError, match="shape"):
        make_cloud("cube")
    with pytest.raises(ValueError, match="dim"):
        make_cloud("ring", dim=1)
    with pytest.raises(ValueError, match="steps"):
        sigreg_flow(torch.randn(10, 2), steps=0)


def test_cli_demo_prints_the_table(capsys):
    assert main(["sigreg-demo", "--n", "256", "--dim", "2", "--steps", "60"]) == 0
    out = capsys.readouterr().out
    assert all(shape in out for shape in SHAPES) and "N(0, I) sample" in out


def test_cli_reports_bad_arguments_without_traceback(capsys):
    assert main(["sigreg-demo", "--n", "1"]) == 2
    assert "error: n must be an integer >= 2" in capsys.readouterr().err
