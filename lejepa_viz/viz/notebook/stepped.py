"""Explorers that need no kernel: precomputed figures stacked into one plotly figure with a slider.

An ipywidgets explorer (:mod:`.explorers`) recomputes its figures in Python when a slider
moves, so it is dead on GitHub, nbviewer or a static website. :func:`stepped_figure` trades
that for a grid fixed in advance: every setting's figure is drawn once, their traces are
stacked into one figure, and a plotly slider shows one setting's traces (its ``"update"``
method sets the traces' visibility and the layout's titles), all in the page's JavaScript.
:func:`knob_sliders` does this for the grid of notebook 05's explorer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ...toys.clouds import make_cloud
from ...toys.trajectory import Trajectory
from .explorers import _LambdaFigures, training_figure

KNOTS = (3, 5, 9, 17, 33)  # the knot counts of the static explorer (T)
T_MAXES = (0.5, 1.0, 2.0, 3.0, 4.0, 6.0)  # its t_max values


def stepped_figure(figures: Sequence, labels: Sequence[str], name: str, active: int = 0):
    """One plotly figure that shows ``figures[i]`` when its slider stands on ``labels[i]``.

    The figures must share one layout apart from their titles and annotations (the subplot
    titles), which each step sets: axes, sizes and legends come from ``figures[0]``, and an
    axis without a fixed range autoscales to the traces shown. ``name`` is the slider's label,
    ``active`` the step shown first.

    Returns:
        a ``plotly.graph_objects.Figure`` with ``sum(len(f.data) for f in figures)`` traces.
    """
    import plotly.graph_objects as go

    if len(figures) != len(labels) or not figures:
        raise ValueError(f"need one label per figure, got {len(figures)} and {len(labels)}")
    if not 0 <= active < len(figures):
        raise ValueError(f"active must index the {len(figures)} figures, got {active}")
    fig = go.Figure(layout=figures[0].layout)
    owner = []  # the step each trace belongs to
    for i, part in enumerate(figures):
        for trace in part.data:
            fig.add_trace(trace)
            owner.append(i)
    for trace, i in zip(fig.data, owner, strict=True):
        trace.visible = i == active
    steps = []
    for i, (part, label) in enumerate(zip(figures, labels, strict=True)):
        layout = {"title.text": part.layout.title.text, "annotations": part.layout.annotations}
        visible = [j == i for j in owner]
        steps.append(dict(method="update", label=label, args=[{"visible": visible}, layout]))
    fig.update_layout(
        title_text=figures[active].layout.title.text,
        annotations=figures[active].layout.annotations,
        sliders=[
            dict(
                active=active,
                steps=steps,
                currentvalue=dict(prefix=f"{name} = "),
                pad=dict(t=55, b=10),  # below the x axis' title
            )
        ],
    )
    height = fig.layout.height or 450
    bottom = fig.layout.margin.b or 0
    fig.update_layout(height=height + 100, margin_b=bottom + 100)  # room for the slider
    return fig


def knob_sliders(
    runs: Sequence[Trajectory],
    cloud: torch.Tensor | None = None,
    draws: int = 16,
    seed: int = 0,
    lam: float = 0.05,
    knots: Sequence[int] = KNOTS,
    t_maxes: Sequence[float] = T_MAXES,
) -> dict:
    """The figures of :func:`~.explorers.lambda_explorer`, each with a slider that works
    without a kernel, over a fixed grid:

    - ``"training"``: :func:`~.explorers.training_figure` for each λ of ``runs``;
    - ``"field"``: the force of the loss on ``cloud`` (N, 2) for each λ (K = 64, 17 knots,
      t_max = 3);
    - ``"knots"``: the spread of SIGReg across slice draws for each number of knots (t_max = 3);
    - ``"t_max"``: the same for each t_max (17 knots).

    ``cloud``, ``draws`` and ``seed`` mean what they mean for the explorer (the moons by
    default), so its figures are the ones the explorer draws at the same settings. The λ
    sliders start at the run closest to ``lam``, the others at the defaults (17 knots,
    t_max = 3): a viewer that shows only the first step (a PNG) sees those.

    Returns:
        a dict of four plotly figures by the names above.
    """
    cloud = make_cloud("moons", 256, 2, seed) if cloud is None else torch.as_tensor(cloud).float()
    draw = _LambdaFigures(runs, cloud, draws, seed)
    lams = [run.lam for run in runs]
    first = min(range(len(lams)), key=lambda i: abs(lams[i] - lam))
    k = 256  # the spread's largest K, as the explorer's slices slider at its right end
    return {
        "training": stepped_figure(
            [training_figure(runs, v, width=1000) for v in lams],
            [f"{v:g}" for v in lams],
            "λ",
            active=first,
        ),
        "field": stepped_figure(
            [draw.field(v, 64, 17, 3.0) for v in lams], [f"{v:g}" for v in lams], "λ", active=first
        ),
        "knots": stepped_figure(
            [draw.spread(k, t, 3.0) for t in knots],
            [str(t) for t in knots],
            "knots",
            active=list(knots).index(17) if 17 in knots else 0,
        ),
        "t_max": stepped_figure(
            [draw.spread(k, 17, t) for t in t_maxes],
            [f"{t:g}" for t in t_maxes],
            "t_max",
            active=list(t_maxes).index(3.0) if 3.0 in t_maxes else 0,
        ),
    }
