import math

import pytest
import torch

from conftest import closed_form_epps_pulley, plain_epps_pulley
from lejepa_viz.univariate import EppsPulley, epps_pulley, epps_pulley_quadrature


@pytest.mark.parametrize("shape", [(50, 1), (200, 7), (3, 97, 5), (2, 2, 64, 3)])
@pytest.mark.parametrize("t_max,n_points", [(3.0, 17), (5.0, 21), (1.0, 2)])
def test_value_and_gradient_match_plain_formula(shape, t_max, n_points, rng):
    x = (torch.randn(shape, generator=rng, dtype=torch.float64) * 1.4 + 0.3).requires_grad_()
    ours = epps_pulley(x, t_max, n_points)
    ref = plain_epps_pulley(x, t_max, n_points)
    assert ours.shape == shape[:-2] + shape[-1:]
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=0)
    g = torch.randn(ours.shape, generator=rng, dtype=torch.float64)
    (g_ours,) = torch.autograd.grad(ours, x, g)
    (g_ref,) = torch.autograd.grad(ref, x, g)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-6, atol=1e-12)


def test_converges_to_closed_form_integral(rng):
    """With a fine grid on a wide interval the trapezoid rule is the exact integral."""
    x = torch.randn(300, generator=rng, dtype=torch.float64) ** 3
    ours = epps_pulley(x[:, None], t_max=12.0, n_points=4001)[0]
    torch.testing.assert_close(ours, closed_form_epps_pulley(x), rtol=1e-6, atol=0)


def test_gradcheck(rng):
    x = torch.randn(9, 2, generator=rng, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: epps_pulley(v, 3.0, 5), (x,))


def test_backward_keeps_no_nkt_tensor(rng):
    """Autograd saves O(N·K) memory, never the (N, K, T) tensors of the textbook formula."""
    x = torch.randn(512, 64, generator=rng, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(
        lambda t: saved.append(t.numel()) or t, lambda t: t
    ):
        epps_pulley(x, 3.0, 17).sum().backward()
    assert max(saved) <= x.numel()


def test_quadrature_weights():
    t, w, phi = epps_pulley_quadrature(3.0, 17)
    dt = 3.0 / 16
    assert t[1].item() == pytest.approx(dt) and t[-1].item() == 3.0
    torch.testing.assert_close(
        w / phi, torch.tensor([dt] + [2 * dt] * 15 + [dt], dtype=torch.float64)
    )
    # the doubled trapezoid integrates the even weight function over the real line
    t, w, _ = epps_pulley_quadrature(10.0, 2001)
    assert w.sum().item() == pytest.approx(math.sqrt(2 * math.pi), rel=1e-9)


def test_num_points_alias_and_module():
    assert EppsPulley(num_points=9).n_points == 9
    x = torch.randn(100, 4)
    torch.testing.assert_close(EppsPulley(t_max=2.0, n_points=9)(x), epps_pulley(x, 2.0, 9))
    with pytest.raises(ValueError, match="disagree"):
        EppsPulley(n_points=9, num_points=11)


@pytest.mark.parametrize(
    "alternative",
    [
        lambda g: (torch.rand(500, 1, generator=g) - 0.5) * math.sqrt(12),  # shape: uniform, var 1
        lambda g: torch.randn(500, 1, generator=g) + 0.5,  # location
        lambda g: torch.randn(500, 1, generator=g) * 1.5,  # scale
    ],
)
def test_prefers_the_standard_normal(alternative, rng):
    null = epps_pulley(torch.randn(500, 1, generator=rng))
    assert null < epps_pulley(alternative(rng))


def test_low_precision_is_upcast(rng):
    x = torch.randn(300, 3, generator=rng)
    out = epps_pulley(x.bfloat16())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, epps_pulley(x.bfloat16().float()))


@pytest.mark.parametrize(
    "kwargs,match",
    [({"n_points": 1}, "n_points"), ({"t_max": 0.0}, "t_max"), ({"t_max": -1.0}, "t_max")],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EppsPulley(**kwargs)
    with pytest.raises(ValueError, match=match):
        epps_pulley(torch.randn(10, 2), **kwargs)


@pytest.mark.parametrize(
    "x,match",
    [
        (torch.randn(10), "shape"),
        (torch.randn(1, 3), "N >= 2"),
        (torch.tensor([[0.0], [float("nan")]]), "NaN"),
        (torch.tensor([[0.0], [float("inf")]]), "Inf"),
    ],
)
def test_bad_input(x, match):
    with pytest.raises(ValueError, match=match):
        epps_pulley(x)
