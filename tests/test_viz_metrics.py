"""lejepa_viz.viz.metrics: a run's metrics lines as a figure."""

from lejepa_viz.viz.metrics import plot_metrics


def test_plot_metrics_draws_losses_and_probe():
    records = [{"step": s, "loss": 1.0 / s, "pred": 0.5 / s, "sigreg": 5.0 / s} for s in (1, 2, 3)]
    fig = plot_metrics([*records, {"step": 3, "probe_acc": 0.5}])
    left, right = fig.axes
    assert len(left.lines) == 3 and right.lines[0].get_ydata().tolist() == [0.5]
    assert plot_metrics([]).axes  # nothing logged yet: empty panels, no error
