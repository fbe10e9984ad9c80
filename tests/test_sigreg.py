import math

import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn

import lejepa_viz as lejepa
from conftest import plain_epps_pulley
from lejepa_viz import SIGReg, lejepa_loss
from lejepa_viz.multivariate import SlicingUnivariateTest, directions
from lejepa_viz.univariate import CramerVonMises, EppsPulley


def plain_sigreg(x, A, t_max=3.0, n_points=17):
    """SIGReg written out: project, plain Epps–Pulley per slice, mean over everything."""
    return plain_epps_pulley(x @ A, t_max, n_points).mean()


def test_quick_start_runs_verbatim():
    embeddings = torch.randn(512, 128, requires_grad=True)
    lejepa_ = lejepa  # the Quick Start with `import lejepa_viz as lejepa`
    univariate_test = lejepa_.univariate.EppsPulley(num_points=17)
    loss_fn = lejepa_.multivariate.SlicingUnivariateTest(
        univariate_test=univariate_test, num_slices=1024
    )
    loss = loss_fn(embeddings)
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(embeddings.grad).all()


@pytest.mark.parametrize("shape", [(300, 20), (3, 128, 16)])
@pytest.mark.parametrize("t_max,n_points", [(3.0, 17), (4.0, 9)])
def test_sigreg_matches_plain_formula(shape, t_max, n_points, rng):
    x = (torch.randn(shape, generator=rng, dtype=torch.float64) * 1.3 + 0.2).requires_grad_()
    sigreg = SIGReg(num_slices=50, n_points=n_points, t_max=t_max, seed=3)
    A = sigreg.directions(shape[-1], 0).double()
    ours = sigreg(x)
    ref = plain_sigreg(x, A, t_max, n_points)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=0)
    (g_ours,) = torch.autograd.grad(ours, x)
    (g_ref,) = torch.autograd.grad(ref, x)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-6, atol=1e-12)


def test_sigreg_equals_slicing_test_and_generic_path(rng):
    x = torch.randn(2, 200, 12, generator=rng, dtype=torch.float64)
    fused = SlicingUnivariateTest(EppsPulley(), num_slices=40, seed=5)
    generic = SlicingUnivariateTest(nn.Sequential(EppsPulley()), num_slices=40, seed=5)
    ours = SIGReg(num_slices=40, seed=5)
    for _ in range(2):  # same value at successive steps too
        a, b, c = ours(x), fused(x), generic(x)
        torch.testing.assert_close(a, b, rtol=1e-12, atol=0)
        torch.testing.assert_close(a, c, rtol=1e-10, atol=0)


def test_sigreg_gradients_wrt_directions(rng):
    """The fused kernel also differentiates through A (used when directions are learned)."""
    from lejepa_viz.univariate.epps_pulley import ecf_statistic

    x = torch.randn(40, 5, generator=rng, dtype=torch.float64)
    A = torch.randn(5, 7, generator=rng, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: ecf_statistic(x, a, 3.0, 5), (A,))


def test_slicing_with_another_statistic_and_reductions(rng):
    x = torch.randn(2, 150, 6, generator=rng, dtype=torch.float64)
    test = SlicingUnivariateTest(CramerVonMises(), num_slices=10, reduction=None, seed=1)
    per_slice = test(x)
    expected = CramerVonMises()(x @ directions(6, 10, seed=1, step=0, dtype=torch.float64))
    torch.testing.assert_close(per_slice, expected)
    assert per_slice.shape == (2, 10)
    summed = SlicingUnivariateTest(CramerVonMises(), num_slices=10, reduction="sum", seed=1)(x)
    torch.testing.assert_close(summed, per_slice.sum())


def test_directions_are_reproducible_unit_vectors():
    A = directions(16, 32, seed=2, step=9)
    assert A.shape == (16, 32) and A.dtype == torch.float32
    torch.testing.assert_close(A.norm(dim=0), torch.ones(32))
    assert torch.equal(A, directions(16, 32, seed=2, step=9))
    assert not torch.allclose(A, directions(16, 32, seed=2, step=10))
    assert not torch.allclose(A, directions(16, 32, seed=3, step=9))
    # drawn in float32 on the CPU, then cast: the float64 directions are the same numbers
    assert torch.equal(directions(16, 32, seed=2, step=9, dtype=torch.float64), A.double())


def test_step_advances_and_is_checkpointed(rng):
    x = torch.randn(100, 8, generator=rng)
    a = SIGReg(num_slices=16)
    first = a(x)
    second = a(x)
    assert int(a.step) == 2 and not torch.isclose(first, second)
    b = SIGReg(num_slices=16)
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(x), b(x))
    torch.testing.assert_close(a.directions(8, 0), b.directions(8, 0))


