"""Notebook explorers: plotly figures of SIGReg's knobs and ipywidgets sliders that redraw them.

- :func:`lambda_explorer` (notebook 05): sliders for λ, the number of slices, the knots and
  t_max over three figures — the spread of SIGReg across slice draws
  (:func:`~lejepa_viz.toys.knobs.slice_spread`), the force of the loss on a 2-D cloud
  (:func:`~lejepa_viz.toys.knobs.loss_field`), and the tiny-encoder runs of
  :func:`~lejepa_viz.toys.tiny.lambda_runs` (collapse at λ = 0, N(0, I) above).
- :func:`pca_explorer` (notebook 04): a threshold slider over PCA maps of patch features.

The widgets re-display plotly figures in an ``ipywidgets.Output`` (no ``FigureWidget``, which
needs ``anywidget``): they work offline in JupyterLab with plotly's renderer
``"plotly_mimetype"``. This package is the only one that imports plotly, ipywidgets or IPython.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from ...sigreg import JUDGE_SLICES, NullLevel, judge_null, null_level
from ...toys.clouds import make_cloud
from ...toys.knobs import SLICE_COUNTS, loss_field, slice_spread
from ...toys.trajectory import Trajectory
from ..pca import fit_pca_maps, montage, to_rgb
from .display import display_data

_LAYOUT = dict(template="plotly_white", height=330, margin=dict(l=50, r=20, t=50, b=45))


def spread_figure(
    values: dict[str, np.ndarray],
    ks: Sequence[int],
    width: int | None = None,
    null: Sequence[NullLevel] | None = None,
):
    """Every draw of :func:`~lejepa_viz.toys.knobs.slice_spread` as a dot and the mean as a
    line, per cloud; with ``null`` (one :func:`~lejepa_viz.sigreg.null_level` per K), the band
    a true N(0, I) sample of the same size falls in."""
    import plotly.graph_objects as go

    fig = go.Figure()
    if null is not None:
        null_band(fig, list(ks), null)
    colours = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
    for (name, v), colour in zip(values.items(), colours, strict=False):
        draws = v.shape[1]
        xs = np.repeat(np.asarray(ks, float), draws) * np.tile(
            np.linspace(0.9, 1.1, draws), len(ks)
        )
        fig.add_scatter(
            x=xs,
            y=v.ravel(),
            mode="markers",
            name=f"{name}: each draw",
            marker=dict(size=4, color=colour, opacity=0.35),
            legendgroup=name,
        )
        fig.add_scatter(
            x=list(ks),
            y=v.mean(1),
            mode="lines+markers",
            name=f"{name}: mean",
            line=dict(color=colour),
            legendgroup=name,
        )
    fig.update_layout(title="SIGReg across slice draws as K grows", width=width, **_LAYOUT)
    fig.update_layout(legend=dict(font=dict(size=10)))
    fig.update_xaxes(type="log", title="slices K", tickvals=list(ks), tickformat="~g")
    fig.update_yaxes(type="log", title="SIGReg", tickformat="~g")  # 20, not a lone small "2"
    return fig


def field_figure(
    x: np.ndarray,
    force: np.ndarray,
    lam: float,
    scale: float | None = None,
    width: int | None = None,
    max_arrows: int = 100,
    seed: int = 0,
):
    """Points of a 2-D cloud ``x`` (N, 2) and arrows ``scale · force`` on up to ``max_arrows``
    of them (a seeded subsample, so that ~256 points stay readable and fast to draw).

    ``scale=None`` draws the mean arrow 0.3 long whatever the force's size (the forces differ
    by orders of magnitude across λ): the arrows show directions, the title the magnitude.
    Each arrow is a shaft (one line trace) and a head (a marker turned along the shaft).
    """
    import plotly.graph_objects as go

    force = np.asarray(force, float)
    x = np.asarray(x, float)
    mean_norm = float(np.linalg.norm(force, axis=1).mean())
    if scale is None:
        scale = 0.3 / mean_norm if mean_norm > 0 else 0.0
    pick = np.arange(len(x))
    if len(x) > max_arrows:
        pick = np.sort(np.random.default_rng(seed).choice(len(x), max_arrows, replace=False))
    start, arrow = x[pick], scale * force[pick]  # (A, 2) each
    end = start + arrow
    seg = np.full((len(pick) * 3, 2), np.nan)  # start, end, gap: one trace for every shaft
    seg[0::3], seg[1::3] = start, end
    # Degrees clockwise from "up", plotly's marker angle; x and y share one scale on screen.
    angle = np.degrees(np.arctan2(arrow[:, 0], arrow[:, 1]))
    fig = go.Figure()
    fig.add_scatter(
        x=np.round(x[:, 0], 4),
        y=np.round(x[:, 1], 4),
        mode="markers",
        marker=dict(size=3, color="#1f77b4"),
        name="points",
    )
    fig.add_scatter(
        x=np.round(seg[:, 0], 4),
        y=np.round(seg[:, 1], 4),
        mode="lines",
        line=dict(width=1, color="#d62728"),
        hoverinfo="skip",
        name="force",
    )
    fig.add_scatter(
        x=np.round(end[:, 0], 4),
        y=np.round(end[:, 1], 4),
        mode="markers",
        marker=dict(symbol="triangle-up", size=6, color="#d62728", angle=np.round(angle, 1)),
        hoverinfo="skip",
        name="force: head",
    )
    fig.update_layout(
        title=dict(
            text=f"force on the cloud, λ = {lam:g} (mean |force| {mean_norm:.3g})",
            font=dict(size=14),
        ),
        showlegend=False,
        width=width,
        **_LAYOUT,
    )
    fig.update_xaxes(range=[-3.5, 3.5], title="x₁")
    fig.update_yaxes(range=[-3.5, 3.5], scaleanchor="x", title="x₂")
    return fig


def null_band(fig, xs: Sequence[float], null: Sequence[NullLevel], **where) -> None:
    """Shade the null band (mean ± 2 sd of SIGReg for true N(0, I) samples) over ``xs``."""
    low, high = [level.low for level in null], [level.high for level in null]
    fig.add_scatter(
        x=list(xs),
        y=high,
        mode="lines",
        line=dict(width=0),
        showlegend=False,
        hoverinfo="skip",
        **where,
    )
    fig.add_scatter(
        x=list(xs),
        y=low,
        mode="lines",
        line=dict(width=0),
        fill="tonexty",
        fillcolor="rgba(120, 120, 120, 0.2)",
        hoverinfo="skip",
        name=f"true N(0, I): {null[0].mean:.2f} ± 2 sd",
        **where,
    )


def training_figure(runs: Sequence[Trajectory], lam: float, width: int | None = None):
    """Left: outputs of the run with λ = ``lam`` at the end; right: SIGReg of every run, over
    the band of a true N(0, I) sample of the same size. One colour per run (the chosen one
    thick); the legend sits right of the panels."""
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    chosen = min(runs, key=lambda r: abs(r.lam - lam))
    palette = qualitative.D3
    colours = [palette[i % len(palette)] for i in range(len(runs))]
    colour = colours[[run is chosen for run in runs].index(True)]
    fig = make_subplots(
        1,
        2,
        column_widths=[0.42, 0.58],
        horizontal_spacing=0.1,
        subplot_titles=(
            f"outputs at the end, λ = {chosen.lam:g} (std {chosen.values['std'][-1]:.2f})",
            "SIGReg of the outputs during training",
        ),
    )
    fig.update_annotations(font_size=14)  # the subplot titles
    z = chosen.final.numpy()
    theta = np.linspace(0, 2 * np.pi, 73)
    fig.add_scatter(
        x=2 * np.cos(theta),
        y=2 * np.sin(theta),
        mode="lines",
        row=1,
        col=1,
        line=dict(color="grey", dash="dot", width=1),
        hoverinfo="skip",
        name="N(0, I): 2σ circle",
    )
    fig.add_scatter(
        x=np.round(z[:, 0], 4),
        y=np.round(z[:, 1 % z.shape[1]], 4),
        mode="markers",
        marker=dict(size=3, color=colour),
        row=1,
        col=1,
        name=f"outputs, λ={chosen.lam:g}",
    )
    n, dim = chosen.final.shape
    level = judge_null(n, dim)  # the runs are read by the judge
    null_band(fig, [runs[0].steps[0], runs[0].steps[-1]], [level, level], row=1, col=2)
    for run, c in zip(runs, colours, strict=True):
        on = run is chosen
        fig.add_scatter(
            x=run.steps,
            y=run.values["sigreg"],
            mode="lines",
            row=1,
            col=2,
            name=f"SIGReg, λ={run.lam:g}",
            line=dict(width=3.5 if on else 1.2, color=c),
            opacity=1.0 if on else 0.6,
        )
    fig.update_xaxes(range=[-3.5, 3.5], title="output z₁", row=1, col=1)
    fig.update_yaxes(range=[-3.5, 3.5], scaleanchor="x", title="output z₂", row=1, col=1)
    fig.update_xaxes(title="training step", row=1, col=2)
    fig.update_yaxes(
        type="log", title=f"SIGReg ({JUDGE_SLICES} slices, log)", tickformat="~g", row=1, col=2
    )
    fig.update_layout(width=width, **_LAYOUT)
    fig.update_layout(  # outside the panels, on the right: it covers no data
        showlegend=True,
        legend=dict(
            x=1.02, xanchor="left", y=1.0, yanchor="top", font=dict(size=10), traceorder="normal"
        ),
    )
    return fig


# ----------------------------------------------------------------------------- widgets


class _LambdaFigures:
    """The three figures of :func:`lambda_explorer` for the sliders' values (spreads cached)."""

    def __init__(self, runs, cloud: torch.Tensor, draws: int, seed: int):
        self.runs, self.cloud, self.draws, self.seed = runs, cloud, draws, seed
        self.gauss = torch.randn(*cloud.shape, generator=torch.Generator().manual_seed(seed))
        self.spreads: dict = {}

    def spread(self, k: int, knots: int, t_max: float):
        if (k, knots, t_max) not in self.spreads:
            ks = [c for c in SLICE_COUNTS if c <= k]
            clouds = (("cloud", self.cloud), ("N(0, I)", self.gauss))
            self.spreads[k, knots, t_max] = (
                ks,
                {
                    name: slice_spread(z, ks, self.draws, knots, t_max, self.seed)
                    for name, z in clouds
                },
            )
        ks, values = self.spreads[k, knots, t_max]
        n, dim = self.cloud.shape
        null = [null_level(n, dim, num_slices=c, n_points=knots, t_max=t_max) for c in ks]
        return spread_figure(values, ks, width=560, null=null)

    def field(self, lam: float, k: int, knots: int, t_max: float):
        force = loss_field(self.cloud, lam, k, knots, t_max, seed=self.seed)
        return field_figure(self.cloud.numpy(), force, lam, width=440)

    def draw(self, names, lam: float, k: int, knots: int, t_max: float) -> dict:
        makers = {
            "spread": lambda: self.spread(k, knots, t_max),
            "field": lambda: self.field(lam, k, knots, t_max),
            "training": lambda: training_figure(self.runs, lam, width=1000),
        }
        return {name: makers[name]() for name in names}


