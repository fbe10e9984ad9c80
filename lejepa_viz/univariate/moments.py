"""Moment statistic: the sum of the squared z-scores of the first ``k_max`` raw sample moments
against those of N(0, 1). With ``k_max = 4`` it sees location, scale, skewness and kurtosis;
higher moments add tail sensitivity but grow noisy fast (the variance of the k-th moment
is ``m_{2k} - m_k²``). The z-scores are correlated (``x`` with ``x³``, ``x²`` with ``x⁴``), so
the null limit is a weighted sum of χ²₁ variables (:func:`null_weights`), not χ²(k_max).
"""

from __future__ import annotations

import math

import torch

from .._checks import as_samples, integer_at_least
from .base import UnivariateTest

METHODS = ("zscore", "abs")


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
    moment. The z-scores are *not* independent: under N(0, 1), ``corr(x^j, x^k) =
    (m_{j+k} - m_j m_k) / sqrt((m_{2j} - m_j²)(m_{2k} - m_k²))``, e.g. ``corr(x, x³) = 3/√15``
    and ``corr(x², x⁴) = 12/√192``. So for large n, ``M`` is not chi²(k_max) but
    ``Σ_i w_i χ²₁`` with ``w`` the eigenvalues of that correlation matrix
    (:func:`null_weights`; for ``k_max = 4``, ``w ≈ 1.87, 1.77, 0.23, 0.13``): mean ``k_max``
    as for chi²(k_max), but a longer tail — the 95% point is about 11.3, not chi²(4)'s 9.49.
    Calibrate it by simulation (:func:`lejepa_viz.toys.simulate.null_distribution`).

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


def null_weights(k_max: int = 4) -> torch.Tensor:
    """Weights ``w`` of the large-n null law of :func:`moments`, ``M → Σ_i w_i χ²₁``.

    The eigenvalues, largest first, of the correlation matrix of the raw moments
    ``x, x², …, x^k_max`` under N(0, 1), ``C_jk = (m_{j+k} - m_j m_k) / sqrt(...)`` from
    :func:`normal_moment`. They sum to ``k_max`` (the null mean of ``M``); with
    independent z-scores they would all be 1 and the law chi²(k_max). For ``k_max = 4`` they
    are ``1 ± √3/2`` and ``1 ± √(3/5)`` (``corr(x², x⁴) = 12/√192``, ``corr(x, x³) = 3/√15``).

    Returns:
        ``(k_max,)`` float64 weights.

    Example:
        >>> [round(w, 2) for w in null_weights(4).tolist()]
        [1.87, 1.77, 0.23, 0.13]
        >>> w = null_weights(4)
        >>> z = torch.randn(200_000, 4, generator=torch.Generator().manual_seed(0), dtype=w.dtype)
        >>> round(torch.quantile(z.square() @ w, 0.95).item(), 1)  # chi²(4) would give 9.5
        11.3
    """
    k_max = integer_at_least(k_max, 1, "k_max")
    k = range(1, k_max + 1)
    cov = torch.tensor(
        [[normal_moment(i + j) - normal_moment(i) * normal_moment(j) for j in k] for i in k],
        dtype=torch.float64,
    )  # (k_max, k_max): covariance of x^i and x^j under N(0, 1)
    sd = cov.diagonal().sqrt()
    return torch.linalg.eigvalsh(cov / torch.outer(sd, sd)).flip(0)


def original_moments(x: torch.Tensor, k_max: int = 4) -> torch.Tensor:
    """The original release's moment statistic of each column against N(0, 1).

    ``|mean(x)| + Σ_{k=2}^{k_max} e^{-k} |mean(x^k) - m_k|`` with ``m_k`` the raw moments of
    N(0, 1) (:func:`normal_moment`): absolute, not squared, deviations, weighted by ``e^{-k}``
    rather than by the moments' variances, and not scaled by n.

    Args:
        x: samples, shape ``(*, N, K)``.
        k_max: highest moment used, an integer >= 1.

    Returns:
        ``(*, K)``; lower is more like N(0, 1). Differentiable (but for ties at 0).

    Example:
        >>> round(original_moments(torch.tensor([[-1.0], [1.0]]), k_max=2).item(), 4)
        0.0
    """
    k_max = integer_at_least(k_max, 1, "k_max")
    x = as_samples(x)
    power, stat = x, x.mean(-2).abs()  # (*, N, K), (*, K)
    for k in range(2, k_max + 1):
        power = power * x  # x^k
        stat = stat + math.exp(-k) * (power.mean(-2) - normal_moment(k)).abs()
    return stat


class Moments(UnivariateTest):
    """Moment test against N(0, 1), ``(*, N, K) -> (*, K)``; see :func:`moments`.

    Its null limit is a weighted sum of χ²₁ (weights :func:`null_weights`, 95% point about
    11.3 for ``k_max = 4``), not chi²(k_max): the z-scores of ``x`` and ``x³``, and of ``x²``
    and ``x⁴``, are correlated.

    Args:
        k_max: highest moment used, an integer >= 1.
        sampler: accepted and stored, as in the original release, which stores it and never
            reads it: ``None`` or a ``torch.distributions.Distribution``.
        method: ``"zscore"`` (ours, the default: :func:`moments`) or ``"abs"``, the original
            release's ``e^{-k}``-weighted absolute deviations (:func:`original_moments`).

    As in the original, :attr:`sorted` is ``True`` (no sort is needed).

    Example:
        >>> Moments(k_max=6)(torch.randn(2, 100, 3)).shape
        torch.Size([2, 3])
        >>> Moments(method="abs")(torch.randn(2, 100, 3)).shape
        torch.Size([2, 3])
    """

    def __init__(self, k_max: int = 4, sampler=None, *, method: str = "zscore"):
        super().__init__(sorted=True)
        self.k_max = integer_at_least(k_max, 1, "k_max")
        if sampler is not None and not isinstance(sampler, torch.distributions.Distribution):
            raise ValueError(
                f"sampler must be None or a torch.distributions.Distribution, got {sampler!r}"
            )
        if method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
        self.sampler, self.method = sampler, method

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.method == "abs":
            return original_moments(x, self.k_max)
        return moments(x, self.k_max)

    def extra_repr(self) -> str:
        return f"k_max={self.k_max}, method={self.method!r}"
