"""lejepa_viz.toys.tiny: a tiny encoder collapses at λ = 0 and spreads into N(0, I) above."""

import pytest
import torch

from conftest import plain_sigreg
from lejepa_viz import SIGReg
from lejepa_viz.toys import tiny
from lejepa_viz.toys.tiny import lambda_runs


@pytest.fixture(scope="module")
def runs():
    return lambda_runs((0.0, 0.1), "digits", steps=40, every=10)


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
    pred = zero.losses["pred"], some.losses["pred"]
    assert len(pred[0]) == 40 and pred[0][-1] < pred[1][-1]  # λ = 0 only has to agree


def test_cloud_runs_collapse_at_zero_and_are_gaussian_above():
    zero, some = lambda_runs((0.0, 0.2), "cloud", steps=80, every=10, n=256)
    std, sigreg = (
        (zero.values["std"], some.values["std"]),
        (zero.values["sigreg"], some.values["sigreg"]),
    )
    assert std[0][-1] < 0.05 < 0.7 < std[1][-1] < 1.3
    assert sigreg[0][-1] > 2 * sigreg[0][0] and sigreg[1][-1] < sigreg[0][0] / 10
    assert zero.steps == some.steps == list(range(0, 81, 10))
    torch.testing.assert_close(zero.snapshots[0], some.snapshots[0])  # same start
    (again,) = lambda_runs((0.2,), "cloud", steps=80, every=10, n=256)
    assert torch.equal(again.final, some.final)
    # the recorded SIGReg: the judge's 1024 fixed directions (seed 12345), plain formula
    assert sigreg[1][-1] == pytest.approx(plain_sigreg(some.final, 1024, 12345), rel=1e-5)
    with pytest.raises(ValueError, match="lam"):
        lambda_runs((1.5,), "cloud", steps=2)


def test_lambda_runs_cache(tmp_path, monkeypatch):
    cache = tmp_path / "runs.pt"
    first = lambda_runs((0.0, 0.5), "cloud", cache=cache, steps=5, every=5, n=32)
    assert cache.is_file() and [r.lam for r in first] == [0.0, 0.5]

    def refuse(*args, **kwargs):
        raise AssertionError("retrained although the cache matches")

    with monkeypatch.context() as m:
        m.setattr(tiny, "train_tiny", refuse)
        loaded = lambda_runs((0.0, 0.5), "cloud", cache=cache, steps=5, every=5, n=32)
    assert torch.equal(loaded[1].final, first[1].final) and loaded[1].values == first[1].values
    other = lambda_runs((0.0, 0.5), "cloud", cache=cache, steps=6, every=5, n=32)  # retrained
    assert other[0].steps[-1] == 6
    saved = torch.load(cache, weights_only=True)  # runs judged before the judge was recorded
    del saved["key"]["judge"]
    torch.save(saved, cache)
    with monkeypatch.context() as m, pytest.raises(AssertionError, match="retrained"):
        m.setattr(tiny, "train_tiny", refuse)
        lambda_runs((0.0, 0.5), "cloud", cache=cache, steps=6, every=5, n=32)


@pytest.mark.parametrize("make", [tiny.digits_task, tiny.cloud_task])
def test_tasks_seed_their_net_without_touching_the_global_random_state(make):
    before = torch.random.get_rng_state()
    net, *_ = make(seed=3)
    assert torch.equal(torch.random.get_rng_state(), before)
    again, *_ = make(seed=3)
    other, *_ = make(seed=4)
    weights = list(net.parameters())
    assert all(torch.equal(a, b) for a, b in zip(weights, again.parameters(), strict=True))
    assert not torch.equal(weights[0], next(other.parameters()))
