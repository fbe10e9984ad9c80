"""VCReg statistic: squared z-scores of the sample mean and the sample variance against their
N(0, 1) values. It sees only location and scale (the first two moments), and is the
mean-and-variance part of the original LeJEPA release's ``ExtendedJarqueBera``
(:mod:`lejepa_viz.univariate.jarque_bera`).
"""

from __future__ import annotations

import torch

from .._checks import as_samples
from .base import FunctionTest


def _vcreg(x: torch.Tensor) -> torch.Tensor:
    """:func:`vcreg` on an already validated ``(*, N, K)`` tensor."""
    n = x.shape[-2]
    # A constant column has variance 0: floor it so the statistic stays finite.
    var = x.var(-2).clamp_min(torch.finfo(x.dtype).tiny ** 0.5)  # (*, K), unbiased
    return n * x.mean(-2).square() / var + (n - 1) * (var - 1).square() / 2


def vcreg(x: torch.Tensor) -> torch.Tensor:
    """Mean-and-variance statistic of each column against N(0, 1).

    ``VCReg = n x̄² / s² + (n - 1)(s² - 1)² / 2`` with ``s²`` the unbiased sample variance:
    the squared t-statistic of the mean plus the squared z-score of ``s²``, whose variance is
    ``2 / (n - 1)`` under N(0, 1); about chi²(2) under the null.

    Args:
        x: samples, shape ``(*, N, K)``.

    Returns:
        ``(*, K)``; lower is closer to mean 0 and variance 1. Differentiable.

    Reference:
        Bardes, Ponce & LeCun (2022), VICReg: Variance-invariance-covariance regularization
        for self-supervised learning, ICLR; Balestriero & LeCun (2025), LeJEPA,
        arXiv:2511.08544.

    Example:
        >>> vcreg(torch.randn(100, 3)).shape
        torch.Size([3])
        >>> round(vcreg(torch.tensor([[-1.0], [0.0], [1.0]])).item(), 4)
        0.0
    """
    return _vcreg(as_samples(x))


class VCReg(FunctionTest):
    """Mean-and-variance test against N(0, 1), ``(*, N, K) -> (*, K)``; see :func:`vcreg`.

    Example:
        >>> VCReg()(torch.randn(2, 100, 3)).shape
        torch.Size([2, 3])
    """

    statistic = staticmethod(vcreg)
