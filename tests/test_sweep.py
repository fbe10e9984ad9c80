"""lejepa_viz.sweep: Spearman against its definition, and the run cache on a tiny digits run."""

import json

import numpy as np
import pytest
from scipy import stats

from lejepa_viz.sweep import (
    cached_train,
    informative_loss,
    plot_metrics,
    read_metrics,
    spearman,
    sweep,
)
from lejepa_viz.train import TrainConfig


@pytest.mark.parametrize("n", [3, 7, 50])
def test_spearman_matches_scipy(n):
    rng = np.random.default_rng(n)
    x, y = rng.normal(size=n), rng.normal(size=n)
    y[0] = y[-1]  # a tie
    pearson_of_ranks = np.corrcoef(stats.rankdata(x), stats.rankdata(y))[0, 1]  # the definition
    assert spearman(x, y) == pytest.approx(pearson_of_ranks, abs=1e-12)
    xi, yi = rng.integers(0, 3, size=n + 3), rng.integers(0, 4, size=n + 3)  # many ties
    if len(set(xi)) > 1 and len(set(yi)) > 1:
        expected = np.corrcoef(stats.rankdata(xi), stats.rankdata(yi))[0, 1]
        assert spearman(xi, yi) == pytest.approx(expected, abs=1e-12)


def test_spearman_refuses_bad_input():
    with pytest.raises(ValueError, match="constant"):
        spearman([1, 1, 1], [1, 2, 3])
    with pytest.raises(ValueError, match="length"):
        spearman([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="finite"):
        spearman([1, np.nan], [1, 2])


def test_informative_loss_sign():
    runs = [{"loss": 0.9, "linear_probe": 0.3}, {"loss": 0.5, "linear_probe": 0.8},
            {"loss": 0.6, "linear_probe": 0.7}, {"loss": 0.4, "linear_probe": 0.6}]  # fmt: skip
    out = informative_loss(runs)
    assert out["num_runs"] == 4
    assert out["spearman"] == pytest.approx(stats.spearmanr(out["loss"], out["accuracy"]).statistic)
    # by hand: rank differences (3, -2, 0, -1), ρ = 1 - 6·14 / (4·(16 - 1)) = -0.4
    assert out["spearman"] == pytest.approx(-0.4)


def _tiny(out, **kw):
    base = dict(
        dataset="digits",
        steps=3,
        batch_size=16,
        num_slices=16,
        proj_hidden=32,
        proj_dim=8,
        log_every=1,
        snapshot_images=16,
        final_probe=False,
        progress=False,
    )
    return TrainConfig(**{**base, **kw}, out=str(out))  # fmt: skip


def test_cached_train_loads_equal_config_and_retrains_other(tmp_path):
    seen = []
    first = cached_train(_tiny(tmp_path / "a"), on_update=lambda r: seen.append(len(r)))
    assert not first["cached"] and first["step"] == 3
    n = len(read_metrics(tmp_path / "a" / "metrics.jsonl"))
    assert n > 1 and seen == [*range(1, n + 1), n]  # each line as it is logged, then all
    again = cached_train(_tiny(tmp_path / "a", progress=True))  # progress does not matter
    assert again["cached"] and again["loss"] == first["loss"]
    saved = json.loads((tmp_path / "a" / "result.json").read_text())
    assert saved["config"]["steps"] == 3 and saved["result"]["loss"] == first["loss"]
    other = cached_train(_tiny(tmp_path / "a", lam=0.5))  # another config: trained over
    assert not other["cached"] and other["loss"] != first["loss"]
    fresh = sweep([_tiny(tmp_path / "b")])[0]  # same config elsewhere: same numbers
    assert not fresh["cached"] and fresh["loss"] == first["loss"]
    with pytest.raises(ValueError, match="own out"):
        sweep([_tiny(tmp_path / "c"), _tiny(tmp_path / "c")])


def test_cached_train_reraises_worker_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        cached_train(TrainConfig(dataset="nope", steps=1, out=str(tmp_path), progress=False),
                     on_update=lambda r: None)  # fmt: skip


def test_plot_metrics_draws_losses_and_probe():
    records = [{"step": s, "loss": 1.0 / s, "pred": 0.5 / s, "sigreg": 5.0 / s} for s in (1, 2, 3)]
    fig = plot_metrics([*records, {"step": 3, "probe_acc": 0.5}])
    left, right = fig.axes
    assert len(left.lines) == 3 and right.lines[0].get_ydata().tolist() == [0.5]
    assert plot_metrics([]).axes  # nothing logged yet: empty panels, no error
