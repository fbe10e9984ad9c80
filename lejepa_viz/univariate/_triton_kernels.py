"""Triton kernels of the ECF sums (see :mod:`lejepa_viz.univariate._triton`, which launches
them). A module of its own because ``@triton.jit`` functions must live at a module's top:
importing it imports Triton, so it is imported only when the kernel runs."""

import triton
import triton.language as tl


@triton.jit
def _tile(
    x_ptr,
    a_ptr,
    b,
    n0,
    k0,
    N,
    D,
    K,
    sxb,
    sxn,
    sxd,
    sad,
    sak,
    PROJECT: tl.constexpr,
    BN: tl.constexpr,
    BK: tl.constexpr,
    BD: tl.constexpr,
):
    rows = n0 + tl.arange(0, BN)
    cols = k0 + tl.arange(0, BK)
    x_rows = x_ptr + b * sxb + rows[:, None] * sxn
    if PROJECT:
        u = tl.zeros((BN, BK), dtype=tl.float32)
        for d0 in range(0, D, BD):
            dims = d0 + tl.arange(0, BD)
            xt = tl.load(
                x_rows + dims[None, :] * sxd,
                mask=(rows[:, None] < N) & (dims[None, :] < D),
                other=0.0,
            )
            at = tl.load(
                a_ptr + dims[:, None] * sad + cols[None, :] * sak,
                mask=(dims[:, None] < D) & (cols[None, :] < K),
                other=0.0,
            )
            u += tl.dot(xt, at, input_precision="ieee")
    else:
        u = tl.load(
            x_rows + cols[None, :] * sxd, mask=(rows[:, None] < N) & (cols[None, :] < K), other=0.0
        )
    return u, rows, cols


@triton.jit
def forward(
    x_ptr,
    a_ptr,
    out_ptr,
    N,
    D,
    K,
    T,
    dt,
    restart,
    sxb,
    sxn,
    sxd,
    sad,
    sak,
    PROJECT: tl.constexpr,
    BN: tl.constexpr,
    BK: tl.constexpr,
    BD: tl.constexpr,
):
    pk, pn, b = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    u, rows, cols = _tile(
        x_ptr, a_ptr, b, pn * BN, pk * BK, N, D, K, sxb, sxn, sxd, sad, sak, PROJECT, BN, BK, BD
    )
    live = rows[:, None] < N
    c1, s1 = tl.cos(u * dt), tl.sin(u * dt)
    c, s = c1, s1
    # out: (B, tiles of N, 2, T, K); this program's slot
    base = out_ptr + ((b * tl.num_programs(1) + pn) * 2 * T) * K + cols
    for m in range(1, T + 1):
        if (m - 1) % restart == 0 and m > 1:  # restart from e^{i t_m u}
            c, s = tl.cos(u * (m * dt)), tl.sin(u * (m * dt))
        elif m > 1:
            c, s = c * c1 - s * s1, s * c1 + c * s1
        tl.store(base + (m - 1) * K, tl.sum(tl.where(live, c, 0.0), axis=0), mask=cols < K)
        tl.store(base + (T + m - 1) * K, tl.sum(tl.where(live, s, 0.0), axis=0), mask=cols < K)


@triton.jit
def backward(
    x_ptr,
    a_ptr,
    cc_ptr,
    sc_ptr,
    g_ptr,
    N,
    D,
    K,
    T,
    dt,
    sxb,
    sxn,
    sxd,
    sad,
    sak,
    PROJECT: tl.constexpr,
    BN: tl.constexpr,
    BK: tl.constexpr,
    BD: tl.constexpr,
):
    pk, pn, b = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    u, rows, cols = _tile(
        x_ptr, a_ptr, b, pn * BN, pk * BK, N, D, K, sxb, sxn, sxd, sad, sak, PROJECT, BN, BK, BD
    )
    # Σ_m cc_m cos(mθ) + sc_m sin(mθ) = Re Σ_m (cc_m − i·sc_m) z^m, z = e^{iθ}: Horner's rule
    zr, zi = tl.cos(u * dt), tl.sin(u * dt)
    coef = (b * T) * K + cols  # cc, sc: (B, T, K)
    pr = tl.zeros((BN, BK), dtype=tl.float32)
    pi = tl.zeros((BN, BK), dtype=tl.float32)
    for i in range(0, T):
        m = T - i
        cc = tl.load(cc_ptr + coef + (m - 1) * K, mask=cols < K, other=0.0)
        sc = tl.load(sc_ptr + coef + (m - 1) * K, mask=cols < K, other=0.0)
        pr, pi = pr * zr - pi * zi + cc[None, :], pr * zi + pi * zr - sc[None, :]
    grad = pr * zr - pi * zi
    tl.store(
        g_ptr + (b * N + rows[:, None]) * K + cols[None, :],
        grad,
        mask=(rows[:, None] < N) & (cols[None, :] < K),
    )
