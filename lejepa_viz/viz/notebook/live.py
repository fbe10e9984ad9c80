"""A live plot of a training run in one notebook output, redrawn at each metrics line."""

from __future__ import annotations

from ..metrics import plot_metrics


class LivePlot:
    """``on_update`` for :func:`lejepa_viz.train.cached_train` that redraws
    :func:`~lejepa_viz.viz.metrics.plot_metrics` in one notebook output (an IPython display
    handle), so the cell shows the run's curves as it trains."""

    def __init__(self, **plot_kwargs):
        from IPython.display import display

        self.plot_kwargs = plot_kwargs
        self.handle = display(display_id=True)

    def __call__(self, records: list[dict]) -> None:
        self.handle.update(plot_metrics(records, **self.plot_kwargs))
