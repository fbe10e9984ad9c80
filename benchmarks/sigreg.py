"""SIGReg speed and memory against the plain formula, side by side in one run.

The plain formula is the textbook (and original release's) implementation: it builds the
``(N, K, T)`` tensors of cos(t_j u) and sin(t_j u) and autograd keeps them for backward.
For each (N, D, K) with T = 17 this prints forward+backward time (best of a few, both
implementations interleaved on the same data) and peak extra memory (each measured in a
fresh subprocess after one step on a tiny input, so that library and thread-pool start-up
do not count: peak resident memory (VmHWM, reset first) during one forward+backward minus
the resident memory before it; on CUDA, ``max_memory_allocated``). At the target point it adds the plain formula
under ``torch.compile`` and the float32 error against the float64 formula.

    python benchmarks/sigreg.py            # the full grid (a few minutes on 2 CPU cores)
    python benchmarks/sigreg.py --quick    # N = 4096, D = 128, K = 1024 only
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from functools import partial

import torch

from lejepa_viz import SIGReg
from lejepa_viz.univariate.epps_pulley import epps_pulley_quadrature

TARGET = (4096, 128, 1024)


def plain_sigreg(x: torch.Tensor, A: torch.Tensor, t_max: float = 3.0, n_points: int = 17):
    """The textbook formula: materialises (N, K, T) cos/sin tensors."""
    t, weights, phi = (v.to(x.device, x.dtype) for v in epps_pulley_quadrature(t_max, n_points))
    xt = (x @ A).unsqueeze(-1) * t  # (N, K, T)
    err = (torch.cos(xt).mean(-3) - phi).square() + torch.sin(xt).mean(-3).square()
    return (err @ weights * x.shape[-2]).mean()


def make(N: int, D: int, K: int, device: str, dtype=torch.float32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(N, D, generator=g) * 1.2 + 0.1).to(device, dtype).requires_grad_(True)
    sigreg = SIGReg(num_slices=K).to(device)
    A = sigreg.directions(D, 0).to(dtype)
    return x, sigreg, A


def step(impl: str, x, sigreg, A, compiled=None):
    x.grad = None
    if impl == "ours":
        sigreg.step.zero_()  # same directions as A
        loss = sigreg(x)
    else:
        loss = (compiled or plain_sigreg)(x, A)
    loss.backward()
    if x.is_cuda:
        torch.cuda.synchronize()
    return loss


def best_times(fns: dict, repeats: int) -> dict:
    for fn in fns.values():  # warm-up (and compilation)
        fn()
    times = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():  # interleaved, so both see the same machine state
            t0 = time.perf_counter()
            fn()
            times[name] = min(times[name], time.perf_counter() - t0)
    return times


def peak_extra_mb(impl: str, N: int, D: int, K: int, device: str) -> float:
    """Peak extra memory of one forward+backward, in a fresh process."""
    out = subprocess.run(
        [sys.executable, __file__, "--memory-probe", impl, str(N), str(D), str(K), device],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["mb"]


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def memory_probe(impl: str, N: int, D: int, K: int, device: str) -> None:
    step(impl, *make(64, 8, 16, device))  # start-up (libraries, thread pools) is not per step
    x, sigreg, A = make(N, D, K, device)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step(impl, x, sigreg, A)
        mb = (torch.cuda.max_memory_allocated() - before) / 2**20
    else:  # Linux: reset the peak-RSS mark, then read it (ru_maxrss survives exec: unusable)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_kib("VmRSS")
        step(impl, x, sigreg, A)
        mb = (_status_kib("VmHWM") - before) / 1024
    print(json.dumps({"mb": mb}))


def float32_error(device: str) -> float:
    """|SIGReg in float32 - plain formula in float64| / plain, at the target point."""
    N, D, K = TARGET
    x, sigreg, A = make(N, D, K, device)
    with torch.no_grad():
        ours = sigreg(x).double()
        exact = plain_sigreg(x.double(), A.double())
    return abs(ours - exact).item() / exact.item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the target point")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--memory-probe", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_probe:
        impl, N, D, K, device = args.memory_probe
        return memory_probe(impl, int(N), int(D), int(K), device)

    device = args.device
    name = (
        torch.cuda.get_device_name()
        if device == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(f"# SIGReg forward+backward, T = 17, float32, {name}, torch {torch.__version__}\n")
    grid = (
        [TARGET]
        if args.quick
        else [(N, D, K) for N in (1024, 4096, 16384) for D in (128, 512) for K in (256, 1024)]
    )
    print("|     N |   D |    K | ours ms | plain ms | speed-up | ours MB | plain MB | memory |")
    print("|------:|----:|-----:|--------:|---------:|---------:|--------:|---------:|-------:|")
    for N, D, K in grid:
        x, sigreg, A = make(N, D, K, device)
        reps = args.repeats if N * K <= 4096 * 1024 else 1
        t = best_times(
            {
                "ours": partial(step, "ours", x, sigreg, A),
                "plain": partial(step, "plain", x, sigreg, A),
            },
            reps,
        )
        m_ours = peak_extra_mb("ours", N, D, K, device)
        m_plain = peak_extra_mb("plain", N, D, K, device)
        print(
            f"| {N:5d} | {D:3d} | {K:4d} | {1e3 * t['ours']:7.1f} | {1e3 * t['plain']:8.1f} "
            f"| {t['plain'] / t['ours']:7.1f}× | {m_ours:7.1f} | {m_plain:8.1f} "
            f"| {m_plain / max(m_ours, 1e-9):5.0f}× |",
            flush=True,
        )

    N, D, K = TARGET
    print(f"\nAt N = {N}, D = {D}, K = {K}:")
    x, sigreg, A = make(N, D, K, device)
    fns = {
        "ours": partial(step, "ours", x, sigreg, A),
        "plain": partial(step, "plain", x, sigreg, A),
    }
    if not args.no_compile:
        compiled = torch.compile(plain_sigreg)
        t0 = time.perf_counter()
        step("plain", x, sigreg, A, compiled)
        print(f"- torch.compile of the plain formula: first call {time.perf_counter() - t0:.1f} s")
        fns["plain, compiled"] = partial(step, "plain", x, sigreg, A, compiled)
    t = best_times(fns, max(args.repeats, 3))
    for impl, seconds in t.items():
        print(f"- {impl:16s} {1e3 * seconds:7.1f} ms   ours is {seconds / t['ours']:5.1f}× faster")
    print(f"- float32 SIGReg vs float64 plain formula: relative error {float32_error(device):.1e}")


if __name__ == "__main__":
    main()
