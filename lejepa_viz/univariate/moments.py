"""Moment statistic: the sum of the squared z-scores of the first ``k_max`` raw sample moments
against those of N(0, 1). With ``k_max = 4`` it sees location, scale, skewness and kurtosis;
higher moments add tail sensitivity but grow noisy fast (the variance of the k-th moment
is ``m_{2k} - m_k²``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import as_samples, integer_at_least


def normal_moment(k: int) -> float:
    """Raw moment ``E[Z^k]`` of N(0, 1): ``(k - 1)!!`` for even ``k``, 0 for odd ``k``.

    Example:
        >>> [normal_moment(k) for k in range(1, 9)]
        [0.0, 1.0, 0.0, 3.0, 0.0, 15.0, 0.0, 105.0]
    """
    return 0.0 if k % 2 else float(math.prod(range(k - 1, 0, -2)))


def moments(x: torch.Tensor, k_max: int = 4) -> torch.Tensor:
    """Moment statistic of each column against N(0, 1).

    ``M = n Σ_{k=1}^{k_max} (mean(x^k) - m_k)² / (m_{2k} - m_k²)`` with ``m_k`` the raw moments
    of N(0, 1) (:func:`normal_moment`): each term is the squared z-score of the k-th sample
    moment, so ``M`` is about chi²(k_max) under the null for large n.

    Args:
        x: samples, shape ``(*, N, K)``.
        k_max: highest moment used, an integer >= 1.

    Returns:
        ``(*, K)``; lower is more like N(0, 1). Differentiable.

    Reference:
        Kendall & Stuart (1977), The Advanced Theory of Statistics, Vol. 1 (sampling variance
        of moments); Balestriero & LeCun (2025), LeJEPA, arXiv:2511.08544.

    Example:
        >>> moments(torch.randn(100, 3)).shape
        torch.Size([3])
        >>> round(moments(torch.tensor([[-1.0], [1.0]]), k_max=2).item(), 4)
        0.0
    """
    k_max = integer_at_least(k_max, 1, "k_max")
    x = as_samples(x)
    n = x.shape[-2]
    power, stat = torch.ones_like(x), x.new_zeros(x.shape[:-2] + x.shape[-1:])  # (*, K)
    for k in range(1, k_max + 1):
        power = power * x  # x^k, (*, N, K)
        m_k, m_2k = normal_moment(k), normal_moment(2 * k)
        stat = stat + (power.mean(-2) - m_k).square() / (m_2k - m_k**2)
    return n * stat


class Moments(nn.Module):
    """Moment test against N(0, 1), ``(*, N, K) -> (*, K)``; see :func:`moments`.

    Args:
        k_max: highest moment used, an integer >= 1.

    Example:
        >>> Moments(k_max=6)(torch.randn(2, 100, 3)).shape
        torch.Size([2, 3])
    """

    def __init__(self, k_max: int = 4):
        super().__init__()
        self.k_max = integer_at_least(k_max, 1, "k_max")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return moments(x, self.k_max)

    def extra_repr(self) -> str:
        return f"k_max={self.k_max}"
