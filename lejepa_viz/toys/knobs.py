"""SIGReg's knobs on one fixed cloud, nothing trained: the noise of the slicing estimate as the
number of slices K grows, and the force the LeJEPA loss puts on every point for a λ.

Both are computed again whenever a slider of notebook 05 moves (:mod:`lejepa_viz.viz.notebook`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .._checks import as_samples, integer_at_least, positive
from ..distributed import one_thread
from ..multivariate.slicing import directions
from ..sigreg import SIGReg, lejepa_loss
from ..univariate.epps_pulley import ecf_statistic

SLICE_COUNTS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def slice_spread(
    z: torch.Tensor,
    ks: Sequence[int] = SLICE_COUNTS,
    draws: int = 16,
    n_points: int = 17,
    t_max: float = 3.0,
    seed: int = 0,
) -> np.ndarray:
    """SIGReg of ``z`` (N, D) with K slices, for each K in ``ks`` and ``draws`` direction draws.

    Draw ``d`` is the value ``SIGReg(K, n_points, t_max, seed)`` reports at training step
    ``d`` (its directions are ``directions(D, K, seed=seed, step=d)``), so the spread of a row
    is the step-to-step noise of the slicing estimate.

    Returns:
        ``(len(ks), draws)`` float64.

    Example:
        >>> v = slice_spread(torch.randn(256, 2), ks=(1, 64), draws=8)
        >>> v.shape, bool(v[1].std() < v[0].std())
        ((2, 8), True)
    """
    draws = integer_at_least(draws, 1, "draws")
    ks = [integer_at_least(k, 1, "ks") for k in ks]
    z = torch.as_tensor(z).detach().float()
    # One fused call for every (K, draw): the directions SIGReg draws, side by side.
    blocks = [(k, d) for k in ks for d in range(draws)]
    A = torch.cat([directions(z.shape[-1], k, seed=seed, step=d) for k, d in blocks], dim=1)
    with torch.no_grad(), one_thread():
        stats = ecf_statistic(
            as_samples(z), A, positive(t_max, "t_max"), integer_at_least(n_points, 2, "n_points")
        ).double()
    means = [part.mean().item() for part in torch.split(stats, [k for k, _ in blocks])]
    return np.array(means).reshape(len(ks), draws)


def loss_field(
    x: torch.Tensor,
    lam: float,
    num_slices: int = 64,
    n_points: int = 17,
    t_max: float = 3.0,
    noise: float = 0.3,
    seed: int = 0,
) -> np.ndarray:
    """The force of the LeJEPA loss on each point of a cloud ``x`` (N, D): ``-N·∇ₓ loss``.

    The cloud is the first view; the second view is ``x + noise·ε`` (ε ~ N(0, I) seeded by
    ``seed``, held fixed), and ``loss = lejepa_loss(stack([x, view2]), lam, SIGReg(...))`` at
    SIGReg step 0. The gradient of a mean over N points is O(1/N); times N it is a per-point
    force. Only ``x`` moves: the pull of ``pred`` is towards the other view, the push of
    SIGReg towards N(0, I).

    Returns:
        ``(N, D)`` float64.

    Example:
        >>> from lejepa_viz.toys.clouds import make_cloud
        >>> f = loss_field(make_cloud("line", 64), lam=0.0, noise=0.0)
        >>> f.shape, float(abs(f).max())   # identical views: nothing to predict
        ((64, 2), 0.0)
    """
    x = torch.as_tensor(x).detach().float()
    noise = float(noise)
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    g = torch.Generator().manual_seed(seed)
    other = x + noise * torch.randn(x.shape, generator=g)
    x = x.clone().requires_grad_(True)
    sigreg = SIGReg(num_slices=num_slices, n_points=n_points, t_max=t_max, seed=seed)
    with one_thread():
        out = lejepa_loss(torch.stack([x, other]), lam, sigreg)
        (grad,) = torch.autograd.grad(out.loss, x)
    return (-len(x) * grad).double().numpy()
