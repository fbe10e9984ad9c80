"""Interactive views for the notebooks: the computations behind them, plotly figures, and
ipywidgets controls that redraw those figures live.

Three pictures of SIGReg's knobs (:func:`lambda_explorer`, notebook 05):

- :func:`slice_spread` – the SIGReg value a training step would report, for K slices and
  several direction draws: the spread across draws is the noise of the slicing estimate, and
  it shrinks as K grows.
- :func:`loss_field` – the force the LeJEPA loss puts on every point of a 2-D cloud,
  ``-N·∇ₓ[(1 - λ)·pred + λ·SIGReg]``: at λ = 0 only the pull towards the other view remains,
  at larger λ SIGReg pushes the cloud towards N(0, I).
- :func:`toy_training` – a small MLP trained with the LeJEPA loss on two noisy views of a
  heavy-tailed 2-D cloud: at λ = 0 its outputs collapse to a point, at larger λ they fill an isotropic
  Gaussian. :func:`toy_runs` trains one per λ and caches them in a file.

and a threshold slider over PCA maps of patch features (:func:`pca_explorer`, notebook 04).

The widgets re-display plotly figures in an ``ipywidgets.Output`` (no ``FigureWidget``, which
needs ``anywidget``): they work offline in JupyterLab with plotly's renderer
``"plotly_mimetype"``. Every computation is a plain function, tested on its own.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .._checks import as_samples, integer_at_least, positive
from ..flow import make_cloud
from ..multivariate.slicing import directions
from ..sigreg import SIGReg, lejepa_loss
from ..univariate.epps_pulley import ecf_statistic

SLICE_COUNTS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
TOY_LAMS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


# ----------------------------------------------------------------------------- computations


@contextmanager
def one_thread():
    """Run torch on one CPU thread inside the block (tiny tensors: thread wake-ups cost more
    than they save, many times over on a busy machine), then restore the thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def slice_spread(
    z: torch.Tensor,
    ks: Sequence[int] = SLICE_COUNTS,
    draws: int = 16,
    n_points: int = 17,
    t_max: float = 3.0,
    seed: int = 0,
) -> np.ndarray:
    """SIGReg of ``z`` (N, D) with K slices, for each K in ``ks`` and ``draws`` direction draws.

    Draw ``d`` is the value ``SIGReg(K, n_points, t_max, seed)`` reports at training step
    ``d`` (its directions are ``directions(D, K, seed=seed, step=d)``), so the spread of a row
    is the step-to-step noise of the slicing estimate.

    Returns:
        ``(len(ks), draws)`` float64.

    Example:
        >>> v = slice_spread(torch.randn(256, 2), ks=(1, 64), draws=8)
        >>> v.shape, bool(v[1].std() < v[0].std())
        ((2, 8), True)
    """
    draws = integer_at_least(draws, 1, "draws")
    ks = [integer_at_least(k, 1, "ks") for k in ks]
    z = torch.as_tensor(z).detach().float()
    # One fused call for every (K, draw): the directions SIGReg draws, side by side.
    blocks = [(k, d) for k in ks for d in range(draws)]
    A = torch.cat([directions(z.shape[-1], k, seed=seed, step=d) for k, d in blocks], dim=1)
    with torch.no_grad(), one_thread():
        stats = ecf_statistic(as_samples(z), A, positive(t_max, "t_max"),
                              integer_at_least(n_points, 2, "n_points")).double()  # fmt: skip
    means = [part.mean().item() for part in torch.split(stats, [k for k, _ in blocks])]
    return np.array(means).reshape(len(ks), draws)


