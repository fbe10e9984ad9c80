"""The CPU kernel of the ECF sums (``ecf_kernel.c``), compiled on first use and cached on disk.

The C file needs no Python or torch headers, so a build takes well under a second with the
system's C compiler (``$CC``, else ``cc``/``gcc``/``clang``), tuned to this machine's CPU
(``-march=native``: the C file picks its vector width and row groups from the instruction set). The library is cached under ``$LEJEPA_VIZ_CACHE`` (default
``~/.cache/lejepa_viz``), keyed by the source, the compiler and the CPU's feature flags, and
written atomically, so processes sharing a home on different machines never load a library
built for another CPU. Without a compiler, or when a build fails, :func:`library` returns
None (with one warning) and SIGReg uses its torch kernel.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("ecf_kernel.c")
FLAGS = ("-O3", "-fPIC", "-shared", "-pthread", "-fno-math-errno")
MAX_KNOTS = 1024  # MAX_T in the C file

_i64, _i32, _f64, _ptr = ctypes.c_int64, ctypes.c_int32, ctypes.c_double, ctypes.c_void_p


def cache_dir() -> Path:
    """Where compiled kernels are kept: ``$LEJEPA_VIZ_CACHE`` or ``~/.cache/lejepa_viz``."""
    if root := os.environ.get("LEJEPA_VIZ_CACHE"):
        return Path(root)
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(home) / "lejepa_viz"


def _cpu_signature() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        return platform.processor()


def _compiler() -> str | None:
    return os.environ.get("CC") or next(
        (c for c in ("cc", "gcc", "clang") if shutil.which(c)), None
    )


def _march() -> str:
    """The CPU the kernel is built for: ``$LEJEPA_VIZ_MARCH`` (e.g. ``x86-64-v3`` for AVX2,
    ``x86-64`` for SSE2, to measure or test those builds here), else this one (``native``)."""
    return os.environ.get("LEJEPA_VIZ_MARCH", "native")


def build(compiler: str, target: Path) -> None:
    """Compile ``ecf_kernel.c`` into ``target`` (tuned to this CPU when the compiler can)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        out = Path(tmp) / target.name
        errors = ""
        # Best first: tuned with OpenMP, then without either (POSIX threads, generic code)
        march = f"-march={_march()}"
        for extra in ((march, "-fopenmp"), (march,), ("-fopenmp",), ()):
            cmd = [compiler, *FLAGS, *extra, str(SOURCE), "-o", str(out), "-lm"]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            if done.returncode == 0:
                os.replace(out, target)  # atomic: a concurrent build writes the same bytes
                return
            errors = done.stderr.strip()[-2000:]
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{errors}")


@lru_cache(maxsize=1)
def library() -> ctypes.CDLL | None:
    """The compiled kernel, built on first use; None (one warning) when it cannot be built.

    ``LEJEPA_VIZ_NATIVE=0`` turns it off (SIGReg then uses its torch kernel).
    """
    if os.environ.get("LEJEPA_VIZ_NATIVE", "1") == "0":
        return None
    compiler = _compiler()
    source = SOURCE.read_bytes()
    try:
        if compiler is None:
            raise RuntimeError("no C compiler found (set CC, or install gcc)")
        parts = [source, compiler.encode(), _cpu_signature().encode(), _march().encode()]
        key = hashlib.sha256(b"\0".join(parts))
        path = cache_dir() / f"ecf_kernel-{platform.machine()}-{key.hexdigest()[:16]}.so"
        if not path.exists():
            build(compiler, path)
        lib = ctypes.CDLL(str(path))
    except (OSError, RuntimeError, subprocess.SubprocessError) as error:
        warnings.warn(
            f"lejepa_viz: the CPU kernel of SIGReg could not be built ({error}); using the "
            "slower torch kernel",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    lib.lv_ecf_forward.argtypes = [_ptr, _i64, _i64, _i64, _f64, _i32, _i32, _ptr, _ptr, _i32]
    lib.lv_ecf_backward.argtypes = [_ptr, _i64, _i64, _i64, _f64, _i32, _ptr, _ptr, _ptr, _i64]
    lib.lv_ecf_backward.argtypes += [_i32]
    lib.lv_ecf_forward.restype = lib.lv_ecf_backward.restype = ctypes.c_int
    return lib


def derivative_coefficients(
    grad_cos: torch.Tensor | None, grad_sin: torch.Tensor | None, dt: float, like: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The coefficients both compiled kernels' backward takes, from the gradients of the ECF
    sums (``(B, K, T)`` float64 each, None for zero): ``∂/∂u Σ_j (gc_j cos(t_j u) + gs_j
    sin(t_j u)) = Σ_j a_j cos(t_j u) + b_j sin(t_j u)`` with ``a_j = t_j gs_j`` and
    ``b_j = −t_j gc_j``, ``t_j = j·dt``; returned as float32 ``(B, T, K)``, contiguous, on
    ``like``'s device."""
    given = grad_cos if grad_cos is not None else grad_sin
    t = torch.arange(1, given.shape[-1] + 1, dtype=torch.float64, device=like.device) * dt
    zeros = torch.zeros_like(given)
    a = t * (zeros if grad_sin is None else grad_sin)
    b = -t * (zeros if grad_cos is None else grad_cos)
    return tuple(c.transpose(1, 2).float().contiguous() for c in (a, b))
