"""The empirical characteristic function's sums at the Epps–Pulley knots, and the kernels that
make SIGReg cheap (:func:`epps_pulley_quadrature` owns the knots and weights). The textbook
formula builds
``(N, K, T)`` tensors of cos(t_j u_nk) and sin(t_j u_nk) and keeps them for backward; every
kernel here returns the same ECF sums ``(Σ_n cos(t_j u_nk), Σ_n sin(t_j u_nk))`` without
keeping them (the sums are what DDP all-reduces, see :mod:`lejepa_viz.distributed`):

- ``"native"`` (CPU, float32; the default there): the C kernel of ``ecf_kernel.c``. One
  sine/cosine pair per (n, k) and the angle-addition recurrence for the evenly spaced knots
  ``t_j = j·dt``: ``e^{i(j+1)θ} = e^{ijθ}·e^{iθ}`` with ``θ = dt·u``, four multiply-adds a knot
  instead of a sine and a cosine. Rounding error of the recurrence: each rotation multiplies
  by a float32 ``e^{iθ}`` whose modulus and phase are off by at most ``δ ≈ 1.5·2^-24``
  (the polynomial's error and one rounding) and adds a rounding of ``≈ 2^-24`` per component,
  so after ``m`` rotations ``|ê^{imθ} − e^{imθ}| ≤ m·(δ + 2·2^-24) + O(m²·2^-48)``, linear in
  m. The recurrence restarts from a directly computed ``e^{ijθ}`` every :data:`RESTART` knots,
  which caps m (measured in ``tests/test_kernels.py``). Backward evaluates
  ``∂/∂u = Re Σ_j (a_j − i b_j) e^{ijθ}`` by Horner's rule in ``e^{iθ}`` (four multiply-adds a
  knot, backward stable on the unit circle), recomputing ``u`` chunk by chunk: memory
  O(N·D + chunk). It runs on torch's own OpenMP threads.
- ``"torch"`` (float64 on the CPU, other devices): torch ops that reduce over N chunk by
  chunk (optionally projecting ``u = x @ A`` inside each chunk), keep only ``x`` and ``A``,
  and recompute in backward with a single cosine per (n, k, j) thanks to the phase identity
  ``a cos θ - b sin θ = sqrt(a² + b²) cos(θ + atan2(b, a))``. Memory O(N·D + chunk).
- ``"plain"`` (the default on CUDA while it fits in memory): the textbook formula's autograd
  graph, reduced to the sums, so a GPU never gets a path slower than the formula (the
  README's GPU section has the measurements).
- ``"triton"`` (CUDA, opt-in until measured on a GPU): one fused Triton pass from the
  projection tile to the sums (:mod:`lejepa_viz.univariate._triton`).

:func:`ecf_kernel` picks one inside a block; ``LEJEPA_VIZ_KERNEL`` sets the default.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import torch
from torch.autograd.function import once_differentiable

from .._checks import integer_at_least, positive
from . import _native, _triton

# Elements of one (rows, K, T) work buffer: 4 MB on a CPU (near the cache, and few enough
# ops that thread wake-ups do not dominate), 128 MB on a GPU (large enough to keep it busy).
_CHUNK_ELEMENTS = {"cpu": 1 << 20, "cuda": 1 << 25}
# Elements of one (rows, K) buffer of the native kernel (2 MB): few calls, little memory.
_NATIVE_CHUNK = 1 << 19
# The largest (B·N, K, T) the plain graph may build on a GPU (three tensors of it are kept).
_PLAIN_ELEMENTS = 1 << 27
# Knots between restarts of the native kernel's recurrence: the error grows with the number
# of rotations m ≤ RESTART - 1 (tests/test_kernels.py measures it at T = 17, 33, 65).
RESTART = 16
KERNELS = ("auto", "native", "torch", "plain", "triton")
_choice = threading.local()


@contextmanager
def ecf_kernel(name: str) -> Iterator[None]:
    """Compute the ECF sums with kernel ``name`` inside the block (see the module docstring).

    ``"auto"`` (the default, or ``$LEJEPA_VIZ_KERNEL``): ``"native"`` for float32 on the CPU
    when the C kernel builds, else ``"torch"``; ``"plain"`` on CUDA while it fits, else
    ``"torch"``. A kernel that cannot run the input raises ``ValueError``.

    Example:
        >>> x = torch.randn(1, 256, 4)
        >>> with ecf_kernel("torch"):
        ...     slow = ecf_sums(x, None, 3.0, 17)
        >>> bool(torch.allclose(slow[0], ecf_sums(x, None, 3.0, 17)[0], rtol=1e-4))
        True
    """
    if name not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {name!r}")
    before = getattr(_choice, "name", None)
    _choice.name = name
    try:
        yield
    finally:
        _choice.name = before


def chosen_kernel(x: torch.Tensor, K: int, T: int) -> str:
    """The kernel that computes the ECF sums of ``x`` (``(B, N, D)``) on K slices, T knots."""
    name = getattr(_choice, "name", None) or os.environ.get("LEJEPA_VIZ_KERNEL", "auto")
    if name not in KERNELS:
        raise ValueError(f"LEJEPA_VIZ_KERNEL must be one of {KERNELS}, got {name!r}")
    native_ok = x.device.type == "cpu" and x.dtype == torch.float32 and T <= _native.MAX_KNOTS
    if name == "auto":
        if x.device.type == "cpu":
            return "native" if native_ok and _native.library() is not None else "torch"
        fits = x.shape[0] * x.shape[1] * K * T <= _PLAIN_ELEMENTS
        return "plain" if x.device.type == "cuda" and fits else "torch"
    if name == "native" and not native_ok:
        raise ValueError(
            f"the native kernel takes float32 CPU tensors, got {x.dtype} on {x.device}"
        )
    if name == "native" and _native.library() is None:
        raise ValueError("the native kernel could not be built (see the warning above)")
    if name == "triton":
        _triton.check_input(x)
    return name


@lru_cache(maxsize=32)
def quadrature(t_max: float, n_points: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`epps_pulley_quadrature` unchecked and cached: shared tensors, never modify them."""
    dt = t_max / (n_points - 1)
    t = torch.linspace(0.0, t_max, n_points, dtype=torch.float64)
    weights = torch.full((n_points,), 2 * dt, dtype=torch.float64)
    weights[[0, -1]] = dt
    phi = torch.exp(-0.5 * t.square())
    return t, weights * phi, phi


