"""SIGReg and the LeJEPA loss.

SIGReg (Sketched Isotropic Gaussian Regularisation) is the sliced Epps–Pulley statistic: it
projects embeddings on K random unit directions and asks each projection's empirical
characteristic function to match e^{-t²/2}. Driving it to zero makes the embedding
distribution an isotropic Gaussian. The LeJEPA loss adds one prediction term:

    loss = (1 - λ) · pred + λ · SIGReg(z)
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ._checks import as_samples, integer_at_least
from .multivariate.slicing import SlicingUnivariateTest
from .univariate.epps_pulley import EppsPulley


class SIGReg(SlicingUnivariateTest):
    """Sliced Epps–Pulley regulariser, ``(*, N, D) -> scalar``.

    ``SIGReg(z) = mean over leading indices and K directions a_k of EP(z · a_k)``, with
    :func:`~lejepa_viz.univariate.epps_pulley` on ``n_points`` knots in ``[0, t_max]``. Equal
    to ``SlicingUnivariateTest(EppsPulley(t_max, n_points), num_slices, seed=seed)`` and computed
    by the same fused kernel: the ``(N, K, T)`` tensors of the textbook formula are never
    materialised, forward and backward need O(N·D + N·K) memory. Under DDP the statistic is
    that of the global batch (the ECF sums are all-reduced) and every rank draws the same
    directions. For ``z`` of shape ``(V, N, D)`` each view gets its own statistic on the
    same directions and these are averaged.

    Args:
        num_slices: number K of random directions per step.
        n_points: number of quadrature knots.
        t_max: upper end of the quadrature interval.
        seed: seed of the direction stream; the step counter is the buffer ``step``.

    Example:
        >>> sigreg = SIGReg(num_slices=256)
        >>> z = torch.randn(2, 512, 32, requires_grad=True)   # (V, N, D)
        >>> loss = sigreg(z)
        >>> loss.backward()
        >>> loss.shape, z.grad.shape
        (torch.Size([]), torch.Size([2, 512, 32]))
    """

    def __init__(
        self, num_slices: int = 1024, n_points: int = 17, t_max: float = 3.0, seed: int = 0
    ):
        super().__init__(EppsPulley(t_max=t_max, n_points=n_points), num_slices, "mean", seed)


class LeJEPALoss(NamedTuple):
    """The LeJEPA loss and its two parts (all scalars)."""

    loss: torch.Tensor
    pred: torch.Tensor
    sigreg: torch.Tensor


def lejepa_loss(
    z: torch.Tensor, lam: float, sigreg: SIGReg, *, num_global_views: int | None = None
) -> LeJEPALoss:
    """LeJEPA loss ``(1 - λ)·pred + λ·SIGReg(z)`` for embeddings of V views of N images.

    ``pred`` asks every view to predict the centre of the views of its image:
    ``pred = mean over v, n, d of (z[v, n, d] - c[n, d])²`` with ``c = mean_v z[v]`` over all
    views, or over the first ``num_global_views`` (the multi-crop recipe, where global views
    come first and every view predicts the centre of the global ones). As in the original
    release, the squared error is averaged over the D dimensions too (``||·||² / D``), so λ
    values from the paper carry over. ``SIGReg`` is applied to every view and averaged.

    Args:
        z: projector outputs, shape ``(V, N, D)``.
        lam: λ in ``[0, 1]``.
        sigreg: the regulariser, usually :class:`SIGReg` (it advances its step).
        num_global_views: number of leading views the centre is taken over (default: all).

    Returns:
        ``LeJEPALoss(loss, pred, sigreg)``.

    Example:
        >>> z = torch.randn(4, 128, 16)
        >>> out = lejepa_loss(z, 0.05, SIGReg(num_slices=64), num_global_views=2)
        >>> bool(torch.isclose(out.loss, 0.95 * out.pred + 0.05 * out.sigreg))
        True
    """
    if not isinstance(lam, (int, float)) or not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be a number in [0, 1], got {lam!r}")
    z = as_samples(z, "z")
    if z.ndim != 3:
        raise ValueError(f"z must have shape (V, N, D), got shape {tuple(z.shape)}")
    V = z.shape[0]
    if num_global_views is not None:
        num_global_views = integer_at_least(num_global_views, 1, "num_global_views")
        if num_global_views > V:
            raise ValueError(f"num_global_views must be <= V={V}, got {num_global_views}")
    centre = z[:num_global_views].mean(0)  # (N, D); z[:None] is every view
    pred = (z - centre).square().mean()
    reg = sigreg(z)
    return LeJEPALoss((1 - lam) * pred + lam * reg, pred, reg)
