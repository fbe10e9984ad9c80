"""Kernel statistics BHEP, HZ, BHEP_M, HV, COMB: closed forms against quadrature of their
defining integrals, the (*, N, D) -> (*) contract, preferences, gradients and input checks."""

from __future__ import annotations

import math

import pytest
import torch

from lejepa_viz.multivariate import (
    BHEP,
    BHEP_M,
    COMB,
    HV,
    HZ,
    bhep,
    bhep_m,
    comb,
    hv,
    hz,
    hz_bandwidth,
)

STATISTICS = [bhep, hz, bhep_m, hv, comb]


def _grid(D: int, half_width: float = 12.0, step: float = 0.05) -> tuple[torch.Tensor, float]:
    """Tensor-product grid ``(G, D)`` on ``[-half_width, half_width]^D`` and its cell volume.

    Every integrand decays like a Gaussian, so the plain (trapezoid) sum converges
    exponentially fast in 1/step and the truncation error at the ends is below 1e-14.
    """
    axis = torch.arange(-half_width, half_width + step / 2, step, dtype=torch.float64)
    t = torch.cartesian_prod(*[axis] * D).reshape(-1, D)
    return t, step**D


def _bhep_integrand(t, x, beta):
    phase = t @ x.T  # (G, N)
    re, im = phase.cos().mean(-1), phase.sin().mean(-1)
    t2 = t.square().sum(-1)
    weight = (2 * math.pi * beta**2) ** (-t.shape[1] / 2) * torch.exp(-t2 / (2 * beta**2))
    return ((re - torch.exp(-t2 / 2)).square() + im.square()) * weight


def _bhep_m_integrand(t, x, beta):
    t2 = t.square().sum(-1)
    mgf = torch.exp(t @ x.T).mean(-1)
    return (mgf - torch.exp(t2 / 2)).square() * torch.exp(-beta * t2)


def _hv_integrand(t, x, gamma):
    e = torch.exp(t @ x.T)  # (G, N)
    residual = (x.T @ e.T).T / x.shape[0] - t * e.mean(-1, keepdim=True)  # ∇M_N - t M_N
    return residual.square().sum(-1) * torch.exp(-gamma * t.square().sum(-1))


def _comb_integrand(t, x, gamma):
    phase = t @ x.T
    density = (gamma / math.pi) ** (t.shape[1] / 2) * torch.exp(-gamma * t.square().sum(-1))
    return (phase.cos().mean(-1) * phase.exp().mean(-1) - 1) * density


def _quadrature(name: str, x: torch.Tensor, param: float | None) -> float:
    N, D = x.shape
    t, volume = _grid(D)
    if name == "hz":
        name, param = "bhep", hz_bandwidth(N, D)
    integrand = {"bhep": _bhep_integrand, "bhep_m": _bhep_m_integrand, "hv": _hv_integrand}
    if name == "comb":
        return N * (_comb_integrand(t, x, param).sum().item() * volume) ** 2
    return N * integrand[name](t, x, param).sum().item() * volume


CLOSED_FORM_CASES = [
    (bhep, "beta", 0.7),
    (bhep, "beta", 1.5),
    (hz, None, None),
    (bhep_m, "beta", 2.5),
    (bhep_m, "beta", 4.0),
    (hv, "gamma", 2.5),
    (hv, "gamma", 5.0),
    (comb, "gamma", 0.75),
    (comb, "gamma", 1.5),
]


@pytest.mark.parametrize("D", [1, 2])
@pytest.mark.parametrize("stat, key, param", CLOSED_FORM_CASES)
def test_closed_form_matches_quadrature_of_the_integral(stat, key, param, D):
    x = torch.randn(7, D, generator=torch.Generator().manual_seed(10 + D), dtype=torch.float64)
    kwargs = {} if key is None else {key: param}
    closed = stat(x, **kwargs).item()
    numeric = _quadrature(stat.__name__, x, param)
    assert closed == pytest.approx(numeric, rel=1e-9)  # observed: 1e-12 or better


