"""lejepa_viz.sweep: Spearman against its definition, a sweep of cached runs."""

import numpy as np
import pytest
from scipy import stats

from conftest import tiny_config
from lejepa_viz.sweep import informative_loss, spearman, sweep
from lejepa_viz.train import cached_train


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
    runs = [
        {"loss": 0.9, "linear_probe": 0.3},
        {"loss": 0.5, "linear_probe": 0.8},
        {"loss": 0.6, "linear_probe": 0.7},
        {"loss": 0.4, "linear_probe": 0.6},
    ]
    out = informative_loss(runs)
    assert out["num_runs"] == 4
    assert out["spearman"] == pytest.approx(stats.spearmanr(out["loss"], out["accuracy"]).statistic)
    # by hand: rank differences (3, -2, 0, -1), ρ = 1 - 6·14 / (4·(16 - 1)) = -0.4
    assert out["spearman"] == pytest.approx(-0.4)


def test_informative_loss_divides_by_lambda_to_the_alpha():
    # each run's loss is λ·q with q falling as accuracy rises: the raw loss mixes the λ scale
    # in, loss / λ¹ ranks the runs exactly
    lams = [0.02, 0.5, 0.1, 0.02, 0.5, 0.1]
    q = [3.0, 2.5, 2.0, 1.5, 1.0, 0.5]
    acc = [0.50, 0.60, 0.70, 0.80, 0.85, 0.90]
    runs = [
        {"loss": lam * qi, "linear_probe": a, "lam": lam}
        for lam, qi, a in zip(lams, q, acc, strict=True)
    ]
    raw = informative_loss(runs, resamples=0)
    assert raw["interval"] is None and raw["spearman"] == pytest.approx(
        stats.spearmanr([r["loss"] for r in runs], acc).statistic
    )
    one = informative_loss(runs, alpha=1.0)
    assert one["spearman"] == pytest.approx(-1.0) and one["loss"] == pytest.approx(q)
    half = informative_loss(runs, alpha=0.5, resamples=0)
    scaled = [r["loss"] / r["lam"] ** 0.5 for r in runs]
    assert half["spearman"] == pytest.approx(stats.spearmanr(scaled, acc).statistic)
    low, high = informative_loss(runs, alpha=0.5, seed=1)["interval"]
    assert -1 <= low <= half["spearman"] <= high <= 1
    assert informative_loss(runs, alpha=0.5, seed=1)["interval"] == (low, high)  # seeded
    with pytest.raises(ValueError, match="λ <= 0"):
        informative_loss([*runs, {"loss": 1.0, "linear_probe": 0.1, "lam": 0.0}], alpha=0.4)


def test_sweep_trains_each_config_once_in_its_own_folder(tmp_path):
    first = cached_train(tiny_config(tmp_path / "a"))
    seen = []
    fresh, again = sweep(
        [tiny_config(tmp_path / "b"), tiny_config(tmp_path / "a")],
        on_run=lambda cfg, r: seen.append((cfg.out, r["cached"])),
    )
    assert not fresh["cached"] and fresh["loss"] == first["loss"]  # same config: same numbers
    assert again["cached"] and seen == [(str(tmp_path / "b"), False), (str(tmp_path / "a"), True)]
    with pytest.raises(ValueError, match="own out"):
        sweep([tiny_config(tmp_path / "c"), tiny_config(tmp_path / "c")])


def test_tail_mean_is_the_mean_of_the_last_logged_values(tmp_path):
    from lejepa_viz.runs import Run
    from lejepa_viz.sweep import tail_mean

    run = Run(tmp_path)
    run.start_metrics()
    losses = [5.0, 4.0, 3.5, 2.0, 1.0, 0.5]
    for step, loss in enumerate(losses):
        run.log({"step": step, "loss": loss, "sigreg": 2 * loss})
    run.log({"step": 6, "probe_acc": 0.5})  # a line without the key is skipped
    assert tail_mean(tmp_path, last=3) == pytest.approx(np.mean(losses[-3:]))
    assert tail_mean(tmp_path, "sigreg", last=100) == pytest.approx(2 * np.mean(losses))
    with pytest.raises(ValueError, match="no 'pred' logged"):
        tail_mean(tmp_path, "pred")
