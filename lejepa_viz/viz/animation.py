"""The embedding-convergence animation drawn: six panels of one reused matplotlib figure.

Each frame shows (a) the recorded points on the fixed plane over the 1σ and 2σ circles of
N(0, I); (b) the training views that SIGReg acted on at that step, on the same plane; (c) the
judged SIGReg of both against the band of a true N(0, I) sample of the same size, beside the
loss's own SIGReg; (d) histograms of a few 1-D slices of the points against the N(0, 1)
density; (e) the gap |ECF(t) − e^{−t²/2}| of those slices, what SIGReg integrates, against its
noise band; (f) the other loss curves. A status line under the title gives the frame's
numbers. Every number comes from a :class:`~lejepa_viz.viz.convergence.ConvergenceData`; the
figure is built once (fixed axes, so frames compare) and a frame only moves its artists and
blits them. :func:`animate_snapshots` is the library call behind ``lejepa-viz animate``.
"""

from __future__ import annotations

import os

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle
from tqdm.auto import tqdm

from .._checks import integer_at_least
from ..runs import Snapshots
from ..sigreg import SIGReg
from .convergence import ConvergenceData, Curves, snapshots_data, thin
from .export import Drawn, animation_path, save_animation

SIGREG_T_MAX = SIGReg(num_slices=1).univariate_test.t_max  # SIGReg's quadrature stops here
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


