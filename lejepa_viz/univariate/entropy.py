"""Vasicek's spacing estimate of differential entropy, and the statistic built on it: an
estimate of the Kullback–Leibler divergence KL(p ‖ N(0, 1)) = -H(p) + E[x²]/2 + log(2π)/2.
Among all densities of a given variance the Gaussian has the largest entropy, so the
statistic sees shape through -H and location and scale through E[x²].
"""

from __future__ import annotations

import math

import torch

from .._checks import as_samples, integer_at_least
from .base import UnivariateTest

METHODS = ("kl", "centered", "right")


def _window(n: int, window: int | None) -> int:
    if window is None:  # scipy's default, shrunk where it would not fit
        return min(math.floor(math.sqrt(n) + 0.5), (n - 1) // 2)
    if 2 * window >= n:
        raise ValueError(f"window must satisfy 2 * window < N = {n}, got window={window}")
    return window


def _vasicek(x: torch.Tensor, window: int | None, presorted: bool = False) -> torch.Tensor:
    n = x.shape[-2]
    m = _window(n, window)
    if not presorted:
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
    return -_vasicek(x, window) + _kl_rest(x)


def _kl_rest(x: torch.Tensor) -> torch.Tensor:
    """``mean(x²)/2 + log(2π)/2``: the cross-entropy of the sample under N(0, 1), ``(*, K)``."""
    return x.square().mean(-2) / 2 + math.log(2 * math.pi) / 2


def _original_entropy(s: torch.Tensor, m: int, eps: float, method: str) -> torch.Tensor:
    """The original release's entropy statistics of sorted, validated columns ``(*, N, K)``."""
    n = s.shape[-2]
    if method == "centered" and 2 * m >= n:
        raise ValueError(f"m must satisfy 2 * m < N = {n} for method='centered', got m={m}")
    if method == "right" and m >= n:
        raise ValueError(f"m must satisfy m < N = {n} for method='right', got m={m}")
    h0 = 0.5 * math.log(2 * math.pi * math.e)  # entropy of N(0, 1)
    log_sd = 0.5 * s.var(-2).log()  # (*, K), unbiased variance as torch.std
    if method == "right":
        spacings = s[..., m:, :] - s[..., :-m, :]  # x_(i+m) - x_(i), N - m of them
        stat = spacings.clamp_min(eps).log().sum(-2) / n
        return h0 - stat - math.log(n) + math.log(m) + log_sd
    inner = s[..., 2 * m :, :] - s[..., : -2 * m, :]  # x_(i+2m) - x_(i), N - 2m of them
    low = s[..., 1 : 2 * m + 1, :] - s[..., :1, :]  # x_(1+j) - x_(1), j = 1..2m
    high = s[..., -1:, :] - s[..., -2 * m - 1 : -1, :]  # x_(N) - x_(N-j), j = 1..2m
    stat = sum(d.clamp_min(eps).log().sum(-2) for d in (inner, low, high)) / n
    return torch.exp(h0 - stat - math.log(n / (2 * m)) + log_sd)


class Entropy(UnivariateTest):
    """Entropy test against N(0, 1), ``(*, N, K) -> (*, K)``; see :func:`entropy`.

    The default, ``method="kl"``, is :func:`entropy`: Vasicek's estimate of KL(p ‖ N(0, 1)),
    which sees location, scale and shape. The original release's statistics are the two
    other methods. Both compare the spacings with the entropy of N(0, s²), ``s²`` the
    unbiased variance, and floor every spacing at ``eps``; they ignore location, and nearly
    scale: the number of spacings is not N (``N + 2m`` and ``N - m``), so scaling the sample
    by ``c`` multiplies ``"centered"`` by ``c^{-2m/N}`` and adds ``(m/N) log c`` to ``"right"``.

    - ``"centered"`` (the original's default):
      ``exp(log(s√(2πe)) - (1/n) Σ_d log max(d, eps) - log(n / (2m)))`` over the ``N + 2m``
      spacings ``x_(i+2m) - x_(i)`` (``N - 2m`` of them), ``x_(1+j) - x_(1)`` and
      ``x_(N) - x_(N-j)`` for ``j = 1..2m``; ``sqrt(2πe)`` over Vasicek's ``K_mn`` up to the
      end spacings; on N(0, σ²) samples it tends to 1 as N and m grow (the spacing estimate
      is biased low, so small m keeps it above 1), on others to a larger value.
    - ``"right"``: ``log(s√(2πe)) - (1/n) Σ_i log max(x_(i+m) - x_(i), eps) - log(n / m)``
      over the ``N - m`` forward spacings.

    Args:
        window: half-width of the spacings (the original's ``m``); by default scipy's
            ``floor(sqrt(N) + 0.5)`` for ``"kl"`` and 1, the original's default, otherwise.
        eps: floor of the spacings of ``"centered"`` and ``"right"``; ``"kl"`` floors them at
            the dtype's smallest normal number instead, so that it stays scipy's estimate.
        method: ``"kl"`` (ours, the default), ``"centered"`` or ``"right"`` (the original's).
        sorted: ``True`` promises columns sorted ascending along N; the sort is skipped.
        m: the original release's name for ``window`` (give one of them).

    Example:
        >>> Entropy()(torch.randn(2, 100, 3)).shape
        torch.Size([2, 3])
        >>> x, test = torch.randn(100, 3), Entropy(m=2, method="centered")
        >>> bool(torch.allclose(test(x), test(x - 1))), bool(torch.allclose(test(x), test(3 * x)))
        (True, False)
    """

    def __init__(
        self,
        window: int | None = None,
        eps: float = 1e-5,
        method: str = "kl",
        sorted: bool = False,
        *,
        m: int | None = None,
    ):
        super().__init__(eps=eps, sorted=sorted)
        if m is not None:
            if window is not None and window != m:
                raise ValueError(f"window={window} and m={m} disagree; give one of them")
            window = m
        if method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
        self.window = None if window is None else integer_at_least(window, 1, "window")
        self.method = method

    @property
    def m(self) -> int | None:
        """The original release's name for :attr:`window`."""
        return self.window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = as_samples(x, min_samples=3)
        s = self.prepare_data(x)
        if self.method == "kl":
            return -_vasicek(s, self.window, presorted=True) + _kl_rest(s)
        return _original_entropy(s, self.window or 1, self.eps, self.method)

    def extra_repr(self) -> str:
        return f"window={self.window}, method={self.method!r}"