def test_step_counter_is_not_read_back_while_training(rng, monkeypatch):
    """On a GPU, reading the counter would make every step wait for the device."""
    from lejepa_viz._checks import value_checks

    x = torch.randn(64, 4, generator=rng)
    sigreg = SIGReg(num_slices=8)
    sigreg(x)  # the first call reads the fresh buffer once
    reads = []
    for name in ("__int__", "__index__", "__float__", "__bool__", "item", "tolist", "cpu", "numpy"):
        real = getattr(torch.Tensor, name)
        monkeypatch.setattr(
            torch.Tensor,
            name,
            lambda t, *a, _r=real, _n=name, **k: reads.append((_n, t.shape)) or _r(t, *a, **k),
        )
    with value_checks(False):  # (the NaN check reads x, by design)
        for _ in range(3):
            sigreg(x)
    assert [r for r in reads if r[1] == ()] == []  # no read of a scalar such as the counter
    monkeypatch.undo()
    assert sigreg.step.tolist() == 4
    # writes from outside are seen: a rewind, a state dict, a move
    direct = plain_sigreg_at(sigreg, x, step=0)
    sigreg.step.zero_()
    torch.testing.assert_close(sigreg(x), direct)
    other = SIGReg(num_slices=8)
    other.load_state_dict(sigreg.state_dict())
    torch.testing.assert_close(other(x), sigreg(x))
    assert int(sigreg.step) == int(other.step) == 2


def plain_sigreg_at(sigreg, x, step):
    """The plain formula on the directions of ``step``, in float64."""
    A = directions(x.shape[-1], sigreg.num_slices, seed=sigreg.seed, step=step).double()
    return plain_epps_pulley(x.double() @ A).mean().float()


def test_a_fixed_step_evaluates_without_advancing(rng):
    x = torch.randn(128, 6, generator=rng)
    sigreg = SIGReg(num_slices=32, seed=3)
    first = sigreg(x, step=5)
    assert int(sigreg.step) == 0 and torch.equal(first, sigreg(x, step=5))
    torch.testing.assert_close(first, plain_sigreg_at(sigreg, x, step=5), rtol=1e-5, atol=0)
    assert not torch.equal(first, sigreg(x, step=6))


def test_value_checks_can_be_skipped_but_shapes_cannot():
    from lejepa_viz._checks import value_checks

    bad = torch.tensor([[float("nan")], [0.0], [1.0]])
    sigreg = SIGReg(num_slices=4)
    with pytest.raises(ValueError, match="NaN"):
        sigreg(bad)
    with value_checks(False):
        assert torch.isnan(sigreg(bad))  # not refused: the loop's check is off on CUDA
        with pytest.raises(ValueError, match="N >= 2"):
            sigreg(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="NaN"):  # back on after the block
        sigreg(bad)


def test_float32_is_accurate(rng):
    x = torch.randn(2048, 64, generator=rng) * 1.1
    sigreg = SIGReg(num_slices=256)
    value = sigreg(x).double()
    exact = plain_sigreg(x.double(), sigreg.directions(64, 0).double())
    assert abs(value - exact) / exact < 1e-4


def test_bf16_autocast_is_upcast(rng):
    z = torch.randn(2, 256, 32, generator=rng)
    sigreg = SIGReg(num_slices=64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = sigreg(z.bfloat16())
    sigreg.step.zero_()
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, sigreg(z.bfloat16().float()))


def test_sigreg_alone_makes_a_cloud_gaussian(rng):
    """Gradient descent on SIGReg turns a skewed, shifted, anisotropic cloud into N(0, I).

    The characteristic function on |t| <= 3 barely sees a few far outliers, so the check is on
    quantiles of random projections (the bulk), not on moments.
    """
    scales = torch.linspace(0.3, 2.0, 8)
    skewed = torch.empty(1024, 8).exponential_(generator=rng) - 1
    x = (0.6 * skewed + 0.8 * torch.randn(1024, 8, generator=rng)) * scales + 1.0
    x.requires_grad_()
    sigreg = SIGReg(num_slices=128)
    opt = torch.optim.Adam([x], lr=0.02)
    judge = SIGReg(num_slices=1024, seed=99)
    start = judge(x).item()
    for _ in range(400):
        opt.zero_grad()
        sigreg(x).backward()
        opt.step()
    judge.step.zero_()
    assert judge(x).item() < start / 500
    projections = x.detach() @ directions(8, 64, seed=7)  # (N, 64), each should be N(0, 1)
    quantiles = torch.quantile(projections, torch.tensor([0.1, 0.5, 0.9]), dim=0)
    expected = torch.tensor([-1.2816, 0.0, 1.2816])[:, None]
    assert (quantiles - expected).abs().max() < 0.15


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0])
def test_lejepa_loss_parts(lam, rng):
    z = torch.randn(4, 64, 8, generator=rng)
    out = lejepa_loss(z, lam, SIGReg(num_slices=32))
    centre = z.mean(0)
    pred = sum(((z[v] - centre) ** 2).sum(-1).mean() for v in range(4)) / 4 / 8
    torch.testing.assert_close(out.pred, pred)
    torch.testing.assert_close(out.sigreg, SIGReg(num_slices=32)(z))
    if lam == 0.0:
        assert torch.equal(out.loss, out.pred)
    if lam == 1.0:
        assert torch.equal(out.loss, out.sigreg)
    torch.testing.assert_close(out.loss, (1 - lam) * out.pred + lam * out.sigreg)


