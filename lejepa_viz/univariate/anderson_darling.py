"""Anderson–Darling statistic: the Cramér–von Mises distance between the empirical CDF and Φ,
weighted by 1 / (Φ(1 - Φ)) so that disagreements in the tails count as much as those in
the centre. Against the fully specified N(0, 1) it sees location, scale and shape.
"""

from __future__ import annotations

import torch

from .._checks import as_samples
from .base import UnivariateTest


def _anderson_darling(x: torch.Tensor) -> torch.Tensor:
    """:func:`anderson_darling` of columns already validated and sorted, ``(*, N, K)``."""
    n = x.shape[-2]
    i = torch.arange(1, n + 1, dtype=x.dtype, device=x.device).unsqueeze(-1)  # (N, 1)
    log_cdf = torch.special.log_ndtr(x)  # log Φ(x_(i))
    log_sf = torch.special.log_ndtr(-x.flip(-2))  # log(1 - Φ(x_(n+1-i)))
    return -n - ((2 * i - 1) * (log_cdf + log_sf)).sum(-2) / n


def anderson_darling(x: torch.Tensor) -> torch.Tensor:
    """Anderson–Darling statistic of each column against N(0, 1).

    ``A² = -n - (1/n) Σ_i (2i - 1) [log Φ(x_(i)) + log(1 - Φ(x_(n+1-i)))]`` with ``x_(i)``
    the sorted column; ``log Φ(x)`` and ``log(1 - Φ(x)) = log Φ(-x)`` come from ``log_ndtr``
    so far tails stay finite. Equals the ``"ad"`` statistic of ``scipy.stats.goodness_of_fit``
    with ``known_params={"loc": 0, "scale": 1}``.

    Args:
        x: samples, shape ``(*, N, K)``.

    Returns:
        ``(*, K)``; lower is more like N(0, 1). Differentiable.

    Reference:
        Anderson & Darling (1954), A test of goodness of fit, JASA 49(268).

    Example:
        >>> anderson_darling(torch.randn(100, 3)).shape
        torch.Size([3])
        >>> round(anderson_darling(torch.tensor([[-1.0], [0.0], [1.0]])).item(), 4)
        0.1895
    """
    return _anderson_darling(torch.sort(as_samples(x), dim=-2).values)


class AndersonDarling(UnivariateTest):
    """Anderson–Darling test against N(0, 1), ``(*, N, K) -> (*, K)``; see :func:`anderson_darling`.

    Args:
        eps: accepted and stored, as in the original release, which does not read it either.
        sorted: ``True`` promises columns sorted ascending along N; the sort is skipped.

    Example:
        >>> AndersonDarling()(torch.randn(2, 100, 3)).shape
        torch.Size([2, 3])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _anderson_darling(self.prepare_data(x))
