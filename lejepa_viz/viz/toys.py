"""Pictures of the toy experiments (:mod:`lejepa_viz.toys`), drawn from their trajectories: a
point cloud flowing to N(0, I), and a tiny encoder trained with λ = 0 (collapse) beside λ > 0
(an isotropic Gaussian)."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from ..multivariate.slicing import directions
from ..toys.trajectory import Trajectory
from .convergence import ConvergenceAnimation
from .export import figure_to_array


def flow_animation(flow: Trajectory, title: str, seed: int = 0) -> ConvergenceAnimation:
    """The convergence animation of a gradient flow (:func:`lejepa_viz.toys.descent.sigreg_flow`):
    the cloud at each recorded step, its SIGReg curve in panel (d)."""
    return ConvergenceAnimation(
        torch.stack(flow.snapshots),
        flow.steps,
        title=title,
        seed=seed,
        curves={"SIGReg": (flow.steps, flow.values["sigreg"])},
    )


class LambdaAnimation:
    """Side by side, one panel per λ: the outputs of :func:`lejepa_viz.toys.tiny.lambda_runs` on two
    fixed random unit directions over the N(0, I) 1σ / 2σ circles, with the step and the SIGReg
    value of each run. One matplotlib figure whose artists are updated frame by frame.

    Args:
        runs: the runs to show, all recorded at the same steps; snapshots ``(n, D)``.
        seed: seed of the two projection directions.
        size: frame size in pixels ``(width, height)`` at 100 dpi.
    """

    def __init__(self, runs: list[Trajectory], seed: int = 0, size: tuple[int, int] | None = None):
        if not runs or any(r.steps != runs[0].steps for r in runs):
            raise ValueError("runs must be a non-empty list of runs recorded at the same steps")
        self.runs, self.steps = runs, runs[0].steps
        dim = runs[0].snapshots[0].shape[-1]
        self.directions = directions(dim, 2, seed=seed, step=0)  # (D, 2) unit columns
        # (R, S, n, 2): every run's snapshots on the two directions, computed once
        self.xy = np.stack(
            [torch.stack(r.snapshots).float().numpy() @ self.directions.numpy() for r in runs]
        )
        width, height = size or (360 * len(runs), 400)
        self.figure = Figure(figsize=(width / 100, height / 100), dpi=100)
        FigureCanvasAgg(self.figure)
        axes = self.figure.subplots(1, len(runs), squeeze=False)[0]
        angle = np.linspace(0, 2 * np.pi, 200)
        self.points, self.labels = [], []
        for ax, run in zip(axes, runs, strict=True):
            for r in (1, 2):
                ax.plot(r * np.cos(angle), r * np.sin(angle), color="0.6", lw=1, ls="--")
            self.points.append(
                ax.scatter(
                    [],
                    [],
                    s=6,
                    alpha=0.7,
                    linewidths=0,
                    color="tab:red" if run.lam == 0 else "tab:blue",
                )
            )
            self.labels.append(
                ax.text(
                    0.03, 0.97, "", transform=ax.transAxes, va="top", family="monospace", fontsize=9
                )
            )
            verdict = "pure invariance" if run.lam == 0 else "with SIGReg"
            ax.set_title(f"λ = {run.lam:g} ({verdict})", fontsize=11)
            ax.set(xlim=(-3.5, 3.5), ylim=(-3.5, 3.5), aspect="equal", xticks=[], yticks=[])
        self.suptitle = self.figure.suptitle(self._title(0), fontsize=11)
        self.figure.tight_layout()

    def __len__(self) -> int:
        return len(self.steps)

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` as RGB pixels ``(H, W, 3)`` uint8."""
        for r, run in enumerate(self.runs):
            self.points[r].set_offsets(self.xy[r, i])
            sigreg, std = run.values["sigreg"][i], run.values["std"][i]  # std: 1 for N(0, I)
            self.labels[r].set_text(f"SIGReg {sigreg:7.2f}\nstd    {std:7.2f}")
        self.suptitle.set_text(self._title(i))
        return figure_to_array(self.figure)

    def _title(self, i: int) -> str:
        return f"tiny encoder on digits, LeJEPA loss, step {self.steps[i]}"

    def frames(self, progress: bool = True) -> list[np.ndarray]:
        return [self.frame(i) for i in tqdm(range(len(self)), desc="frames", disable=not progress)]
