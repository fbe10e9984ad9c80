"""Simulations of the univariate statistics: null distributions, power and cost.

Every statistic of :mod:`lejepa_viz.univariate` maps samples ``(*, N, K)`` to ``(*, K)``, so a
Monte Carlo study is one call on ``K = reps`` columns. Here are the pieces that the notebook
``02_statistics_compared.ipynb`` (and anyone comparing a new statistic) needs: seeded samples
from the null N(0, 1) and from shape, location and scale alternatives (:func:`draw`), the
simulated null distribution and its critical value, rejection rates and power curves
calibrated by simulation (:func:`power_curves`), the time of one call (:func:`time_per_call`),
and the distance of a sample to N(0, 1) that judges gradient flows (:func:`normal_w1`; the
flows themselves are :func:`lejepa_viz.toys.descent.statistic_flow`).
"""

from __future__ import annotations

import math
import statistics as _stats
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from .._checks import as_samples, integer_at_least
from ..univariate import (
    anderson_darling,
    cramer_von_mises,
    entropy,
    epps_pulley,
    extended_jarque_bera,
    jarque_bera,
    moments,
    nll,
    shapiro_wilk,
    vcreg,
    watson,
)

Statistic = Callable[[torch.Tensor], torch.Tensor]  # (*, N, K) -> (*, K)

#: Every univariate statistic of the package, by name (each ``(*, N, K) -> (*, K)``).
STATISTICS: dict[str, Statistic] = {
    "EppsPulley": epps_pulley,
    "CramerVonMises": cramer_von_mises,
    "AndersonDarling": anderson_darling,
    "Watson": watson,
    "ShapiroWilk": shapiro_wilk,
    "JarqueBera": jarque_bera,
    "ExtendedJarqueBera": extended_jarque_bera,
    "VCReg": vcreg,
    "Moments": moments,
    "Entropy": entropy,
    "NLL": nll,
}

LOCATION_SHIFT = 0.25  # "location": N(0.25, 1)
SCALE_FACTOR = 1.25  # "scale": N(0, 1.25²)

#: What :func:`draw` can sample. All but "location", "scale" and "bimodal" have mean 0 and
#: variance 1, so they differ from N(0, 1) in shape only.
DISTRIBUTIONS = ("normal", "student_t5", "laplace", "uniform", "bimodal", "location", "scale")


def _mix(seed: int, *tags: int) -> int:
    """A 31-bit seed mixed from ``(seed, *tags)`` through ``numpy.random.SeedSequence``."""
    return int(np.random.SeedSequence([seed, *tags]).generate_state(1)[0]) >> 1