def test_lejepa_loss_global_views(rng):
    z = torch.randn(5, 32, 4, generator=rng)
    out = lejepa_loss(z, 0.0, SIGReg(num_slices=8), num_global_views=2)
    torch.testing.assert_close(out.pred, (z - z[:2].mean(0)).pow(2).mean())


def minimal_md_sigreg(proj, A, knots=17):
    """MINIMAL.md's SIGReg module's forward, written out (its random ``A`` passed in)."""
    t = torch.linspace(0, 3, knots, dtype=torch.float64)
    dt = 3 / (knots - 1)
    weights = torch.full((knots,), 2 * dt, dtype=torch.float64)
    weights[[0, -1]] = dt
    phi = torch.exp(-t.square() / 2.0)
    x_t = (proj @ A).unsqueeze(-1) * t
    err = (x_t.cos().mean(-3) - phi).square() + x_t.sin().mean(-3).square()
    return ((err @ (weights * phi)) * proj.size(-2)).mean()


def test_the_papers_loss_is_the_default_and_the_variants_are_what_they_say(rng):
    """Default: MINIMAL.md's ``sigreg_loss * lamb + inv_loss * (1 - lamb)`` with SIGReg per
    view; stable-pretraining's ``inv + λ·SIGReg`` of the views flattened; SIGReg of another
    tensor. Each against its formula written out on the same directions."""
    V, N, D, F, lam = 4, 96, 8, 12, 0.3
    z = torch.randn(V, N, D, generator=rng, dtype=torch.float64) * 1.4 + 0.1
    h = torch.randn(V, N, F, generator=rng, dtype=torch.float64).exp()  # far from Gaussian

    def at_step_0(**options):
        return lejepa_loss(z, lam, SIGReg(num_slices=64, seed=2), **options)

    A = SIGReg(num_slices=64, seed=2).directions(D, 0).double()
    inv = (z.mean(0) - z).square().mean()  # MINIMAL.md's inv_loss
    paper = minimal_md_sigreg(z, A) * lam + inv * (1 - lam)
    torch.testing.assert_close(at_step_0().loss, paper, rtol=1e-10, atol=0)
    flat = minimal_md_sigreg(z.reshape(1, V * N, D), A)  # one statistic of V·N samples
    out = at_step_0(weighting="additive", sigreg_views="flattened")
    torch.testing.assert_close(out.sigreg, flat, rtol=1e-10, atol=0)
    torch.testing.assert_close(out.loss, inv + lam * flat, rtol=1e-10, atol=0)
    assert not torch.isclose(flat, at_step_0().sigreg)  # pooling the views changes the value
    B = SIGReg(num_slices=64, seed=2).directions(F, 0).double()
    out = at_step_0(regularized=h)
    torch.testing.assert_close(out.sigreg, minimal_md_sigreg(h, B), rtol=1e-10, atol=0)
    torch.testing.assert_close(out.pred, inv)
    with pytest.raises(ValueError, match="weighting must be one of"):
        at_step_0(weighting="sum")
    with pytest.raises(ValueError, match=r"regularized must have shape \(V, N, F\)"):
        at_step_0(regularized=h[:, :10])


@pytest.mark.parametrize("lam", [-0.1, 1.5, float("nan"), "0.5"])
def test_lejepa_loss_refuses_bad_lambda(lam):
    with pytest.raises(ValueError, match="lam"):
        lejepa_loss(torch.randn(2, 8, 4), lam, SIGReg(num_slices=4))


def test_lejepa_loss_refuses_bad_shapes():
    with pytest.raises(ValueError, match=r"\(V, N, D\)"):
        lejepa_loss(torch.randn(8, 4), 0.5, SIGReg(num_slices=4))
    with pytest.raises(ValueError, match="num_global_views"):
        lejepa_loss(torch.randn(2, 8, 4), 0.5, SIGReg(num_slices=4), num_global_views=3)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"num_slices": 0}, "num_slices"), ({"n_points": 1}, "n_points"), ({"t_max": 0}, "t_max")],
)
def test_sigreg_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SIGReg(**kwargs)


