"""Order-statistic negative log-likelihood: the mean over i of -log f_(i)(x_(i)), where f_(i)
is the density of the i-th smallest of n iid N(0, 1) draws. Sorting turns the sample into
n draws from known, sharply peaked densities, so the statistic sees location, scale and
shape, and its gradient pulls each order statistic towards where it should sit.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from .._checks import as_samples, integer_at_least
from .base import UnivariateTest

_REDUCTIONS = ("mean", None)


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
    return _order_nll(torch.sort(x, dim=-2).values, x.shape[-2], None).mean(-2)


def _order_nll(x: torch.Tensor, n: int, k: int | None) -> torch.Tensor:
    """``-log f_(i)(x_i)`` elementwise, ``(*, M, K)``: ``i`` the row (``x`` then holds the
    sorted column, ``M = n``) or, given ``k``, the same ``k`` for every row."""
    if k is None:
        i = torch.arange(1, n + 1, dtype=x.dtype, device=x.device).unsqueeze(-1)  # (N, 1)
        log_c = _log_binomial(n, x.dtype, x.device)
    else:
        i = torch.tensor(float(k), dtype=x.dtype, device=x.device)
        log_c = math.lgamma(n + 1) - math.lgamma(k) - math.lgamma(n - k + 1)
    log_f = (
        log_c
        + (i - 1) * torch.special.log_ndtr(x)
        + (n - i) * torch.special.log_ndtr(-x)
        - x.square() / 2
        - math.log(2 * math.pi) / 2
    )
    return -log_f


def _fix(v: torch.Tensor) -> torch.Tensor:
    return torch.where(v.abs() < 1e-300, 1e-300, v)


def _beta_continued_fraction(a: torch.Tensor, b: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """The continued fraction of the incomplete beta function (modified Lentz), float64."""
    c, d = torch.ones_like(p), 1 / _fix(1 - (a + b) * p / (a + 1))
    h = d
    for j in range(1, 1000):
        two_j = 2 * j
        for num in (
            j * (b - j) * p / ((a - 1 + two_j) * (a + two_j)),
            -(a + j) * (a + b + j) * p / ((a + two_j) * (a + 1 + two_j)),
        ):
            d = 1 / _fix(1 + num * d)
            c = _fix(1 + num / c)
            step = c * d
            h = h * step
        if bool(((step - 1).abs() < 1e-15).all()):
            break
    return h


def beta_cdf(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The Beta(a, b) CDF (the regularised incomplete beta ``I_p(a, b)``) at ``p``, float64,
    elementwise over broadcast tensors; continued fraction as in Press et al., Numerical
    Recipes, §6.4. Not differentiable.

    Example:
        >>> p = torch.tensor([0.25, 0.5], dtype=torch.float64)
        >>> [round(v, 6) for v in beta_cdf(p, torch.tensor(2.0), torch.tensor(3.0)).tolist()]
        [0.261719, 0.6875]
    """
    p, a, b = torch.broadcast_tensors(*(torch.as_tensor(v, dtype=torch.float64) for v in (p, a, b)))
    inside = (p > 0) & (p < 1)
    q = torch.where(inside, p, 0.5)
    log_front = (
        torch.lgamma(a + b) - torch.lgamma(a) - torch.lgamma(b) + a * q.log() + b * (-q).log1p()
    )
    swap = q > (a + 1) / (a + b + 2)  # where the fraction converges fast for 1 - I_{1-p}(b, a)
    aa, bb, qq = torch.where(swap, b, a), torch.where(swap, a, b), torch.where(swap, 1 - q, q)
    value = torch.exp(log_front) * _beta_continued_fraction(aa, bb, qq) / aa
    value = torch.where(swap, 1 - value, value)
    return torch.where(inside, value, (p >= 1).to(p.dtype))


class NLL(UnivariateTest):
    """Order-statistic likelihood test against N(0, 1), ``(*, N, K) -> (*, K)``; see :func:`nll`.

    The defaults give :func:`nll`. The original release's options:

    Args:
        alpha: in ``[0, 0.5]``. Below 0.5, a sample whose order statistic's CDF at it,
            ``P(X_(i) <= x_(i)) = I_{Φ(x_(i))}(i, N + 1 - i)`` (a Beta law), lies strictly
            between ``alpha`` and ``1 - alpha`` scores NaN: only samples in the outer
            ``alpha`` tails of where they should sit count. ``reduction="mean"`` then
            averages the others (NaN where none is left).
        k: ``None`` (each sample scored as its own order statistic, the default) or an
            integer in ``[1, N]``: every sample is scored as the k-th smallest of ``N``,
            without sorting.
        N: the number of draws of the order statistics; ``None`` takes the sample's N. With
            ``k=None`` it must equal the sample's N.
        reduction: ``"mean"`` (ours, the default: the mean over the samples, ``(*, K)``) or
            ``None``: the per-sample values ``(*, N, K)`` in the input's order, what the
            original returns. (The original gathers its sorted values with the sorting
            permutation itself, not its inverse, so its order is scrambled; its mean is not.)

    Example:
        >>> NLL()(torch.randn(2, 100, 3)).shape
        torch.Size([2, 3])
        >>> x = torch.randn(100, 3)
        >>> bool(torch.allclose(NLL(reduction=None)(x).mean(-2), NLL()(x)))
        True
    """

    def __init__(
        self,
        alpha: float = 0.5,
        k: int | None = None,
        N: int | None = None,
        *,
        reduction: str | None = "mean",
    ):
        super().__init__()
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 0.5:
            raise ValueError(f"alpha must be a number in [0, 0.5], got {alpha!r}")
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.alpha = float(alpha)
        self.k = None if k is None else integer_at_least(k, 1, "k")
        self.N = None if N is None else integer_at_least(N, 1, "N")
        if self.k is not None and self.N is not None and self.k > self.N:
            raise ValueError(f"k must be <= N = {self.N}, got k={self.k}")
        self.reduction = reduction

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = as_samples(x, min_samples=1 if self.k is not None else 2)
        size = x.shape[-2]
        n = size if self.N is None else self.N
        if self.k is None and n != size:
            raise ValueError(f"N must equal the sample's N = {size} when k is None, got N={n}")
        if self.k is not None and self.k > n:
            raise ValueError(f"k must be <= N = {n}, got k={self.k}")
        if self.k is None:
            s, order = torch.sort(x, dim=-2)
        else:
            s = x
        loss = _order_nll(s, n, self.k)  # (*, N, K), in the order of s
        if self.alpha < 0.5:
            with torch.no_grad():
                i = torch.arange(1.0, n + 1, dtype=torch.float64, device=x.device).unsqueeze(-1)
                if self.k is not None:
                    i = torch.tensor(float(self.k), dtype=torch.float64, device=x.device)
                cdf = beta_cdf(torch.special.ndtr(s.double()), i, n + 1 - i)
                inside = (cdf > self.alpha) & (cdf < 1 - self.alpha)
            loss = torch.where(inside, torch.nan, loss)
        if self.reduction == "mean":
            return loss.nanmean(-2) if self.alpha < 0.5 else loss.mean(-2)
        if self.k is None:  # back to the input's order
            loss = torch.empty_like(loss).scatter(-2, order, loss)
        return loss

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, k={self.k}, N={self.N}, reduction={self.reduction!r}"