def lambda_explorer(
    runs: Sequence[Trajectory],
    cloud: torch.Tensor | None = None,
    draws: int = 16,
    seed: int = 0,
):
    """Sliders for λ, the number of slices, the number of knots and t_max over three figures.

    λ picks one of ``runs`` (:func:`~lejepa_viz.toys.tiny.lambda_runs`) and sets the loss of
    the force field; K, the knots and t_max set the SIGReg of the spread and of the force
    field. ``cloud`` (N, 2) is the cloud of the spread and the field, default
    ``make_cloud("moons", 256)``; its spread is drawn next to a sample of N(0, I) of the same
    size. Figures redraw when a slider is released.

    Returns:
        an ``ipywidgets.VBox``; ``.sliders`` holds the four sliders by name (``lam``,
        ``num_slices``, ``n_points``, ``t_max``), ``.outputs`` the three outputs and
        ``.figures`` the plotly figures they show now (:func:`~.display.show_static` draws them).
    """
    import ipywidgets as W

    lams = [run.lam for run in runs]
    cloud = make_cloud("moons", 256, 2, seed) if cloud is None else torch.as_tensor(cloud).float()
    figures_of = _LambdaFigures(runs, cloud, draws, seed)
    layout = W.Layout(width="460px")
    style = dict(continuous_update=False, style={"description_width": "110px"}, layout=layout)
    sliders = dict(
        lam=W.SelectionSlider(
            options=[(f"{v:g}", v) for v in lams], value=lams[0], description="λ", **style
        ),
        num_slices=W.SelectionSlider(
            options=list(SLICE_COUNTS), value=64, description="slices K", **style
        ),
        n_points=W.IntSlider(value=17, min=3, max=33, step=2, description="knots", **style),
        t_max=W.FloatSlider(value=3.0, min=0.5, max=6.0, step=0.5, description="t_max", **style),
    )
    outputs = {name: W.Output() for name in ("spread", "field", "training")}
    figures: dict = {}  # the figure each output shows now

    def draw(names):
        values = (sliders[k].value for k in ("lam", "num_slices", "n_points", "t_max"))
        for name, fig in figures_of.draw(names, *values).items():
            figures[name] = fig  # for show_static
            # No PNG in the live output: JupyterLab's plotly renderer would show it instead.
            outputs[name].outputs = (display_data(fig, png=False),)  # replaces it in one go

    sliders["lam"].observe(lambda _: draw(("field", "training")), names="value")
    for name in ("num_slices", "n_points", "t_max"):
        sliders[name].observe(lambda _: draw(("spread", "field")), names="value")
    draw(("spread", "field", "training"))
    controls = W.HBox(
        [
            W.VBox([sliders["lam"], sliders["num_slices"]]),
            W.VBox([sliders["n_points"], sliders["t_max"]]),
        ]
    )
    box = W.VBox([controls, W.HBox([outputs["field"], outputs["spread"]]), outputs["training"]])
    box.sliders, box.outputs, box.figures = sliders, outputs, figures
    return box


