"""Cramér–von Mises statistic: the integrated squared distance between the empirical CDF of
each column and Φ, the CDF of the fully specified N(0, 1). It weighs every part of the
distribution equally (unlike Anderson–Darling, which stresses the tails) and is the base of
Watson's U² (:mod:`lejepa_viz.univariate.watson`).
"""

from __future__ import annotations

import torch

from .._checks import as_samples
from .base import UnivariateTest


def _cvm_from_cdf(u: torch.Tensor) -> torch.Tensor:
    """``W²`` from sorted CDF values ``u = Φ(x_(i))`` of shape ``(*, N, K)``; returns ``(*, K)``."""
    n = u.shape[-2]
    i = torch.arange(1, n + 1, dtype=u.dtype, device=u.device).unsqueeze(-1)  # (N, 1)
    return 1 / (12 * n) + (u - (2 * i - 1) / (2 * n)).square().sum(-2)


def cramer_von_mises(x: torch.Tensor) -> torch.Tensor:
    """Cramér–von Mises statistic of each column against N(0, 1).

    ``W² = 1/(12n) + Σ_i (Φ(x_(i)) - (2i - 1)/(2n))²`` with ``x_(1) <= ... <= x_(n)`` the
    sorted column, equal to ``n ∫ (F_n(t) - Φ(t))² dΦ(t)`` and to
    ``scipy.stats.cramervonmises(x, "norm").statistic``.

    Args:
        x: samples, shape ``(*, N, K)``.

    Returns:
        ``(*, K)``; lower is more like N(0, 1). Differentiable.

    Reference:
        Anderson (1962), On the distribution of the two-sample Cramér–von Mises criterion,
        Ann. Math. Statist. 33(3); Stephens (1974), EDF statistics for goodness of fit and
        some comparisons, JASA 69(347).

    Example:
        >>> cramer_von_mises(torch.randn(100, 3)).shape
        torch.Size([3])
        >>> round(cramer_von_mises(torch.tensor([[-1.0], [0.0], [1.0]])).item(), 4)
        0.0279
    """
    x = as_samples(x)
    return _cvm_from_cdf(torch.special.ndtr(torch.sort(x, dim=-2).values))


class CramerVonMises(UnivariateTest):
    """Cramér–von Mises test against N(0, 1), ``(*, N, K) -> (*, K)``; see :func:`cramer_von_mises`.

    Args:
        eps: accepted and stored, as in the original release, which does not read it either.
        sorted: ``True`` promises columns sorted ascending along N; the sort is skipped.

    The original release returns ``(W² - 1/(12n)) / n`` (a mean where scipy sums, without the
    ``1/(12n)``); this is scipy's ``W²``.

    Example:
        >>> CramerVonMises()(torch.randn(2, 100, 3)).shape
        torch.Size([2, 3])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _cvm_from_cdf(torch.special.ndtr(self.prepare_data(x)))
