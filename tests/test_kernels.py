"""The kernels behind SIGReg's ECF sums against the float64 formula: the C kernel (values,
gradients, its error bound, its build and cache), the Triton kernel in Triton's interpreter,
and which kernel each input gets."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from lejepa_viz.univariate import _native
from lejepa_viz.univariate import ecf as ecf_module
from lejepa_viz.univariate.ecf import chosen_kernel, ecf_kernel, ecf_sums
from lejepa_viz.univariate.epps_pulley import ecf_statistic

ROOT = Path(__file__).resolve().parents[1]
needs_native = pytest.mark.skipif(
    _native.library() is None, reason="no C compiler (make test installs gcc)"
)


def formula_sums(x, A, t_max, n_points):
    """Σ_n cos(t_j u_nk), Σ_n sin(t_j u_nk) in float64 for j = 1.., shape (B, K, T)."""
    t = torch.linspace(0, t_max, n_points, dtype=torch.float64)[1:]
    u = (x.double() if A is None else x.double() @ A.double()).unsqueeze(-1) * t
    return torch.cos(u).sum(1), torch.sin(u).sum(1)


def case(B, N, D, K, scale=1.3, seed=0, project=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, D, generator=g) * scale + 0.2
    A = torch.nn.functional.normalize(torch.randn(D, K, generator=g), dim=0) if project else None
    return x, A


@needs_native
@pytest.mark.parametrize("n_points", [17, 33, 65])
@pytest.mark.parametrize(
    "shape, project",
    [((1, 300, 24, 40), True), ((2, 37, 10, 21), True), ((1, 129, 19, 19), False)],
)
def test_native_sums_match_the_float64_formula(n_points, shape, project):
    # tails in every direction: K not a multiple of 16, N not of 4 or 8, B > 1, u = x
    x, A = case(*shape, project=project)
    with ecf_kernel("native"):
        cos_sum, sin_sum = ecf_sums(x, A, 3.0, n_points)
    ref_cos, ref_sin = formula_sums(x, A, 3.0, n_points)
    assert cos_sum.dtype == torch.float64 and cos_sum.shape == ref_cos.shape
    N = x.shape[1]
    torch.testing.assert_close(cos_sum / N, ref_cos / N, rtol=0, atol=3e-7)
    torch.testing.assert_close(sin_sum / N, ref_sin / N, rtol=0, atol=3e-7)


@needs_native
@pytest.mark.parametrize("n_points", [17, 40])
def test_native_gradients_match_float64_autograd(n_points):
    x, A = case(2, 150, 12, 37, seed=1)
    x.requires_grad_(True)
    A.requires_grad_(True)
    with ecf_kernel("native"):
        ecf_statistic(x, A, 3.0, n_points).square().sum().backward()
    xd, Ad = x.detach().double().requires_grad_(True), A.detach().double().requires_grad_(True)
    with ecf_kernel("torch"):
        ecf_statistic(xd, Ad, 3.0, n_points).square().sum().backward()
    for ours, exact in ((x.grad, xd.grad), (A.grad, Ad.grad)):
        assert (ours.double() - exact).abs().max() <= 1e-5 * exact.abs().max()


@needs_native
def test_native_gradient_without_projection_and_values_of_sigreg():
    x = (torch.randn(3, 200, 6) * 0.8).requires_grad_(True)
    with ecf_kernel("native"):
        value = ecf_statistic(x, None, 3.0, 17)
        value.sum().backward()
    xd = x.detach().double().requires_grad_(True)
    with ecf_kernel("torch"):
        exact = ecf_statistic(xd, None, 3.0, 17)
        exact.sum().backward()
    torch.testing.assert_close(value.double(), exact, rtol=1e-5, atol=0)
    torch.testing.assert_close(x.grad.double(), xd.grad, rtol=1e-5, atol=1e-6)


@needs_native
def test_recurrence_error_grows_linearly_and_restarts_cap_it(monkeypatch):
    """One row, many lanes: the sums are the terms themselves. Against cos/sin of the same
    float32 knots times the same float32 u in float64, the error after m rotations stays
    below m·(δ + 2u) + |t_m u|·u (δ = 1.5u the polynomial's error and a rounding, the last
    term the float32 product t_m·u of the restarts), and restarting every 16 knots keeps the
    error at m = 64 near that of m = 16 while without restarts it grows about fourfold."""
    unit = 2.0**-24
    u = (torch.randn(1, 1, 1 << 16, generator=torch.Generator().manual_seed(3)) * 2).float()
    n_points, T = 65, 64
    t32 = (torch.arange(1, T + 1, dtype=torch.float64) * (3.0 / T)).float().double()
    angle = t32[:, None] * u[0, 0].double()  # (T, K)
    errors = {}
    for restart in (16, 10**6):
        monkeypatch.setattr(ecf_module, "RESTART", restart)
        with ecf_kernel("native"):
            c, s = ecf_sums(u, None, 3.0, n_points)  # (1, K, T)
        err = torch.maximum((c[0].T - angle.cos()).abs(), (s[0].T - angle.sin()).abs())
        m = torch.arange(1, T + 1, dtype=torch.float64)[:, None]
        rotations = (m - 1) % restart
        bound = (rotations + 1) * 3.5 * unit + angle.abs() * unit + 2 * unit
        assert (err <= bound).all(), (err / bound).max()
        errors[restart] = err.max(1).values  # (T,)
    assert errors[10**6][63] > 3 * errors[10**6][15]  # linear growth without restarts
    assert errors[16][63] < 1.5 * errors[16][15]  # capped with them


@needs_native
def test_large_angles_take_the_exact_path():
    x = torch.randn(1, 64, 17)
    x[0, 5, 3] = 3e4  # |t_max u| beyond the polynomial's range reduction
    x[0, 9, 16] = -1e6
    with ecf_kernel("native"):
        cos_sum, sin_sum = ecf_sums(x, None, 3.0, 17)
    ref_cos, ref_sin = formula_sums(x, None, 3.0, 17)
    torch.testing.assert_close(cos_sum, ref_cos, rtol=0, atol=2e-5)
    torch.testing.assert_close(sin_sum, ref_sin, rtol=0, atol=2e-5)


@needs_native
def test_native_sums_are_the_torch_kernels_sums_so_ddp_is_unchanged():
    x, A = case(1, 512, 32, 64, seed=4)
    with ecf_kernel("native"):
        native = ecf_sums(x, A, 3.0, 17)
    with ecf_kernel("torch"):
        chunked = ecf_sums(x, A, 3.0, 17)
    for a, b in zip(native, chunked, strict=True):
        torch.testing.assert_close(a / 512, b / 512, rtol=0, atol=3e-7)


def test_auto_picks_native_on_cpu_float32_torch_for_float64_plain_on_cuda():
    x = torch.zeros(1, 8, 4)
    expected = "native" if _native.library() is not None else "torch"
    assert chosen_kernel(x, 4, 16) == expected
    assert chosen_kernel(x.double(), 4, 16) == "torch"
    cuda = SimpleNamespace(device=torch.device("cuda"), dtype=torch.float32, shape=(1, 4096, 128))
    assert chosen_kernel(cuda, 1024, 16) == "plain"  # the plain graph beat "torch" on an H200
    huge = SimpleNamespace(device=torch.device("cuda"), dtype=torch.float32, shape=(8, 1 << 16, 8))
    assert chosen_kernel(huge, 4096, 16) == "torch"  # the plain graph would not fit
    with ecf_kernel("torch"):
        assert chosen_kernel(x, 4, 16) == "torch"
    with pytest.raises(ValueError, match="float32 CPU"):
        with ecf_kernel("native"):
            chosen_kernel(x.double(), 4, 16)
    with pytest.raises(ValueError, match="kernel must be one of"):
        with ecf_kernel("fastest"):
            pass


def test_triton_refuses_cpu_tensors_outside_the_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match="TRITON_INTERPRET=1"):
        with ecf_kernel("triton"):
            ecf_statistic(torch.randn(1, 32, 4), None)


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=600,
    )


@needs_native
def test_the_kernel_is_built_once_per_cache_and_cpu(tmp_path):
    code = """
        from lejepa_viz.univariate import _native
        lib = _native.library()
        print(lib._name)
    """
    first = run_python(code, LEJEPA_VIZ_CACHE=str(tmp_path))
    assert first.returncode == 0, first.stderr
    built = Path(first.stdout.strip())
    assert built.parent == tmp_path and built.suffix == ".so"
    mtime = built.stat().st_mtime_ns
    second = run_python(code, LEJEPA_VIZ_CACHE=str(tmp_path))
    assert Path(second.stdout.strip()) == built and built.stat().st_mtime_ns == mtime
    assert [p.name for p in tmp_path.iterdir()] == [built.name]  # no temporary left over


def test_without_a_compiler_sigreg_warns_once_and_uses_the_torch_kernel(tmp_path):
    done = run_python(
        """
        import warnings, torch
        from lejepa_viz import SIGReg
        from lejepa_viz.univariate.ecf import chosen_kernel
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            SIGReg(num_slices=8)(torch.randn(64, 4))
            SIGReg(num_slices=8)(torch.randn(64, 4))
            print(chosen_kernel(torch.zeros(1, 2, 2), 2, 16))
        print(sum("could not be built" in str(w.message) for w in caught))
        """,
        CC="/nonexistent/cc",
        LEJEPA_VIZ_CACHE=str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["torch", "1"]


TRITON_CHECK = """
    import torch
    from lejepa_viz.univariate.ecf import ecf_kernel, ecf_sums
    from lejepa_viz.univariate.epps_pulley import ecf_statistic
    g = torch.Generator().manual_seed(0)
    worst = 0.0
    for B, N, D, K, n_points, project in [(1, 100, 20, 40, 5, True), (2, 70, 40, 33, 40, True),
                                          (1, 65, 7, 7, 17, False)]:
        x = (torch.randn(B, N, D, generator=g) * 1.1 + 0.1).requires_grad_(True)
        A = torch.nn.functional.normalize(torch.randn(D, K, generator=g), dim=0)
        A = A.requires_grad_(True) if project else None
        with ecf_kernel("triton"):
            sums = ecf_sums(x, A, 3.0, n_points)
            ecf_statistic(x, A, 3.0, n_points).square().sum().backward()
        xd = x.detach().double().requires_grad_(True)
        Ad = A.detach().double().requires_grad_(True) if project else None
        t = torch.linspace(0, 3.0, n_points, dtype=torch.float64)[1:]
        u = (xd if Ad is None else xd @ Ad).detach().unsqueeze(-1) * t
        ref = (u.cos().sum(1), u.sin().sum(1))  # the float64 formula
        with ecf_kernel("plain"):
            ecf_statistic(xd, Ad, 3.0, n_points).square().sum().backward()
        pairs = [(sums[0] / N, ref[0] / N), (sums[1] / N, ref[1] / N), (x.grad, xd.grad)]
        if project:
            pairs.append((A.grad, Ad.grad))
        for ours, exact in pairs:
            err = ((ours.double() - exact).abs().max() / exact.abs().max().clamp_min(1)).item()
            worst = max(worst, err)
    print(worst)
