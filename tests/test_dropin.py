"""The original release's calls work here: arrays that ``torch.as_tensor`` takes are accepted
wherever a sample tensor is, with the values the tensor gives."""

import re

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


# ---------------------------------------------------------------------------------------------
# The base classes: UnivariateTest(eps, sorted), MultivariatetTest


def _univariate_classes():
    from lejepa_viz import univariate as u

    return [
        u.AndersonDarling,
        u.CramerVonMises,
        u.Watson,
        u.Entropy,
        u.ShapiroWilk,
        u.Moments,
        u.NLL,
        u.ExtendedJarqueBera,
        u.JarqueBera,
        u.VCReg,
    ]


@pytest.mark.parametrize("cls", _univariate_classes(), ids=lambda c: c.__name__)
def test_univariate_tests_are_univariate_tests_with_eps_sorted_and_g(cls):
    from lejepa_viz.univariate import UnivariateTest

    test = cls()
    assert isinstance(test, UnivariateTest)
    assert test.eps == 1e-5 and test.sorted is (cls.__name__ == "Moments")  # as the original
    assert (test.g.loc.item(), test.g.scale.item()) == (0.0, 1.0)
    if cls.__name__ not in ("Moments", "NLL"):  # their constructors take neither, as there
        assert cls(eps=1e-3, sorted=True).eps == 1e-3
        with pytest.raises(ValueError, match="eps must be a positive"):
            cls(eps=-1.0)
        with pytest.raises(ValueError, match="sorted must be True or False"):
            cls(sorted="yes")


@pytest.mark.parametrize(
    "make",
    [
        lambda u: u.AndersonDarling(sorted=True),
        lambda u: u.CramerVonMises(sorted=True),
        lambda u: u.Watson(sorted=True),
        lambda u: u.Entropy(sorted=True),
        lambda u: u.Entropy(m=2, method="centered", sorted=True),
        lambda u: u.Entropy(m=2, method="right", sorted=True),
    ],
    ids=["ad", "cvm", "watson", "entropy-kl", "entropy-centered", "entropy-right"],
)
def test_sorted_true_skips_the_sort(make):
    from lejepa_viz import univariate as u

    presorted = make(u)
    default = type(presorted)(**{k: getattr(presorted, k) for k in ("eps",)})
    if isinstance(presorted, u.Entropy):
        default = u.Entropy(presorted.window, method=presorted.method)
    x = torch.from_numpy(np.random.default_rng(4).standard_normal((150, 3)) * 1.2 + 0.1)
    s = torch.sort(x, dim=-2).values
    torch.testing.assert_close(presorted(s), default(x))
    assert not torch.allclose(presorted(x), default(x))  # unsorted input: it trusted us