def draw(
    name: str, n: int, k: int = 1, *, seed: int = 0, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """``k`` independent samples of size ``n`` from a named distribution, shape ``(n, k)``.

    ``"normal"`` is the null N(0, 1). Shape alternatives with mean 0 and variance 1:
    ``"student_t5"`` (Student t with 5 degrees of freedom over sqrt(5/3), heavy tails),
    ``"laplace"`` (over sqrt(2)) and ``"uniform"`` (on [-sqrt(3), sqrt(3)], light tails).
    ``"location"`` is N(0.25, 1), ``"scale"`` is N(0, 1.25²), and ``"bimodal"`` is the
    equal mixture of N(-1.5, 0.3²) and N(1.5, 0.3²) (a start for a gradient flow).
    Drawn on the CPU from a generator seeded by ``seed``, so the same on every machine.

    Example:
        >>> x = draw("uniform", 1000, 3, seed=1)
        >>> x.shape, bool(x.abs().max() <= 3 ** 0.5)
        (torch.Size([1000, 3]), True)
    """
    if name not in DISTRIBUTIONS:
        raise ValueError(f"name must be one of {DISTRIBUTIONS}, got {name!r}")
    n = integer_at_least(n, 1, "n")
    k = integer_at_least(k, 1, "k")
    g = torch.Generator().manual_seed(_mix(integer_at_least(seed, 0, "seed")))
    shape = (n, k)
    if name == "normal":
        x = torch.randn(shape, generator=g, dtype=torch.float64)
    elif name == "student_t5":
        z = torch.randn(shape, generator=g, dtype=torch.float64)
        chi2 = torch.randn((5, *shape), generator=g, dtype=torch.float64).square().sum(0)
        x = z / torch.sqrt(chi2 / 5) / math.sqrt(5 / 3)
    elif name == "laplace":
        e = torch.empty((2, *shape), dtype=torch.float64).exponential_(generator=g)
        x = (e[0] - e[1]) / math.sqrt(2)
    elif name == "uniform":
        x = (torch.rand(shape, generator=g, dtype=torch.float64) - 0.5) * math.sqrt(12)
    elif name == "bimodal":
        sign = torch.randint(0, 2, shape, generator=g).to(torch.float64) * 2 - 1
        x = 1.5 * sign + 0.3 * torch.randn(shape, generator=g, dtype=torch.float64)
    elif name == "location":
        x = torch.randn(shape, generator=g, dtype=torch.float64) + LOCATION_SHIFT
    else:  # scale
        x = torch.randn(shape, generator=g, dtype=torch.float64) * SCALE_FACTOR
    return x.to(dtype)


def simulate(
    statistic: Statistic, name: str, n: int, reps: int = 1000, *, seed: int = 0
) -> torch.Tensor:
    """Values of ``statistic`` on ``reps`` samples of size ``n`` from ``name`` (float64).

    The ``reps`` samples are the columns of one ``(n, reps)`` draw (see :func:`draw`),
    evaluated in batches of at most ~2²⁰ numbers, without gradients.

    Returns:
        ``(reps,)`` statistics.

    Example:
        >>> simulate(STATISTICS["JarqueBera"], "normal", 50, reps=200).shape
        torch.Size([200])
    """
    n = integer_at_least(n, 2, "n")
    reps = integer_at_least(reps, 1, "reps")
    x = draw(name, n, reps, seed=seed)  # (n, reps)
    batch = max(1, (1 << 20) // n)
    with torch.no_grad():
        out = [statistic(x[:, i : i + batch]).reshape(-1) for i in range(0, reps, batch)]
    return torch.cat(out).to(torch.float64)


def null_distribution(
    statistic: Statistic, n: int, reps: int = 1000, *, seed: int = 0
) -> torch.Tensor:
    """Simulated null distribution: ``statistic`` on ``reps`` N(0, 1) samples of size ``n``.

    Returns:
        ``(reps,)`` float64 values, unsorted.

    Example:
        >>> null = null_distribution(STATISTICS["VCReg"], 100, reps=500)
        >>> null.shape, bool(null.min() >= 0)
        (torch.Size([500]), True)
    """
    return simulate(statistic, "normal", n, reps, seed=seed)


def critical_value(null: torch.Tensor, alpha: float = 0.05) -> float:
    """The ``1 - alpha`` quantile of simulated null values ``(reps,)``: reject above it.

    Example:
        >>> critical_value(torch.arange(101.0), alpha=0.1)
        90.0
    """
    if not isinstance(null, torch.Tensor) or null.ndim != 1 or null.numel() < 2:
        raise ValueError(f"null must be a 1-D tensor of >= 2 values, got {null!r:.60}")
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")
    return torch.quantile(null.to(torch.float64), 1 - alpha).item()


def rejection_rate(
    statistic: Statistic, name: str, n: int, critical: float, reps: int = 1000, *, seed: int = 1
) -> float:
    """Fraction of ``reps`` samples of size ``n`` from ``name`` whose statistic exceeds
    ``critical``: the power of the test (its size when ``name`` is ``"normal"``).

    Example:
        >>> crit = critical_value(null_distribution(STATISTICS["VCReg"], 64, 500))
        >>> rejection_rate(STATISTICS["VCReg"], "scale", 64, crit, 500) > 0.5
        True
    """
    values = simulate(statistic, name, n, reps, seed=seed)
    return (values > critical).double().mean().item()


def power_curves(
    statistics: Mapping[str, Statistic],
    alternatives: Sequence[str],
    ns: Sequence[int],
    reps: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict:
    """Power of each statistic against each alternative at each sample size, every test
    calibrated by simulation to size ``alpha``.

    For each ``n`` the critical value of each statistic is the ``1 - alpha`` quantile of
    ``reps`` null values; the alternatives are then drawn from independent streams, the
    same samples for every statistic, so the curves differ by the statistic only.

    Args:
        statistics: name → statistic ``(*, N, K) -> (*, K)``, e.g. :data:`STATISTICS`.
        alternatives: names from :data:`DISTRIBUTIONS`; ``"normal"`` gives the size.
        ns: sample sizes, each >= 2.
        reps: Monte Carlo repetitions for the null and for each alternative.
        alpha: level of the tests, in (0, 1).
        seed: seed of every draw.

    Returns:
        A JSON-serialisable dict ``{"ns", "alpha", "reps", "critical": {stat: [per n]},
        "power": {stat: {alternative: [per n]}}}``.

    Example:
        >>> out = power_curves({"VCReg": STATISTICS["VCReg"]}, ["scale"], [32, 128], reps=300)
        >>> out["power"]["VCReg"]["scale"][0] < out["power"]["VCReg"]["scale"][1]
        True
    """
    if not statistics:
        raise ValueError("statistics must name at least one statistic")
    for alt in alternatives:
        if alt not in DISTRIBUTIONS:
            raise ValueError(f"alternatives must be in {DISTRIBUTIONS}, got {alt!r}")
    ns = [integer_at_least(n, 2, "n") for n in ns]
    if not ns:
        raise ValueError("ns must hold at least one sample size")
    out = {"ns": ns, "alpha": alpha, "reps": reps, "critical": {}, "power": {}}
    for name, stat in statistics.items():
        out["critical"][name] = []
        out["power"][name] = {alt: [] for alt in alternatives}
        for n in ns:
            null_seed = _mix(seed, n, 0)
            crit = critical_value(null_distribution(stat, n, reps, seed=null_seed), alpha)
            out["critical"][name].append(crit)
            for j, alt in enumerate(alternatives):
                rate = rejection_rate(stat, alt, n, crit, reps, seed=_mix(seed, n, j + 1))
                out["power"][name][alt].append(rate)
    return out


def time_per_call(
    statistic: Statistic,
    n: int,
    k: int,
    *,
    backward: bool = False,
    repeats: int = 5,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> float:
    """Median wall time in seconds of one call of ``statistic`` on ``(n, k)`` N(0, 1) samples
    (plus the backward pass of its sum when ``backward``), after one warm-up call.

    Depends on the machine and its thread count: a number to compare, not to check.

    Example:
        >>> time_per_call(STATISTICS["VCReg"], 128, 4, repeats=2) > 0
        True
    """
    n = integer_at_least(n, 2, "n")
    repeats = integer_at_least(repeats, 1, "repeats")
    x = draw("normal", n, k, dtype=dtype).to(device).requires_grad_(backward)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)

    def call() -> None:
        with torch.set_grad_enabled(backward):
            value = statistic(x)
            if backward:
                value.sum().backward()
                x.grad = None

    call()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        call()
        sync()
        times.append(time.perf_counter() - start)
    return _stats.median(times)


def normal_w1(x: torch.Tensor) -> torch.Tensor:
    """Distance of each column to N(0, 1): ``mean_i |x_(i) - Φ⁻¹((i - 1/2) / n)|``.

    The 1-Wasserstein distance between the sample and the ``n`` normal quantiles (for two
    samples of equal size, W1 is the mean absolute difference of the sorted values). It
    does not depend on any of the statistics it judges.

    Args:
        x: samples ``(*, N, K)``.

    Returns:
        ``(*, K)`` distances, 0 only for a sample that sits exactly on the normal quantiles.

    Example:
        >>> q = torch.distributions.Normal(0.0, 1.0).icdf((torch.arange(4.0) + 0.5) / 4)
        >>> round(normal_w1(q[:, None]).item(), 6)
        0.0
    """
    x = as_samples(x, min_samples=1)
    n = x.shape[-2]
    p = (torch.arange(n, dtype=torch.float64, device=x.device) + 0.5) / n
    q = (math.sqrt(2) * torch.special.erfinv(2 * p - 1)).to(x.dtype)  # Φ⁻¹(p), (N,)
    return (x.sort(dim=-2).values - q[:, None]).abs().mean(-2)
