"""lejepa_viz.viz.widgets: the computations against independent truth, the widgets headless."""

import json

import numpy as np
import pytest
import torch

from lejepa_viz.flow import make_cloud
from lejepa_viz.multivariate import directions
from lejepa_viz.viz import widgets


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
    got = widgets.slice_spread(z, ks, draws=draws, n_points=9, t_max=2.5, seed=3)
    truth = [[plain_sigreg(z.double().numpy(), directions(3, k, seed=3, step=d).double().numpy(),
                           2.5, 9) for d in range(draws)] for k in ks]  # fmt: skip
    np.testing.assert_allclose(got, truth, rtol=2e-5)


def test_slice_spread_shrinks_like_one_over_sqrt_k():
    z = make_cloud("moons", 256)
    v = widgets.slice_spread(z, (1, 64), draws=32)
    ratio = v[0].std() / v[1].std()
    assert 3 < ratio < 16  # √64 = 8
    assert abs(v[0].mean() - v[1].mean()) < 0.5 * v[0].std()  # unbiased: the mean stays


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0])
def test_loss_field_is_minus_n_times_the_gradient(lam):
    x = make_cloud("ring", 10, seed=2)
    kw = dict(num_slices=8, n_points=7, t_max=3.0, noise=0.4, seed=5)
    force = widgets.loss_field(x, lam, **kw)
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
    np.testing.assert_allclose(widgets.loss_field(x, 0.0, noise=0.3, seed=0),
                               (0.3 * eps / 4).double().numpy(), rtol=1e-4, atol=1e-7)  # fmt: skip


def test_toy_training_collapses_at_zero_and_is_gaussian_above():
    zero = widgets.toy_training(0.0, steps=80, n=256)
    some = widgets.toy_training(0.2, steps=80, n=256)
    assert zero.std[-1] < 0.05 < 0.7 < some.std[-1] < 1.3
    assert zero.sigreg[-1] > 2 * zero.sigreg[0] and some.sigreg[-1] < zero.sigreg[0] / 10
    assert zero.steps == some.steps == list(range(0, 81, 10))
    np.testing.assert_array_equal(zero.snapshots[0], some.snapshots[0])  # same start
    again = widgets.toy_training(0.2, steps=80, n=256)
    np.testing.assert_array_equal(again.snapshots[-1], some.snapshots[-1])
    with pytest.raises(ValueError, match="lam"):
        widgets.toy_training(1.5)


def test_toy_runs_cache(tmp_path, monkeypatch):
    cache = tmp_path / "runs.pt"
    first = widgets.toy_runs((0.0, 0.5), cache=cache, steps=5, n=32)
    assert cache.is_file() and [r.lam for r in first] == [0.0, 0.5]

    def refuse(*args, **kwargs):
        raise AssertionError("retrained although the cache matches")

    with monkeypatch.context() as m:
        m.setattr(widgets, "toy_training", refuse)
        loaded = widgets.toy_runs((0.0, 0.5), cache=cache, steps=5, n=32)
    np.testing.assert_array_equal(loaded[1].snapshots[-1], first[1].snapshots[-1])
    other = widgets.toy_runs((0.0, 0.5), cache=cache, steps=6, n=32)  # new settings: retrained
    assert other[0].steps[-1] == 6


def test_montage_layout():
    images = np.arange(2 * 3 * 2 * 2, dtype=np.uint8).reshape(2, 3, 2, 2)
    rgb = np.full((2, 2, 2, 3), 255, np.uint8)
    m = widgets.montage(images, rgb)
    assert m.shape == (4, 4, 3)
    np.testing.assert_array_equal(m[:2, 2:], images[1].transpose(1, 2, 0))
    assert (m[2:] == 255).all()
    with pytest.raises(ValueError, match="must match"):
        widgets.montage(images, rgb[:1])


def test_lambda_explorer_redraws_when_lambda_moves():
    runs = widgets.toy_runs((0.0, 0.2), steps=10, n=64)
    box = widgets.lambda_explorer(runs, make_cloud("moons", 64), draws=2)

    def title(name):
        (out,) = box.outputs[name].outputs
        return out["data"][widgets.PLOTLY_MIME]["layout"]["title"]["text"]

    assert "λ = 0 " in title("field")
    spread_before = json.dumps(box.outputs["spread"].outputs)
    box.sliders["lam"].value = 0.2
    assert "λ = 0.2 " in title("field")
    assert "λ = 0.2" in json.dumps(box.outputs["training"].outputs, ensure_ascii=False)
    assert json.dumps(box.outputs["spread"].outputs) == spread_before  # λ does not touch it
    box.sliders["num_slices"].value = 8
    assert json.dumps(box.outputs["spread"].outputs) != spread_before


def test_pca_explorer_refits_on_threshold():
    images = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    tokens = torch.randn(2, 4, 4, 8, generator=torch.Generator().manual_seed(0))
    box = widgets.pca_explorer(images, tokens)
    first = box.image.value
    assert first[:8] == b"\x89PNG\r\n\x1a\n" and "foreground" in box.info.value
    box.threshold.value = 1.0
    assert box.image.value != first
    box.threshold.value = 2.0  # too few patches left: the message, not an exception
    assert "lower it" in box.info.value
    box.foreground.value = False
    assert "foreground" not in box.info.value