def epps_pulley_quadrature(
    t_max: float = 3.0, n_points: int = 17
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Knots, weights and target values of the Epps–Pulley quadrature (float64, CPU).

    ``t_j = j·dt`` on ``[0, t_max]`` with ``dt = t_max / (n_points - 1)``; the trapezoid weights
    on the half line are doubled for the symmetric half (``dt`` at both ends, ``2·dt`` inside)
    and multiplied by the weight function ``e^{-t²/2}``.

    Returns:
        ``(t, weights, phi)``, each of shape ``(n_points,)``, with ``phi = e^{-t²/2}``.

    Example:
        >>> t, w, phi = epps_pulley_quadrature(3.0, 4)
        >>> t.tolist(), round(w[0].item(), 6)
        ([0.0, 1.0, 2.0, 3.0], 1.0)
    """
    t_max = positive(t_max, "t_max")
    n_points = integer_at_least(n_points, 2, "n_points")
    return tuple(v.clone() for v in quadrature(t_max, n_points))


def _chunk_rows(device: torch.device, width: int) -> int:
    return max(1, _CHUNK_ELEMENTS.get(device.type, 1 << 19) // width)


class _ECFSums(torch.autograd.Function):
    """``(Σ_n cos(t_j u_nk), Σ_n sin(t_j u_nk))`` for ``u = x @ A`` (or ``u = x``), shape (B, K, T)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, A: torch.Tensor | None, t: torch.Tensor):
        B, N, _ = x.shape  # (B, N, D)
        K, T = (x.shape[-1] if A is None else A.shape[1]), t.numel()
        rows = min(N, _chunk_rows(x.device, K * T))
        cos_sum = x.new_zeros(B, K, T, dtype=torch.float64)
        sin_sum = x.new_zeros(B, K, T, dtype=torch.float64)
        angle = x.new_empty(rows, K, T)  # t_j · u_nk for one chunk of rows
        trig = x.new_empty(rows, K, T)
        for b in range(B):
            for i in range(0, N, rows):
                u = x[b, i : i + rows] if A is None else x[b, i : i + rows] @ A  # (r, K)
                r = u.shape[0]
                torch.mul(u.unsqueeze(-1), t, out=angle[:r])
                cos_sum[b] += torch.cos(angle[:r], out=trig[:r]).sum(0)
                sin_sum[b] += torch.sin(angle[:r], out=trig[:r]).sum(0)
        ctx.save_for_backward(x, A, t)
        return cos_sum, sin_sum

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_cos: torch.Tensor | None, grad_sin: torch.Tensor | None):
        x, A, t = ctx.saved_tensors
        B, N, _ = x.shape
        K, T = (x.shape[-1] if A is None else A.shape[1]), t.numel()
        zeros = x.new_zeros(B, K, T, dtype=torch.float64)
        grad_cos = zeros if grad_cos is None else grad_cos
        grad_sin = zeros if grad_sin is None else grad_sin
        # d/du Σ_j (gc_j cos(t_j u) + gs_j sin(t_j u)) = Σ_j t_j (gs_j cos(t_j u) - gc_j sin(t_j u))
        #                                            = Σ_j amp_j cos(t_j u + phase_j)
        # (B, T, K): the reduction over T then runs along contiguous rows of K, vectorised
        amp = (t * torch.hypot(grad_cos, grad_sin)).to(x.dtype).transpose(1, 2).contiguous()
        phase = torch.atan2(grad_cos, grad_sin).to(x.dtype).transpose(1, 2).contiguous()
        need_x, need_A = ctx.needs_input_grad[0], A is not None and ctx.needs_input_grad[1]
        grad_x = torch.empty_like(x) if need_x else None
        grad_A = torch.zeros_like(A) if need_A else None
        rows = min(N, _chunk_rows(x.device, K * T))
        angle = x.new_empty(rows, T, K)
        t_col = t.unsqueeze(-1)  # (T, 1)
        for b in range(B):
            for i in range(0, N, rows):
                xc = x[b, i : i + rows]
                u = xc if A is None else xc @ A  # (r, K)
                r = u.shape[0]
                torch.addcmul(phase[b], u.unsqueeze(1), t_col, out=angle[:r])
                grad_u = angle[:r].cos_().mul_(amp[b]).sum(1)  # (r, K)
                if need_x:
                    grad_x[b, i : i + r] = grad_u if A is None else grad_u @ A.T
                if need_A:
                    grad_A += xc.T @ grad_u
        return grad_x, grad_A, None