def loss_field(
    x: torch.Tensor,
    lam: float,
    num_slices: int = 64,
    n_points: int = 17,
    t_max: float = 3.0,
    noise: float = 0.3,
    seed: int = 0,
) -> np.ndarray:
    """The force of the LeJEPA loss on each point of a cloud ``x`` (N, D): ``-N·∇ₓ loss``.

    The cloud is the first view; the second view is ``x + noise·ε`` (ε ~ N(0, I) seeded by
    ``seed``, held fixed), and ``loss = lejepa_loss(stack([x, view2]), lam, SIGReg(...))`` at
    SIGReg step 0. The gradient of a mean over N points is O(1/N); times N it is a per-point
    force. Only ``x`` moves: the pull of ``pred`` is towards the other view, the push of
    SIGReg towards N(0, I).

    Returns:
        ``(N, D)`` float64.

    Example:
        >>> f = loss_field(make_cloud("line", 64), lam=0.0, noise=0.0)
        >>> f.shape, float(abs(f).max())   # identical views: nothing to predict
        ((64, 2), 0.0)
    """
    x = torch.as_tensor(x).detach().float()
    noise = float(noise)
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    g = torch.Generator().manual_seed(seed)
    other = x + noise * torch.randn(x.shape, generator=g)
    x = x.clone().requires_grad_(True)
    sigreg = SIGReg(num_slices=num_slices, n_points=n_points, t_max=t_max, seed=seed)
    with one_thread():
        out = lejepa_loss(torch.stack([x, other]), lam, sigreg)
        (grad,) = torch.autograd.grad(out.loss, x)
    return (-len(x) * grad).double().numpy()


@dataclass
class ToyRun:
    """What :func:`toy_training` records: outputs on the fixed inputs over training."""

    lam: float
    steps: list[int] = field(default_factory=list)
    snapshots: list[np.ndarray] = field(default_factory=list)  # each (n, dim)
    sigreg: list[float] = field(default_factory=list)  # judged with 256 fixed slices
    std: list[float] = field(default_factory=list)  # mean over dims of the outputs' std


def toy_training(
    lam: float,
    steps: int = 200,
    n: int = 512,
    dim: int = 2,
    shape: str = "heavy",
    noise: float = 0.3,
    num_slices: int = 64,
    lr: float = 1e-2,
    every: int = 10,
    seed: int = 0,
) -> ToyRun:
    """Train a small MLP ``R² -> R^dim`` with the LeJEPA loss on two noisy views of a cloud.

    Inputs are ``make_cloud(shape, n, 2, seed)`` (default: heavy-tailed Student-t points, which
    fill the plane, so the outputs can become a 2-D Gaussian); every Adam step draws two views
    ``x + noise·ε`` and minimises ``lejepa_loss`` of the two outputs with
    ``SIGReg(num_slices, seed=seed)``. The same seed gives the same initialisation and the
    same views for every λ. The outputs start spread out (std 1).

    At λ = 0 the loss is pure invariance, which a constant output achieves: the outputs
    collapse. At λ > 0 SIGReg keeps them spread as N(0, I).

    Example:
        >>> zero, some = toy_training(0.0, steps=60, n=256), toy_training(0.5, steps=60, n=256)
        >>> zero.std[-1] < 0.2, 0.7 < some.std[-1] < 1.3
        (True, True)
    """
    if not isinstance(lam, (int, float)) or not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be a number in [0, 1], got {lam!r}")
    steps = integer_at_least(steps, 1, "steps")
    every = integer_at_least(every, 1, "every")
    dim = integer_at_least(dim, 1, "dim")
    lr = positive(lr, "lr")
    inputs = make_cloud(shape, n, 2, seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(
            torch.nn.Linear(2, 64), torch.nn.GELU(), torch.nn.Linear(64, 64), torch.nn.GELU(),
            torch.nn.Linear(64, dim),
        )  # fmt: skip
    with torch.no_grad():  # start spread out, so that collapse is visible
        net[-1].weight /= net(inputs).std()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sigreg = SIGReg(num_slices=num_slices, seed=seed)
    judge = SIGReg(num_slices=256, seed=seed + 1)
    g = torch.Generator().manual_seed(seed)
    run = ToyRun(lam=float(lam))
    with one_thread():
        _train(net, inputs, opt, sigreg, judge, g, run, float(lam), steps, every, noise)
    return run


def _train(net, inputs, opt, sigreg, judge, g, run, lam, steps, every, noise) -> None:
    for step in range(steps + 1):
        if step % every == 0 or step == steps:
            with torch.no_grad():
                z = net(inputs)
                judge.step.zero_()
                run.steps.append(step)
                run.snapshots.append(z.numpy().astype(np.float32))
                run.sigreg.append(judge(z).item())
                run.std.append(z.std(0).mean().item())
        if step == steps:
            break
        views = inputs + noise * torch.randn(2, *inputs.shape, generator=g)  # (2, n, 2)
        loss = lejepa_loss(net(views), lam, sigreg).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def toy_runs(
    lams: Sequence[float] = TOY_LAMS,
    cache: str | os.PathLike | None = None,
    **kwargs,
) -> list[ToyRun]:
    """:func:`toy_training` for each λ, loaded from ``cache`` when it holds the same settings.

    ``cache`` (a ``.pt`` file, optional) is written after training and reused when its λs
    and keyword arguments match; otherwise the runs are retrained and the file replaced.
    """
    key = {"lams": [float(lam) for lam in lams], **kwargs}
    path = None if cache is None else Path(cache)
    if path is not None and path.is_file():
        try:
            saved = torch.load(path, weights_only=False)
            if saved.get("key") == key:
                return saved["runs"]
        except Exception:  # an unreadable or old cache is retrained
            pass
    runs = [toy_training(lam, **kwargs) for lam in lams]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"key": key, "runs": runs}, tmp)
        tmp.replace(path)
    return runs


