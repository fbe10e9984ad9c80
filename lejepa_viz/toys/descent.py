"""Gradient flows: a cloud of points is the parameter, and an optimiser moves it down a loss.

The smallest experiment that shows what a statistic does as a loss: no network, no data.
:func:`descend` is the one loop (Adam or plain gradient descent); :func:`sigreg_flow` runs it
with SIGReg and plain gradient descent (the cloud becomes N(0, I)), :func:`statistic_flow` with
any univariate statistic (does its gradient bring a sample to N(0, 1)?), and
:func:`clouds_table` flows every cloud of :mod:`.clouds` for the ``lejepa-viz clouds`` table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from tqdm.auto import tqdm

from .._checks import as_samples, integer_at_least, positive
from ..sigreg import SIGReg, judge, judge_null
from .clouds import CLOUD_SHAPES, make_cloud
from .simulate import normal_w1
from .trajectory import Trajectory

Measure = Callable[[torch.Tensor], object]  # points (N, D) -> a number (or a list) to record


def descend(
    loss: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    steps: int,
    lr: float,
    every: int,
    measures: Mapping[str, Measure] | None = None,
    until: Callable[[Trajectory], str | None] | None = None,
    optimizer: str = "adam",
    progress: bool = False,
    desc: str = "descent",
) -> Trajectory:
    """Move the points of ``x`` ``(N, D)`` down ``loss(points)`` (a scalar) with Adam (or plain
    gradient descent, ``optimizer="sgd"``).

    Every ``every`` steps (and at the last) the points are recorded with each measure's value;
    ``until``, called after each record, may end the flow early by returning a reason (kept
    in ``Trajectory.stopped``). A loss or gradient that is not finite ends it too
    (``finite=False``).

    Args:
        loss: the objective of the points.
        x: the starting points ``(N, D)``; not modified (float64 stays float64).
        steps: optimiser steps at most.
        lr: learning rate.
        every: record every ``every`` steps.
        measures: ``{name: fn(points)}`` recorded at each snapshot, in ``values[name]``.
        until: a stopping rule on the trajectory so far.
        optimizer: ``"adam"`` (fast, but its per-coordinate step sizes favour the axes) or
            ``"sgd"`` (plain gradient descent: a discretised gradient flow, rotation-equivariant).
        progress: a tqdm progress bar.
        desc: the bar's label.

    Example:
        >>> traj = descend(lambda p: p.square().mean(), torch.ones(4, 2), steps=10, lr=0.1,
        ...                every=5, measures={"norm": lambda p: p.norm().item()})
        >>> traj.steps, traj.values["norm"][-1] < traj.values["norm"][0]
        ([0, 5, 10], True)
    """
    steps = integer_at_least(steps, 1, "steps")
    every = integer_at_least(every, 1, "every")
    lr = positive(lr, "lr")
    points = as_samples(x).detach().clone().requires_grad_(True)
    optimizers = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}
    if optimizer not in optimizers:
        raise ValueError(f"optimizer must be one of {sorted(optimizers)}, got {optimizer!r}")
    opt = optimizers[optimizer]([points], lr=lr)
    traj = Trajectory()
    for step in tqdm(range(steps + 1), desc=desc, disable=not progress, leave=False):
        if step % every == 0 or step == steps:
            with torch.no_grad():
                values = {name: fn(points.detach()) for name, fn in (measures or {}).items()}
            traj.record(step, points, **values)
            reason = until(traj) if until is not None else None
            if reason is not None and step < steps:
                traj.stopped = reason
                break
        if step == steps:
            break
        value = loss(points)
        opt.zero_grad(set_to_none=True)
        value.backward()
        if not (torch.isfinite(value) and torch.isfinite(points.grad).all()):
            traj.finite, traj.stopped = False, "not finite"
            if traj.steps[-1] != step:  # the points where it stopped are the last snapshot
                with torch.no_grad():
                    values = {name: fn(points.detach()) for name, fn in (measures or {}).items()}
                traj.record(step, points, **values)
            break
        opt.step()
    return traj


def sigreg_flow(
    x: torch.Tensor,
    steps: int = 300,
    lr: float = 0.2,
    num_slices: int = 256,
    every: int = 10,
    seed: int = 0,
    past_null: bool = False,
    optimizer: str = "sgd",
    progress: bool = True,
) -> Trajectory:
    """Move the points of ``x`` (N, D) down the gradient of SIGReg, until the cloud scores what a
    true N(0, I) sample of its size scores.

    Plain gradient descent by default: Adam reaches the null level in fewer steps, but its
    per-coordinate step sizes pull the points into streaks along the axes (a ring becomes a
    cross), which is Adam's doing, not SIGReg's.

    Each step uses fresh directions (``SIGReg(num_slices, seed=seed)``); the recorded
    ``values["sigreg"]`` is read by :func:`~lejepa_viz.sigreg.judge`, on other directions,
    the same at every snapshot, so the curve is smooth. The flow stops at the first snapshot
    at or below the mean of the judge's null level (``stopped == "null level"``): going on
    drives the statistic far below what any Gaussian sample scores, the points arranging themselves to
    match e^{−t²/2} at the 17 knots — over-fitting, which ``past_null=True`` shows.

    Args:
        x: the starting cloud, shape ``(N, D)``; not modified.
        steps: number of optimisation steps at most.
        lr: learning rate.
        num_slices: slices per step.
        every: keep a snapshot every ``every`` steps (and the last one).
        seed: seed of the direction stream.
        past_null: run all ``steps``, past the null level.
        optimizer: ``"sgd"`` or ``"adam"`` (see :func:`descend`).
        progress: show a tqdm progress bar.

    Example:
        >>> flow = sigreg_flow(make_cloud("line", 256, 2), steps=50, every=25, progress=False)
        >>> flow.steps, flow.values["sigreg"][-1] < flow.values["sigreg"][0]
        ([0, 25, 50], True)
    """
    sigreg = SIGReg(num_slices=num_slices, seed=seed)
    null = judge_null(x.shape[0], x.shape[1])

    def reached(traj: Trajectory) -> str | None:
        return "null level" if traj.values["sigreg"][-1] <= null.mean else None

    return descend(
        sigreg,
        x.float(),
        steps=steps,
        lr=lr,
        every=every,
        measures={"sigreg": lambda p: judge(p).value},
        until=None if past_null else reached,
        optimizer=optimizer,
        progress=progress,
        desc="SIGReg flow",
    )


def statistic_flow(
    statistic: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    steps: int = 200,
    lr: float = 0.05,
    every: int = 10,
) -> Trajectory:
    """Move the points of ``x`` ``(N, K)`` down the gradient of ``statistic(x).sum()`` with
    Adam, and record how far each column is from N(0, 1) (``values["w1"]``, see
    :func:`~lejepa_viz.toys.simulate.normal_w1`).

    A statistic whose gradient is useful for training brings the W1 distance near that of
    a fresh N(0, 1) sample of the same size; one that is blind to something (location,
    scale, shape) stops with that part unchanged; one whose gradient vanishes or blows up
    stalls or diverges (``finite`` is then False and the flow stops).

    Example:
        >>> from lejepa_viz.toys.simulate import STATISTICS, draw
        >>> flow = statistic_flow(STATISTICS["VCReg"], 3 + draw("normal", 200, 1), steps=200)
        >>> flow.values["w1"][-1][0] < flow.values["w1"][0][0] / 5
        True
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        raise ValueError(f"x must be a tensor of shape (N, K), got {getattr(x, 'shape', x)!r}")
    return descend(
        lambda p: statistic(p).sum(),
        x,
        steps=steps,
        lr=lr,
        every=every,
        measures={"w1": lambda p: normal_w1(p).tolist()},
    )


def clouds_table(n: int = 1024, dim: int = 8, steps: int = 400, seed: int = 0) -> dict:
    """SIGReg of every cloud of :data:`~lejepa_viz.toys.clouds.CLOUD_SHAPES` before and after
    a SIGReg flow, read by :func:`~lejepa_viz.sigreg.judge` (directions the flows never saw),
    beside a true N(0, I) sample of the same size (the ``lejepa-viz clouds`` table).

    Returns:
        ``{"rows": [{"cloud", "before", "after"}], "gaussian": float}``.

    Example:
        >>> table = clouds_table(n=128, dim=2, steps=20)
        >>> [row["cloud"] for row in table["rows"]]
        ['line', 'ring', 'moons', 'heavy']
    """
    gaussian = torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))
    rows = []
    for shape in CLOUD_SHAPES:
        start = make_cloud(shape, n, dim, seed=seed)
        flow = descend(SIGReg(num_slices=256, seed=seed), start, steps=steps, lr=0.05, every=steps)
        before, after = (judge(points).value for points in flow.snapshots)
        rows.append({"cloud": shape, "before": before, "after": after})
    return {"rows": rows, "gaussian": judge(gaussian).value}