class _NativeECFSums(torch.autograd.Function):
    """``_ECFSums`` for float32 on the CPU by the C kernel (knots ``t_j = j·dt``, j = 1..T)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, A: torch.Tensor | None, dt: float, T: int):
        lib, threads = _native.library(), torch.get_num_threads()
        x = x.contiguous()
        B, N, _ = x.shape
        K = x.shape[-1] if A is None else A.shape[1]
        rows = min(N, max(1, _NATIVE_CHUNK // K))
        sums = torch.zeros(B, 2, T, K, dtype=torch.float64)  # (b, cos | sin, j, k)
        u = None if A is None else x.new_empty(rows, K)
        for b in range(B):
            for i in range(0, N, rows):
                xc = x[b, i : i + rows]
                uc = xc if A is None else torch.mm(xc, A, out=u[: xc.shape[0]])
                status = lib.lv_ecf_forward(
                    uc.data_ptr(),
                    uc.shape[0],
                    K,
                    uc.stride(0),
                    dt,
                    T,
                    RESTART,
                    sums[b, 0].data_ptr(),
                    sums[b, 1].data_ptr(),
                    threads,
                )
                if status:
                    raise RuntimeError(f"lv_ecf_forward failed ({status})")
        ctx.save_for_backward(x, A)
        ctx.dt, ctx.T = dt, T
        cos_sum, sin_sum = sums.transpose(2, 3).unbind(1)
        return cos_sum.contiguous(), sin_sum.contiguous()  # (B, K, T) each

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_cos: torch.Tensor | None, grad_sin: torch.Tensor | None):
        x, A = ctx.saved_tensors
        dt, T = ctx.dt, ctx.T
        lib, threads = _native.library(), torch.get_num_threads()
        B, N, _ = x.shape
        K = x.shape[-1] if A is None else A.shape[1]
        cos_coef, sin_coef = _native.derivative_coefficients(grad_cos, grad_sin, dt, x)
        need_x, need_A = ctx.needs_input_grad[0], A is not None and ctx.needs_input_grad[1]
        grad_x = torch.empty_like(x) if need_x else None
        grad_A = torch.zeros_like(A) if need_A else None
        rows = min(N, max(1, _NATIVE_CHUNK // K))
        u = None if A is None else x.new_empty(rows, K)
        grad_u = x.new_empty(rows, K)
        for b in range(B):
            for i in range(0, N, rows):
                xc = x[b, i : i + rows]
                r = xc.shape[0]
                uc = xc if A is None else torch.mm(xc, A, out=u[:r])
                gu = grad_x[b, i : i + r] if A is None and need_x else grad_u[:r]
                status = lib.lv_ecf_backward(
                    uc.data_ptr(),
                    r,
                    K,
                    uc.stride(0),
                    dt,
                    T,
                    cos_coef[b].data_ptr(),
                    sin_coef[b].data_ptr(),
                    gu.data_ptr(),
                    gu.stride(0),
                    threads,
                )
                if status:
                    raise RuntimeError(f"lv_ecf_backward failed ({status})")
                if need_x and A is not None:
                    torch.mm(gu, A.T, out=grad_x[b, i : i + r])
                if need_A:
                    grad_A.addmm_(xc.T, gu)
        return grad_x, grad_A, None, None


def _plain_sums(x: torch.Tensor, A: torch.Tensor | None, t: torch.Tensor):
    """The textbook formula's graph, reduced to the ECF sums: ``(B, K, T)`` each (float64)."""
    angle = (x if A is None else x @ A).unsqueeze(-1) * t  # (B, N, K, T)
    return torch.cos(angle).sum(1).double(), torch.sin(angle).sum(1).double()


def ecf_sums(
    x: torch.Tensor, A: torch.Tensor | None, t_max: float, n_points: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ECF sums at the knots ``t_1..t_{T}`` (``t_0 = 0`` left out), each ``(B, K, T)``
    float64, of ``u = x @ A`` (or ``u = x``) for ``x`` of shape ``(B, N, D)``, by the kernel
    :func:`chosen_kernel` picks. Differentiable in ``x`` and ``A``."""
    t, _, _ = quadrature(t_max, n_points)
    T, K = n_points - 1, x.shape[-1] if A is None else A.shape[1]
    name = chosen_kernel(x, K, T)
    if name == "native":
        return _NativeECFSums.apply(x, A, t_max / (n_points - 1), T)
    t = t[1:].to(x.device, x.dtype)
    if name == "plain":
        return _plain_sums(x, A, t)
    if name == "triton":
        return _triton.ecf_sums(x, A, t_max / (n_points - 1), T, RESTART)
    return _ECFSums.apply(x, A, t)
