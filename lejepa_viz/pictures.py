"""Pictures that need an experiment first: run the toy (:mod:`lejepa_viz.toys`), then draw it
(:mod:`lejepa_viz.viz`). One call and one ``lejepa-viz`` command each: ``flow`` and ``lambda``.
"""

from __future__ import annotations

import os
from pathlib import Path

from .toys.clouds import make_cloud
from .toys.descent import sigreg_flow
from .toys.tiny import lambda_runs
from .viz.export import animation_path, save_animation
from .viz.toys import LambdaAnimation, flow_animation


def flow_gif(
    out: str | os.PathLike,
    shape: str = "ring",
    dim: int = 2,
    n: int = 1024,
    steps: int = 300,
    every: int = 5,
    seed: int = 0,
    duration_ms: float = 100,
    progress: bool = True,
) -> Path:
    """Optimise a ``shape`` cloud of ``n`` points in ``dim`` dimensions by SIGReg alone
    (:func:`lejepa_viz.toys.descent.sigreg_flow`) and write the convergence animation to ``out``
    (``.gif`` or ``.mp4``): one frame per ``every`` steps, ``steps // every + 1`` frames."""
    animation_path(out)  # a wrong suffix fails before any work
    flow = sigreg_flow(
        make_cloud(shape, n, dim, seed), steps=steps, every=every, seed=seed, progress=progress
    )
    animation = flow_animation(flow, f"SIGReg gradient flow: {shape}, N = {n}, D = {dim}", seed)
    return save_animation(animation.frames(progress), out, duration_ms)


def lambda_gif(
    out: str | os.PathLike,
    lams: tuple[float, ...] = (0.0, 0.1),
    steps: int = 120,
    every: int = 4,
    seed: int = 0,
    duration_ms: float = 100,
    progress: bool = True,
) -> Path:
    """Train the tiny digits encoder of :func:`lejepa_viz.toys.tiny.lambda_runs` once per λ and
    write the side-by-side animation to ``out`` (``.gif`` or ``.mp4``)."""
    animation_path(out)
    runs = lambda_runs(lams, "digits", steps=steps, every=every, seed=seed, progress=progress)
    return save_animation(LambdaAnimation(runs, seed=seed).frames(progress), out, duration_ms)
