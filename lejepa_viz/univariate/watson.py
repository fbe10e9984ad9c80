"""Watson's U² statistic: Cramér–von Mises with the mean of the CDF values recentred, so the
statistic does not depend on where the CDF is "cut" (it was built for data on a circle). On
the line against N(0, 1) it keeps the sensitivity of W² to scale and shape; a shift of
location mostly moves the mean of Φ(x), which U² discounts, so it sees location less well.
"""

from __future__ import annotations

import torch

from .._checks import as_samples
from .base import UnivariateTest
from .cramer_von_mises import _cvm_from_cdf


def _watson(x: torch.Tensor) -> torch.Tensor:
    """:func:`watson` of columns already validated and sorted, ``(*, N, K)``."""
    u = torch.special.ndtr(x)  # (*, N, K)
    return _cvm_from_cdf(u) - x.shape[-2] * (u.mean(-2) - 0.5).square()


def watson(x: torch.Tensor) -> torch.Tensor:
    """Watson's U² statistic of each column against N(0, 1).

    ``U² = W² - n (mean_i Φ(x_i) - 1/2)²`` with ``W²`` the Cramér–von Mises statistic
    (:func:`~lejepa_viz.univariate.cramer_von_mises`).

    Args:
        x: samples, shape ``(*, N, K)``.

    Returns:
        ``(*, K)``; lower is more like N(0, 1). Differentiable.

    Reference:
        Watson (1961), Goodness-of-fit tests on a circle, Biometrika 48(1/2);
        Stephens (1974), EDF statistics for goodness of fit and some comparisons, JASA 69(347).

    Example:
        >>> watson(torch.randn(100, 3)).shape
        torch.Size([3])
        >>> round(watson(torch.tensor([[-1.0], [0.0], [1.0]])).item(), 4)
        0.0279
    """
    return _watson(torch.sort(as_samples(x), dim=-2).values)


class Watson(UnivariateTest):
    """Watson's U² test against N(0, 1), ``(*, N, K) -> (*, K)``; see :func:`watson`.

    Args:
        eps: accepted and stored, as in the original release, which does not read it either.
        sorted: ``True`` promises columns sorted ascending along N; the sort is skipped.

    The original release returns ``(U² - 1/(12n)) / n``, from its rescaled Cramér–von Mises
    (see :class:`~.cramer_von_mises.CramerVonMises`); this is ``U²``.

    Example:
        >>> Watson()(torch.randn(2, 100, 3)).shape
        torch.Size([2, 3])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _watson(self.prepare_data(x))
