"""Embedding-convergence animation: watch SIGReg pull the embeddings towards N(0, I).

Each frame is one figure: (a) the recorded points (a run's clean test images, coloured by
class; a cloud's points) on a fixed random plane over the 1σ and 2σ circles of N(0, I);
(b) the training views that SIGReg acted on at that step, on the same plane; (c) SIGReg of
both, judged on 1024 fixed directions neither saw, against the band a true N(0, I) sample of
the same size falls in (:func:`lejepa_viz.sigreg.null_level`), beside the loss's own SIGReg;
(d) histograms of a few random 1-D slices of the points against the N(0, 1) density; (e) the
gap |ECF(t) − e^{−t²/2}| of those slices, what SIGReg integrates, against its noise band;
(f) the other loss curves. A status line under the title gives the frame's numbers. Everything
is computed once for all frames; a frame only moves the artists of one reused figure (fixed
axes, so frames compare) and blits them. The same animation shows a training run
(``snapshots.pt``, :func:`animate_snapshots`) and the SIGReg gradient flow of a point cloud
(:func:`lejepa_viz.viz.toys.flow_animation`: no views, no classes).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import matplotlib as mpl
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle
from tqdm.auto import tqdm

from .._checks import as_samples, integer_at_least
from ..multivariate.slicing import SlicingUnivariateTest, directions
from ..runs import Run, Snapshots, load_curves, load_snapshots
from ..sigreg import SIGReg, null_level
from ..univariate import EppsPulley
from .export import animation_path, save_animation

LIMIT = 4.0  # the point and slice panels show [-LIMIT, LIMIT] in projection units
NUM_BINS = 40
T_MAX, NUM_T = 5.0, 101
SIGREG_T_MAX = inspect.signature(SIGReg).parameters["t_max"].default  # SIGReg looks no further
JUDGE_SLICES, JUDGE_SEED = 1024, 12345  # the judge's directions: fixed, unseen by training
_STYLE = {
    "font.size": 8,
    "axes.titlesize": 8.5,
    "axes.titlelocation": "left",
    "axes.titlecolor": "#222222",
    "axes.edgecolor": "#999999",
    "axes.labelcolor": "#333333",
    "axes.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": "#555555",
    "ytick.color": "#555555",
    "legend.frameon": False,
    "legend.fontsize": 7.5,
}
_SLICE_COLORS = ("#1b6ca8", "#d1495b", "#2a9d8f", "#e9a03b", "#6a4c93", "#5c6b73")
_POINTS, _VIEWS, _LOSS = "#1b6ca8", "#e07a1f", "#777777"  # the two judged sets; the loss's own
_CURVE_COLORS = ("#222222", "#6a4c93", "#2a9d8f", "#e9a03b")
_PANEL_LEGEND = {
    "frameon": True,
    "facecolor": "white",
    "edgecolor": "#dddddd",
    "framealpha": 1,
    "fancybox": False,
}


def judged_sigreg(z: torch.Tensor, seed: int = JUDGE_SEED) -> np.ndarray:
    """SIGReg of every frame of ``z`` ``(S, n, D)`` on the same 1024 fixed directions (those of
    ``SIGReg(1024, seed=seed)`` at step 0): ``(S,)``, one fused call. NaN frames give NaN."""
    finite = torch.isfinite(z).flatten(1).all(1)  # (S,)
    out = np.full(len(z), np.nan)
    if finite.any():
        test = SlicingUnivariateTest(EppsPulley(), JUDGE_SLICES, reduction=None, seed=seed)
        with torch.no_grad():
            out[finite.numpy()] = test(z[finite].float(), step=0).mean(-1).double().numpy()
    return out


def slice_densities(u: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Histogram heights of each column of ``u`` (*, n, K): ``(*, K, bins)``.

    Bins ``[e_i, e_i+1)``, the last one closed, and ``density=True``, as ``np.histogram``:
    values outside the edges are left out, the heights integrate to 1 (0 when empty).

    Example:
        >>> u = np.array([[-1.0], [0.2], [0.5], [9.0]])
        >>> slice_densities(u, np.array([-1.0, 0.0, 1.0])).tolist()
        [[0.3333333333333333, 0.6666666666666666]]
    """
    bins = len(edges) - 1
    index = np.searchsorted(edges, u, side="right") - 1  # (*, n, K)
    index[u == edges[-1]] = bins - 1
    inside = (index >= 0) & (index < bins)
    k = u.shape[-1]
    lead = np.arange(int(np.prod(u.shape[:-2], dtype=int))).reshape(*u.shape[:-2], 1, 1)
    flat = (lead * k + np.arange(k)) * bins + index  # one bin per (leading index, column, bin)
    counts = np.bincount(flat[inside], minlength=lead.size * k * bins)
    counts = counts.reshape(*u.shape[:-2], k, bins)
    total = counts.sum(-1, keepdims=True)
    return counts / np.maximum(total, 1) / np.diff(edges)


