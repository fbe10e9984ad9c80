"""SIGReg speed and memory against the plain formula, side by side in one run.

The plain formula is the textbook (and original release's) implementation: it builds the
``(N, K, T)`` tensors of cos(t_j u) and sin(t_j u) and autograd keeps them for backward.
"ours" is SIGReg as the package runs it (the kernel ``ecf_kernel("auto")`` picks: the C
kernel on the CPU). For each (N, D, K) with T = 17 this prints forward+backward time (best of
a few, both implementations interleaved on the same data) and peak extra memory (each measured in a
fresh subprocess after one step on a tiny input, so that library and thread-pool start-up
do not count: peak resident memory (VmHWM, reset first) during one forward+backward minus
the resident memory before it; on CUDA, ``max_memory_allocated``). At the target point it adds the plain formula
under ``torch.compile``, our other kernels, the first-use warm-up (a fresh process with an
empty kernel cache, then with the cache), the float32 error against the float64 formula, and
the machine's floor: the work no implementation avoids (two matrix products, one sine/cosine
pair per (n, k), the recurrence's multiply-adds) at rates measured on this machine (its own
matrix product, torch's sin/cos).

    python benchmarks/sigreg.py            # the full grid (a few minutes on 2 CPU cores)
    python benchmarks/sigreg.py --quick    # N = 4096, D = 128, K = 1024 only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from functools import partial

import torch

from lejepa_viz import SIGReg
from lejepa_viz.univariate import _native
from lejepa_viz.univariate.ecf import (
    RESTART,
    chosen_kernel,
    ecf_kernel,
    epps_pulley_quadrature,
)

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


def step(impl: str, x, sigreg, A, compiled=None, kernel="auto"):
    x.grad = None
    if impl == "ours":
        sigreg.step.zero_()  # same directions as A
        with ecf_kernel(kernel):
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


def floor_ms(N: int, D: int, K: int, T: int, device: str) -> tuple[float, str]:
    """The unavoidable work at this machine's measured rates, and how they were measured.

    Two matrix products (``u = x @ A`` forward, ``∂u @ Aᵀ`` backward) at the rate of this
    machine's own product of these shapes; one sin/cos pair per (n, k) at torch's sin + cos
    rate; the recurrence's four multiply-adds per (n, k, knot) forward and four backward
    (Horner) at the matrix product's FLOP rate, the most this machine reaches.
    """
    g = torch.Generator().manual_seed(0)
    x, A = torch.randn(N, D, generator=g).to(device), torch.randn(D, K, generator=g).to(device)
    u = (x @ A).contiguous()
    sync = torch.cuda.synchronize if device == "cuda" else lambda: None
    t = best_times(
        {"mm": lambda: (x @ A, sync()), "trig": lambda: (torch.sin(u), torch.cos(u), sync())}, 5
    )
    mm, trig = t["mm"], t["trig"]
    flops = 2 * N * D * K / mm
    recurrence = 2 * 4 * 2 * N * K * (T - 1) / flops
    floor = 2 * mm + trig + recurrence
    how = (
        f"matrix product {flops / 1e9:.0f} GFLOP/s, sin+cos {N * K / trig / 1e9:.2f} G pairs/s: "
        f"2 products {2e3 * mm:.1f} ms + N·K sin/cos {1e3 * trig:.1f} ms "
        f"+ recurrence {1e3 * recurrence:.1f} ms"
    )
    return 1e3 * floor, how


def kernel_ms(N: int, K: int, T: int) -> tuple[float, float]:
    """The C kernel alone (no projection, no autograd): forward and backward ms on ``u`` of
    shape (N, K), as built for ``$LEJEPA_VIZ_MARCH`` (default: this CPU)."""
    lib, threads = _native.library(), torch.get_num_threads()
    g = torch.Generator().manual_seed(0)
    u = torch.randn(N, K, generator=g) * 1.3 + 0.2
    a, b = torch.randn(2, T, K, generator=g)
    sums, grad = torch.zeros(2, T, K, dtype=torch.float64), torch.empty(N, K)
    dt = 3.0 / T
    args = (u.data_ptr(), N, K, K, dt, T)
    t = best_times(
        {
            "forward": lambda: lib.lv_ecf_forward(
                *args, RESTART, sums[0].data_ptr(), sums[1].data_ptr(), threads
            ),
            "backward": lambda: lib.lv_ecf_backward(
                *args, a.data_ptr(), b.data_ptr(), grad.data_ptr(), K, threads
            ),
        },
        7,
    )
    return 1e3 * t["forward"], 1e3 * t["backward"]


WARMUP = """
import time, torch
t0 = time.perf_counter()
from lejepa_viz import SIGReg
from lejepa_viz.univariate import _native
x = torch.randn(4096, 128, requires_grad=True)
SIGReg(num_slices=1024)(x).backward()
print(time.perf_counter() - t0)
"""


def warmup_seconds() -> tuple[float, float, float]:
    """Seconds of a first SIGReg step in a fresh process: with an empty kernel cache (the C
    kernel is built), with the cache, and for comparison with the torch kernel."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "LEJEPA_VIZ_CACHE": cache}
        run = partial(subprocess.run, [sys.executable, "-c", WARMUP], capture_output=True)
        times = []
        for extra in ({}, {}, {"LEJEPA_VIZ_KERNEL": "torch"}):
            done = run(text=True, check=True, env={**env, **extra})
            times.append(float(done.stdout.split()[-1]))
    return tuple(times)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


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
        else f"{cpu_name()}, {torch.get_num_threads()} threads"
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
    x, sigreg, A = make(N, D, K, device)
    kernel = chosen_kernel(x[None], K, 16)
    print(f"\nAt N = {N}, D = {D}, K = {K} (ours: the {kernel!r} kernel):")
    fns = {"ours": partial(step, "ours", x, sigreg, A)}
    others = ["torch"] + (["triton"] if device == "cuda" else []) + ["plain"] * (kernel != "plain")
    for other in others:
        fns[f"ours, {other!r} kernel"] = partial(step, "ours", x, sigreg, A, kernel=other)
    fns["plain"] = partial(step, "plain", x, sigreg, A)
    if not args.no_compile:
        compiled = torch.compile(plain_sigreg)
        t0 = time.perf_counter()
        step("plain", x, sigreg, A, compiled)
        print(f"- torch.compile of the plain formula: first call {time.perf_counter() - t0:.1f} s")
        fns["plain, compiled"] = partial(step, "plain", x, sigreg, A, compiled)
    t = best_times(fns, max(args.repeats, 5))
    for impl, seconds in t.items():
        print(f"- {impl:22s} {1e3 * seconds:7.1f} ms   ours is {seconds / t['ours']:5.1f}× faster")
    floor, how = floor_ms(N, D, K, 17, device)
    print(
        f"- floor estimate         {floor:7.1f} ms   ours takes {1e3 * t['ours'] / floor:.1f}× it"
    )
    print(f"  ({how})")
    if device == "cpu" and kernel == "native":
        forward, backward = kernel_ms(N, K, 16)
        march = os.environ.get("LEJEPA_VIZ_MARCH", "native")
        print(
            f"- the C kernel alone (-march={march}): forward {forward:.1f} ms, "
            f"backward {backward:.1f} ms"
        )
    if device == "cpu":
        built, cached, chunked = warmup_seconds()
        print(
            f"- first step in a fresh process (import, build, run): {built:.2f} s with an empty "
            f"kernel cache, {cached:.2f} s with it ({chunked:.2f} s with the torch kernel)"
        )
    print(f"- float32 SIGReg vs float64 plain formula: relative error {float32_error(device):.1e}")


if __name__ == "__main__":
    main()
