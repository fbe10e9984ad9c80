"""BHEP statistic (Baringhaus–Henze–Epps–Pulley): N times the Gaussian-weighted L2 distance
between the empirical characteristic function of a D-dimensional sample and e^{-|t|²/2}, the
characteristic function of N(0, I_D). The integral has a closed form in pairwise distances,
so the statistic costs one (N, N) Gram matrix per sample set: exact, O(N²·D), differentiable.
"""

from __future__ import annotations

import torch

from .._checks import as_samples, positive
from .base import WeightedTest


def bhep(x: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """BHEP statistic of each sample set against N(0, I_D).

    Defining integral, with ``φ_N(t) = mean_j e^{i t·x_j}`` and the N(0, β² I) density as weight
    ``w_β(t) = (2πβ²)^{-D/2} e^{-|t|²/(2β²)}``::

        T = N ∫ |φ_N(t) - e^{-|t|²/2}|² w_β(t) dt

    Closed form::

        T = N [ mean_{j,k} e^{-β²|x_j - x_k|²/2}
                - 2 (1 + β²)^{-D/2} mean_j e^{-β²|x_j|²/(2(1 + β²))}
                + (1 + 2β²)^{-D/2} ]

    The data are not standardised: the target is N(0, I), not any Gaussian.

    Args:
        x: samples, shape ``(*, N, D)``.
        beta: width of the weight; larger values look at higher frequencies.

    Returns:
        ``(*)``; non-negative, lower is more like N(0, I).

    Reference:
        Henze & Wagner (1997), A new approach to the BHEP tests for multivariate normality,
        Journal of Multivariate Analysis 62(1).

    Example:
        >>> _ = torch.manual_seed(0)
        >>> x = torch.randn(2, 400, 3)
        >>> bhep(x).shape, bool(bhep(x[0]) < bhep(x[0] + 1.0))
        (torch.Size([2]), True)
    """
    beta = positive(beta, "beta")
    x = as_samples(x)
    N, D = x.shape[-2:]
    b2 = beta * beta
    with torch.autocast(device_type=x.device.type, enabled=False):
        sq = x.square().sum(-1)  # (*, N) |x_j|²
        dist2 = sq.unsqueeze(-1) + sq.unsqueeze(-2) - 2 * x @ x.mT  # (*, N, N) |x_j - x_k|²
        pair = torch.exp(-0.5 * b2 * dist2).mean((-2, -1))
        cross = torch.exp(-0.5 * b2 / (1 + b2) * sq).mean(-1)
        stat = pair - 2 * (1 + b2) ** (-D / 2) * cross + (1 + 2 * b2) ** (-D / 2)
    return N * stat.clamp_min(0)  # rounding can dip a hair below 0


class BHEP(WeightedTest):
    """BHEP test against N(0, I_D), ``(*, N, D) -> (*)``; see :func:`bhep`.

    Args:
        beta: width of the Gaussian weight on the frequencies.

    Example:
        >>> BHEP(beta=1.0)(torch.randn(4, 100, 3)).shape
        torch.Size([4])
    """

    parameter, statistic, check = (
        "beta",
        staticmethod(bhep),
        staticmethod(lambda beta: positive(beta, "beta")),
    )

    def __init__(self, beta: float = 1.0):
        super().__init__(beta)
