"""Henze–Zirkler statistic: the BHEP statistic (see :mod:`.bhep`) with the bandwidth β that
Henze and Zirkler chose from the sample size N and the dimension D. The classical HZ test first
standardises the sample (sample mean, inverse square root of the sample covariance) so that it
tests for *some* Gaussian; here the target is the fixed N(0, I_D) that LeJEPA trains towards, so
the data are used as they are.
"""

from __future__ import annotations

import math

import torch

from .._checks import as_samples, integer_at_least
from .base import MultivariateTest
from .bhep import bhep


def hz_bandwidth(n: int, d: int) -> float:
    """Henze–Zirkler bandwidth ``β = (1/√2) · ((2d + 1) n / 4)^{1/(d + 4)}``.

    Args:
        n: number of samples N, at least 2.
        d: dimension D, at least 1.

    Returns:
        β, the width of the Gaussian weight in :func:`~.bhep.bhep`.

    Example:
        >>> round(hz_bandwidth(400, 6), 4)
        1.4484
    """
    n = integer_at_least(n, 2, "n")
    d = integer_at_least(d, 1, "d")
    return ((2 * d + 1) * n / 4) ** (1 / (d + 4)) / math.sqrt(2)


def hz(x: torch.Tensor) -> torch.Tensor:
    """Henze–Zirkler statistic of each sample set against N(0, I_D), without standardisation.

    With ``β = hz_bandwidth(N, D)``, ``φ_N(t) = mean_j e^{i t·x_j}`` and
    ``w_β(t) = (2πβ²)^{-D/2} e^{-|t|²/(2β²)}``::

        T = N ∫ |φ_N(t) - e^{-|t|²/2}|² w_β(t) dt
          = N [ mean_{j,k} e^{-β²|x_j - x_k|²/2}
                - 2 (1 + β²)^{-D/2} mean_j e^{-β²|x_j|²/(2(1 + β²))}
                + (1 + 2β²)^{-D/2} ]

    The classical test applies this to the standardised sample; this one does not (the target
    is N(0, I), so a wrong mean or covariance must count against the sample).

    Args:
        x: samples, shape ``(*, N, D)``.

    Returns:
        ``(*)``; non-negative, lower is more like N(0, I).

    Reference:
        Henze & Zirkler (1990), A class of invariant consistent tests for multivariate
        normality, Communications in Statistics – Theory and Methods 19(10).

    Example:
        >>> _ = torch.manual_seed(0)
        >>> x = torch.randn(400, 3)
        >>> bool(hz(x) < hz(2 * x))
        True
    """
    x = as_samples(x)
    return bhep(x, hz_bandwidth(*x.shape[-2:]))


class HZ(MultivariateTest):
    """Henze–Zirkler test against N(0, I_D), ``(*, N, D) -> (*)``; see :func:`hz`.

    Example:
        >>> HZ()(torch.randn(4, 100, 3)).shape
        torch.Size([4])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return hz(x)

    @staticmethod
    def compute_bandwidth(n_samples: int, n_dims: int) -> float:
        """The original release's name (and keywords) for :func:`hz_bandwidth`, the same β.

        (The original's docstring says β shrinks as N grows; the formula it implements, like
        this one, grows as N^{1/(D+4)}.)

        Example:
            >>> HZ.compute_bandwidth(n_samples=400, n_dims=6) == hz_bandwidth(400, 6)
            True
        """
        return hz_bandwidth(n_samples, n_dims)
