"""Epps–Pulley statistic: the weighted L2 distance between the empirical characteristic
function (ECF) of a sample and e^{-t²/2}, the characteristic function of N(0, 1).

    EP = N Σ_j w_j [(mean_n cos(t_j x_n) - e^{-t_j²/2})² + (mean_n sin(t_j x_n))²]

on the knots and weights of :func:`~lejepa_viz.univariate.ecf.epps_pulley_quadrature`. The
sums over n come from :mod:`.ecf`, whose kernels never keep the ``(N, K, T)`` tensors of the
textbook formula; :func:`ecf_statistic` all-reduces them under DDP, so every rank holds the
statistic of the global batch, and SIGReg (:mod:`lejepa_viz.sigreg`) slices through it.
"""

from __future__ import annotations

import torch

from .._checks import as_samples, integer_at_least, positive
from ..distributed import all_reduce_sum
from .base import UnivariateTest
from .ecf import ecf_sums, quadrature

INTEGRATIONS = ("trapezoid",)  # the only rule the original release implements


def ecf_statistic(
    x: torch.Tensor, A: torch.Tensor | None, t_max: float = 3.0, n_points: int = 17
) -> torch.Tensor:
    """Epps–Pulley statistic of ``x @ A`` (or of ``x`` when ``A`` is None), fused and global.

    Args:
        x: validated float samples, shape ``(*, N, D)``.
        A: projection directions ``(D, K)`` or None (then ``K = D``).
        t_max: upper end of the quadrature interval.
        n_points: number of quadrature knots.

    Returns:
        ``(*, K)`` statistics in ``x.dtype``. Under DDP the ECF sums and the sample count are
        all-reduced first, so every rank holds the statistic of the global batch.
    """
    _, weights, phi = (v.to(x.device) for v in quadrature(t_max, n_points))
    lead, (N, D) = x.shape[:-2], x.shape[-2:]
    with torch.autocast(device_type=x.device.type, enabled=False):
        if A is not None:
            A = A.to(x.dtype)
        # t_0 = 0 contributes exactly (1 - 1)² + 0² = 0, so only t_1.. are evaluated.
        cos_sum, sin_sum = ecf_sums(x.reshape(-1, N, D), A, t_max, n_points)
        n = all_reduce_sum(torch.tensor(float(N), dtype=torch.float64, device=x.device))
        cos_mean = all_reduce_sum(cos_sum) / n  # (B, K, T-1)
        sin_mean = all_reduce_sum(sin_sum) / n
        err = (cos_mean - phi[1:]).square() + sin_mean.square()
        stat = n * (err @ weights[1:])  # (B, K)
    return stat.to(x.dtype).reshape(*lead, -1)


def epps_pulley(x: torch.Tensor, t_max: float = 3.0, n_points: int = 17) -> torch.Tensor:
    """Epps–Pulley statistic of each column against N(0, 1).

    ``EP = N Σ_j w_j [(mean_n cos(t_j x_n) - e^{-t_j²/2})² + (mean_n sin(t_j x_n))²]``, the
    trapezoid rule (see :func:`~lejepa_viz.univariate.ecf.epps_pulley_quadrature`) for
    ``N ∫ |φ_N(t) - e^{-t²/2}|² e^{-t²/2} dt`` over the real line.

    Args:
        x: samples, shape ``(*, N, K)``.
        t_max: upper end of the integration interval ``[0, t_max]``.
        n_points: number of knots, at least 2.

    Returns:
        ``(*, K)``; lower is more Gaussian. Differentiable (first order), memory O(N·K).

    Reference:
        Epps & Pulley (1983), A test for normality based on the empirical characteristic
        function, Biometrika 70(3); Balestriero & LeCun (2025), LeJEPA, arXiv:2511.08544.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> gauss, uniform = torch.randn(2000, 1), torch.rand(2000, 1) * 3.46 - 1.73
        >>> bool(epps_pulley(gauss) < epps_pulley(uniform))
        True
    """
    t_max = positive(t_max, "t_max")
    n_points = integer_at_least(n_points, 2, "n_points")
    return ecf_statistic(as_samples(x), None, t_max, n_points)


class EppsPulley(UnivariateTest):
    """Epps–Pulley test against N(0, 1), ``(*, N, K) -> (*, K)``; see :func:`epps_pulley`.

    Args:
        t_max: upper end of the integration interval.
        n_points: number of quadrature knots (``num_points`` is accepted as an alias, as in
            the original LeJEPA Quick Start).
        integration: ``"trapezoid"``, the only rule (as in the original release, whose
            docstring lists others its code does not have).

    Attributes:
        t, phi, weights: the knots ``(n_points,)``, ``e^{-t²/2}`` there and the quadrature
            weights times ``phi`` (see :func:`~lejepa_viz.univariate.ecf.epps_pulley_quadrature`), float32 buffers as in
            the original, not saved in the state dict (the statistic uses the float64 ones).

    Example:
        >>> test = EppsPulley(num_points=17)
        >>> test(torch.randn(512, 8)).shape
        torch.Size([8])
    """

    def __init__(
        self,
        t_max: float = 3.0,
        n_points: int = 17,
        integration: str = "trapezoid",
        *,
        num_points: int | None = None,
    ):
        super().__init__()
        if num_points is not None:
            if n_points != 17 and n_points != num_points:
                raise ValueError(
                    f"n_points={n_points} and num_points={num_points} disagree; give one of them"
                )
            n_points = num_points
        if integration not in INTEGRATIONS:
            raise ValueError(f"integration must be one of {INTEGRATIONS}, got {integration!r}")
        self.t_max = positive(t_max, "t_max")
        self.n_points = integer_at_least(n_points, 2, "n_points")
        self.integration = integration
        t, weights, phi = quadrature(self.t_max, self.n_points)
        self.register_buffer("t", t.float(), persistent=False)
        self.register_buffer("phi", phi.float(), persistent=False)
        self.register_buffer("weights", weights.float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ecf_statistic(as_samples(x), None, self.t_max, self.n_points)

    def extra_repr(self) -> str:
        return f"t_max={self.t_max}, n_points={self.n_points}, integration={self.integration!r}"