def png_bytes(image: np.ndarray) -> bytes:
    """An RGB uint8 image ``(H, W, 3)`` encoded as PNG."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
    return buf.getvalue()


def pca_explorer(
    images: torch.Tensor,
    tokens: torch.Tensor,
    thresholds: tuple[float, float] = (-1.0, 2.0),
):
    """A threshold slider and a foreground switch over PCA maps of patch features.

    ``images`` (N, 3, S, S) uint8 and their ``tokens`` (N, h, w, F) (:func:`~lejepa_viz.viz.
    pca.patch_tokens`); each change refits :func:`~lejepa_viz.viz.pca.fit_pca_maps` with that
    threshold and shows the images above their maps (:func:`montage`).

    Returns:
        an ``ipywidgets.VBox``; ``.threshold``, ``.foreground``, ``.image`` and ``.info`` are
        its parts.
    """
    import ipywidgets as W

    size = images.shape[-1]
    threshold = W.FloatSlider(
        value=0.0,
        min=thresholds[0],
        max=thresholds[1],
        step=0.1,
        description="threshold",
        continuous_update=False,
    )
    foreground = W.Checkbox(value=True, description="foreground only")
    image = W.Image(format="png")
    info = W.HTML()

    def draw(_=None):
        try:
            maps = fit_pca_maps(tokens, foreground=foreground.value, threshold=threshold.value)
        except ValueError as err:  # a threshold that leaves too few foreground patches
            info.value = f"<b>{err}</b>"
            return
        image.value = png_bytes(montage(images, to_rgb(maps, size)))
        kept = "" if maps.mask is None else f"foreground: {maps.mask.mean():.0%} of patches · "
        ratio = ", ".join(f"{r:.2f}" for r in maps.explained_variance_ratio)
        info.value = f"{kept}explained variance of the 3 colours: {ratio}"

    threshold.observe(draw, names="value")
    foreground.observe(draw, names="value")
    draw()
    box = W.VBox([W.HBox([threshold, foreground]), info, image])
    box.threshold, box.foreground, box.image, box.info = threshold, foreground, image, info
    return box