"""


def test_triton_kernel_in_the_interpreter_matches_the_float64_formula():
    pytest.importorskip("triton")
    done = run_python(TRITON_CHECK, TRITON_INTERPRET="1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert float(done.stdout.split()[-1]) < 2e-6


WIDTHS_CHECK = """
    import torch
    from lejepa_viz.univariate import _native
    from lejepa_viz.univariate.ecf import ecf_kernel, ecf_sums
    from lejepa_viz.univariate.epps_pulley import ecf_statistic
    assert _native.library() is not None
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(2, 203, 12, generator=g) * 1.3 + 0.2).requires_grad_(True)
    A = torch.nn.functional.normalize(torch.randn(12, 37, generator=g), dim=0)
    with ecf_kernel("native"):
        sums = ecf_sums(x, A, 3.0, 40)  # restarts at knots 17 and 33
        ecf_statistic(x, A, 3.0, 40).sum().backward()
    xd = x.detach().double().requires_grad_(True)
    t = torch.linspace(0, 3.0, 40, dtype=torch.float64)[1:]
    u = (xd.detach() @ A.double()).unsqueeze(-1) * t
    with ecf_kernel("torch"):
        ecf_statistic(xd, A.double(), 3.0, 40).sum().backward()
    err_sums = max(((s - r).abs().max() / 203).item() for s, r in zip(sums, (u.cos().sum(1), u.sin().sum(1))))
    err_grad = ((x.grad.double() - xd.grad).abs().max() / xd.grad.abs().max()).item()
    print(err_sums, err_grad)
"""


@needs_native
@pytest.mark.parametrize("march", ["x86-64-v3", "x86-64"])  # AVX2: 8 lanes; SSE2: 4 lanes
def test_narrower_vector_builds_give_the_same_values(march, tmp_path):
    if not sys.platform.startswith("linux") or os.uname().machine != "x86_64":
        pytest.skip("x86-64 targets")
    done = run_python(WIDTHS_CHECK, LEJEPA_VIZ_MARCH=march, LEJEPA_VIZ_CACHE=str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    err_sums, err_grad = map(float, done.stdout.split())
    assert err_sums < 3e-7 and err_grad < 1e-5
