"""Order-statistic negative log-likelihood: the mean over i of -log f_(i)(x_(i)), where f_(i)
is the density of the i-th smallest of n iid N(0, 1) draws. Sorting turns the sample into
n draws from known, sharply peaked densities, so the statistic sees location, scale and
shape, and its gradient pulls each order statistic towards where it should sit.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import nn

from .._checks import as_samples


@lru_cache(maxsize=64)
def _log_binomial(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``log(n! / ((i - 1)! (n - i)!))`` for ``i = 1..n``, shape ``(N, 1)``, from float64."""
    i = torch.arange(1, n + 1, dtype=torch.float64)
    log_c = math.lgamma(n + 1) - torch.lgamma(i) - torch.lgamma(n - i + 1)
    return log_c.to(device=device, dtype=dtype).unsqueeze(-1)


def nll(x: torch.Tensor) -> torch.Tensor:
    """Order-statistic negative log-likelihood of each column under N(0, 1).

    ``NLL = -(1/n) Σ_i log f_(i)(x_(i))`` with ``x_(i)`` the sorted column and
    ``f_(i)(x) = n! / ((i - 1)! (n - i)!) Φ(x)^{i-1} (1 - Φ(x))^{n-i} φ(x)``; the logs of
    ``Φ(x)`` and ``1 - Φ(x) = Φ(-x)`` come from ``log_ndtr`` so far tails stay finite.

    Args:
        x: samples, shape ``(*, N, K)``.

    Returns:
        ``(*, K)``; lower is more like N(0, 1) (it can be negative: the order-statistic
        densities peak higher as n grows). Differentiable.

    Reference:
        David & Nagaraja (2003), Order Statistics, 3rd ed., Wiley, §2.1.

    Example:
        >>> nll(torch.randn(100, 3)).shape
        torch.Size([3])
        >>> round(nll(torch.tensor([[-0.5], [0.5]])).item(), 4)
        0.7197
    """
    x = as_samples(x)
    n = x.shape[-2]
    x = torch.sort(x, dim=-2).values  # (*, N, K)
    i = torch.arange(1, n + 1, dtype=x.dtype, device=x.device).unsqueeze(-1)  # (N, 1)
    log_f = (
        _log_binomial(n, x.dtype, x.device)
        + (i - 1) * torch.special.log_ndtr(x)
        + (n - i) * torch.special.log_ndtr(-x)
        - x.square() / 2
        - math.log(2 * math.pi) / 2
    )
    return -log_f.mean(-2)


class NLL(nn.Module):
    """Order-statistic likelihood test against N(0, 1), ``(*, N, K) -> (*, K)``; see :func:`nll`.

    Example:
        >>> NLL()(torch.randn(2, 100, 3)).shape
        torch.Size([2, 3])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nll(x)
