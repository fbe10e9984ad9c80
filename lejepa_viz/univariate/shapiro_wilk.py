"""Shapiro–Wilk statistic, returned as ``1 - W`` so that lower means more Gaussian. ``W`` is
the squared correlation between the sorted sample and the expected normal order statistics;
it is invariant to location and scale, so it sees only shape. The coefficients are Royston's
approximation (algorithm AS R94, as in scipy), computed once per ``(n, dtype, device)``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from .._checks import as_samples, integer_at_least
from .base import UnivariateTest

# Royston (1992) polynomials in u = 1/sqrt(n) for the two largest coefficients (ascending).
_C1 = (0.0, 0.221157, -0.147981, -2.071190, 4.434685, -2.706056)
_C2 = (0.0, 0.042981, -0.293762, -1.752461, 5.682633, -3.582633)


def _poly(coefs: tuple[float, ...], u: float) -> float:
    return sum(c * u**k for k, c in enumerate(coefs))


@lru_cache(maxsize=64)
def _coefficients64(n: int) -> torch.Tensor:
    """Coefficients ``a_n, ..., a_{n+1-n//2}`` (positive, largest first), float64 on the CPU.

    The full antisymmetric vector ``(-a_n, ..., a_n)`` has unit norm.
    """
    if n == 3:
        return torch.tensor([math.sqrt(0.5)], dtype=torch.float64)
    i = torch.arange(1, n // 2 + 1, dtype=torch.float64)
    m = torch.special.ndtri((i - 0.375) / (n + 0.25))  # (n//2,) expected normal scores, < 0
    summ2 = 2 * m.square().sum().item()
    u = 1 / math.sqrt(n)
    a1 = _poly(_C1, u) - m[0].item() / math.sqrt(summ2)
    if n > 5:
        a2 = _poly(_C2, u) - m[1].item() / math.sqrt(summ2)
        fac = math.sqrt(
            (summ2 - 2 * m[0].item() ** 2 - 2 * m[1].item() ** 2) / (1 - 2 * a1**2 - 2 * a2**2)
        )
        a = -m / fac
        a[1] = a2
    else:
        a = -m / math.sqrt((summ2 - 2 * m[0].item() ** 2) / (1 - 2 * a1**2))
    a[0] = a1
    return a / (2 * a.square().sum()).sqrt()  # unit norm up to rounding, made exact


@lru_cache(maxsize=64)
def _coefficients(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The full antisymmetric unit vector ``(-a_n, ..., -a_{n+1-n//2}, [0], ..., a_n)``, ``(N, 1)``."""
    a = _coefficients64(n)
    full = torch.cat([-a, a.new_zeros(n % 2), a.flip(0)])  # ascending, like x_(1..n)
    return full.to(device=device, dtype=dtype).unsqueeze(-1)


def shapiro_wilk(x: torch.Tensor) -> torch.Tensor:
    """Shapiro–Wilk statistic of each column, as ``1 - W``.

    ``W = (Σ_{i <= n/2} a_i (x_(n+1-i) - x_(i)))² / Σ_i (x_i - x̄)²`` with ``x_(i)`` the sorted
    column and ``a`` Royston's unit-norm coefficients: ``m_i = Φ^{-1}((i - 3/8)/(n + 1/4))``
    normalised, with polynomial corrections in ``1/sqrt(n)`` for the two largest (one when
    ``n <= 5``) and ``a = sqrt(1/2)`` exactly when ``n = 3``. ``W`` equals
    ``scipy.stats.shapiro(x).statistic`` to about 1e-8 (scipy evaluates ``Φ^{-1}`` with the
    7-digit AS 111 approximation, this uses ``ndtri``). ``1 - W`` is computed directly as the
    residual of regressing the centred sorted sample on ``a``, which keeps its precision
    in float32 when ``W`` is close to 1.

    Args:
        x: samples, shape ``(*, N, K)`` with ``N >= 3``.

    Returns:
        ``(*, K)`` in ``[0, 1]``; lower is more Gaussian in shape (location and scale are
        ignored; a constant column gives 1). Differentiable.

    Reference:
        Shapiro & Wilk (1965), An analysis of variance test for normality (complete samples),
        Biometrika 52(3/4); Royston (1992), Approximating the Shapiro–Wilk W-test for
        non-normality, Statistics and Computing 2; Royston (1995), Remark AS R94, Applied
        Statistics 44(4).

    Example:
        >>> shapiro_wilk(torch.randn(100, 3)).shape
        torch.Size([3])
        >>> round(shapiro_wilk(torch.tensor([[0.0], [1.0], [3.0]])).item(), 4)
        0.0357
    """
    x = as_samples(x, min_samples=3)
    a = _coefficients(x.shape[-2], x.dtype, x.device)  # (N, 1), unit norm, sums to 0
    xc = torch.sort(x, dim=-2).values
    xc = xc - xc.mean(-2, keepdim=True)  # (*, N, K), sorted and centred
    b = (a * xc).sum(-2, keepdim=True)  # (*, 1, K); W = b² / ss
    ss = xc.square().sum(-2)  # (*, K)
    resid = (xc - b * a).square().sum(-2)  # ss - b², without the cancellation
    positive = ss > 0
    return torch.where(positive, resid / torch.where(positive, ss, 1), 1)


PLOTTING_POSITIONS = {  # p_i of the expected normal order statistics, i = 1..n
    "elfving": lambda i, n: (i - math.pi / 8) / (n + 0.25),
    "blom": lambda i, n: (i - 0.375) / (n + 0.25),
    "rahman": lambda i, n: i / (n + 1),
}
COVARIANCE_MODES = ("shapiro_francia", "rahman")


def shapiro_weights(
    n: int,
    expectation_mode: str = "blom",
    covariance_mode: str = "shapiro_francia",
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """The original release's unit weight vector ``(n,)`` for its Shapiro–Francia-style test.

    ``m_i = Φ^{-1}(p_i)`` at the plotting positions of ``expectation_mode`` (Elfving
    ``(i − π/8)/(n + 1/4)``, Blom ``(i − 3/8)/(n + 1/4)``, Rahman ``i/(n + 1)``); then
    ``a = m`` (``"shapiro_francia"``: order statistics taken as independent) or
    ``a = V⁻¹ m`` for Rahman's tridiagonal approximation of their covariance (``"rahman"``:
    ``a_i = 2 φ(m_i)² m_i − m_{i+1} φ(m_i)φ(m_{i+1}) − m_{i−1} φ(m_{i−1})φ(m_i)``), normalised.

    Example:
        >>> w = shapiro_weights(4)
        >>> round(float(w.norm()), 6), bool(torch.allclose(w, -w.flip(0)))
        (1.0, True)
    """
    n = integer_at_least(n, 2, "n")
    if expectation_mode not in PLOTTING_POSITIONS:
        raise ValueError(
            f"expectation_mode must be one of {sorted(PLOTTING_POSITIONS)}, got {expectation_mode!r}"
        )
    if covariance_mode not in COVARIANCE_MODES:
        raise ValueError(
            f"covariance_mode must be one of {list(COVARIANCE_MODES)}, got {covariance_mode!r}"
        )
    i = torch.arange(1, n + 1, dtype=torch.float64)
    m = torch.special.ndtri(PLOTTING_POSITIONS[expectation_mode](i, n))
    a = m
    if covariance_mode == "rahman":
        phi = torch.exp(-0.5 * m.square()) / math.sqrt(2 * math.pi)
        a = 2 * phi.square() * m
        cross = phi[1:] * phi[:-1]
        a[:-1] -= m[1:] * cross
        a[1:] -= m[:-1] * cross
    return torch.nn.functional.normalize(a, dim=0).to(device=device, dtype=torch.float32)


class ShapiroWilk(UnivariateTest):
    """Shapiro–Wilk test, ``(*, N, K) -> (*, K)`` as ``1 - W``; see :func:`shapiro_wilk`.

    The default is the exact W as scipy computes it. Given ``expectation_mode`` or
    ``covariance_mode`` it is the original release's statistic instead: ``1 − |cos(a, x_(·))|``
    between its weights (:func:`shapiro_weights`; the other option defaults to ``"elfving"`` /
    ``"shapiro_francia"`` as there) and the sorted, uncentred column, with ``eps`` in the
    cosine. ``sorted=True`` says the columns are sorted already.

    Example:
        >>> ShapiroWilk()(torch.randn(2, 100, 3)).shape
        torch.Size([2, 3])
        >>> ShapiroWilk(expectation_mode="blom")(torch.randn(100, 3)).shape
        torch.Size([3])
    """

    def __init__(
        self,
        expectation_mode: str | None = None,
        covariance_mode: str | None = None,
        eps: float = 1e-5,
        sorted: bool = False,
    ):
        super().__init__(eps=eps, sorted=sorted)
        self.original = expectation_mode is not None or covariance_mode is not None
        self.expectation_mode = expectation_mode or "elfving"
        self.covariance_mode = covariance_mode or "shapiro_francia"
        if self.original:  # the options are checked now, not at the first call
            shapiro_weights(2, self.expectation_mode, self.covariance_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.original:
            return shapiro_wilk(x)
        x = as_samples(x, min_samples=2)
        s = x if self.sorted else torch.sort(x, dim=-2).values
        k = self.get_shapiro_weights(
            x.shape[-2], self.expectation_mode, self.covariance_mode, x.device
        )
        k = k.to(x.dtype).unsqueeze(-1)  # (N, 1)
        return 1 - torch.nn.functional.cosine_similarity(k, s, dim=-2, eps=self.eps).abs()

    get_shapiro_weights = staticmethod(shapiro_weights)  # the original's name