def ecf_gap(u: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``|ECF(t) − e^{−t²/2}|`` of each column of ``u`` (n, K) at each ``t`` (T,): ``(K, T)``.

    ``ECF(t) = mean_n exp(i t u_n)`` is the empirical characteristic function and
    ``e^{−t²/2}`` the one of N(0, 1).

    Example:
        >>> ecf_gap(np.zeros((5, 1)), np.array([0.0, 2.0])).round(3).tolist()
        [[0.0, 0.865]]
    """
    tu = u[..., None] * t  # (n, K, T)
    real = np.cos(tu).mean(0) - np.exp(-0.5 * t**2)
    return np.hypot(real, np.sin(tu).mean(0))


class ConvergenceAnimation:
    """Frames that show embeddings (or any point cloud) converging to N(0, I).

    Args:
        z: the recorded points of each frame, ``(S, n, D)`` with ``D >= 2``.
        steps: the step of each frame, length S.
        views: the training views of each frame, ``(S, B, D)`` (NaN rows: a frame without);
            None: no panel (b) (a gradient flow moves the points themselves).
        labels: class index of each point ``(n,)``, to colour panel (a); None: one colour.
        classes: class names, for a legend (with ``labels``).
        curves: loss curves ``{name: (steps, values)}`` of the run; ``"SIGReg"`` (the loss's
            own, on its batch and its directions) joins panel (c), the others panel (f).
        lam: λ of the run, in the title.
        title: what the title starts with (e.g. the dataset).
        names: what ``z`` and ``views`` are, for the legends and the status line.
        sigreg: the judged SIGReg of each frame of ``z`` when already known (a flow records
            it); None: :func:`judged_sigreg`.
        num_slices: number of 1-D slices in panels (d) and (e).
        seed: seed of the plane and slice directions (:func:`directions` at step 0).
        size: frame width and height in pixels.
        dpi: dots per inch of the figure (font sizes are in points).

    Attributes:
        plane: ``(D, 2)`` orthonormal directions of panels (a) and (b).
        slices: ``(D, num_slices)`` unit directions of panels (d) and (e).
        points, view_points: ``(S, n, 2)`` and ``(S, B, 2)`` projections on ``plane``.
        projections: ``(S, n, num_slices)`` projections of ``z`` on ``slices``.
        sigreg, view_sigreg: ``(S,)`` SIGReg of ``z`` and of ``views`` (:func:`judged_sigreg`).
        null, view_null: :class:`~lejepa_viz.sigreg.NullLevel` of samples of the same sizes.
        edges, densities: histogram bin edges and heights ``(S, num_slices, NUM_BINS)``.
        t, gaps: ECF arguments on ``[0, T_MAX]`` and gaps ``(S, num_slices, NUM_T)``.
        figure: the one matplotlib figure every frame is drawn on.
        scatter, view_scatter, stairs, gap_lines, cursors, dots, title_text, status_text:
            the artists a frame moves.

    Example:
        >>> anim = ConvergenceAnimation(torch.randn(2, 100, 4), [0, 10], size=(400, 300))
        >>> len(anim), anim.frame(1).shape
        (2, (300, 400, 3))
    """

    def __init__(
        self,
        z: torch.Tensor | np.ndarray,
        steps: Sequence[int],
        *,
        views: torch.Tensor | np.ndarray | None = None,
        labels: torch.Tensor | np.ndarray | None = None,
        classes: Sequence[str] | None = None,
        curves: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
        lam: float | None = None,
        title: str | None = None,
        names: tuple[str, str] = ("clean test images", "training views"),
        sigreg: Sequence[float] | None = None,
        num_slices: int = 3,
        seed: int = 0,
        size: tuple[int, int] = (1000, 620),
        dpi: int = 100,
    ):
        z = as_samples(torch.as_tensor(z), "z")
        if z.ndim != 3 or z.shape[-1] < 2:
            raise ValueError(f"z must have shape (S, n, D) with D >= 2, got {tuple(z.shape)}")
        self.steps = [int(s) for s in steps]
        if len(self.steps) != len(z):
            raise ValueError(f"steps must have one entry per frame ({len(z)}), got {len(steps)}")
        if views is not None:
            views = torch.as_tensor(views).float()
            if views.ndim != 3 or len(views) != len(z) or views.shape[-1] != z.shape[-1]:
                raise ValueError(
                    f"views must have shape (S, B, D) = ({len(z)}, B, "
                    f"{z.shape[-1]}), got {tuple(views.shape)}"
                )
        self.labels = None if labels is None else np.asarray(labels, dtype=int).reshape(-1)
        if self.labels is not None and (len(self.labels) != z.shape[1] or self.labels.min() < 0):
            raise ValueError(
                f"labels must be {z.shape[1]} class indices >= 0, got {len(self.labels)} "
                f"from {self.labels.min()} to {self.labels.max()}"
            )
        if classes is not None and self.labels is not None and self.labels.max() >= len(classes):
            raise ValueError(f"classes has {len(classes)} names, labels go to {self.labels.max()}")
        self.classes = None if classes is None else list(classes)
        self.curves = {
            name: (np.asarray(x, float), np.asarray(y, float))
            for name, (x, y) in (curves or {}).items()
        }
        for name, (x, y) in self.curves.items():
            if x.ndim != 1 or x.shape != y.shape or len(x) == 0:
                raise ValueError(f"curves[{name!r}] must be (steps, values) of one length")
        self.lam, self.title, self.names = lam, title, names
        num_slices = integer_at_least(num_slices, 1, "num_slices")

        # Directions and everything every frame needs, once.
        n, dim = z.shape[1:]
        drawn = directions(dim, 2 + num_slices, seed=seed, dtype=torch.float64)  # (D, 2 + K)
        drawn /= drawn.norm(dim=0)  # unit in float64 too (drawn as float32)
        first, second = drawn[:, 0], drawn[:, 1]
        second = second - (second @ first) * first  # Gram–Schmidt: a plane, not a skewed pair
        self.plane = torch.stack([first, second / second.norm()], dim=1)  # (D, 2)
        self.slices = drawn[:, 2:]  # (D, K)
        z64 = z.double()
        self.points = (z64 @ self.plane).numpy()  # (S, n, 2)
        self.projections = (z64 @ self.slices).numpy()  # (S, n, K)
        self.edges = np.linspace(-LIMIT, LIMIT, NUM_BINS + 1)
        self.densities = slice_densities(self.projections, self.edges)  # (S, K, bins)
        self.t = np.linspace(0.0, T_MAX, NUM_T)
        self.gaps = np.stack([ecf_gap(u, self.t) for u in self.projections])  # (S, K, T)
        self.sigreg = judged_sigreg(z) if sigreg is None else np.asarray(sigreg, float)
        self.null = null_level(n, dim, num_slices=JUDGE_SLICES)
        self.floor = self.null.floor  # the status line's test, computed once
        self.view_points, self.view_sigreg, self.view_null = None, None, None
        if views is not None:
            self.view_points = (views.double() @ self.plane).numpy()  # (S, B, 2)
            self.view_sigreg = judged_sigreg(views)
            self.view_null = null_level(views.shape[1], dim, num_slices=JUDGE_SLICES)

        with mpl.rc_context(_STYLE):
            self._build(size, dpi)

    @classmethod
    def from_snapshots(cls, snapshots: Snapshots, **kwargs) -> ConvergenceAnimation:
        """The animation of a run's :class:`~lejepa_viz.runs.Snapshots`; ``kwargs`` go to the
        constructor."""
        return cls(
            snapshots.z,
            snapshots.steps,
            views=snapshots.z_views,
            labels=snapshots.labels,
            classes=snapshots.classes,
            lam=snapshots.lam,
            title=snapshots.dataset,
            **kwargs,
        )

    def __len__(self) -> int:
        return len(self.steps)

    # The figure: built once, its artists moved per frame.

    def _build(self, size: tuple[int, int], dpi: int) -> None:
        width, height = size
        self.figure = fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
        FigureCanvasAgg(fig)
        others = {k: v for k, v in self.curves.items() if k != "SIGReg"}
        panels = ["points"] + (["views"] if self.view_points is not None else []) + ["sigreg"]
        panels += ["slices", "ecf"] + (["losses"] if others else [])
        cols = (len(panels) + 1) // 2
        grid = fig.add_gridspec(
            2, cols, left=0.055, right=0.985, bottom=0.075, top=0.845, wspace=0.28, hspace=0.42
        )
        self.title_text = fig.text(0.012, 0.965, "", fontsize=11, color="#111111", va="center")
        self.status_text = fig.text(0.012, 0.915, "", fontsize=8.5, color="#333333", va="center")
        self._moving = [self.title_text, self.status_text]  # what a frame changes, in order
        self._legends = []  # legends inside the panels, drawn over the moving artists
        self.cursors, self.dots, self.view_scatter = [], [], None
        letters = iter("abcdef")
        draw = {
            "points": self._points_panel,
            "views": self._views_panel,
            "sigreg": self._sigreg_panel,
            "slices": self._histogram_panel,
            "ecf": self._ecf_panel,
            "losses": lambda ax, c: self._curve_panel(ax, c, others),
        }
        for i, name in enumerate(panels):
            draw[name](fig.add_subplot(grid[i // cols, i % cols]), next(letters))
        # Blitting: the static parts are drawn once; a frame restores them, draws the moving
        # artists, then puts the legends back on top (as opaque boxes).
        for artist in self._moving:
            artist.set_animated(True)
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        self._background = fig.canvas.copy_from_bbox(fig.bbox)
        self._overlays = [
            fig.canvas.copy_from_bbox(legend.get_window_extent(renderer).padded(2))
            for legend in self._legends
        ]

    def _plane_axes(self, ax, title: str) -> None:
        ax.set(
            xlim=(-LIMIT, LIMIT),
            ylim=(-LIMIT, LIMIT),
            aspect="equal",
            xticks=[-4, -2, 0, 2, 4],
            yticks=[-4, -2, 0, 2, 4],
            xlabel="random direction 1",
            ylabel="random direction 2",
        )
        ax.set_title(title)
        ax.xaxis.labelpad = ax.yaxis.labelpad = 1
        for r, style in ((1, "--"), (2, ":")):
            ax.add_patch(Circle((0, 0), r, fill=False, ls=style, lw=1, ec="#222222", zorder=3))
        ax.text(0.74, -0.74, "1σ", fontsize=7, color="#222222", ha="left", va="top")
        ax.text(1.45, -1.45, "2σ", fontsize=7, color="#222222", ha="left", va="top")

    def _points_panel(self, ax, letter: str) -> None:
        self._plane_axes(ax, f"({letter}) {self.names[0]}; circles: N(0, I)")
        if self.labels is None:
            colors = _POINTS
        else:
            num_colors = int(self.labels.max()) + 1
            cmap = mpl.colormaps["tab10" if num_colors <= 10 else "tab20"]
            palette = cmap(np.arange(num_colors) % cmap.N)
            colors = palette[self.labels]
        # Flat markers (no antialiasing): a smaller GIF, and crisp at this size.
        self.scatter = ax.scatter(*self.points[0].T, s=4, c=colors, lw=0, antialiased=False)
        self._moving.append(self.scatter)
        if self.classes is not None and self.labels is not None and len(self.classes) <= 10:
            handles = [Line2D([], [], ls="", marker="o", ms=3.5, mew=0, color=c) for c in palette]
            self._legends.append(
                ax.legend(
                    handles,
                    self.classes,
                    loc="upper left",
                    ncols=2,
                    fontsize=6.5,
                    handletextpad=0.05,
                    columnspacing=0.4,
                    labelspacing=0.15,
                    borderaxespad=0.1,
                    **_PANEL_LEGEND,
                )
            )

    def _views_panel(self, ax, letter: str) -> None:
        self._plane_axes(ax, f"({letter}) {self.names[1]} (what SIGReg acts on)")
        self.view_scatter = ax.scatter(
            *np.nan_to_num(self.view_points[0]).T, s=4, c=_VIEWS, lw=0, antialiased=False
        )
        self._moving.append(self.view_scatter)

    def _sigreg_panel(self, ax, letter: str) -> None:
        ax.set_title(f"({letter}) SIGReg on {JUDGE_SLICES} fixed unseen directions")
        ax.set(xlabel="step", yscale="log")
        first, last = self._step_range()
        ax.set_xlim(min(0, first), last + (0.01 * (last - first) or 1))
        series = [(self.sigreg, self.null, _POINTS, self.names[0])]
        if self.view_sigreg is not None:
            series.append((self.view_sigreg, self.view_null, _VIEWS, self.names[1]))
        for values, null, color, name in series:
            ax.axhspan(null.low, null.high, color=color, alpha=0.15, lw=0)
            ax.plot(self.steps, values, color=color, lw=1.4, label=f"{name} (n = {null.n})")
            self.dots.append((ax.plot([], [], "o", ms=4, color=color)[0], self.steps, values))
        if "SIGReg" in self.curves:
            x, y = self.curves["SIGReg"]
            ax.plot(x, y, color=_LOSS, lw=0.9, label="the loss's SIGReg (its batch)")
        ax.axhline(self.null.mean, color="#333333", lw=0.8, ls=":")
        ax.plot(
            [],
            [],
            color="#bbbbbb",
            lw=6,
            alpha=0.5,
            label=f"true N(0, I): {self.null.mean:.2f} ± 2 sd",
        )
        finite = [v[np.isfinite(v)] for v, *_ in series]
        finite.append(np.asarray(self.curves.get("SIGReg", (0, []))[1], float))
        top = max([self.null.high * 3] + [float(np.max(v)) for v in finite if len(v)])
        lows = [self.null.low] + [float(np.min(v[v > 0])) for v in finite if (v > 0).any()]
        lows = [v for v in lows if v > 0]
        ax.set_ylim(max(min(lows), 0.003 * self.null.mean) * 0.7, top * 1.5)  # a log axis
        self.cursors.append(ax.axvline(self.steps[0], color="#bbbbbb", lw=1))
        self._moving += [self.cursors[-1], *(d for d, _, _ in self.dots)]
        self._legends.append(ax.legend(loc="upper right", **_PANEL_LEGEND))

    def _histogram_panel(self, ax, letter: str) -> None:
        ax.set(
            xlim=(-LIMIT, LIMIT),
            ylim=(0, 0.8),
            xticks=[-4, -2, 0, 2, 4],
            xlabel="projection on a random direction",
            ylabel="density",
        )
        ax.set_title(f"({letter}) {self.slices.shape[1]} 1-D slices of the {self.names[0]}")
        x = np.linspace(-LIMIT, LIMIT, 201)
        pdf = np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi)
        ax.fill_between(x, pdf, color="#e6e6e6", lw=0, label="N(0, 1)")
        self.stairs = [
            ax.stairs(
                self.densities[0, k],
                self.edges,
                color=self._slice_color(k),
                lw=1.3,
                antialiased=False,
                label=f"slice {k + 1}",
            )
            for k in range(self.slices.shape[1])
        ]
        self._moving += self.stairs
        self._legends.append(ax.legend(loc="upper right", **_PANEL_LEGEND))

    def _ecf_panel(self, ax, letter: str) -> None:
        ax.set(xlim=(0, T_MAX), ylim=(0, 1.1), xlabel="t", ylabel="|ECF(t) − exp(−t²/2)|")
        ax.set_title(f"({letter}) the gap SIGReg integrates, per slice")
        n = self.points.shape[1]
        noise = np.sqrt(-np.expm1(-(self.t**2)) / n)  # sd of the ECF of n Gaussian samples
        ax.fill_between(self.t, 2 * noise, color="#e6e6e6", lw=0, label=f"2 sd of N(0, 1), n = {n}")
        ax.axvline(SIGREG_T_MAX, color="#bbbbbb", ls=":", lw=1)
        ax.text(
            SIGREG_T_MAX + 0.06,
            0.55,
            "SIGReg's t_max",
            color="#888888",
            fontsize=7,
            rotation=90,
            va="center",
        )
        self.gap_lines = [
            ax.plot(self.t, self.gaps[0, k], color=self._slice_color(k), lw=1.3)[0]
            for k in range(self.slices.shape[1])
        ]
        self._moving += self.gap_lines
        self._legends.append(ax.legend(loc="upper left", **_PANEL_LEGEND))  # clear of collapse

    def _curve_panel(self, ax, letter: str, curves: dict) -> None:
        ax.set_title(f"({letter}) the other loss terms")
        first, last = self._step_range()
        ax.set(xlim=(min(0, first), last + (0.01 * (last - first) or 1)), xlabel="step")
        for i, (name, (x, y)) in enumerate(curves.items()):
            color = _CURVE_COLORS[i % len(_CURVE_COLORS)]
            ax.plot(x, y, color=color, lw=1.2, label=name)
            self.dots.append((ax.plot([], [], "o", ms=4, color=color)[0], x, y))
        self.cursors.append(ax.axvline(self.steps[0], color="#bbbbbb", lw=1))
        self._moving += [self.cursors[-1], *(d for d, _, _ in self.dots[-len(curves) :])]
        self._legends.append(ax.legend(loc="upper right", **_PANEL_LEGEND))

    def _step_range(self) -> tuple[float, float]:
        xs = [self.steps[0], self.steps[-1]] + [
            v for x, _ in self.curves.values() for v in (x[0], x[-1])
        ]
        return float(min(xs)), float(max(xs))

    @staticmethod
    def _slice_color(k: int) -> str:
        return _SLICE_COLORS[k % len(_SLICE_COLORS)]

    # Frames.

    def status(self, i: int) -> str:
        """The status line of frame ``i``: what it shows, and its SIGReg against the null."""
        null = self.null
        parts = [f"{self.names[0]}: SIGReg {self.sigreg[i]:.2f}"]
        if self.view_sigreg is not None and np.isfinite(self.view_sigreg[i]):
            parts.append(f"{self.names[1]}: {self.view_sigreg[i]:.2f}")
        parts.append(f"a true N(0, I) sample: {null.mean:.2f} ± {2 * null.sd:.2f}")
        line = "   ·   ".join(parts)
        if i == 0 and self.steps[0] == 0:
            line = "step 0, before training: the encoder at random initialisation.   " + line
        elif self.sigreg[i] < self.floor:
            line += "   ·   below a true Gaussian: fitting the 17 knots, not N(0, I)"
        return line

    def _update(self, i: int) -> None:
        step = self.steps[i]
        self.scatter.set_offsets(self.points[i])
        if self.view_scatter is not None:
            self.view_scatter.set_offsets(
                self.view_points[i][np.isfinite(self.view_points[i][:, 0])]
            )
        for k, (stairs, line) in enumerate(zip(self.stairs, self.gap_lines, strict=True)):
            stairs.set_data(self.densities[i, k])
            line.set_ydata(self.gaps[i, k])
        for cursor in self.cursors:
            cursor.set_xdata([step, step])
        for dot, x, y in self.dots:
            x, y = np.asarray(x, float), np.asarray(y, float)
            ok = np.isfinite(y)
            if step < x[0] or not ok.any():
                dot.set_data([], [])
                continue
            at = min(step, x[ok][-1])  # after the last value: its value
            positive = (y[ok] > 0).all()
            value = (
                np.exp(np.interp(at, x[ok], np.log(y[ok])))
                if positive
                else np.interp(at, x[ok], y[ok])
            )
            dot.set_data([at], [value])
        parts = [self.title] if self.title else []
        parts.append(f"step {step:,}")
        if self.lam is not None:
            parts.append(f"λ = {self.lam:g}")
        self.title_text.set_text("   ·   ".join(parts))
        self.status_text.set_text(self.status(i))

    def frame(self, i: int) -> np.ndarray:
        """The RGB pixels ``(H, W, 3)`` uint8 of frame ``i``."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"frame {i} out of range for {len(self)} frames")
        self._update(i % len(self))
        canvas = self.figure.canvas
        canvas.restore_region(self._background)
        with mpl.rc_context(_STYLE):
            for artist in self._moving:
                self.figure.draw_artist(artist)
        for overlay in self._overlays:
            canvas.restore_region(overlay)
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()

    def frames(self, progress: bool = True) -> list[np.ndarray]:
        """All frames, in order: a list of S arrays ``(H, W, 3)`` uint8."""
        return [
            self.frame(i)
            for i in tqdm(range(len(self)), desc="frames", disable=not progress, leave=False)
        ]


def thin(snapshots: Snapshots, max_frames: int | None) -> Snapshots:
    """At most ``max_frames`` of the snapshots, evenly spaced, the first and the last kept
    (``snapshots`` itself when there are not more, or ``max_frames`` is None)."""
    if max_frames is None or len(snapshots.steps) <= max_frames:
        return snapshots
    keep = np.unique(np.linspace(0, len(snapshots.steps) - 1, max_frames).round().astype(int))
    views = None if snapshots.z_views is None else snapshots.z_views[keep]
    steps = [snapshots.steps[i] for i in keep]
    return replace(snapshots, steps=steps, z=snapshots.z[keep], z_views=views)


def animate_snapshots(
    snapshots: str | os.PathLike | Snapshots,
    out: str | os.PathLike,
    *,
    metrics: str | os.PathLike | None = None,
    duration_ms: float = 100,
    num_slices: int = 3,
    seed: int = 0,
    max_frames: int | None = 100,
    size: tuple[int, int] = (1000, 620),
    dpi: int = 100,
    progress: bool = True,
) -> Path:
    """Animate a run's snapshots as a GIF or MP4 at ``out`` (written atomically).

    Args:
        snapshots: a ``snapshots.pt`` written by ``lejepa-viz train``, or loaded :class:`Snapshots`.
        out: the animation file, ``.gif`` (loops forever) or ``.mp4``.
        metrics: the run's ``metrics.jsonl`` for the loss curves; default: the one beside the
            snapshots file, when there is one.
        duration_ms: duration of each frame.
        num_slices: number of 1-D slices in panels (d) and (e).
        seed: seed of the projection directions.
        max_frames: keep at most this many snapshots, evenly spaced, first and last included
            (100 frames keep a GIF under 3 MB); None keeps all.
        size, dpi: frame size in pixels and resolution (see :class:`ConvergenceAnimation`).
        progress: show a progress bar while rendering.

    Returns:
        The path of the written animation.
    """
    out = animation_path(out)  # checked before rendering, not after
    source = None
    if not isinstance(snapshots, Snapshots):
        source = Path(snapshots)
        snapshots = load_snapshots(source)
        beside = source.with_name(Run.METRICS)
        if metrics is None and beside.is_file():
            metrics = beside
    curves = None
    if metrics is not None:
        curves = load_curves(metrics, run_id=snapshots.run_id, source=source)
    snapshots = thin(snapshots, max_frames)
    animation = ConvergenceAnimation.from_snapshots(
        snapshots, curves=curves, num_slices=num_slices, seed=seed, size=size, dpi=dpi
    )
    return save_animation(animation.frames(progress), out, duration_ms)


def final_sigreg(snapshots: Snapshots) -> dict:
    """The last snapshot's SIGReg on the judge's 1024 fixed directions, beside the null band:
    ``{"points", "views", "null_mean", "null_sd", "step"}`` (``views`` None without views; the
    band is that of ``n`` points in ``D`` dimensions, the recorded images')."""
    n, dim = snapshots.z.shape[1:]
    null = null_level(n, dim, num_slices=JUDGE_SLICES)
    views = None if snapshots.z_views is None else judged_sigreg(snapshots.z_views[-1:])[0]
    return {
        "points": judged_sigreg(snapshots.z[-1:])[0],
        "views": views,
        "null_mean": null.mean,
        "null_sd": null.sd,
        "step": snapshots.steps[-1],
    }
