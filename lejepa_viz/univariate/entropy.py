"""Vasicek's spacing estimate of differential entropy, and the statistic built on it: an
estimate of the Kullback–Leibler divergence KL(p ‖ N(0, 1)) = -H(p) + E[x²]/2 + log(2π)/2.
Among all densities of a given variance the Gaussian has the largest entropy, so the
statistic sees shape through -H and location and scale through E[x²].
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import as_samples, integer_at_least


def _window(n: int, window: int | None) -> int:
    if window is None:  # scipy's default, shrunk where it would not fit
        return min(math.floor(math.sqrt(n) + 0.5), (n - 1) // 2)
    if 2 * window >= n:
        raise ValueError(f"window must satisfy 2 * window < N = {n}, got window={window}")
    return window


def _vasicek(x: torch.Tensor, window: int | None) -> torch.Tensor:
    n = x.shape[-2]
    m = _window(n, window)
    x = torch.sort(x, dim=-2).values  # (*, N, K)
    i = torch.arange(n, device=x.device)
    hi = x.index_select(-2, (i + m).clamp(max=n - 1))  # x_(i+m), clamped to x_(n)
    lo = x.index_select(-2, (i - m).clamp(min=0))  # x_(i-m), clamped to x_(1)
    # Tied values give a zero spacing: floor it so the estimate stays finite.
    spacing = (hi - lo).clamp_min(torch.finfo(x.dtype).tiny)
    return spacing.log().mean(-2) + math.log(n / (2 * m))


def vasicek_entropy(x: torch.Tensor, window: int | None = None) -> torch.Tensor:
    """Vasicek's estimate of the differential entropy of each column.

    ``Ĥ = (1/n) Σ_i log(n / (2m) · (x_(i+m) - x_(i-m)))`` with ``x_(i)`` the sorted column,
    ``x_(i) = x_(1)`` for ``i < 1`` and ``x_(n)`` for ``i > n``. Equals
    ``scipy.stats.differential_entropy(x, method="vasicek", window_length=m)``.

    Args:
        x: samples, shape ``(*, N, K)`` with ``N >= 3``.
        window: half-width ``m`` of the spacings, ``1 <= m < N/2``; by default scipy's
            ``floor(sqrt(N) + 0.5)`` (at most ``(N - 1) // 2``).

    Returns:
        ``(*, K)`` entropy estimates in nats (N(0, 1) has ``log(2πe)/2 ≈ 1.419``).
        Differentiable.

    Reference:
        Vasicek (1976), A test for normality based on sample entropy, JRSS B 38(1).

    Example:
        >>> vasicek_entropy(torch.randn(100, 3)).shape
        torch.Size([3])
        >>> round(vasicek_entropy(torch.tensor([[0.0], [1.0], [2.0], [3.0]]), window=1).item(), 4)
        1.0397
    """
    if window is not None:
        window = integer_at_least(window, 1, "window")
    return _vasicek(as_samples(x, min_samples=3), window)


def entropy(x: torch.Tensor, window: int | None = None) -> torch.Tensor:
    """Entropy statistic of each column: Vasicek's estimate of ``KL(p ‖ N(0, 1))``.

    ``KL = -Ĥ + mean(x²)/2 + log(2π)/2`` with ``Ĥ`` from :func:`vasicek_entropy`.
    The spacing estimator is biased low, so the statistic is slightly positive on N(0, 1)
    samples (the bias shrinks as N grows).

    Args:
        x: samples, shape ``(*, N, K)`` with ``N >= 3``.
        window: half-width of the spacings, see :func:`vasicek_entropy`.

    Returns:
        ``(*, K)``; lower is more like N(0, 1). Differentiable.

    Reference:
        Vasicek (1976), A test for normality based on sample entropy, JRSS B 38(1).

    Example:
        >>> entropy(torch.randn(100, 3)).shape
        torch.Size([3])
    """
    if window is not None:
        window = integer_at_least(window, 1, "window")
    x = as_samples(x, min_samples=3)
    return -_vasicek(x, window) + x.square().mean(-2) / 2 + math.log(2 * math.pi) / 2


class Entropy(nn.Module):
    """Entropy test against N(0, 1), ``(*, N, K) -> (*, K)``; see :func:`entropy`.

    Args:
        window: half-width of the spacings; by default scipy's ``floor(sqrt(N) + 0.5)``.

    Example:
        >>> Entropy()(torch.randn(2, 100, 3)).shape
        torch.Size([2, 3])
    """

    def __init__(self, window: int | None = None):
        super().__init__()
        self.window = None if window is None else integer_at_least(window, 1, "window")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return entropy(x, self.window)

    def extra_repr(self) -> str:
        return f"window={self.window}"