@pytest.mark.parametrize("stat", STATISTICS)
def test_leading_batch_dims(stat):
    x = torch.randn(2, 3, 50, 4, generator=torch.Generator().manual_seed(0))
    out = stat(x)
    assert out.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(out[i, j], stat(x[i, j]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "module, stat", [(BHEP(), bhep), (HZ(), hz), (BHEP_M(), bhep_m), (HV(), hv), (COMB(), comb)]
)
def test_module_wraps_function(module, stat):
    x = torch.randn(3, 40, 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(module(x), stat(x))


def _samples(seed: int, N: int = 400, D: int = 6) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(N, D, generator=g)
    return {
        "gauss": z,
        "skewed": torch.empty(N, D).exponential_(generator=g) - 1,  # mean 0, covariance I
        "shifted": z + 0.5,
        "wide": 1.5 * z,
        "narrow": 0.5 * z,
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("stat", STATISTICS)
def test_standard_normal_scores_lowest(stat, seed):
    s = _samples(seed)
    gauss = stat(s["gauss"])
    assert torch.isfinite(gauss)
    # COMB cannot see the covariance of a centred Gaussian (see test_comb_is_blind_to_scale).
    others = ["skewed", "shifted"] if stat is comb else ["skewed", "shifted", "wide", "narrow"]
    for name in others:
        assert gauss < stat(s[name]), name


def test_comb_is_blind_to_scale():
    s = _samples(0)
    assert comb(s["narrow"]) < comb(s["gauss"])  # documented: Re φ · M = 1 for every N(0, σ²I)


@pytest.mark.parametrize("stat", STATISTICS)
def test_non_negative(stat):
    g = torch.Generator().manual_seed(3)
    cases = [
        torch.randn(20, 8, 2, generator=g),
        torch.randn(20, 30, 5, generator=g) * 0.1,
        torch.zeros(2, 3),
        torch.ones(5, 2).cumsum(0) * 1e-4,
    ]
    for x in cases:
        for dtype in (torch.float32, torch.float64):
            assert (stat(x.to(dtype)) >= 0).all()


@pytest.mark.parametrize("stat", STATISTICS)
def test_gradcheck(stat):
    x = 0.7 * torch.randn(2, 5, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    assert torch.autograd.gradcheck(stat, (x.requires_grad_(),))


@pytest.mark.parametrize("stat", STATISTICS)
def test_bf16_input_is_upcast(stat):
    x = torch.randn(3, 64, 4, generator=torch.Generator().manual_seed(5)).to(torch.bfloat16)
    out = stat(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, stat(x.float()))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.testing.assert_close(stat(x), out)


@pytest.mark.parametrize("stat", STATISTICS)
@pytest.mark.parametrize(
    "x",
    [
        torch.randn(10),
        torch.randn(1, 3),
        torch.tensor([[0.0, 1.0], [float("nan"), 0.0]]),
        torch.tensor([[0.0, 1.0], [float("inf"), 0.0]]),
    ],
    ids=["1-D", "N=1", "nan", "inf"],
)
def test_bad_input_raises(stat, x):
    with pytest.raises(ValueError, match="x"):
        stat(x)


@pytest.mark.parametrize(
    "stat, key, value",
    [
        (bhep, "beta", 0.0),
        (bhep, "beta", -1.0),
        (bhep_m, "beta", 2.0),
        (bhep_m, "beta", -3.0),
        (hv, "gamma", 2.0),
        (hv, "gamma", float("inf")),
        (comb, "gamma", 0.5),
    ],
)
def test_bad_parameter_raises(stat, key, value):
    with pytest.raises(ValueError, match=key):
        stat(torch.randn(10, 2), **{key: value})


@pytest.mark.parametrize(
    "module, key, value",
    [(BHEP, "beta", 0.0), (BHEP_M, "beta", 1.5), (HV, "gamma", 1.0), (COMB, "gamma", 0.0)],
)
def test_bad_module_parameter_raises(module, key, value):
    with pytest.raises(ValueError, match=key):
        module(**{key: value})


def test_hz_bandwidth():
    assert hz_bandwidth(400, 6) == pytest.approx(((13 * 400 / 4) ** 0.1) / math.sqrt(2))
    with pytest.raises(ValueError, match="n"):
        hz_bandwidth(1, 3)
    with pytest.raises(ValueError, match="d"):
        hz_bandwidth(10, 0)
