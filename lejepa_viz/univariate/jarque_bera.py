"""Jarque–Bera statistic: squared z-scores of the sample skewness and excess kurtosis. It is
invariant to location and scale, so it sees only shape; ``ExtendedJarqueBera`` adds the
VCReg mean-and-variance terms (:mod:`lejepa_viz.univariate.vcreg`) to test against the fully
specified N(0, 1), as in the original LeJEPA release.
"""

from __future__ import annotations

import torch

from .._checks import as_samples
from .base import FunctionTest
from .vcreg import _vcreg


def _jarque_bera(x: torch.Tensor) -> torch.Tensor:
    n = x.shape[-2]
    d = x - x.mean(-2, keepdim=True)  # (*, N, K)
    m2 = d.square().mean(-2, keepdim=True)  # (*, 1, K)
    # Standardise before taking powers (no under/overflow of m2^{3/2}, m2²); a constant
    # column (m2 = 0, d = 0) gets S = 0, K = 0, JB = 3n/8, and finite gradients.
    z = d / torch.where(m2 > 0, m2, 1).sqrt()
    skew, kurt = z.pow(3).mean(-2), z.pow(4).mean(-2)  # (*, K)
    return n / 6 * (skew.square() + (kurt - 3).square() / 4)


def jarque_bera(x: torch.Tensor) -> torch.Tensor:
    """Jarque–Bera statistic of each column.

    ``JB = n/6 (S² + (K - 3)²/4)`` with the biased sample moments ``m_k = mean((x - x̄)^k)``,
    skewness ``S = m3 / m2^{3/2}`` and kurtosis ``K = m4 / m2²``; about chi²(2) under
    normality. Equals ``scipy.stats.jarque_bera(x).statistic``.

    Args:
        x: samples, shape ``(*, N, K)``.

    Returns:
        ``(*, K)``; lower is more Gaussian in shape (location and scale are ignored).
        Differentiable.

    Reference:
        Jarque & Bera (1980), Efficient tests for normality, homoscedasticity and serial
        independence of regression residuals, Economics Letters 6(3).

    Example:
        >>> jarque_bera(torch.randn(100, 3)).shape
        torch.Size([3])
        >>> round(jarque_bera(torch.tensor([[-1.0], [0.0], [1.0]])).item(), 3)
        0.281
    """
    return _jarque_bera(as_samples(x))


def extended_jarque_bera(x: torch.Tensor) -> torch.Tensor:
    """Extended Jarque–Bera statistic of each column against N(0, 1).

    ``EJB = VCReg + JB = n x̄²/s² + (n - 1)(s² - 1)²/2 + n/6 (S² + (K - 3)²/4)``
    (see :func:`~lejepa_viz.univariate.vcreg` and :func:`jarque_bera`): it penalises mean,
    variance, skewness and kurtosis; about chi²(4) under the null.

    Args:
        x: samples, shape ``(*, N, K)``.

    Returns:
        ``(*, K)``; lower is more like N(0, 1). Differentiable.

    Reference:
        Jarque & Bera (1980), Economics Letters 6(3); Balestriero & LeCun (2025), LeJEPA,
        arXiv:2511.08544.

    Example:
        >>> extended_jarque_bera(torch.randn(100, 3)).shape
        torch.Size([3])
    """
    x = as_samples(x)
    return _vcreg(x) + _jarque_bera(x)


class JarqueBera(FunctionTest):
    """Jarque–Bera test, ``(*, N, K) -> (*, K)``; see :func:`jarque_bera`.

    Example:
        >>> JarqueBera()(torch.randn(2, 100, 3)).shape
        torch.Size([2, 3])
    """

    statistic = staticmethod(jarque_bera)


class ExtendedJarqueBera(FunctionTest):
    """Extended Jarque–Bera test against N(0, 1), ``(*, N, K) -> (*, K)``; see
    :func:`extended_jarque_bera`.

    The original release standardises the skewness and kurtosis by the unbiased variance
    ``s²``; this uses the biased ``m2``, as scipy's Jarque–Bera does.

    Example:
        >>> ExtendedJarqueBera()(torch.randn(2, 100, 3)).shape
        torch.Size([2, 3])
    """

    statistic = staticmethod(extended_jarque_bera)
