"""lejepa_viz.toys.knobs: the slicing spread and the force field against the plain formula."""

import numpy as np
import pytest
import torch

from lejepa_viz.multivariate import directions
from lejepa_viz.toys import knobs
from lejepa_viz.toys.clouds import make_cloud


def plain_sigreg(z: np.ndarray, A: np.ndarray, t_max: float = 3.0, n_points: int = 17) -> float:
    """The textbook formula in float64: mean over slices of N Σ_j w_j |φ_N(t_j) - e^{-t_j²/2}|²."""
    t = np.linspace(0.0, t_max, n_points)
    dt = t_max / (n_points - 1)
    w = np.full(n_points, 2 * dt)
    w[[0, -1]] = dt
    w *= np.exp(-(t**2) / 2)
    u = z @ A  # (N, K)
    cos = np.cos(t[None, None, :] * u[..., None]).mean(0)  # (K, T)
    sin = np.sin(t[None, None, :] * u[..., None]).mean(0)
    err = (cos - np.exp(-(t**2) / 2)) ** 2 + sin**2
    return float((len(z) * err @ w).mean())


def plain_loss(x, other, lam, A, t_max, n_points):
    """(1 - λ)·pred + λ·SIGReg of the views (x, other), in float64."""
    z = np.stack([x, other])
    pred = ((z - z.mean(0)) ** 2).mean()
    reg = np.mean([plain_sigreg(v, A, t_max, n_points) for v in z])
    return (1 - lam) * pred + lam * reg


def test_slice_spread_is_sigreg_at_successive_steps():
    z = torch.randn(64, 3, generator=torch.Generator().manual_seed(1)) * 1.3
    ks, draws = (1, 5, 32), 4
    got = knobs.slice_spread(z, ks, draws=draws, n_points=9, t_max=2.5, seed=3)
    truth = [
        [
            plain_sigreg(
                z.double().numpy(), directions(3, k, seed=3, step=d).double().numpy(), 2.5, 9
            )
            for d in range(draws)
        ]
        for k in ks
    ]
    np.testing.assert_allclose(got, truth, rtol=2e-5)


def test_slice_spread_shrinks_like_one_over_sqrt_k():
    z = make_cloud("moons", 256)
    v = knobs.slice_spread(z, (1, 64), draws=32)
    ratio = v[0].std() / v[1].std()
    assert 3 < ratio < 16  # √64 = 8
    assert abs(v[0].mean() - v[1].mean()) < 0.5 * v[0].std()  # unbiased: the mean stays


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0])
def test_loss_field_is_minus_n_times_the_gradient(lam):
    x = make_cloud("ring", 10, seed=2)
    kw = dict(num_slices=8, n_points=7, t_max=3.0, noise=0.4, seed=5)
    force = knobs.loss_field(x, lam, **kw)
    other = (x + 0.4 * torch.randn(x.shape, generator=torch.Generator().manual_seed(5))).double()
    A = directions(2, 8, seed=5, step=0).double().numpy()
    x64, o64 = x.double().numpy(), other.numpy()
    grad, h = np.zeros_like(x64), 1e-5
    for i in np.ndindex(x64.shape):  # central differences of the plain formula
        up, down = x64.copy(), x64.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (plain_loss(up, o64, lam, A, 3.0, 7) - plain_loss(down, o64, lam, A, 3.0, 7)) / (
            2 * h
        )
    np.testing.assert_allclose(
        force, -len(x) * grad, rtol=1e-3, atol=1e-4 * np.abs(grad).max() * len(x)
    )


def test_loss_field_at_lambda_zero_pulls_towards_the_other_view():
    x = make_cloud("moons", 50)
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    # pred = Σ (x - y)² / (4 N D) with y = x + 0.3 ε, so -N ∂pred/∂x = (y - x) / (2 D)
    np.testing.assert_allclose(
        knobs.loss_field(x, 0.0, noise=0.3, seed=0),
        (0.3 * eps / 4).double().numpy(),
        rtol=1e-4,
        atol=1e-7,
    )
