"""Classical univariate statistics against scipy (float64) and the shared contract."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
import torch

from lejepa_viz.univariate.anderson_darling import AndersonDarling, anderson_darling
from lejepa_viz.univariate.cramer_von_mises import CramerVonMises, cramer_von_mises
from lejepa_viz.univariate.entropy import Entropy, entropy, vasicek_entropy
from lejepa_viz.univariate.jarque_bera import (
    ExtendedJarqueBera,
    JarqueBera,
    extended_jarque_bera,
    jarque_bera,
)
from lejepa_viz.univariate.likelihood import NLL, nll
from lejepa_viz.univariate.moments import Moments, moments, null_weights
from lejepa_viz.univariate.shapiro_wilk import ShapiroWilk, shapiro_wilk
from lejepa_viz.univariate.vcreg import VCReg, vcreg
from lejepa_viz.univariate.watson import Watson, watson

STATISTICS = {
    "cramer_von_mises": cramer_von_mises,
    "anderson_darling": anderson_darling,
    "watson": watson,
    "jarque_bera": jarque_bera,
    "extended_jarque_bera": extended_jarque_bera,
    "vcreg": vcreg,
    "shapiro_wilk": shapiro_wilk,
    "vasicek_entropy": vasicek_entropy,
    "entropy": entropy,
    "moments": moments,
    "nll": nll,
}
MODULES = {
    "cramer_von_mises": CramerVonMises(),
    "anderson_darling": AndersonDarling(),
    "watson": Watson(),
    "jarque_bera": JarqueBera(),
    "extended_jarque_bera": ExtendedJarqueBera(),
    "vcreg": VCReg(),
    "shapiro_wilk": ShapiroWilk(),
    "entropy": Entropy(),
    "moments": Moments(),
    "nll": NLL(),
}
SIZES = (20, 137, 1000, 5000)


def sample(n: int, seed: int = 0) -> np.ndarray:
    """``(n, 4)`` float64: N(0, 1), Student-t(5), Exp(1) and U(0, 1) columns."""
    rng = np.random.default_rng(seed)
    columns = [
        rng.standard_normal(n),
        rng.standard_t(5, n),
        rng.exponential(size=n),
        rng.uniform(size=n),
    ]
    return np.stack(columns, axis=1)


# ---- independent truths: one float64 column in, one float out ----


def _ad(x: np.ndarray) -> float:
    known = {"loc": 0.0, "scale": 1.0}
    res = st.goodness_of_fit(st.norm, x, known_params=known, statistic="ad", n_mc_samples=2, rng=0)
    return res.statistic


def _cvm(x: np.ndarray) -> float:
    return st.cramervonmises(x, "norm").statistic


def _watson(x: np.ndarray) -> float:
    return _cvm(x) - len(x) * (st.norm.cdf(x).mean() - 0.5) ** 2


def _vcreg(x: np.ndarray) -> float:
    n, var = len(x), x.var(ddof=1)
    return n * x.mean() ** 2 / var + (n - 1) * (var - 1) ** 2 / 2


def _window(n: int) -> int:
    return math.floor(math.sqrt(n) + 0.5)  # scipy's default window_length


def _vasicek(x: np.ndarray) -> float:
    return st.differential_entropy(x, method="vasicek", window_length=_window(len(x)))


def _moments(x: np.ndarray, k_max: int = 4) -> float:
    m = st.norm.moment
    return len(x) * sum(
        (np.mean(x**k) - m(k)) ** 2 / (m(2 * k) - m(k) ** 2) for k in range(1, k_max + 1)
    )


def _nll(x: np.ndarray) -> float:
    n, xs = len(x), np.sort(x)
    i = np.arange(1, n + 1)
    # The i-th order statistic at x is the (n+1-i)-th of the mirrored sample at -x. Evaluating
    # each point on its lower tail keeps Φ(x) away from 1, where float64 loses 1 - Φ(x)
    # entirely (Φ(9) == 1.0, so beta.logpdf would give -inf for the exponential column).
    lower = xs <= 0
    log_beta = np.where(
        lower,
        st.beta.logpdf(st.norm.cdf(xs), i, n - i + 1),
        st.beta.logpdf(st.norm.cdf(-xs), n - i + 1, i),
    )
    return -np.mean(log_beta + st.norm.logpdf(xs))


TRUTHS = {
    "cramer_von_mises": _cvm,
    "anderson_darling": _ad,
    "watson": _watson,
    "jarque_bera": lambda x: st.jarque_bera(x).statistic,
    "extended_jarque_bera": lambda x: _vcreg(x) + st.jarque_bera(x).statistic,
    "vcreg": _vcreg,
    "shapiro_wilk": lambda x: 1 - st.shapiro(x).statistic,
    "vasicek_entropy": _vasicek,
    "entropy": lambda x: -_vasicek(x) + np.mean(x**2) / 2 + math.log(2 * math.pi) / 2,
    "moments": _moments,
    "nll": _nll,
}


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", sorted(TRUTHS))
def test_matches_scipy(name: str, n: int) -> None:
    x = sample(n, seed=n)
    ours = STATISTICS[name](torch.from_numpy(x)).numpy()  # (4,), one per distribution
    truth = np.array([TRUTHS[name](x[:, k]) for k in range(x.shape[1])])
    if name == "shapiro_wilk":
        # Compare W itself. scipy evaluates Φ^{-1} in the coefficients with the 7-digit AS 111
        # approximation and we use ndtri: W agrees to ~1e-8, 1 - W (near 0 for Gaussian
        # data at n = 5000) to ~1e-6 relative.
        np.testing.assert_allclose(1 - ours, 1 - truth, rtol=1e-6, atol=0)
        np.testing.assert_allclose(ours, truth, rtol=1e-5, atol=0)
    else:
        np.testing.assert_allclose(ours, truth, rtol=1e-6, atol=0)


def test_cramer_von_mises_matches_goodness_of_fit() -> None:
    x = sample(300)[:, 0]
    known = {"loc": 0.0, "scale": 1.0}
    res = st.goodness_of_fit(st.norm, x, known_params=known, statistic="cvm", n_mc_samples=2, rng=0)
    ours = cramer_von_mises(torch.from_numpy(x)[:, None]).item()
    assert ours == pytest.approx(res.statistic, rel=1e-10)


@pytest.mark.parametrize("n", [3, 4, 5, 6, 7, 11, 12, 50, 4999])
def test_shapiro_wilk_small_and_odd_sizes(n: int) -> None:
    x = sample(n, seed=n)
    ours = 1 - shapiro_wilk(torch.from_numpy(x)).numpy()
    truth = np.array([st.shapiro(x[:, k]).statistic for k in range(x.shape[1])])
    np.testing.assert_allclose(ours, truth, rtol=1e-6, atol=0)


@pytest.mark.parametrize("n", [5, 20, 137])
def test_vasicek_default_window_is_scipys(n: int) -> None:
    x = sample(n)[:, 1]
    ours = vasicek_entropy(torch.from_numpy(x)[:, None]).item()
    assert ours == pytest.approx(st.differential_entropy(x, method="vasicek"), rel=1e-10)


@pytest.mark.parametrize("window", [1, 3, 9])
def test_vasicek_explicit_window(window: int) -> None:
    x = sample(40)[:, 2]
    ours = vasicek_entropy(torch.from_numpy(x)[:, None], window=window).item()
    truth = st.differential_entropy(x, method="vasicek", window_length=window)
    assert ours == pytest.approx(truth, rel=1e-10)


@pytest.mark.parametrize("k_max", [1, 2, 3, 6])
def test_moments_k_max(k_max: int) -> None:
    x = sample(200)
    ours = moments(torch.from_numpy(x), k_max=k_max).numpy()
    truth = [_moments(x[:, k], k_max) for k in range(x.shape[1])]
    np.testing.assert_allclose(ours, truth, rtol=1e-8)


def test_moments_null_is_a_weighted_chi2() -> None:
    """The null 95% point of ``moments`` (k_max = 4) is that of Σ w_i χ²₁, not chi²(4)'s."""
    # Independent truth: the covariance of x^j and x^k under N(0, 1) from scipy's closed-form
    # Gaussian moments, its correlation matrix's eigenvalues, and their weighted χ² by simulation.
    m = st.norm.moment
    k = range(1, 5)
    cov = np.array([[m(i + j) - m(i) * m(j) for j in k] for i in k])
    corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    assert corr[0, 2] == pytest.approx(3 / math.sqrt(15))
    assert corr[1, 3] == pytest.approx(12 / math.sqrt(192))
    w = np.linalg.eigvalsh(corr)[::-1]
    np.testing.assert_allclose(w, [1 + 3**0.5 / 2, 1 + 0.6**0.5, 1 - 0.6**0.5, 1 - 3**0.5 / 2])
    np.testing.assert_allclose(null_weights(4).numpy(), w, atol=1e-12)
    rng = np.random.default_rng(0)
    limit_95 = np.quantile(rng.standard_normal((1_000_000, 4)) ** 2 @ w, 0.95)
    assert limit_95 == pytest.approx(11.29, abs=0.05)
    # The statistic on 20,000 null samples of n = 1000 (Monte Carlo sd of its 95% point ≈ 0.1).
    g = torch.Generator().manual_seed(0)
    null = moments(torch.randn(1000, 20_000, generator=g, dtype=torch.float64))
    sim_95 = torch.quantile(null, 0.95).item()
    assert sim_95 == pytest.approx(limit_95, abs=0.4)
    assert abs(sim_95 - st.chi2(4).ppf(0.95)) > 1.2  # chi²(4)'s 9.49 is far off
    assert null.mean().item() == pytest.approx(4.0, abs=0.1)  # the mean is k_max either way


