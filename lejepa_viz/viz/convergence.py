"""The numbers of the embedding-convergence animation: what SIGReg does to the embeddings.

:func:`convergence_data` turns the recorded points of S frames (a run's clean test images, a
cloud's points), and optionally the training views SIGReg acted on, into plain arrays, once:
their projections on the one :func:`plane` of the animations, histograms and ECF gaps of a
few random 1-D slices, and their SIGReg read by the judge
(:func:`lejepa_viz.sigreg.judge`) against the band of a true N(0, I) sample of the same size.
:class:`~lejepa_viz.viz.animation.ConvergenceAnimation` only draws them.
:func:`~lejepa_viz.viz.animation.animate_snapshots` writes the animation of a run (:class:`lejepa_viz.runs.Snapshots`);
:func:`lejepa_viz.viz.toys.flow_animation` the one of a point cloud's SIGReg gradient flow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import torch

from .._checks import as_samples, integer_at_least
from ..multivariate.slicing import directions
from ..runs import Snapshots
from ..sigreg import NullLevel, judge, judge_null

LIMIT = 4.0  # the point and slice panels show [-LIMIT, LIMIT] in projection units
NUM_BINS = 40
T_MAX, NUM_T = 5.0, 101
Curves = Mapping[str, tuple[Sequence[float], Sequence[float]]]  # {name: (steps, values)}


def plane(dim: int, seed: int = 0) -> torch.Tensor:
    """The projection plane of the animations: ``(D, 2)`` float64 orthonormal columns, the
    Gram–Schmidt of the two unit directions ``directions(dim, 2, seed=seed)`` draws. A true
    N(0, I) sample projects on it as a true N(0, I₂) sample, whatever D.

    Example:
        >>> P = plane(16)
        >>> P.shape, torch.allclose(P.T @ P, torch.eye(2, dtype=torch.float64))
        (torch.Size([16, 2]), True)
    """
    dim = integer_at_least(dim, 2, "dim")
    drawn = directions(dim, 2, seed=seed, dtype=torch.float64)  # (D, 2)
    first = drawn[:, 0] / drawn[:, 0].norm()
    second = drawn[:, 1] - (drawn[:, 1] @ first) * first
    return torch.stack([first, second / second.norm()], dim=1)


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


@dataclass(frozen=True)
class ConvergenceData:
    """Everything the convergence animation shows, for S frames of n points in D dimensions
    (B training views, K slices); built by :func:`convergence_data`.

    Attributes:
        steps: the step of each frame, length S.
        plane: ``(D, 2)`` the :func:`plane` of panels (a) and (b).
        slices: ``(D, K)`` unit directions of panels (d) and (e).
        points, view_points: ``(S, n, 2)`` and ``(S, B, 2)`` projections on ``plane``.
        projections: ``(S, n, K)`` projections of the points on ``slices``.
        edges, densities: histogram bin edges on ``[-LIMIT, LIMIT]`` and heights ``(S, K, bins)``.
        t, gaps: ECF arguments on ``[0, T_MAX]`` and gaps ``(S, K, NUM_T)`` (:func:`ecf_gap`).
        sigreg, view_sigreg: ``(S,)`` SIGReg of the points and of the views (NaN: a frame
            without views), read by the judge.
        null, view_null: :class:`~lejepa_viz.sigreg.NullLevel` of true N(0, I) samples of n and
            of B points, on the judge's directions.
        labels, classes: class of each point ``(n,)`` and class names, or None.
        curves: loss curves ``{name: (steps (L,), values (L,))}``.
        lam, title: λ of the run and what the title starts with, or None.
        names: what the points and the views are.
        start: what frame 0 shows when it is step 0 (the status line says it).
    """

    steps: list[int]
    plane: np.ndarray
    slices: np.ndarray
    points: np.ndarray
    projections: np.ndarray
    edges: np.ndarray
    densities: np.ndarray
    t: np.ndarray
    gaps: np.ndarray
    sigreg: np.ndarray
    null: NullLevel
    view_points: np.ndarray | None = None
    view_sigreg: np.ndarray | None = None
    view_null: NullLevel | None = None
    labels: np.ndarray | None = None
    classes: list[str] | None = None
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    lam: float | None = None
    title: str | None = None
    names: tuple[str, str] = ("clean test images", "training views")
    start: str = "before training: the encoder at random initialisation"

    def __len__(self) -> int:
        return len(self.steps)

    @cached_property
    def floor(self) -> float:
        """Below it a frame scores less than a true Gaussian sample (:attr:`NullLevel.floor`)."""
        return self.null.floor

    def heading(self, i: int) -> str:
        """The title of frame ``i``: ``title · step · λ``."""
        parts = [self.title] if self.title else []
        parts.append(f"step {self.steps[i]:,}")
        if self.lam is not None:
            parts.append(f"λ = {self.lam:g}")
        return "   ·   ".join(parts)

    def status(self, i: int) -> str:
        """The status line of frame ``i``: what it shows, and its SIGReg against the null."""
        parts = [f"{self.names[0]}: SIGReg {self.sigreg[i]:.2f}"]
        if self.view_sigreg is not None and np.isfinite(self.view_sigreg[i]):
            parts.append(f"{self.names[1]}: {self.view_sigreg[i]:.2f}")
        parts.append(f"a true N(0, I) sample: {self.null}")
        line = "   ·   ".join(parts)
        if i == 0 and self.steps[0] == 0:
            line = f"step 0, {self.start}.   " + line
        elif self.sigreg[i] < self.floor:
            line += "   ·   below a true Gaussian: fitting the 17 knots, not N(0, I)"
        return line

    def marks(self, i: int) -> dict[str, tuple[float, float] | None]:
        """Where the cursor of frame ``i`` meets each curve with a dot: ``"points"``,
        ``"views"`` (the judged SIGReg) and every loss curve but ``"SIGReg"``, as ``(step,
        value)``; None before a curve starts. Past a curve's last finite value, that value;
        between logged steps, interpolated linearly (in log when all values are positive)."""
        series = {"points": (self.steps, self.sigreg)}
        if self.view_sigreg is not None:
            series["views"] = (self.steps, self.view_sigreg)
        series |= {k: v for k, v in self.curves.items() if k != "SIGReg"}
        step, out = self.steps[i], {}
        for name, (x, y) in series.items():
            x, y = np.asarray(x, float), np.asarray(y, float)
            ok = np.isfinite(y)
            if step < x[0] or not ok.any():
                out[name] = None
                continue
            at = min(step, x[ok][-1])
            log = (y[ok] > 0).all()
            value = np.interp(at, x[ok], np.log(y[ok]) if log else y[ok])
            out[name] = (float(at), float(np.exp(value) if log else value))
        return out

    def numbers(self) -> dict:
        """The last frame's record: ``{"step", "points", "views", "null_mean", "null_sd"}``
        (``views`` None without views in that frame; the band is that of n points)."""
        views = None if self.view_sigreg is None else float(self.view_sigreg[-1])
        return {
            "step": self.steps[-1],
            "points": float(self.sigreg[-1]),
            "views": views if views is not None and np.isfinite(views) else None,
            "null_mean": self.null.mean,
            "null_sd": self.null.sd,
        }

    def summary(self) -> str:
        """:meth:`numbers` in one sentence."""
        last = self.numbers()
        views = "" if last["views"] is None else f", {self.names[1]} {last['views']:.2f}"
        return (
            f"last frame (step {last['step']:,}): SIGReg of the {self.names[0]} "
            f"{last['points']:.2f}{views}; a true N(0, I) sample of {self.null.n} points: "
            f"{self.null}"
        )


def _checked(z, steps, views, labels, classes, curves, sigreg):
    """The inputs of :func:`convergence_data`, validated and as arrays."""
    z = as_samples(torch.as_tensor(z), "z")
    if z.ndim != 3 or z.shape[-1] < 2:
        raise ValueError(f"z must have shape (S, n, D) with D >= 2, got {tuple(z.shape)}")
    S, n, dim = z.shape
    steps = [int(s) for s in steps]
    if len(steps) != S:
        raise ValueError(f"steps must have one entry per frame ({S}), got {len(steps)}")
    if views is not None:
        views = torch.as_tensor(views).float()
        if views.ndim != 3 or len(views) != S or views.shape[-1] != dim or views.shape[1] < 2:
            raise ValueError(
                f"views must have shape (S, B, D) = ({S}, B >= 2, {dim}), got {tuple(views.shape)}"
            )
    if labels is not None:
        labels = np.asarray(labels, dtype=int).reshape(-1)
        if len(labels) != n or labels.min(initial=0) < 0:
            raise ValueError(f"labels must be {n} class indices >= 0, got {labels.tolist()[:8]}")
        if classes is not None and labels.max(initial=0) >= len(classes):
            raise ValueError(f"classes has {len(classes)} names, labels go to {labels.max()}")
    curves = {k: (np.asarray(x, float), np.asarray(y, float)) for k, (x, y) in curves.items()}
    for name, (x, y) in curves.items():
        if x.ndim != 1 or x.shape != y.shape or len(x) == 0:
            raise ValueError(f"curves[{name!r}] must be (steps, values) of one length")
    if sigreg is not None:
        sigreg = np.asarray(sigreg, float)
        if sigreg.shape != (S,):
            raise ValueError(f"sigreg must have one value per frame ({S}), got {sigreg.shape}")
    return z, steps, views, labels, curves, sigreg


def convergence_data(
    z: torch.Tensor | np.ndarray,
    steps: Sequence[int],
    *,
    views: torch.Tensor | np.ndarray | None = None,
    labels: torch.Tensor | np.ndarray | None = None,
    classes: Sequence[str] | None = None,
    curves: Curves | None = None,
    lam: float | None = None,
    title: str | None = None,
    names: tuple[str, str] = ("clean test images", "training views"),
    start: str = "before training: the encoder at random initialisation",
    sigreg: Sequence[float] | None = None,
    num_slices: int = 3,
    seed: int = 0,
) -> ConvergenceData:
    """The numbers of the convergence animation of ``z``, computed once for all frames.

    Args:
        z: the recorded points of each frame, ``(S, n, D)`` with ``D >= 2``.
        steps: the step of each frame, length S.
        views: the training views of each frame, ``(S, B, D)`` (NaN rows: a frame without);
            None: no views (a gradient flow moves the points themselves).
        labels: class index of each point ``(n,)``; None: one colour.
        classes: class names, for a legend (with ``labels``).
        curves: loss curves ``{name: (steps, values)}`` of the run; ``"SIGReg"`` is the loss's
            own (on its batch and its directions).
        lam: λ of the run; title: what the title starts with (e.g. the dataset).
        names, start: what ``z`` and ``views`` are, and what frame 0 shows when it is step 0.
        sigreg: the judged SIGReg of each frame of ``z`` when already known (a flow records
            it), used as is; None: :func:`~lejepa_viz.sigreg.judge`.
        num_slices: number K of 1-D slices (``directions(D, K, seed=seed, step=1)``).
        seed: seed of the plane and the slices.

    Example:
        >>> data = convergence_data(torch.randn(2, 100, 4), [0, 10])
        >>> data.points.shape, data.densities.shape, data.sigreg.shape
        ((2, 100, 2), (2, 3, 40), (2,))
    """
    checked = _checked(z, steps, views, labels, classes, curves or {}, sigreg)
    z, steps, views, labels, curves, sigreg = checked
    num_slices = integer_at_least(num_slices, 1, "num_slices")
    n, dim = z.shape[1:]
    xy = plane(dim, seed)  # (D, 2)
    slices = directions(dim, num_slices, seed=seed, step=1, dtype=torch.float64)  # (D, K)
    slices /= slices.norm(dim=0)  # unit in float64 too (drawn as float32)
    z64 = z.double()
    projections = (z64 @ slices).numpy()  # (S, n, K)
    edges, t = np.linspace(-LIMIT, LIMIT, NUM_BINS + 1), np.linspace(0.0, T_MAX, NUM_T)
    if sigreg is None:
        sigreg, null = judge(z)
    else:
        null = judge_null(n, dim)
    view_points = view_sigreg = view_null = None
    if views is not None:
        view_points = (views.double() @ xy).numpy()  # (S, B, 2)
        view_sigreg, view_null = judge(views)
    return ConvergenceData(
        steps=steps,
        plane=xy.numpy(),
        slices=slices.numpy(),
        points=(z64 @ xy).numpy(),  # (S, n, 2)
        projections=projections,
        edges=edges,
        densities=slice_densities(projections, edges),  # (S, K, bins)
        t=t,
        gaps=np.stack([ecf_gap(u, t) for u in projections]),  # (S, K, T)
        sigreg=sigreg,
        null=null,
        view_points=view_points,
        view_sigreg=view_sigreg,
        view_null=view_null,
        labels=labels,
        classes=None if classes is None else list(classes),
        curves=curves,
        lam=lam,
        title=title,
        names=names,
        start=start,
    )


def snapshots_data(
    snapshots: Snapshots, *, curves: Curves | None = None, num_slices: int = 3, seed: int = 0
) -> ConvergenceData:
    """:func:`convergence_data` of a run's :class:`~lejepa_viz.runs.Snapshots` and curves."""
    return convergence_data(
        snapshots.z,
        snapshots.steps,
        views=snapshots.z_views,
        labels=snapshots.labels,
        classes=snapshots.classes,
        curves=curves,
        lam=snapshots.lam,
        title=snapshots.dataset,
        num_slices=num_slices,
        seed=seed,
    )


def thin(snapshots: Snapshots, max_frames: int | None) -> Snapshots:
    """At most ``max_frames`` of the snapshots, evenly spaced, the first and the last kept
    (``snapshots`` itself when there are not more, or ``max_frames`` is None)."""
    if max_frames is None or len(snapshots.steps) <= max_frames:
        return snapshots
    integer_at_least(max_frames, 2, "max_frames")  # room for the first and the last
    keep = np.unique(np.linspace(0, len(snapshots.steps) - 1, max_frames).round().astype(int))
    views = None if snapshots.z_views is None else snapshots.z_views[keep]
    steps = [snapshots.steps[i] for i in keep]
    return replace(snapshots, steps=steps, z=snapshots.z[keep], z_views=views)
