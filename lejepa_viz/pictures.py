"""Pictures that need an experiment first: run the toy (:mod:`lejepa_viz.toys`), then draw it
(:mod:`lejepa_viz.viz`). One call and one ``lejepa-viz`` command each: ``flow`` and ``lambda``.
Each returns the file and the number that says the picture shows what it is named for.
"""

from __future__ import annotations

import os

from .toys.clouds import make_cloud
from .toys.descent import sigreg_flow
from .toys.tiny import lambda_runs
from .viz.export import Drawn, animation_path, save_animation
from .viz.toys import LambdaAnimation, flow_animation


def flow_gif(
    out: str | os.PathLike,
    shape: str = "ring",
    dim: int = 2,
    n: int = 1024,
    steps: int = 300,
    every: int = 5,
    seed: int = 0,
    past_null: bool = False,
    optimizer: str = "sgd",
    duration_ms: float | None = None,
    progress: bool = True,
) -> Drawn:
    """Optimise a ``shape`` cloud of ``n`` points in ``dim`` dimensions by SIGReg alone
    (:func:`lejepa_viz.toys.descent.sigreg_flow`) and write the convergence animation to ``out``
    (``.gif`` or ``.mp4``): one frame per ``every`` steps, until the cloud scores what a true
    N(0, I) sample scores, or, with ``past_null``, all ``steps // every + 1`` frames (the frames
    below the null band say that the points now fit the knots, not N(0, I)). ``duration_ms``
    per frame; default: a loop of at least 4 seconds, at least 100 ms a frame."""
    animation_path(out)  # a wrong suffix fails before any work
    flow = sigreg_flow(
        make_cloud(shape, n, dim, seed),
        steps=steps,
        every=every,
        seed=seed,
        past_null=past_null,
        optimizer=optimizer,
        progress=progress,
    )
    how = "gradient descent" if optimizer == "sgd" else "Adam"
    title = f"SIGReg gradient flow ({how}): {shape}, N = {n}, D = {dim}"
    animation = flow_animation(flow, title, seed)
    if duration_ms is None:  # a few frames are worth following: no blink of a loop
        duration_ms = max(100.0, 4000.0 / len(flow.steps))
    path = save_animation(animation.frames(progress), out, duration_ms)
    null, values = animation.data.null, flow.values["sigreg"]
    numbers = {
        "start": values[0],
        "final": values[-1],
        "step": flow.steps[-1],
        "null_mean": null.mean,
        "null_sd": null.sd,
        "stopped": flow.stopped,
    }
    how = "stopped at the null level" if flow.stopped else "ran all its steps"
    summary = (
        f"SIGReg {values[0]:.1f} → {values[-1]:.2f} at step {flow.steps[-1]} ({how}); a true "
        f"N(0, I) sample of {n} points: {null}"
    )
    return Drawn(path, summary, numbers)


def lambda_gif(
    out: str | os.PathLike,
    lams: tuple[float, ...] = (0.0, 0.5),
    steps: int = 200,
    every: int = 5,
    seed: int = 0,
    task: str = "cloud",
    duration_ms: float = 100,
    progress: bool = True,
) -> Drawn:
    """Train the tiny encoder of :func:`lejepa_viz.toys.tiny.lambda_runs` once per λ on ``task``
    (``"cloud"``: an MLP R² → R² on two noisy views of 512 heavy-tailed points; ``"digits"``:
    an MLP on augmented views of the bundled digits) and write the side-by-side animation to
    ``out`` (``.gif`` or ``.mp4``)."""
    animation_path(out)
    runs = lambda_runs(lams, task, steps=steps, every=every, seed=seed, progress=progress)
    names = {"cloud": "a heavy-tailed 2-D cloud, two noisy views", "digits": "the digits"}
    animation = LambdaAnimation(runs, seed=seed, task=names[task])
    path = save_animation(animation.frames(progress), out, duration_ms)
    null = animation.null
    numbers = {
        f"{run.lam:g}": {"sigreg": run.values["sigreg"][-1], "std": run.values["std"][-1]}
        for run in runs
    } | {"null_mean": null.mean, "null_sd": null.sd}
    summary = (
        "; ".join(
            f"λ = {run.lam:g}: SIGReg {run.values['sigreg'][-1]:.2f}, std {run.values['std'][-1]:.2f}"
            for run in runs
        )
        + f" (a true N(0, I) sample: SIGReg {null}, std 1)"
    )
    return Drawn(path, summary, numbers)