@pytest.mark.parametrize(
    "x,match",
    [
        (torch.randn(10), "shape"),
        (torch.randn(1, 3), "N >= 2"),
        (torch.full((4, 3), math.nan), "NaN"),
        (torch.full((4, 3), math.inf), "Inf"),
    ],
)
def test_sigreg_bad_input(x, match):
    with pytest.raises(ValueError, match=match):
        SIGReg(num_slices=4)(x)


def test_bad_reduction():
    with pytest.raises(ValueError, match="reduction"):
        SlicingUnivariateTest(EppsPulley(), num_slices=4, reduction="max")


def test_null_mean_is_the_quadrature_of_one_minus_exp_and_close_to_the_integral():
    t = torch.linspace(0, 3, 17, dtype=torch.float64)
    w = torch.full((17,), 2 * 3 / 16, dtype=torch.float64)
    w[[0, -1]] = 3 / 16
    by_hand = (w * torch.exp(-(t**2) / 2) * (1 - torch.exp(-(t**2)))).sum().item()
    assert lejepa.null_mean() == pytest.approx(by_hand, rel=1e-12)
    continuous = math.sqrt(2 * math.pi) - math.sqrt(2 * math.pi / 3)  # ∫ over the real line
    assert lejepa.null_mean(n_points=65, t_max=6.0) == pytest.approx(continuous, rel=1e-4)
    assert abs(lejepa.null_mean() - continuous) < 0.01  # 17 knots on [0, 3]: within 1%


def test_null_level_matches_a_simulation_with_the_plain_formula():
    """Mean and spread of SIGReg on true N(0, I) samples, simulated here independently."""
    n, dim, k = 128, 4, 16
    g = torch.Generator().manual_seed(7)
    values = []
    for rep in range(300):
        x = torch.randn(n, dim, generator=g, dtype=torch.float64)
        A = directions(dim, k, seed=99, step=rep).double()
        values.append(plain_epps_pulley(x @ A).mean().item())
    values = torch.tensor(values)
    level = lejepa.null_level(n, dim, num_slices=k, reps=256)
    assert abs(values.mean().item() - level.mean) < 3 * values.std().item() / math.sqrt(300)
    assert level.sd == pytest.approx(values.std().item(), rel=0.2)
    assert level.low == pytest.approx(level.mean - 2 * level.sd)
    # the floor: about 1 in 100 simulated Gaussian samples score below it (300 draws: 0–9)
    shape = (level.mean / level.sd) ** 2
    assert level.floor == pytest.approx(
        scipy.stats.gamma.ppf(0.01, shape, scale=level.mean / shape), rel=1e-9
    )
    assert 0 < level.floor < level.mean and (values < level.floor).sum() <= 9
    assert level.floor > values.min() / 2  # and not far below the lowest (a normal fit: 0.15)
    # more slices narrow the band where there is room (D large), more views by about √V
    wide = lejepa.null_level(n, 64, num_slices=16).sd
    assert lejepa.null_level(n, 64, num_slices=256).sd < 0.6 * wide
    four = lejepa.null_level(n, dim, num_slices=k, views=4, reps=256)
    assert four.sd == pytest.approx(level.sd / 2, rel=0.25) and four.mean == level.mean
    with pytest.raises(ValueError, match="n must"):
        lejepa.null_level(1, 2)


def test_the_judge_reads_fixed_unseen_directions_beside_the_null_level():
    from conftest import plain_sigreg
    from lejepa_viz.sigreg import JUDGE_SEED, JUDGE_SLICES, judge, null_level

    g = torch.Generator().manual_seed(0)
    z = torch.randn(3, 128, 6, generator=g) * torch.tensor([1.0, 2.0, 0.5])[:, None, None]
    frames = judge(z)
    expected = [plain_sigreg(f, JUDGE_SLICES, JUDGE_SEED) for f in z]
    assert frames.value.shape == (3,)
    assert frames.value == pytest.approx(expected, rel=1e-5)  # the same directions every frame
    assert judge(z[1]).value == pytest.approx(expected[1], rel=1e-5)
    assert frames.null == null_level(128, 6, num_slices=JUDGE_SLICES)
    assert judge(z[0], num_slices=8, seed=3).value == pytest.approx(
        plain_sigreg(z[0], 8, 3), rel=1e-5
    )
    z[1, 5, 2] = float("nan")  # a frame without a sample reads NaN, the others are unchanged
    with_nan = judge(z).value
    assert np.isnan(with_nan[1]) and with_nan[[0, 2]] == pytest.approx(frames.value[[0, 2]])
    with pytest.raises(ValueError, match="NaN or Inf"):
        judge(z[1])
    with pytest.raises(ValueError, match=r"\(n, D\) or \(S, n, D\)"):
        judge(torch.zeros(2, 2, 3, 4))
