"""Embedding-convergence animation: watch SIGReg pull the embeddings towards N(0, I).

Each frame is one figure of four panels: (a) the embeddings projected on a fixed random plane,
coloured by class, over the 1σ and 2σ circles of N(0, I); (b) histograms of a few fixed random
1-D slices against the N(0, 1) density; (c) the gap |ECF(t) − e^{−t²/2}| of those slices, what
SIGReg integrates; (d) the loss curves with a cursor at the frame's step. Projections,
histograms and ECF gaps are computed once for all frames; a frame only moves the artists of one
reused figure (fixed axis limits, so frames compare) and draws it. The same animation shows a
training run (``snapshots.pt`` of :func:`lejepa_viz.train.train`, :func:`animate_snapshots`)
and the SIGReg gradient flow of a point cloud (:func:`lejepa_viz.viz.toys.flow_animation`: no
labels, one curve).
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
from ..multivariate.slicing import directions
from ..runs import Run, Snapshots, load_curves, load_snapshots
from ..sigreg import SIGReg
from .export import animation_path, save_animation

LIMIT = 4.0  # every panel shows [-LIMIT, LIMIT] in projection units
NUM_BINS = 40
T_MAX, NUM_T = 5.0, 101
SIGREG_T_MAX = inspect.signature(SIGReg).parameters["t_max"].default  # SIGReg looks no further
_STYLE = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.titlelocation": "left",
    "axes.titlecolor": "#333333",
    "axes.edgecolor": "#999999",
    "axes.labelcolor": "#333333",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": "#666666",
    "ytick.color": "#666666",
    "legend.frameon": False,
    "legend.fontsize": 7,
}
_SLICE_COLORS = ("#1b6ca8", "#d1495b", "#2a9d8f", "#e9a03b", "#6a4c93", "#5c6b73")
_CURVE_COLORS = ("#222222", "#999999", "#6a4c93", "#e9a03b")  # apart from the slices'
_PANEL_LEGEND = {
    "frameon": True,
    "facecolor": "white",
    "edgecolor": "#dddddd",
    "framealpha": 1,
    "fancybox": False,
}


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
        z: the points of each frame, shape ``(S, n, D)`` with ``D >= 2`` (tensor or array).
        steps: the step of each frame, length S.
        labels: class index of each point ``(n,)``, to colour panel (a); None: one colour.
        classes: class names, for a legend (with ``labels``).
        curves: loss curves ``{name: (steps, values)}`` for panel (d), e.g. only
            ``{"SIGReg": ...}``; None or empty: panel (d) says there are none.
        lam: λ of the run, in the title.
        title: what the title starts with (e.g. the dataset).
        num_slices: number of 1-D slices in panels (b) and (c).
        seed: seed of the plane and slice directions (:func:`directions` at step 0).
        size: frame width and height in pixels.
        dpi: dots per inch of the figure (font sizes are in points).

    Attributes:
        plane: ``(D, 2)`` orthonormal directions of panel (a).
        slices: ``(D, num_slices)`` unit directions of panels (b) and (c).
        points: ``(S, n, 2)`` projections on ``plane``.
        projections: ``(S, n, num_slices)`` projections on ``slices``.
        edges: ``(NUM_BINS + 1,)`` histogram bin edges on ``[-LIMIT, LIMIT]``.
        densities: ``(S, num_slices, NUM_BINS)`` histogram heights (:func:`slice_densities`).
        t: ``(NUM_T,)`` arguments of the ECF on ``[0, T_MAX]``.
        gaps: ``(S, num_slices, NUM_T)`` ECF gaps (:func:`ecf_gap`).
        figure: the one matplotlib figure every frame is drawn on.
        scatter, stairs, gap_lines: the artists of panels (a), (b) (one per slice), (c).
        cursor, dots: panel (d)'s vertical line at the frame's step and the point of each
            curve there (its last point after it ends; None and [] without curves).
        title_text: the figure's title.

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
        labels: torch.Tensor | np.ndarray | None = None,
        classes: Sequence[str] | None = None,
        curves: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
        lam: float | None = None,
        title: str | None = None,
        num_slices: int = 3,
        seed: int = 0,
        size: tuple[int, int] = (800, 600),
        dpi: int = 100,
    ):
        z = as_samples(torch.as_tensor(z), "z")
        if z.ndim != 3 or z.shape[-1] < 2:
            raise ValueError(f"z must have shape (S, n, D) with D >= 2, got {tuple(z.shape)}")
        self.steps = [int(s) for s in steps]
        if len(self.steps) != len(z):
            raise ValueError(f"steps must have one entry per frame ({len(z)}), got {len(steps)}")
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
        self.lam, self.title = lam, title
        num_slices = integer_at_least(num_slices, 1, "num_slices")

        # Directions and everything every frame needs, once.
        dim = z.shape[-1]
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

        with mpl.rc_context(_STYLE):
            self._build(size, dpi)

    @classmethod
    def from_snapshots(cls, snapshots: Snapshots, **kwargs) -> ConvergenceAnimation:
        """The animation of a run's :class:`Snapshots`; ``kwargs`` go to the constructor."""
        return cls(
            snapshots.z,
            snapshots.steps,
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
        grid = fig.add_gridspec(
            2,
            2,
            left=0.06,
            right=0.98,
            bottom=0.08,
            top=0.89,
            wspace=0.2,
            hspace=0.38,
            height_ratios=(1.25, 1),
        )
        self.title_text = fig.text(0.02, 0.96, "", fontsize=11, color="#222222", va="center")
        self._moving = [self.title_text]  # the artists a frame changes, drawn in this order
        self._legends = []  # legends inside the panels, drawn over the moving artists
        self._scatter_panel(fig.add_subplot(grid[0, 0]))
        self._histogram_panel(fig.add_subplot(grid[0, 1]))
        self._ecf_panel(fig.add_subplot(grid[1, 0]))
        self._curve_panel(fig.add_subplot(grid[1, 1]))
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

    def _scatter_panel(self, ax) -> None:
        ax.set(
            xlim=(-LIMIT, LIMIT),
            ylim=(-LIMIT, LIMIT),
            aspect="equal",
            anchor="W",
            xticks=[-4, -2, 0, 2, 4],
            yticks=[-4, -2, 0, 2, 4],
        )
        ax.set_title("(a) a random plane; circles: 1σ, 2σ of N(0, I)")
        if self.labels is None:
            colors = "#1b6ca8"
        else:
            num_colors = int(self.labels.max()) + 1
            cmap = mpl.colormaps["tab10" if num_colors <= 10 else "tab20"]
            palette = cmap(np.arange(num_colors) % cmap.N)
            colors = palette[self.labels]
        # Flat markers (no antialiasing): a smaller GIF, and crisp at this size.
        self.scatter = ax.scatter(*self.points[0].T, s=5, c=colors, lw=0, antialiased=False)
        circles = [Circle((0, 0), r, fill=False, ls="--", lw=1, ec="#222222") for r in (1, 2)]
        self._moving += [self.scatter, *(ax.add_patch(c) for c in circles)]
        if self.classes is not None and self.labels is not None and len(self.classes) <= 20:
            handles = [Line2D([], [], ls="", marker="o", ms=4, mew=0, color=c) for c in palette]
            ax.legend(
                handles,
                self.classes,
                loc="center left",
                bbox_to_anchor=(1.0, 0.5),
                handletextpad=0.1,
                labelspacing=0.3,
                borderaxespad=0.2,
            )

    def _histogram_panel(self, ax) -> None:
        ax.set(xlim=(-LIMIT, LIMIT), ylim=(0, 0.8), xticks=[-4, -2, 0, 2, 4])
        ax.set_title(f"(b) {self.slices.shape[1]} random 1-D slices")
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

    def _ecf_panel(self, ax) -> None:
        ax.set(xlim=(0, T_MAX), ylim=(0, 1.1), xlabel="t")
        ax.set_title("(c) |ECF(t) − exp(−t²/2)| of the slices")
        n = self.points.shape[1]
        noise = np.sqrt(-np.expm1(-(self.t**2)) / n)  # sd of the ECF of n Gaussian samples
        ax.fill_between(self.t, 2 * noise, color="#e6e6e6", lw=0, label=f"2 sd noise, n = {n}")
        ax.axvline(SIGREG_T_MAX, color="#bbbbbb", ls=":", lw=1)
        ax.text(
            SIGREG_T_MAX + 0.04,
            0.55,
            "SIGReg's t_max",
            color="#999999",
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

    def _curve_panel(self, ax) -> None:
        ax.set_title("(d) losses")
        self.cursor, self.dots = None, []
        if not self.curves:
            ax.set_axis_off()
            ax.text(
                0.5,
                0.5,
                "no loss curves",
                ha="center",
                va="center",
                color="#999999",
                transform=ax.transAxes,
            )
            return
        first = min([self.steps[0]] + [x.min() for x, _ in self.curves.values()])
        last = max([self.steps[-1]] + [x.max() for x, _ in self.curves.values()])
        margin = 0.01 * (last - first) or 1  # the cursor stays visible at the last step
        self._log = all((y > 0).all() for _, y in self.curves.values())
        ax.set(xlim=(min(0, first), last + margin), xlabel="step")
        ax.set_yscale("log" if self._log else "linear")
        for i, (name, (x, y)) in enumerate(self.curves.items()):
            color = _CURVE_COLORS[i % len(_CURVE_COLORS)]
            ax.plot(x, y, color=color, lw=1.2, label=name)
            self.dots.append(ax.plot([], [], "o", ms=4, color=color)[0])
        self.cursor = ax.axvline(self.steps[0], color="#bbbbbb", lw=1)
        self._moving += [self.cursor, *self.dots]
        self._legends.append(ax.legend(loc="upper right", **_PANEL_LEGEND))

    @staticmethod
    def _slice_color(k: int) -> str:
        return _SLICE_COLORS[k % len(_SLICE_COLORS)]

    # Frames.

    def _update(self, i: int) -> None:
        step = self.steps[i]
        self.scatter.set_offsets(self.points[i])
        for k, (stairs, line) in enumerate(zip(self.stairs, self.gap_lines, strict=True)):
            stairs.set_data(self.densities[i, k])
            line.set_ydata(self.gaps[i, k])
        if self.cursor is not None:
            self.cursor.set_xdata([step, step])
            for dot, (x, y) in zip(self.dots, self.curves.values(), strict=True):
                at = min(step, x[-1])  # after the last logged step: its value
                if step < x[0]:
                    dot.set_data([], [])
                elif self._log:  # on the drawn segment: straight on a log axis
                    dot.set_data([at], [np.exp(np.interp(at, x, np.log(y)))])
                else:
                    dot.set_data([at], [np.interp(at, x, y)])
        parts = [self.title] if self.title else []
        parts.append(f"step {step:,}")
        if self.lam is not None:
            parts.append(f"λ = {self.lam:g}")
        self.title_text.set_text("   ·   ".join(parts))

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


def animate_snapshots(
    snapshots: str | os.PathLike | Snapshots,
    out: str | os.PathLike,
    *,
    metrics: str | os.PathLike | None = None,
    duration_ms: float = 100,
    num_slices: int = 3,
    seed: int = 0,
    max_frames: int | None = 100,
    size: tuple[int, int] = (800, 600),
    dpi: int = 100,
    progress: bool = True,
) -> Path:
    """Animate a run's snapshots as a GIF or MP4 at ``out`` (written atomically).

    Args:
        snapshots: a ``snapshots.pt`` written by ``lejepa-viz train``, or loaded :class:`Snapshots`.
        out: the animation file, ``.gif`` (loops forever) or ``.mp4``.
        metrics: the run's ``metrics.jsonl`` for panel (d); default: the one beside the
            snapshots file, when there is one (else panel (d) has no curves).
        duration_ms: duration of each frame.
        num_slices: number of 1-D slices in panels (b) and (c).
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
    if max_frames is not None and len(snapshots.steps) > max_frames:
        keep = np.unique(np.linspace(0, len(snapshots.steps) - 1, max_frames).round().astype(int))
        snapshots = replace(
            snapshots, steps=[snapshots.steps[i] for i in keep], z=snapshots.z[keep]
        )
    animation = ConvergenceAnimation.from_snapshots(
        snapshots, curves=curves, num_slices=num_slices, seed=seed, size=size, dpi=dpi
    )
    return save_animation(animation.frames(progress), out, duration_ms)