class ConvergenceAnimation:
    """Frames that show embeddings (or any point cloud) converging to N(0, I).

    Args:
        data: the numbers to draw (:func:`~lejepa_viz.viz.convergence.convergence_data`).
        size: frame width and height in pixels.
        dpi: dots per inch of the figure (font sizes are in points).

    Attributes:
        data: what is drawn.
        figure: the one matplotlib figure every frame is drawn on.

    Example:
        >>> import torch
        >>> from lejepa_viz.viz.convergence import convergence_data
        >>> anim = ConvergenceAnimation(convergence_data(torch.randn(2, 100, 4), [0, 10]),
        ...                             size=(400, 300))
        >>> len(anim), anim.frame(1).shape
        (2, (300, 400, 3))
    """

    def __init__(self, data: ConvergenceData, size: tuple[int, int] = (1000, 620), dpi: int = 100):
        self.data = data
        with mpl.rc_context(_STYLE):
            self._build(size, dpi)

    def __len__(self) -> int:
        return len(self.data)

    # The figure: built once, its artists moved per frame.

    def _build(self, size: tuple[int, int], dpi: int) -> None:
        data, (width, height) = self.data, size
        self.figure = fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
        FigureCanvasAgg(fig)
        others = {k: v for k, v in data.curves.items() if k != "SIGReg"}
        panels = ["points"] + (["views"] if data.view_points is not None else []) + ["sigreg"]
        panels += ["slices", "ecf"] + (["losses"] if others else [])
        cols = (len(panels) + 1) // 2
        grid = fig.add_gridspec(
            2, cols, left=0.055, right=0.985, bottom=0.075, top=0.845, wspace=0.28, hspace=0.42
        )
        self._title = fig.text(0.012, 0.965, "", fontsize=11, color="#111111", va="center")
        self._status = fig.text(0.012, 0.915, "", fontsize=8.5, color="#333333", va="center")
        self._moving = [self._title, self._status]  # what a frame changes, in order
        self._legends = []  # legends inside the panels, drawn over the moving artists
        self._cursors, self._dots, self._view_scatter = [], {}, None
        self._grown = []  # (line, x, y): curves drawn up to the frame's step
        draw = {
            "points": self._points_panel,
            "views": self._views_panel,
            "sigreg": self._sigreg_panel,
            "slices": self._histogram_panel,
            "ecf": self._ecf_panel,
            "losses": lambda ax, c: self._curve_panel(ax, c, others),
        }
        for i, (name, letter) in enumerate(zip(panels, "abcdef", strict=False)):
            draw[name](fig.add_subplot(grid[i // cols, i % cols]), letter)
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
        limit = self.data.edges[-1]
        ax.set(
            xlim=(-limit, limit),
            ylim=(-limit, limit),
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
        data = self.data
        self._plane_axes(ax, f"({letter}) {data.names[0]}; circles: N(0, I)")
        if data.labels is None:
            colors = _POINTS
        else:
            num_colors = int(data.labels.max()) + 1
            cmap = mpl.colormaps["tab10" if num_colors <= 10 else "tab20"]
            palette = cmap(np.arange(num_colors) % cmap.N)
            colors = palette[data.labels]
        # Flat markers (no antialiasing): a smaller GIF, and crisp at this size.
        self._scatter = ax.scatter(*data.points[0].T, s=4, c=colors, lw=0, antialiased=False)
        self._moving.append(self._scatter)
        if data.classes is not None and data.labels is not None and len(data.classes) <= 10:
            handles = [Line2D([], [], ls="", marker="o", ms=3.5, mew=0, color=c) for c in palette]
            self._legends.append(
                ax.legend(
                    handles,
                    data.classes,
                    loc="upper left",
                    bbox_to_anchor=(1.0, 1.0),  # beside the square panel, off the points
                    ncols=1,
                    fontsize=6.5,
                    handletextpad=0.05,
                    columnspacing=0.4,
                    labelspacing=0.15,
                    borderaxespad=0.1,
                    **_PANEL_LEGEND,
                )
            )

    def _views_panel(self, ax, letter: str) -> None:
        self._plane_axes(ax, f"({letter}) {self.data.names[1]} (what SIGReg acts on)")
        self._view_scatter = ax.scatter(
            *np.nan_to_num(self.data.view_points[0]).T, s=4, c=_VIEWS, lw=0, antialiased=False
        )
        self._moving.append(self._view_scatter)

    def _sigreg_panel(self, ax, letter: str) -> None:
        data, null = self.data, self.data.null
        ax.set_title(f"({letter}) SIGReg on {null.num_slices} fixed unseen directions")
        ax.set(xlabel="step", yscale="log", xlim=self._step_limits())
        series = [("points", data.sigreg, null, _POINTS, data.names[0])]
        if data.view_sigreg is not None:
            series.append(("views", data.view_sigreg, data.view_null, _VIEWS, data.names[1]))
        for key, values, level, color, name in series:
            ax.axhspan(level.low, level.high, color=color, alpha=0.15, lw=0)
            self._grow(ax, data.steps, values, color=color, lw=1.4, label=f"{name} (n = {level.n})")
            self._dots[key] = ax.plot([], [], "o", ms=4, color=color)[0]
        if "SIGReg" in data.curves:
            x, y = data.curves["SIGReg"]
            self._grow(ax, x, y, color=_LOSS, lw=0.9, label="the loss's SIGReg (its batch)")
        ax.axhline(null.mean, color="#333333", lw=0.8, ls=":")
        for _, _, level, color, _ in series:  # a patch of each band's own colour
            label = f"true N(0, I), n = {level.n}: {level.mean:.2f} ± 2 sd"
            ax.plot([], [], color=color, lw=6, alpha=0.15, label=label)
        finite = [v[np.isfinite(v)] for _, v, *_ in series]
        finite.append(np.asarray(data.curves.get("SIGReg", (0, []))[1], float))
        top = max([null.high * 3] + [float(np.max(v)) for v in finite if len(v)])
        lows = [null.low] + [float(np.min(v[v > 0])) for v in finite if (v > 0).any()]
        lows = [v for v in lows if v > 0]
        ax.set_ylim(max(min(lows), 0.003 * null.mean) * 0.7, top * 1.5)  # a log axis
        self._cursors.append(ax.axvline(data.steps[0], color="#bbbbbb", lw=1))
        self._moving += [self._cursors[-1], *(self._dots[key] for key, *_ in series)]
        self._legends.append(ax.legend(loc="upper right", **_PANEL_LEGEND))

    def _histogram_panel(self, ax, letter: str) -> None:
        data, limit = self.data, self.data.edges[-1]
        ax.set(
            xlim=(-limit, limit),
            ylim=(0, 0.8),
            xticks=[-4, -2, 0, 2, 4],
            xlabel="projection on a random direction",
            ylabel="density",
        )
        ax.set_title(f"({letter}) {data.slices.shape[1]} 1-D slices of the {data.names[0]}")
        x = np.linspace(-limit, limit, 201)
        pdf = np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi)
        ax.fill_between(x, pdf, color="#e6e6e6", lw=0, label="N(0, 1)")
        self._stairs = [
            ax.stairs(
                data.densities[0, k],
                data.edges,
                color=_SLICE_COLORS[k % len(_SLICE_COLORS)],
                lw=1.3,
                antialiased=False,
                label=f"slice {k + 1}",
            )
            for k in range(data.slices.shape[1])
        ]
        self._moving += self._stairs
        self._legends.append(ax.legend(loc="upper right", **_PANEL_LEGEND))

    def _ecf_panel(self, ax, letter: str) -> None:
        data = self.data
        ax.set(xlim=(0, data.t[-1]), ylim=(0, 1.1), xlabel="t", ylabel="|ECF(t) − exp(−t²/2)|")
        ax.set_title(f"({letter}) the gap SIGReg integrates, per slice")
        n = data.points.shape[1]
        noise = np.sqrt(-np.expm1(-(data.t**2)) / n)  # sd of the ECF of n Gaussian samples
        ax.fill_between(data.t, 2 * noise, color="#e6e6e6", lw=0, label=f"2 sd of N(0, 1), n = {n}")
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
        self._gap_lines = [
            ax.plot(data.t, data.gaps[0, k], color=_SLICE_COLORS[k % len(_SLICE_COLORS)], lw=1.3)[0]
            for k in range(data.slices.shape[1])
        ]
        self._moving += self._gap_lines
        self._legends.append(ax.legend(loc="upper left", **_PANEL_LEGEND))  # clear of collapse

    def _curve_panel(self, ax, letter: str, curves: dict) -> None:
        what = f"the {next(iter(curves))} loss" if len(curves) == 1 else "the other loss terms"
        ax.set_title(f"({letter}) {what}")
        ax.set(xlim=self._step_limits(), xlabel="step")
        for i, (name, (x, y)) in enumerate(curves.items()):
            color = _CURVE_COLORS[i % len(_CURVE_COLORS)]
            self._grow(ax, x, y, color=color, lw=1.2, label=name)
            self._dots[name] = ax.plot([], [], "o", ms=4, color=color)[0]
        self._cursors.append(ax.axvline(self.data.steps[0], color="#bbbbbb", lw=1))
        self._moving += [self._cursors[-1], *(self._dots[name] for name in curves)]
        self._legends.append(ax.legend(loc="upper right", **_PANEL_LEGEND))

    def _grow(self, ax, x, y, **style) -> None:
        """A curve drawn up to the frame's step (a moving artist): no frame shows the run's
        future. The axes' limits hold the whole curve from the first frame."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        ax.update_datalim(np.column_stack([x, y]))
        line = ax.plot([], [], **style)[0]
        self._grown.append((line, x, y))
        self._moving.append(line)

    def _step_limits(self) -> tuple[float, float]:
        steps, curves = self.data.steps, self.data.curves.values()
        xs = [steps[0], steps[-1]] + [v for x, _ in curves for v in (x[0], x[-1])]
        first, last = float(min(xs)), float(max(xs))
        return min(0, first), last + (0.01 * (last - first) or 1)

    # Frames.

    def _update(self, i: int) -> None:
        data, step = self.data, self.data.steps[i]
        self._scatter.set_offsets(data.points[i])
        if self._view_scatter is not None:
            views = data.view_points[i]
            self._view_scatter.set_offsets(views[np.isfinite(views[:, 0])])
        for k, (stairs, line) in enumerate(zip(self._stairs, self._gap_lines, strict=True)):
            stairs.set_data(data.densities[i, k])
            line.set_ydata(data.gaps[i, k])
        for cursor in self._cursors:
            cursor.set_xdata([step, step])
        for line, x, y in self._grown:
            line.set_data(x[x <= step], y[x <= step])
        for name, mark in data.marks(i).items():
            self._dots[name].set_data(*(([], []) if mark is None else ([mark[0]], [mark[1]])))
        self._title.set_text(data.heading(i))
        self._status.set_text(data.status(i))

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
    snapshots: Snapshots,
    out: str | os.PathLike,
    *,
    curves: Curves | None = None,
    duration_ms: float = 100,
    num_slices: int = 3,
    seed: int = 0,
    max_frames: int | None = 100,
    size: tuple[int, int] = (1000, 620),
    dpi: int = 100,
    progress: bool = True,
) -> Drawn:
    """Animate a run's snapshots as a GIF or MP4 at ``out`` (written atomically).

    Args:
        snapshots: the run's recording (:func:`lejepa_viz.runs.load_recording` reads one).
        out: the animation file, ``.gif`` (loops forever) or ``.mp4``.
        curves: the run's loss curves ``{name: (steps, values)}`` (from the same recording).
        duration_ms: duration of each frame.
        num_slices: number of 1-D slices in panels (d) and (e).
        seed: seed of the plane and slice directions.
        max_frames: keep at most this many snapshots, evenly spaced, first and last included
            (100 frames keep a GIF under 3 MB); None keeps all.
        size, dpi: frame size in pixels and resolution (see :class:`ConvergenceAnimation`).
        progress: show a progress bar while rendering.

    Returns:
        :class:`~lejepa_viz.viz.export.Drawn`: the file, and the last frame's SIGReg of the
        points (and views) beside the band of a true N(0, I) sample
        (:meth:`ConvergenceData.numbers`).
    """
    out = animation_path(out)  # checked before rendering, not after
    if not isinstance(snapshots, Snapshots):
        raise ValueError(
            f"snapshots must be a lejepa_viz.runs.Snapshots (lejepa_viz.runs.load_recording "
            f"reads a snapshots.pt), got {type(snapshots).__name__}"
        )
    if max_frames is not None:
        max_frames = integer_at_least(max_frames, 2, "max_frames")
    data = snapshots_data(
        thin(snapshots, max_frames), curves=curves, num_slices=num_slices, seed=seed
    )
    animation = ConvergenceAnimation(data, size=size, dpi=dpi)
    path = save_animation(animation.frames(progress), out, duration_ms)
    return Drawn(path, data.summary(), data.numbers())