def montage(images: torch.Tensor | np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """Images above their maps: ``(N, 3, S, S)`` uint8 and ``(N, S, S, 3)`` -> ``(2S, N·S, 3)``.

    Example:
        >>> montage(np.zeros((2, 3, 4, 4), np.uint8), np.ones((2, 4, 4, 3), np.uint8)).shape
        (8, 8, 3)
    """
    pixels = np.asarray(images).transpose(0, 2, 3, 1)
    rgb = np.asarray(rgb)
    if pixels.shape != rgb.shape:
        raise ValueError(f"images (N, 3, S, S) and rgb (N, S, S, 3) must match, got "
                         f"{tuple(np.shape(images))} and {rgb.shape}")  # fmt: skip
    return np.concatenate([np.concatenate(list(pixels), 1), np.concatenate(list(rgb), 1)], 0)


# ----------------------------------------------------------------------------- figures

_LAYOUT = dict(template="plotly_white", height=330, margin=dict(l=50, r=20, t=50, b=45))


def spread_figure(values: dict[str, np.ndarray], ks: Sequence[int], width: int | None = None):
    """Every draw of :func:`slice_spread` as a dot and the mean as a line, per cloud."""
    import plotly.graph_objects as go

    fig = go.Figure()
    colours = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
    for (name, v), colour in zip(values.items(), colours, strict=False):
        draws = v.shape[1]
        xs = np.repeat(np.asarray(ks, float), draws) * np.tile(
            np.linspace(0.9, 1.1, draws), len(ks)
        )
        fig.add_scatter(x=xs, y=v.ravel(), mode="markers", name=f"{name}: each draw",
                        marker=dict(size=4, color=colour, opacity=0.35), legendgroup=name)  # fmt: skip
        fig.add_scatter(x=list(ks), y=v.mean(1), mode="lines+markers", name=f"{name}: mean",
                        line=dict(color=colour), legendgroup=name)  # fmt: skip
    fig.update_layout(title="SIGReg across slice draws as K grows", width=width, **_LAYOUT)
    fig.update_layout(legend=dict(font=dict(size=10)))
    fig.update_xaxes(type="log", title="slices K")
    fig.update_yaxes(type="log", title="SIGReg")
    return fig


def field_figure(
    x: np.ndarray,
    force: np.ndarray,
    lam: float,
    scale: float | None = None,
    width: int | None = None,
):
    """Points of a 2-D cloud with arrows ``scale · force`` (line segments).

    ``scale=None`` draws the mean arrow 0.3 long whatever the force's size (the forces differ
    by orders of magnitude across λ): the arrows show directions, the title the magnitude.
    """
    import plotly.graph_objects as go

    force = np.asarray(force, float)
    mean_norm = float(np.linalg.norm(force, axis=1).mean())
    if scale is None:
        scale = 0.3 / mean_norm if mean_norm > 0 else 0.0
    x = np.asarray(x, float)
    end = x + scale * force
    seg = np.full((len(x) * 3, 2), np.nan)
    seg[0::3], seg[1::3] = x, end
    fig = go.Figure()
    fig.add_scatter(x=np.round(seg[:, 0], 4), y=np.round(seg[:, 1], 4), mode="lines",
                    line=dict(width=1, color="#d62728"), name="force")  # fmt: skip
    fig.add_scatter(x=np.round(x[:, 0], 4), y=np.round(x[:, 1], 4), mode="markers",
                    marker=dict(size=3, color="#1f77b4"), name="points")  # fmt: skip
    fig.update_layout(title=f"force on the cloud, λ = {lam:g} (mean |force| {mean_norm:.3g})",
                      showlegend=False, width=width, **_LAYOUT)  # fmt: skip
    fig.update_xaxes(range=[-3.5, 3.5])
    fig.update_yaxes(range=[-3.5, 3.5], scaleanchor="x")
    return fig


def training_figure(runs: Sequence[ToyRun], lam: float, width: int | None = None):
    """Left: outputs of the run with λ = ``lam`` at the end; right: SIGReg of every run."""
    from plotly.subplots import make_subplots

    chosen = min(runs, key=lambda r: abs(r.lam - lam))
    fig = make_subplots(1, 2, column_widths=[0.42, 0.58], subplot_titles=(
        f"outputs after training, λ = {chosen.lam:g} (std {chosen.std[-1]:.2f})",
        "SIGReg of the outputs during training"))  # fmt: skip
    z = chosen.snapshots[-1]
    theta = np.linspace(0, 2 * np.pi, 73)
    fig.add_scatter(x=2 * np.cos(theta), y=2 * np.sin(theta), mode="lines", row=1, col=1,
                    line=dict(color="grey", dash="dot", width=1), name="N(0, I): 2σ")  # fmt: skip
    fig.add_scatter(x=np.round(z[:, 0], 4), y=np.round(z[:, 1 % z.shape[1]], 4), mode="markers",
                    marker=dict(size=3, color="#1f77b4"), row=1, col=1, name="outputs")  # fmt: skip
    for run in runs:
        on = run is chosen
        fig.add_scatter(x=run.steps, y=run.sigreg, mode="lines", row=1, col=2, name=f"λ={run.lam:g}",
                        line=dict(width=3 if on else 1, color="#d62728" if on else "#9da5b0"))  # fmt: skip
    fig.update_xaxes(range=[-3.5, 3.5], row=1, col=1)
    fig.update_yaxes(range=[-3.5, 3.5], scaleanchor="x", row=1, col=1)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_xaxes(title="step", row=1, col=2)
    fig.update_layout(showlegend=False, width=width, **_LAYOUT)
    return fig


# ----------------------------------------------------------------------------- widgets


PLOTLY_MIME = "application/vnd.plotly.v1+json"


def display_data(fig) -> dict:
    """A plotly figure as a notebook ``display_data`` output (plotly's mimetype, rendered by
    JupyterLab's plotly extension, offline), whatever ``plotly.io.renderers.default`` is."""
    import plotly.io as pio

    spec = json.loads(pio.to_json(fig, validate=False))
    spec["config"] = {"displaylogo": False}
    return {
        "output_type": "display_data",
        "metadata": {},
        "data": {
            PLOTLY_MIME: spec,
            "text/plain": f"<plotly figure: {fig.layout.title.text or 'no title'}>",
        },
    }


def lambda_explorer(
    runs: Sequence[ToyRun],
    cloud: torch.Tensor | None = None,
    draws: int = 16,
    seed: int = 0,
):
    """Sliders for λ, the number of slices, the number of knots and t_max over three figures.

    λ picks one of ``runs`` (:func:`toy_runs`) and sets the loss of the force field; K, the
    knots and t_max set the SIGReg of the spread and of the force field. ``cloud`` (N, 2) is
    the cloud of the spread and the field, default ``make_cloud("moons", 256)``; its spread is
    drawn next to a sample of N(0, I) of the same size. Figures redraw when a slider is
    released.

    Returns:
        an ``ipywidgets.VBox``; ``.sliders`` holds the four sliders by name (``lam``,
        ``num_slices``, ``n_points``, ``t_max``) and ``.outputs`` the three outputs.
    """
    import ipywidgets as W

    lams = [run.lam for run in runs]
    cloud = make_cloud("moons", 256, 2, seed) if cloud is None else torch.as_tensor(cloud).float()
    gauss = torch.randn(len(cloud), cloud.shape[1], generator=torch.Generator().manual_seed(seed))
    style = dict(continuous_update=False, style={"description_width": "110px"},
                 layout=W.Layout(width="460px"))  # fmt: skip
    sliders = dict(
        lam=W.SelectionSlider(
            options=[(f"{v:g}", v) for v in lams], value=lams[0], description="λ", **style
        ),  # fmt: skip
        num_slices=W.SelectionSlider(
            options=list(SLICE_COUNTS), value=64, description="slices K", **style
        ),  # fmt: skip
        n_points=W.IntSlider(value=17, min=3, max=33, step=2, description="knots", **style),
        t_max=W.FloatSlider(value=3.0, min=0.5, max=6.0, step=0.5, description="t_max", **style),
    )
    outputs = {name: W.Output() for name in ("spread", "field", "training")}
    spread_cache: dict = {}

    def draw(names):
        lam, k = sliders["lam"].value, sliders["num_slices"].value
        knots, t_max = sliders["n_points"].value, sliders["t_max"].value
        figs = {}
        if "spread" in names:
            key = (k, knots, t_max)
            if key not in spread_cache:
                ks = [c for c in SLICE_COUNTS if c <= k]
                spread_cache[key] = (ks, {
                    name: slice_spread(z, ks, draws, knots, t_max, seed)
                    for name, z in (("cloud", cloud), ("N(0, I)", gauss))})  # fmt: skip
            ks, values = spread_cache[key]
            figs["spread"] = spread_figure(values, ks, width=560)
        if "field" in names:
            force = loss_field(cloud, lam, k, knots, t_max, seed=seed)
            figs["field"] = field_figure(cloud.numpy(), force, lam, width=440)
        if "training" in names:
            figs["training"] = training_figure(runs, lam, width=1000)
        for name, fig in figs.items():
            outputs[name].outputs = (display_data(fig),)  # replaces the figure in one go

    sliders["lam"].observe(lambda _: draw(("field", "training")), names="value")
    for name in ("num_slices", "n_points", "t_max"):
        sliders[name].observe(lambda _: draw(("spread", "field")), names="value")
    draw(("spread", "field", "training"))
    box = W.VBox([
        W.HBox([W.VBox([sliders["lam"], sliders["num_slices"]]),
                W.VBox([sliders["n_points"], sliders["t_max"]])]),
        W.HBox([outputs["field"], outputs["spread"]]),
        outputs["training"],
    ])  # fmt: skip
    box.sliders, box.outputs = sliders, outputs
    return box


def png_bytes(image: np.ndarray) -> bytes:
    """An RGB uint8 image ``(H, W, 3)`` encoded as PNG."""
    from PIL import Image

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

    from .pca import fit_pca_maps, to_rgb

    size = images.shape[-1]
    threshold = W.FloatSlider(value=0.0, min=thresholds[0], max=thresholds[1], step=0.1,
                              description="threshold", continuous_update=False)  # fmt: skip
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
