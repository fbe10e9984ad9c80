"""lejepa_viz.toys.simulate: Monte Carlo calibration and power against closed forms and scipy."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import scipy.stats as st
import torch

from lejepa_viz import univariate
from lejepa_viz.toys.simulate import (
    DISTRIBUTIONS,
    LOCATION_SHIFT,
    SCALE_FACTOR,
    STATISTICS,
    critical_value,
    draw,
    normal_w1,
    null_distribution,
    power_curves,
    rejection_rate,
    time_per_call,
)


def z_test(x: torch.Tensor) -> torch.Tensor:
    """``n x̄²``: exactly chi²(1) under N(0, 1), the known-variance test of the mean."""
    return x.shape[-2] * x.mean(-2).square()


def test_statistics_are_every_univariate_module():
    modules = {name for name in univariate.__all__ if name[0].isupper()} - {"UnivariateTest"}
    assert set(STATISTICS) == modules  # every statistic; UnivariateTest is their base class
    x = torch.randn(64, 3, dtype=torch.float64)
    for name, fn in STATISTICS.items():
        torch.testing.assert_close(fn(x), getattr(univariate, name)()(x))


REFERENCE = {
    "normal": st.norm(),
    "student_t5": st.t(5, scale=1 / math.sqrt(5 / 3)),
    "laplace": st.laplace(scale=1 / math.sqrt(2)),
    "uniform": st.uniform(-math.sqrt(3), 2 * math.sqrt(3)),
    "location": st.norm(LOCATION_SHIFT),
    "scale": st.norm(scale=SCALE_FACTOR),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_draw_matches_scipy_distribution(name):
    x = draw(name, 4000, 2, seed=3)
    assert x.shape == (4000, 2) and x.dtype == torch.float64
    for column in x.T.numpy():
        assert st.kstest(column, REFERENCE[name].cdf).pvalue > 1e-3


def test_draw_bimodal_and_reproducible():
    x = draw("bimodal", 4000, 1, seed=0)
    assert abs(x.abs().mean().item() - 1.5) < 0.02 and abs(x.mean().item()) < 0.1
    assert torch.equal(draw("uniform", 10, 2, seed=5), draw("uniform", 10, 2, seed=5))
    assert not torch.equal(draw("uniform", 10, 2, seed=5), draw("uniform", 10, 2, seed=6))
    assert draw("normal", 5, dtype=torch.float32).dtype == torch.float32
    assert set(REFERENCE) | {"bimodal"} == set(DISTRIBUTIONS)


def test_null_critical_value_is_chi2_quantile():
    null = null_distribution(z_test, 16, reps=20000, seed=0)
    assert abs(critical_value(null, 0.05) - st.chi2(1).ppf(0.95)) < 0.2
    assert abs(critical_value(null, 0.2) - st.chi2(1).ppf(0.8)) < 0.1


def test_power_curves_match_closed_form_power_of_z_test():
    ns, reps = [16, 64], 20000
    out = power_curves({"z": z_test}, ["normal", "location"], ns, reps=reps, seed=1)
    assert out["ns"] == ns and out["alpha"] == 0.05 and out["reps"] == reps
    se = math.sqrt(0.25 / reps)
    for i, n in enumerate(ns):
        shift = LOCATION_SHIFT * math.sqrt(n)
        exact = st.norm.cdf(shift - 1.959964) + st.norm.cdf(-shift - 1.959964)
        assert abs(out["power"]["z"]["location"][i] - exact) < 5 * se
        assert abs(out["power"]["z"]["normal"][i] - 0.05) < 5 * se  # calibrated size
        assert abs(out["critical"]["z"][i] - st.chi2(1).ppf(0.95)) < 0.2


def test_power_curves_of_all_statistics_are_calibrated_and_deterministic():
    a = power_curves(STATISTICS, ["normal", "scale"], [32], reps=200, seed=0)
    b = power_curves(STATISTICS, ["normal", "scale"], [32], reps=200, seed=0)
    assert a == b
    for name in STATISTICS:
        assert a["power"][name]["normal"][0] < 0.15
    assert a["power"]["VCReg"]["scale"][0] > a["power"]["JarqueBera"]["scale"][0]


def test_rejection_rate_extremes():
    assert rejection_rate(z_test, "normal", 8, -math.inf, reps=50) == 1.0
    assert rejection_rate(z_test, "normal", 8, math.inf, reps=50) == 0.0


def test_normal_w1_is_scipy_wasserstein_to_normal_quantiles():
    x = draw("laplace", 300, 2, seed=2)
    q = st.norm.ppf((np.arange(300) + 0.5) / 300)
    expected = [st.wasserstein_distance(col, q) for col in x.T.numpy()]
    np.testing.assert_allclose(normal_w1(x).numpy(), expected, rtol=1e-10)
    assert normal_w1(torch.randn(2, 50, 4)).shape == (2, 4)


def test_time_per_call_times_one_call_after_a_warm_up():
    calls = []

    def slow(x):
        calls.append(x.requires_grad)
        time.sleep(0.02)
        return x.sum(-2)

    assert 0.02 <= time_per_call(slow, 8, 2, repeats=3) < 0.2
    assert calls == [False] * 4  # one warm-up call, then three timed ones, without gradients
    calls.clear()
    time_per_call(slow, 8, 2, backward=True, repeats=1)
    assert calls == [True, True]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: draw("cauchy", 10), "name"),
        (lambda: draw("normal", 0), "n"),
        (lambda: critical_value(torch.zeros(10), 1.5), "alpha"),
        (lambda: critical_value(torch.zeros(2, 2)), "null"),
        (lambda: power_curves({}, ["normal"], [8]), "statistics"),
        (lambda: power_curves({"z": z_test}, ["cauchy"], [8]), "alternatives"),
        (lambda: power_curves({"z": z_test}, ["normal"], []), "ns"),
        (lambda: power_curves({"z": z_test}, ["normal"], [1]), "n"),
        (lambda: time_per_call(z_test, 1, 1), "n"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
