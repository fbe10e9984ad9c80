"""A training run's metrics lines as a figure: the loss and its parts, the online probe."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from ..sigreg import NullLevel


def plot_metrics(
    records: Sequence[dict], *, null: NullLevel | None = None, size=(8.0, 2.8), dpi: int = 100
):
    """Figure of a run's metrics lines: the loss parts (left, log scale) and the online probe's
    test accuracy (right, one point per epoch or end of run). With ``null`` (the run's
    :func:`~lejepa_viz.sigreg.null_level`, e.g. ``null_level(batch_size, proj_dim,
    num_slices=num_slices, views=num_global + num_local)``) the SIGReg a true N(0, I) batch
    scores is drawn as a band. A ``matplotlib.figure.Figure`` not attached to pyplot (so a
    notebook shows it only when displayed)."""
    fig = Figure(figsize=size, dpi=dpi, layout="constrained")
    left, right = fig.subplots(1, 2)
    losses = [r for r in records if "loss" in r]
    for key, color in (("loss", "#222222"), ("pred", "#1b6ca8"), ("sigreg", "#d1495b")):
        if losses:
            left.plot(
                [r["step"] for r in losses],
                [r[key] for r in losses],
                color=color,
                label={"loss": "loss", "pred": "prediction", "sigreg": "SIGReg"}[key],
            )
    if null is not None:
        left.axhspan(
            null.low,
            null.high,
            color="#d1495b",
            alpha=0.12,
            lw=0,
            label=f"SIGReg of N(0, I): {null}",
        )
    left.set(xlabel="step", yscale="log", title="training loss and its parts")
    if losses:
        left.legend(fontsize=7, frameon=False)
    probes = [r for r in records if "probe_acc" in r]
    right.plot([r["step"] for r in probes], [r["probe_acc"] for r in probes], "o-", color="#2a9d8f")
    right.set(xlabel="step", ylabel="accuracy", ylim=(0, 1), title="online probe (test set)")
    right.axhline(0.1, color="#999999", lw=0.8, ls=":")
    last = max((r["step"] for r in records), default=1)
    right.set_xlim(0, max(last, 1) * 1.05)  # the same steps as the loss panel
    for ax in (left, right):
        ax.spines[["top", "right"]].set_visible(False)
    return fig