def test_prepare_data_dist_mean_and_world_size_of_a_custom_test():
    from lejepa_viz.univariate import UnivariateTest

    class Median(UnivariateTest):
        def forward(self, x):
            s = self.prepare_data(x)
            return s[..., s.shape[-2] // 2, :].abs()

    x = np.array([[3.0, -1.0], [1.0, 5.0], [2.0, 0.0]])
    torch.testing.assert_close(Median()(x), torch.tensor([2.0, 0.0], dtype=torch.float64))
    assert Median(sorted=True)(x).tolist() == [1.0, 5.0]  # the middle row, not the median
    v = torch.tensor([1.0, 2.0])
    assert Median().world_size == 1 and torch.equal(Median().dist_mean(v), v)
    with pytest.raises(ValueError, match="NaN or Inf"):
        Median()(np.array([[np.nan], [1.0]]))


def test_multivariate_tests_share_the_originals_base_class():
    from lejepa_viz import multivariate as mv

    assert mv.MultivariatetTest is mv.MultivariateTest  # the original's spelling
    for test in (mv.BHEP(), mv.BHEP_M(), mv.COMB(), mv.HV(), mv.HZ()):
        assert isinstance(test, mv.MultivariatetTest)
    x = np.random.default_rng(5).standard_normal((4, 50, 3))  # batched: the original is 2-D only
    assert mv.MultivariateTest().prepare_data(x).dtype == torch.float64  # original: float32
    torch.testing.assert_close(mv.HZ()(x), torch.stack([mv.HZ()(xi) for xi in x]))


def test_univariate_tests_reduce_over_dim_minus_2_like_epps_pulley():
    from lejepa_viz import univariate as u

    x = torch.randn(3, 120, 4, generator=torch.Generator().manual_seed(6))
    for test in (u.AndersonDarling(), u.Watson(), u.Entropy(method="centered"), u.NLL()):
        torch.testing.assert_close(test(x), torch.stack([test(xi) for xi in x]))


# ---------------------------------------------------------------------------------------------
# lejepa.univariate.utils, exact


def original_log_norm_cdf(x, thresh=3.0):
    """The original release's log_norm_cdf restated: log Φ in the middle, its asymptotic
    forms beyond ±thresh with the helper sqrt(0.656 x + 0.344 x² + 5.334)."""
    helper = lambda v: np.sqrt((1 - 0.344) * v + 0.344 * v**2 + 5.334)  # noqa: E731
    x = np.asarray(x, dtype=np.float64)
    out = np.log(scipy_special().ndtr(x))
    left, right = x < -thresh, x > thresh
    out[left] = -(x[left] ** 2 + np.log(2 * np.pi)) / 2 - np.log(helper(-x[left]))
    out[right] = np.log1p(-np.exp(-(x[right] ** 2) / 2) / np.sqrt(2 * np.pi) / helper(x[right]))
    return out


def scipy_special():
    import scipy.special

    return scipy.special


def test_utils_norm_cdf_and_log_norm_cdf_are_exact():
    from lejepa_viz.univariate import utils

    x = np.array([-40.0, -8.0, -3.5, -1.0, 0.0, 2.0, 3.5, 9.0])
    torch.testing.assert_close(
        utils.log_norm_cdf(torch.from_numpy(x)), torch.from_numpy(scipy_special().log_ndtr(x))
    )
    torch.testing.assert_close(utils.log_norm_cdf(x, thresh=0.5), utils.log_norm_cdf(x))
    torch.testing.assert_close(
        utils.norm_cdf(x.tolist()), torch.from_numpy(scipy_special().ndtr(x)).float()
    )
    # the original's tail approximation is off by about 0.09 at -3.5 (0.4 at -10); ours is exact
    err = abs(original_log_norm_cdf([-3.5])[0] - scipy_special().log_ndtr(-3.5))
    assert err > 0.05


# ---------------------------------------------------------------------------------------------
# The classical tests' values against the original's formulas


def test_anderson_darling_is_the_originals_formula_with_exact_tails():
    from lejepa_viz.univariate import AndersonDarling

    x = np.random.default_rng(7).standard_normal((80, 3)) * 1.4
    s, n = np.sort(x, axis=0), x.shape[0]
    k = 2 * np.arange(1, n + 1) - 1
    exact = -n - k @ (scipy_special().log_ndtr(s) + scipy_special().log_ndtr(-s[::-1])) / n
    theirs = -n - k @ (original_log_norm_cdf(s) + original_log_norm_cdf(-s[::-1])) / n
    ours = AndersonDarling()(x).numpy()
    np.testing.assert_allclose(ours, exact, rtol=1e-10)
    assert np.abs(ours - theirs).max() > 1e-6  # the original's tails are approximate


def original_cvm(x):
    """The original's CramerVonMises restated: the mean, not the sum, of the squared gaps."""
    s, n = np.sort(x, axis=0), x.shape[0]
    k = ((2 * np.arange(1, n + 1) - 1) / (2 * n))[:, None]
    return ((k - scipy_special().ndtr(s)) ** 2).mean(0)


def test_cramer_von_mises_and_watson_are_n_times_the_originals_plus_a_constant():
    import scipy.stats

    from lejepa_viz.univariate import CramerVonMises, Watson

    x = np.random.default_rng(8).standard_normal((90, 3)) * 0.8 + 0.3
    n = x.shape[0]
    cvm, wat = CramerVonMises()(x).numpy(), Watson()(x).numpy()
    np.testing.assert_allclose(cvm, scipy.stats.cramervonmises(x, "norm", axis=0).statistic)
    np.testing.assert_allclose(original_cvm(x), (cvm - 1 / (12 * n)) / n, rtol=1e-10)
    original_watson = original_cvm(x) - (scipy_special().ndtr(x).mean(0) - 0.5) ** 2
    np.testing.assert_allclose(original_watson, (wat - 1 / (12 * n)) / n, rtol=1e-10)


def original_extended_jarque_bera(x):
    """The original's ExtendedJarqueBera restated: skewness and kurtosis over the unbiased s."""
    n = x.shape[0]
    mean, var = x.mean(0), x.var(0, ddof=1)
    z = (x - mean) / np.sqrt(var)
    skew, kurt = (z**3).mean(0), (z**4).mean(0)
    return (
        mean**2 / (var / n)
        + (var - 1) ** 2 / (2 / (n - 1))
        + n / 6 * (skew**2 + 0.25 * (kurt - 3) ** 2)
    )


def test_vcreg_is_the_originals_and_extended_jarque_bera_uses_scipys_skewness():
    import scipy.stats

    from lejepa_viz.univariate import ExtendedJarqueBera, VCReg

    x = np.random.default_rng(9).standard_exponential((60, 3))
    n, mean, var = x.shape[0], x.mean(0), x.var(0, ddof=1)
    original_vcreg = mean**2 / (var / n) + (var - 1) ** 2 / (2 / (n - 1))
    np.testing.assert_allclose(VCReg()(x).numpy(), original_vcreg, rtol=1e-10)
    ours = ExtendedJarqueBera()(x).numpy()
    np.testing.assert_allclose(
        ours, original_vcreg + scipy.stats.jarque_bera(x, axis=0).statistic, rtol=1e-10
    )
    assert np.abs(ours - original_extended_jarque_bera(x)).max() > 1e-3


# ---------------------------------------------------------------------------------------------
# Entropy(m, eps, method, sorted)


def original_entropy(x, m=1, eps=1e-5, method="centered"):
    """The original's Entropy.forward restated, its loop over the end spacings included."""
    s, n = np.sort(x, axis=0), x.shape[0]
    cst = np.log(np.sqrt(2 * np.pi * np.e))
    log = lambda d: np.log(np.clip(d, eps, None))  # noqa: E731
    if method == "right":
        stat = log(s[m:] - s[:-m]).sum(0) / n
        return cst - stat - np.log(n) + np.log(m * x.std(0, ddof=1))
    stat = log(s[2 * m :] - s[: -2 * m]).sum(0) / n
    for i in range(2 * m):
        stat = stat + log(s[1 + i] - s[0]) / n
        stat = stat + log(s[-1] - s[-2 - i]) / n
    return np.exp(cst - stat - np.log(n) + np.log(2 * m) + np.log(x.std(0, ddof=1)))


@pytest.mark.parametrize("method", ["centered", "right"])
@pytest.mark.parametrize("m", [1, 3])
def test_entropy_has_the_originals_methods(method, m):
    from lejepa_viz.univariate import Entropy

    x = np.random.default_rng(10).standard_t(4, (120, 3))
    x[5, 0] = x[6, 0]  # a tie: a zero spacing, floored at eps
    for eps in (1e-5, 1e-2):
        expected = original_entropy(x, m, eps, method)
        np.testing.assert_allclose(Entropy(m=m, eps=eps, method=method)(x).numpy(), expected)
        np.testing.assert_allclose(Entropy(m, eps, method)(x).numpy(), expected)  # positional
    if m == 1:  # the original's default m
        expected = original_entropy(x, method=method)
        np.testing.assert_allclose(Entropy(method=method)(x).numpy(), expected)


def test_entropy_default_stays_the_vasicek_kl_and_checks_its_options():
    import scipy.stats

    from lejepa_viz.univariate import Entropy

    x = np.random.default_rng(11).standard_normal((200, 2))
    h = scipy.stats.differential_entropy(x, window_length=3, method="vasicek", axis=0)
    kl = -h + (x**2).mean(0) / 2 + np.log(2 * np.pi) / 2
    np.testing.assert_allclose(Entropy(m=3)(x).numpy(), kl)
    np.testing.assert_allclose(Entropy(m=3, eps=1.0)(x).numpy(), kl)  # eps is not read here
    assert Entropy(m=3).window == 3 and Entropy(window=3).m == 3
    with pytest.raises(ValueError, match="disagree"):
        Entropy(window=2, m=3)
    with pytest.raises(ValueError, match="method must be one of"):
        Entropy(method="vasicek")
    with pytest.raises(ValueError, match="m must satisfy 2 \\* m < N"):
        Entropy(m=3, method="centered")(np.zeros((6, 1)) + np.arange(6.0)[:, None])


# ---------------------------------------------------------------------------------------------
# Moments(k_max, sampler)


def original_moments_formula(x, k_max=4):
    """The original's Moments.forward restated for an (N, K) sample (one rank)."""
    import scipy.stats

    k = np.arange(2, k_max + 1).reshape(-1, 1, 1)
    m1 = np.abs(x.mean(0))
    if k_max < 2:
        return m1
    xpow = (x[None] ** k).mean(1)
    xpow[::2] -= np.array([scipy.stats.norm.moment(i) for i in range(2, k_max + 1, 2)])[:, None]
    return m1 + np.abs(xpow).T @ np.exp(-np.arange(2, k_max + 1))


@pytest.mark.parametrize("k_max", [1, 2, 4, 5])
def test_moments_has_the_originals_statistic_as_method_abs(k_max):
    from lejepa_viz.univariate import Moments

    x = np.random.default_rng(12).standard_normal((300, 3)) * 1.1 + 0.05
    ours = Moments(k_max, method="abs")(x).numpy()
    np.testing.assert_allclose(ours, original_moments_formula(x, k_max), rtol=1e-10)


def test_moments_keeps_its_zscore_default_and_takes_a_sampler():
    from lejepa_viz.univariate import Moments, moments

    x = torch.randn(100, 3, dtype=torch.float64)
    normal = torch.distributions.Normal(torch.tensor([0.0]), torch.tensor([1.0]))
    test = Moments(4, normal)  # the original's positional sampler: stored, never read
    assert test.sampler is normal and test.method == "zscore"
    torch.testing.assert_close(test(x), moments(x, 4))
    with pytest.raises(ValueError, match="sampler must be None or a torch.distributions"):
        Moments(sampler="gaussian")
    with pytest.raises(ValueError, match="method must be one of"):
        Moments(method="squared")


# ---------------------------------------------------------------------------------------------
# NLL(alpha, k, N)


def order_statistic_logpdf(x, i, n):
    """log density of the i-th smallest of n iid N(0, 1) at x: Beta(i, n + 1 - i) at Φ(x)."""
    import scipy.stats

    return scipy.stats.beta.logpdf(scipy_special().ndtr(x), i, n + 1 - i) + scipy.stats.norm.logpdf(
        x
    )


def test_nll_per_sample_in_the_inputs_order_and_with_a_fixed_k():
    from lejepa_viz.univariate import NLL

    x = np.random.default_rng(13).standard_normal((40, 3))
    rank = x.argsort(0).argsort(0) + 1  # the order statistic each sample is
    expected = -order_statistic_logpdf(x, rank, 40)
    np.testing.assert_allclose(NLL(reduction=None)(x).numpy(), expected, rtol=1e-9)
    np.testing.assert_allclose(NLL()(x).numpy(), expected.mean(0), rtol=1e-9)
    fixed = NLL(k=7, N=60, reduction=None)(x).numpy()  # every sample as the 7th of 60
    np.testing.assert_allclose(fixed, -order_statistic_logpdf(x, 7, 60), rtol=1e-9)
    np.testing.assert_allclose(NLL(k=7, N=60)(x).numpy(), fixed.mean(0), rtol=1e-9)
    # the original gathers with the sorting permutation, not its inverse: its order differs
    s, idx = torch.sort(torch.from_numpy(expected), dim=0)  # stand-in values, any will do
    assert not torch.equal(torch.gather(s, 0, idx), torch.from_numpy(expected))


def test_nll_alpha_keeps_only_the_outer_tails_of_each_order_statistic():
    import scipy.stats

    from lejepa_viz.univariate import NLL

    x = np.random.default_rng(14).standard_normal((50, 4)) * 1.5
    n, alpha = 50, 0.2
    rank = x.argsort(0).argsort(0) + 1
    low = scipy_special().ndtri(scipy.stats.beta.ppf(alpha, rank, n + 1 - rank))
    high = scipy_special().ndtri(scipy.stats.beta.ppf(1 - alpha, rank, n + 1 - rank))
    inside = (x > low) & (x < high)
    assert 0 < inside.sum() < inside.size  # the test sees both kinds
    out = NLL(alpha=alpha, reduction=None)(x).numpy()
    np.testing.assert_array_equal(np.isnan(out), inside)
    expected = np.where(inside, np.nan, -order_statistic_logpdf(x, rank, n))
    np.testing.assert_allclose(out, expected, rtol=1e-9)
    np.testing.assert_allclose(NLL(alpha=alpha)(x).numpy(), np.nanmean(expected, 0), rtol=1e-9)
    k_low = scipy_special().ndtri(scipy.stats.beta.ppf(alpha, 3, n - 2))
    k_high = scipy_special().ndtri(scipy.stats.beta.ppf(1 - alpha, 3, n - 2))
    fixed = NLL(alpha=alpha, k=3, N=n, reduction=None)(x).numpy()
    np.testing.assert_array_equal(np.isnan(fixed), (x > k_low) & (x < k_high))


def test_nll_checks_its_options():
    from lejepa_viz.univariate import NLL

    with pytest.raises(ValueError, match="alpha must be a number in"):
        NLL(alpha=0.7)
    with pytest.raises(ValueError, match="k must be <= N"):
        NLL(k=5, N=3)
    with pytest.raises(ValueError, match="N must equal the sample's N"):
        NLL(N=10)(np.zeros((20, 1)))
    with pytest.raises(ValueError, match="reduction must be one of"):
        NLL(reduction="sum")


# ---------------------------------------------------------------------------------------------
# The kernel tests against the original's formulas (each a multiple of ours, or a square root)


def _pairs(x):
    sq = (x**2).sum(1)
    return sq, x @ x.T


def test_bhep_and_hz_are_n_times_the_originals():
    from lejepa_viz.multivariate import BHEP, HZ

    x = np.random.default_rng(15).standard_normal((70, 3)) * 1.2
    (n, d), (sq, gram) = x.shape, _pairs(x)

    def original_bhep(beta):  # the original's BHEP.forward restated
        b2 = beta**2
        dist2 = sq[:, None] + sq[None] - 2 * gram
        lhs = np.exp(-b2 / 2 * dist2).sum() / n**2
        rhs = 2 / (1 + b2) ** (d / 2) * np.exp(-b2 / (2 + 2 * b2) * sq).sum() / n
        return lhs - rhs + 1 / (1 + 2 * b2) ** (d / 2)

    for beta in (0.1, 1.0, 2.5):
        assert BHEP(beta)(x).item() == pytest.approx(n * original_bhep(beta), rel=1e-9)
    assert BHEP().beta == 1.0  # the original's default is 0.1
    beta = HZ.compute_bandwidth(n, d)
    assert HZ()(x).item() == pytest.approx(n * original_bhep(beta), rel=1e-9)


def test_hz_compute_bandwidth_does_not_warn_and_needs_two_samples():
    import warnings

    from lejepa_viz.multivariate import HZ

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the original warns for N < 10 and D/N > 0.1
        assert HZ.compute_bandwidth(5, 3) > 0
    with pytest.raises(ValueError, match="n must be an integer >= 2"):
        HZ.compute_bandwidth(1, 3)  # the original takes N = 1


def test_bhep_m_is_the_originals_rescaled_and_takes_dim():
    from lejepa_viz.multivariate import BHEP_M

    x = np.random.default_rng(16).standard_normal((60, 2))
    (n, d), (sq, gram) = x.shape, _pairs(x)
    for beta in (2.5, 10.0):  # the original's BHEP_M.forward restated, without its constant
        lhs = beta ** (-d / 2) * np.exp((2 * gram + sq + sq[:, None]) / (4 * beta)).sum() / n
        rhs = 2 / (beta - 0.5) ** (d / 2) * np.exp(sq / (4 * beta - 2)).sum()
        ours = BHEP_M(beta)(x).item()
        expected = (lhs - rhs + n / (beta - 1) ** (d / 2)) * np.pi ** (d / 2)
        assert ours == pytest.approx(expected, rel=1e-8)
    assert BHEP_M(dim=2)(x).item() == pytest.approx(BHEP_M()(x).item())
    with pytest.raises(ValueError, match="x must have dim = 3"):
        BHEP_M(dim=3)(x)
    with pytest.raises(ValueError, match="beta must be > 2"):
        BHEP_M(beta=2.0)
    with pytest.raises(TypeError):  # why the original BHEP_M(dim) cannot be built
        torch.nn.Module.__init__(torch.nn.Module.__new__(torch.nn.Module), dim=2)


def test_comb_is_the_square_of_the_originals_and_refuses_its_default_gamma():
    from lejepa_viz.multivariate import COMB

    x = np.random.default_rng(17).standard_normal((80, 2)) + 0.3
    (n, _), (sq, gram) = x.shape, _pairs(x)
    for gamma in (0.75, 1.5):  # the original's COMB.forward restated
        kernel = np.exp((sq[:, None] - sq[None]) / (4 * gamma)) * np.cos(gram / (2 * gamma))
        original = np.sqrt(n) * (kernel.mean() - 1)
        assert COMB(gamma)(x).item() == pytest.approx(original**2, rel=1e-8)
    with pytest.raises(ValueError, match="gamma must be > 1/2"):
        COMB(gamma=0.1)  # the original's default


def test_hv_is_the_originals_times_pi_over_gamma_and_refuses_its_default_gamma():
    from lejepa_viz.multivariate import HV

    x = np.random.default_rng(18).standard_normal((60, 3)) * 0.9
    (n, d), (sq, gram) = x.shape, _pairs(x)
    for gamma in (3.0, 5.0):  # the original's HV.forward restated
        pair = 2 * gram + sq + sq[:, None]
        bracket = gram - pair / (2 * gamma) + d / (2 * gamma) + pair / (4 * gamma**2)
        original = (np.exp(pair / (4 * gamma)) * bracket).sum() / n
        ours = HV(gamma)(x).item()
        assert ours == pytest.approx(original * (np.pi / gamma) ** (d / 2), rel=1e-8)
    with pytest.raises(ValueError, match="gamma must be > 2"):
        HV(gamma=1)  # the original's default


# ---------------------------------------------------------------------------------------------
# SlicingUnivariateTest(univariate_test, num_slices, reduction, sampler, clip_value)


def test_slicing_clip_value_zeroes_small_slices_before_the_reduction():
    from lejepa_viz.multivariate import SlicingUnivariateTest
    from lejepa_viz.univariate import CramerVonMises

    x = torch.randn(200, 6, generator=torch.Generator().manual_seed(19), dtype=torch.float64)
    x[:, 0] *= 2.0
    per_slice = SlicingUnivariateTest(CramerVonMises(), 32, None)(x, step=3)
    clip = float(per_slice.median())
    expected = per_slice.clone()
    expected[expected < clip] = 0  # the original's in-place clipping
    clipped = SlicingUnivariateTest(CramerVonMises(), 32, None, clip_value=clip)
    torch.testing.assert_close(clipped(x, step=3), expected)
    mean = SlicingUnivariateTest(CramerVonMises(), 32, "mean", sampler="gaussian", clip_value=clip)
    torch.testing.assert_close(mean(x, step=3), expected.mean())
    assert 0 < int((expected == 0).sum()) < 32


def test_slicing_sampler_global_step_and_positional_order():
    from lejepa_viz.multivariate import SlicingUnivariateTest, directions
    from lejepa_viz.univariate import EppsPulley

    test = SlicingUnivariateTest(EppsPulley(), 16)
    assert test.global_step is test.step and test.sampler == "gaussian"
    assert list(test.state_dict()) == ["step"]  # the original's key is global_step
    test(torch.randn(64, 4))
    assert int(test.global_step) == 1
    with pytest.raises(ValueError, match="sampler must be 'gaussian'"):
        SlicingUnivariateTest(EppsPulley(), 16, sampler="rademacher")
    positional = SlicingUnivariateTest(EppsPulley(), 16, None, "gaussian", 0.5)  # the original's
    assert positional.sampler == "gaussian" and positional.clip_value == 0.5
    with pytest.raises(TypeError):
        SlicingUnivariateTest(EppsPulley(), 16, "mean", "gaussian", None, 3)  # seed: keyword
    with pytest.raises(ValueError, match="clip_value must be None or a finite number"):
        SlicingUnivariateTest(EppsPulley(), 16, clip_value=float("nan"))
    # the directions of step s are ours (seed and step mixed), not the original's randn
    # from a generator seeded with s on x's device
    original = torch.randn((4, 16), generator=torch.Generator().manual_seed(0))
    original /= original.norm(p=2, dim=0)
    ours = test.directions(4, step=0)
    assert torch.equal(ours, directions(4, 16, seed=0, step=0))
    assert not torch.allclose(ours, original)


# ---------------------------------------------------------------------------------------------
# EppsPulley: the original's value, integration= and buffers


def original_epps_pulley(x, t_max=3.0, n_points=17):
    """The original's EppsPulley.forward restated (one rank), float64."""
    t = np.linspace(0, t_max, n_points)
    dt = t_max / (n_points - 1)
    weights = np.full(n_points, 2 * dt)
    weights[[0, -1]] = dt
    phi = np.exp(-(t**2) / 2)
    xt = x[..., None] * t
    err = (np.cos(xt).mean(-3) - phi) ** 2 + np.sin(xt).mean(-3) ** 2
    return err @ (weights * phi) * x.shape[-2]


@pytest.mark.parametrize("t_max, n_points", [(3.0, 17), (5.0, 21), (2.0, 16)])
def test_epps_pulley_is_the_originals_formula(t_max, n_points):
    from lejepa_viz.univariate import EppsPulley

    x = np.random.default_rng(20).standard_normal((2, 150, 3)) * 1.3
    ours = EppsPulley(t_max, n_points)(x).numpy()  # n_points = 16: the original asserts odd
    np.testing.assert_allclose(ours, original_epps_pulley(x, t_max, n_points), rtol=1e-9)


def test_epps_pulley_takes_integration_trapezoid():
    from lejepa_viz.univariate import EppsPulley

    x = np.random.default_rng(21).standard_normal((150, 3))
    test = EppsPulley(t_max=3.0, n_points=17, integration="trapezoid")
    assert test.integration == "trapezoid"
    np.testing.assert_allclose(test(x).numpy(), original_epps_pulley(x), rtol=1e-9)
    with pytest.raises(ValueError, match="integration must be"):
        EppsPulley(integration="simpson")


def test_epps_pulley_is_a_univariate_test_with_the_originals_buffers():
    from lejepa_viz.univariate import EppsPulley, UnivariateTest

    test = EppsPulley(t_max=3.0, n_points=5)
    assert isinstance(test, UnivariateTest)
    t = torch.linspace(0, 3.0, 5, dtype=torch.float64)
    phi = torch.exp(-(t**2) / 2)
    weights = torch.tensor([0.75, 1.5, 1.5, 1.5, 0.75], dtype=torch.float64) * phi
    torch.testing.assert_close(test.t.double(), t)
    torch.testing.assert_close(test.phi.double(), phi)
    torch.testing.assert_close(test.weights.double(), weights)


def test_every_row_of_the_readme_table_names_a_test_that_exists():
    """The README's table of differences from the original stays pinned: each row names at
    least one test, and each named test is defined (in this file unless a path says so)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    section = readme.split("### A drop-in for the original release")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert len(rows) >= 20
    for row in rows:
        named = re.findall(r"`(?:tests/(test_\w+)\.py::)?(test_\w+)`", row.split("|")[-2])
        assert named, f"a row names no test: {row[:80]}"
        for module, test in named:
            source = (root / "tests" / f"{module or 'test_dropin'}.py").read_text()
            assert f"def {test}(" in source, f"{test} is named in the README but not defined"
