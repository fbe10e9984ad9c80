"""The original release's calls work here: arrays that ``torch.as_tensor`` takes are accepted
wherever a sample tensor is, with the values the tensor gives."""

import numpy as np
import pytest
import torch

import lejepa_viz as lejepa
from lejepa_viz.toys.simulate import STATISTICS


@pytest.mark.parametrize("name", sorted(STATISTICS))
def test_every_statistic_takes_a_numpy_array(name):
    x = np.random.default_rng(0).standard_normal((200, 3))
    statistic = STATISTICS[name]
    expected = statistic(torch.from_numpy(x))
    torch.testing.assert_close(statistic(x), expected)  # float64 stays float64
    torch.testing.assert_close(
        statistic(x.astype(np.float32)), statistic(torch.from_numpy(x).float())
    )


def test_slicing_and_sigreg_take_arrays_and_lists():
    x = np.random.default_rng(1).standard_normal((256, 8)).astype(np.float32)
    test = lejepa.multivariate.SlicingUnivariateTest(lejepa.univariate.EppsPulley(), 64)
    torch.testing.assert_close(test(x, step=0), test(torch.from_numpy(x), step=0))
    sigreg = lejepa.SIGReg(num_slices=64)
    assert sigreg(x.tolist(), step=0) == pytest.approx(sigreg(torch.from_numpy(x), step=0).item())
    with pytest.raises(ValueError, match="torch.as_tensor takes"):
        sigreg({"not": "an array"})


def test_hz_compute_bandwidth_is_the_henze_zirkler_rule():
    from lejepa_viz.multivariate import HZ

    for n, d in ((100, 5), (50, 3), (4096, 128)):
        closed = (1 / 2**0.5) * ((2 * d + 1) * n / 4) ** (1 / (d + 4))
        assert HZ.compute_bandwidth(n_samples=n, n_dims=d) == pytest.approx(closed, rel=1e-12)
    assert HZ.compute_bandwidth(500, 3) > HZ.compute_bandwidth(50, 3)  # grows with N
    with pytest.raises(ValueError, match="n must"):
        HZ.compute_bandwidth(0, 3)


def original_shapiro(x, expectation_mode, covariance_mode, eps=1e-5):
    """The original release's ShapiroWilk.forward for an (N, K) sample, restated: its
    plotting positions, Normal.icdf, the tridiagonal V⁻¹m, then 1 − |cos| along N."""
    n = x.shape[0]
    g = torch.distributions.Normal(0.0, 1.0)
    i = torch.arange(1, n + 1, dtype=torch.float64)
    p = {
        "elfving": (i - np.pi / 8) / (n + 0.25),
        "blom": (i - 3 / 8) / (n + 0.25),
        "rahman": i / (n + 1),
    }[expectation_mode]
    m = g.icdf(p)
    if covariance_mode == "shapiro_francia":
        a = m
    else:
        phi = g.log_prob(m).exp()
        a = 2 * phi**2 * m
        cross = phi[1:] * phi[:-1]
        a[:-1] -= m[1:] * cross
        a[1:] -= m[:-1] * cross
    a = torch.nn.functional.normalize(a, dim=0).view(n, 1)
    s = torch.sort(x.double(), dim=0).values
    return 1 - torch.nn.functional.cosine_similarity(a, s, dim=0, eps=eps).abs()


@pytest.mark.parametrize("expectation", ["elfving", "blom", "rahman"])
@pytest.mark.parametrize("covariance", ["shapiro_francia", "rahman"])
def test_shapiro_wilk_has_the_original_options(expectation, covariance):
    from lejepa_viz.univariate import ShapiroWilk

    x = torch.from_numpy(np.random.default_rng(2).standard_normal((300, 4)) * 1.3 + 0.2)
    test = ShapiroWilk(expectation_mode=expectation, covariance_mode=covariance)
    torch.testing.assert_close(test(x), original_shapiro(x, expectation, covariance))
    sorted_x = torch.sort(x, dim=0).values
    presorted = ShapiroWilk(expectation_mode=expectation, covariance_mode=covariance, sorted=True)
    torch.testing.assert_close(presorted(sorted_x), test(x))
    w = ShapiroWilk.get_shapiro_weights(300, expectation, covariance)
    assert w.shape == (300,) and float(w.norm()) == pytest.approx(1.0, abs=1e-6)


def test_shapiro_wilk_defaults_stay_scipys_exact_w_and_bad_modes_say_so():
    import scipy.stats

    from lejepa_viz.univariate import ShapiroWilk

    x = np.random.default_rng(3).standard_normal(200)
    ours = ShapiroWilk()(torch.from_numpy(x).view(-1, 1)).item()
    assert ours == pytest.approx(1 - scipy.stats.shapiro(x).statistic, abs=1e-7)
    with pytest.raises(ValueError, match="expectation_mode must be one of"):
        ShapiroWilk(expectation_mode="royston")
    with pytest.raises(ValueError, match="covariance_mode must be one of"):
        ShapiroWilk(covariance_mode="full")
