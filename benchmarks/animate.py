"""How fast the embedding-convergence animation renders and how large its GIF is.

Builds synthetic snapshots like a training run's (100 frames of n = 512 points in D = 128,
10 classes, spreading from a collapsed cloud to N(0, I), with SIGReg and prediction curves)
and times, separately: the numbers (projections, histograms, ECF gaps, judged SIGReg), the
figure, rendering all frames, and writing the GIF. Prints; asserts nothing.

    python benchmarks/animate.py                            # synthetic, 100 frames
    python benchmarks/animate.py --snapshots runs/x/snapshots.pt   # a real run
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lejepa_viz.runs import Snapshots, load_recording
from lejepa_viz.viz.animation import ConvergenceAnimation
from lejepa_viz.viz.convergence import snapshots_data
from lejepa_viz.viz.export import save_animation


def synthetic(frames: int = 100, n: int = 512, dim: int = 128, classes: int = 10, seed: int = 0):
    """Snapshots that spread from a collapsed, class-clustered cloud to N(0, I), and curves."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    centres = torch.randn(classes, dim, generator=g)
    noise = torch.randn(n, dim, generator=g)
    progress = torch.linspace(0, 1, frames)[:, None, None]  # (S, 1, 1)
    z = 0.05 + progress * (0.6 * centres[labels] + 0.8 * noise)  # (S, n, D)
    steps = np.arange(frames) * 20
    logged = np.arange(20, steps[-1] + 1, 20)
    curves = {"SIGReg": (logged, 30 / np.sqrt(logged)), "prediction": (logged, 1 / logged**0.3)}
    snaps = Snapshots(
        steps=steps.tolist(),
        z=z,
        labels=labels,
        classes=[f"class {c}" for c in range(classes)],
        lam=0.05,
        dataset="synthetic",
    )
    return snaps, curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=Path, help="a run's snapshots.pt (default: synthetic)")
    parser.add_argument("--frames", type=int, default=100, help="synthetic frames")
    parser.add_argument("--out", type=Path, help="keep the GIF here (default: a temporary file)")
    args = parser.parse_args()

    if args.snapshots:
        snaps, curves = load_recording(args.snapshots)
    else:
        snaps, curves = synthetic(args.frames)
    S, n, D = snaps.z.shape
    print(
        f"# {args.snapshots or 'synthetic'}: {S} frames, n = {n}, D = {D}, "
        f"{torch.get_num_threads()} threads\n"
    )

    t0 = time.perf_counter()
    data = snapshots_data(snaps, curves=curves)
    t05 = time.perf_counter()
    anim = ConvergenceAnimation(data)
    t1 = time.perf_counter()
    frames = anim.frames(progress=False)
    t2 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = save_animation(frames, args.out or Path(tmp) / "animation.gif")
        t3 = time.perf_counter()
        size = out.stat().st_size / 2**20
    render = t2 - t1
    print(f"- numbers (projections, histograms, ECF gaps, judged SIGReg): {t05 - t0:.2f} s")
    print(f"- figure: {t1 - t05:.2f} s")
    print(
        f"- render: {render:.2f} s for {S} frames, {1e3 * render / S:.1f} ms/frame "
        f"({100 * render / S:.2f} s per 100 frames), {frames[0].shape[1]}×{frames[0].shape[0]} px"
    )
    print(f"- GIF write: {t3 - t2:.2f} s, {size:.2f} MB ({1024 * size / S:.1f} KB/frame)")


if __name__ == "__main__":
    main()
