"""Pictures of the toy experiments (:mod:`lejepa_viz.toys`), drawn from their trajectories: a
point cloud flowing to N(0, I), and a tiny encoder trained with λ = 0 (collapse) beside λ > 0
(an isotropic Gaussian)."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from ..sigreg import judge_null
from ..toys.trajectory import Trajectory
from .animation import ConvergenceAnimation
from .convergence import convergence_data, plane
from .export import figure_to_array


def flow_animation(flow: Trajectory, title: str, seed: int = 0) -> ConvergenceAnimation:
    """The convergence animation of a gradient flow (:func:`lejepa_viz.toys.descent.sigreg_flow`):
    the cloud ``(n, D)`` at each recorded step on the :func:`~lejepa_viz.viz.convergence.plane`
    of ``seed``, and the judged SIGReg the flow recorded against the null band (its numbers
    in ``.data``)."""
    data = convergence_data(
        torch.stack(flow.snapshots),
        flow.steps,
        title=title,
        seed=seed,
        names=("cloud", ""),
        start="the starting cloud",
        sigreg=flow.values["sigreg"],
    )
    return ConvergenceAnimation(data)


class LambdaAnimation:
    """Side by side, one panel per λ: the outputs of :func:`lejepa_viz.toys.tiny.lambda_runs` on
    the :func:`~lejepa_viz.viz.convergence.plane` of ``seed`` (orthonormal: a true N(0, I)
    sample is round against the 1σ and 2σ circles of N(0, I) in any D), with each run's
    SIGReg (read by :func:`lejepa_viz.sigreg.judge`) beside the band of a true N(0, I) sample
    of the same size on the judge's directions, and the spread of its outputs. One matplotlib
    figure whose artists are updated frame by frame.

    Args:
        runs: the runs to show, all recorded at the same steps; snapshots ``(n, D)``.
        seed: seed of the projection plane.
        size: frame size in pixels ``(width, height)`` at 100 dpi.
        task: what the encoder was trained on, for the title.

    Attributes:
        plane: ``(D, 2)`` the projection plane.
        xy: ``(R, S, n, 2)`` every run's snapshots on it.
        null: the :class:`~lejepa_viz.sigreg.NullLevel` of n points in D dimensions.
    """

    def __init__(
        self,
        runs: list[Trajectory],
        seed: int = 0,
        size: tuple[int, int] | None = None,
        task: str = "a heavy-tailed 2-D cloud, two noisy views",
    ):
        if not runs or any(r.steps != runs[0].steps for r in runs):
            raise ValueError("runs must be a non-empty list of runs recorded at the same steps")
        self.runs, self.steps, self.task = runs, runs[0].steps, task
        n, dim = runs[0].snapshots[0].shape
        self.null = judge_null(n, dim)
        self.plane = plane(dim, seed).numpy()  # (D, 2) orthonormal
        # (R, S, n, 2): every run's snapshots on the plane, computed once
        self.xy = np.stack([torch.stack(r.snapshots).double().numpy() @ self.plane for r in runs])
        width, height = size or (380 * len(runs), 450)
        self.figure = Figure(figsize=(width / 100, height / 100), dpi=100)
        FigureCanvasAgg(self.figure)
        axes = self.figure.subplots(1, len(runs), squeeze=False)[0]
        angle = np.linspace(0, 2 * np.pi, 200)
        self.points, self.labels = [], []
        for ax, run in zip(axes, runs, strict=True):
            for r, style in ((1, "--"), (2, ":")):
                ax.plot(r * np.cos(angle), r * np.sin(angle), color="0.35", lw=1, ls=style)
                ax.text(
                    0.72 * r + 0.05, -0.72 * r - 0.05, f"{r}σ", fontsize=8, color="0.25", va="top"
                )
            color = "tab:red" if run.lam == 0 else "tab:blue"
            self.points.append(ax.scatter([], [], s=6, alpha=0.7, linewidths=0, color=color))
            self.labels.append(
                ax.text(
                    0.03,
                    0.97,
                    "",
                    transform=ax.transAxes,
                    va="top",
                    fontsize=8.5,
                    family="monospace",
                )
            )
            verdict = "pure invariance" if run.lam == 0 else "with SIGReg"
            ax.set_title(f"λ = {run.lam:g} ({verdict})", fontsize=11)
            ax.set(
                xlim=(-3.5, 3.5),
                ylim=(-3.5, 3.5),
                aspect="equal",
                xticks=[-3, 0, 3],
                yticks=[-3, 0, 3],
                xlabel="random direction 1",
                ylabel="random direction 2",
            )
        self.suptitle = self.figure.suptitle(self._title(0), fontsize=10)
        self.figure.text(
            0.5,
            0.015,
            f"circles: 1σ and 2σ of N(0, I) · SIGReg of a true N(0, I) "
            f"sample of n = {n}: {self.null}",
            ha="center",
            fontsize=8,
            color="0.3",
        )
        self.figure.tight_layout(rect=(0, 0.04, 1, 1))

    def __len__(self) -> int:
        return len(self.steps)

    def readout(self, run: Trajectory, i: int) -> str:
        """The text of a run's panel at frame ``i``: its SIGReg and spread against N(0, I)."""
        sigreg, std = run.values["sigreg"][i], run.values["std"][i]  # std: 1 for N(0, I)
        verdict = (
            "collapsed"
            if std < 0.1
            else "as N(0, I)"
            if sigreg <= self.null.high
            else "not yet N(0, I)"
        )
        return f"SIGReg {sigreg:7.2f}\nstd    {std:7.2f}\n{verdict}"

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` as RGB pixels ``(H, W, 3)`` uint8."""
        for r, run in enumerate(self.runs):
            self.points[r].set_offsets(self.xy[r, i])
            self.labels[r].set_text(self.readout(run, i))
        self.suptitle.set_text(self._title(i))
        return figure_to_array(self.figure)

    def _title(self, i: int) -> str:
        return f"a tiny MLP encoder on {self.task}, LeJEPA loss: step {self.steps[i]}"

    def frames(self, progress: bool = True) -> list[np.ndarray]:
        return [self.frame(i) for i in tqdm(range(len(self)), desc="frames", disable=not progress)]
