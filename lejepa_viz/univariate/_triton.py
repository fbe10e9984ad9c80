"""The ECF sums of SIGReg in Triton: one fused pass per tile from ``u = x @ A`` to the sums.

Forward: each program takes a tile of ``BLOCK_N`` rows and ``BLOCK_K`` slices, projects it
(``tl.dot`` in IEEE float32, never TF32), computes ``e^{iθ}`` with ``θ = dt·u`` once and the
knots ``t_j = j·dt`` by the angle-addition recurrence (restarted every ``restart`` knots, as
the C kernel), and writes only the tile's column sums: ``(B, N / BLOCK_N, T, K)`` partial
sums, added in float64 afterwards (deterministic: no atomics). Neither ``(N, K)`` nor
``(N, K, T)`` is ever written. Backward recomputes the tile, evaluates ``∂/∂u`` by Horner's
rule in ``e^{iθ}`` (as the C kernel), writes it once as ``(B, N, K)``, and leaves the two
products with ``A`` to cuBLAS.

Chosen with ``ecf_kernel("triton")`` or ``LEJEPA_VIZ_KERNEL=triton`` (not by default: no GPU
has measured it yet). ``TRITON_INTERPRET=1`` runs it on CPU tensors, as the tests do.
"""

from __future__ import annotations

import os

import torch
from torch.autograd.function import once_differentiable

from ._native import derivative_coefficients

BLOCK_N, BLOCK_K, BLOCK_D = 64, 32, 32


def interpreted() -> bool:
    """Whether Triton runs its interpreter (``TRITON_INTERPRET=1``: CPU tensors, no GPU)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def check_input(x: torch.Tensor) -> None:
    """Refuse, with the reason, a tensor the Triton kernel cannot take."""
    if not (x.is_cuda or (interpreted() and x.device.type == "cpu")):
        raise ValueError(
            f"the triton kernel runs on CUDA tensors (or on the CPU with TRITON_INTERPRET=1), "
            f"got a tensor on {x.device}"
        )


def _launch(kind: str, x: torch.Tensor, A: torch.Tensor | None, *args) -> None:
    from . import _triton_kernels as kernels  # heavy: imports triton

    B, N, D = x.shape
    K = D if A is None else A.shape[1]
    a = x if A is None else A  # an unused pointer when PROJECT is off
    strides = (*x.stride(), *(a.stride() if A is not None else (0, 0)))
    grid = (-(-K // BLOCK_K), -(-N // BLOCK_N), B)
    kernel = kernels.forward if kind == "forward" else kernels.backward
    kernel[grid](x, a, *args, *strides, PROJECT=A is not None, BN=BLOCK_N, BK=BLOCK_K, BD=BLOCK_D)


class _TritonECFSums(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, A: torch.Tensor | None, dt: float, T: int, restart: int):
        B, N, D = x.shape
        K = D if A is None else A.shape[1]
        tiles = -(-N // BLOCK_N)
        partial = x.new_empty(B, tiles, 2, T, K, dtype=torch.float32)
        _launch("forward", x, A, partial, N, D, K, T, dt, restart)
        sums = partial.double().sum(1).transpose(2, 3)  # (B, 2, K, T)
        ctx.save_for_backward(x, A)
        ctx.dt, ctx.T = dt, T
        return sums[:, 0].contiguous(), sums[:, 1].contiguous()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_cos: torch.Tensor | None, grad_sin: torch.Tensor | None):
        x, A = ctx.saved_tensors
        B, N, D = x.shape
        K = D if A is None else A.shape[1]
        cos_coef, sin_coef = derivative_coefficients(grad_cos, grad_sin, ctx.dt, x)
        grad_u = x.new_empty(B, N, K, dtype=torch.float32)
        _launch(
            "backward",
            x,
            A,
            cos_coef,
            sin_coef,
            grad_u,
            N,
            D,
            K,
            ctx.T,
            ctx.dt,
        )
        grad_x = grad_A = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_u if A is None else grad_u @ A.T
        if A is not None and ctx.needs_input_grad[1]:
            grad_A = torch.einsum("bnd,bnk->dk", x, grad_u)
        return grad_x, grad_A, None, None, None


def ecf_sums(x: torch.Tensor, A: torch.Tensor | None, dt: float, T: int, restart: int):
    """``(Σ_n cos(j·dt·u_nk), Σ_n sin(j·dt·u_nk))`` for j = 1..T, each ``(B, K, T)`` float64,
    of ``u = x @ A`` (or ``u = x``), ``x`` of shape ``(B, N, D)``; computed in float32."""
    check_input(x)
    x32 = x.float()
    A32 = None if A is None else A.float()
    return _TritonECFSums.apply(x32, A32, float(dt), int(T), int(restart))