# ---- contract ----


@pytest.mark.parametrize("name", sorted(STATISTICS))
def test_batch_shape_and_columns(name: str) -> None:
    fn = STATISTICS[name]
    x = torch.randn(2, 3, 50, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = fn(x)
    assert out.shape == (2, 3, 4) and out.dtype == torch.float64
    for b, c, k in np.ndindex(2, 3, 4):
        single = fn(x[b, c, :, k : k + 1])
        torch.testing.assert_close(out[b, c, k], single[0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_matches_function(name: str) -> None:
    x = torch.randn(2, 64, 3)
    torch.testing.assert_close(MODULES[name](x), STATISTICS[name](x))


def test_modules_pass_options() -> None:
    x = torch.randn(64, 3)
    torch.testing.assert_close(Moments(k_max=6)(x), moments(x, k_max=6))
    torch.testing.assert_close(Entropy(window=3)(x), entropy(x, window=3))
    assert "k_max=6" in repr(Moments(k_max=6)) and "window=3" in repr(Entropy(window=3))


@pytest.mark.parametrize("name", sorted(STATISTICS))
def test_gradcheck(name: str) -> None:
    # Sorting is piecewise smooth: distinct, well-separated values keep the order fixed
    # under gradcheck's finite-difference steps.
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(12, 2, dtype=torch.float64, generator=gen).requires_grad_()
    assert torch.autograd.gradcheck(STATISTICS[name], (x,))


@pytest.mark.parametrize("name", sorted(STATISTICS))
def test_bfloat16_is_upcast(name: str) -> None:
    x = torch.randn(64, 3).bfloat16()
    out = STATISTICS[name](x)
    assert out.dtype == torch.float32 and out.shape == (3,)
    torch.testing.assert_close(out, STATISTICS[name](x.float()))


@pytest.mark.parametrize("name", sorted(STATISTICS))
def test_float32_close_to_float64(name: str) -> None:
    x = torch.from_numpy(sample(1000))
    torch.testing.assert_close(
        STATISTICS[name](x.float()).double(), STATISTICS[name](x), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("name", sorted(STATISTICS))
def test_constant_column_is_finite(name: str) -> None:
    x = torch.ones(32, 2, requires_grad=True)
    out = STATISTICS[name](x)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", sorted(STATISTICS))
def test_cuda_matches_cpu(name: str) -> None:
    x = torch.randn(2, 256, 3, dtype=torch.float64)
    torch.testing.assert_close(STATISTICS[name](x.cuda()).cpu(), STATISTICS[name](x))
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = STATISTICS[name](x.float().cuda())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.cpu(), STATISTICS[name](x.float()), rtol=1e-4, atol=1e-5)


# ---- which departures each statistic sees ----

SHAPE, LOCATION, SCALE = "shape", "location", "scale"
SEES = {
    "cramer_von_mises": (SHAPE, LOCATION, SCALE),
    "anderson_darling": (SHAPE, LOCATION, SCALE),
    # U² discounts the mean of Φ(x), but a shift also bends Φ(x): it sees location, less well.
    "watson": (SHAPE, LOCATION, SCALE),
    "jarque_bera": (SHAPE,),
    "extended_jarque_bera": (SHAPE, LOCATION, SCALE),
    "vcreg": (LOCATION, SCALE),
    "shapiro_wilk": (SHAPE,),
    "entropy": (SHAPE, LOCATION, SCALE),
    "moments": (SHAPE, LOCATION, SCALE),
    "nll": (SHAPE, LOCATION, SCALE),
}


def _alternatives(shape: tuple[int, ...], gen: torch.Generator) -> dict[str, list[torch.Tensor]]:
    return {
        SHAPE: [
            torch.empty(shape).exponential_(generator=gen) - 1,  # mean 0, variance 1
            (torch.rand(shape, generator=gen) - 0.5) * math.sqrt(12),  # mean 0, variance 1
        ],
        LOCATION: [torch.randn(shape, generator=gen) + 0.5],
        SCALE: [torch.randn(shape, generator=gen) * 1.5],
    }


@pytest.mark.parametrize("name", sorted(SEES))
def test_gaussian_scores_lower(name: str) -> None:
    # Median over 16 independent samples of n = 500 (one batched call), so that one unlucky
    # Gaussian draw (the moment statistic is chi²(4)-like: p = 0.01 gives 13) cannot decide.
    gen = torch.Generator().manual_seed(0)
    shape = (16, 500, 1)
    null = STATISTICS[name](torch.randn(shape, generator=gen)).median().item()
    alternatives = _alternatives(shape, gen)
    for kind in SEES[name]:
        for alt in alternatives[kind]:
            assert null < STATISTICS[name](alt).median().item(), kind


def test_invariant_statistics_ignore_location_and_scale() -> None:
    x = torch.randn(300, 2, dtype=torch.float64)
    for fn in (jarque_bera, shapiro_wilk):
        torch.testing.assert_close(fn(3 * x - 2), fn(x))


# ---- bad input ----


@pytest.mark.parametrize("name", sorted(STATISTICS))
@pytest.mark.parametrize(
    "bad",
    [
        torch.randn(10),
        torch.randn(1, 3),
        torch.full((10, 2), math.nan),
        torch.full((10, 2), math.inf),
    ],
    ids=["1d", "one_sample", "nan", "inf"],
)
def test_bad_input_raises(name: str, bad: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="x"):
        STATISTICS[name](bad)


@pytest.mark.parametrize("fn", [shapiro_wilk, vasicek_entropy, entropy])
def test_needs_three_samples(fn) -> None:
    with pytest.raises(ValueError, match="N >= 3"):
        fn(torch.randn(2, 3))


@pytest.mark.parametrize("k_max", [0, -1, 1.5, True])
def test_bad_k_max(k_max) -> None:
    with pytest.raises(ValueError, match="k_max"):
        moments(torch.randn(10, 2), k_max=k_max)
    with pytest.raises(ValueError, match="k_max"):
        Moments(k_max=k_max)


@pytest.mark.parametrize("window", [0, -2, 2.0, 5])
def test_bad_window(window) -> None:
    x = torch.randn(10, 2)  # window=5 breaks 2 * window < N
    for fn in (vasicek_entropy, entropy):
        with pytest.raises(ValueError, match="window"):
            fn(x, window=window)
    if window != 5:
        with pytest.raises(ValueError, match="window"):
            Entropy(window=window)
