"""What notebooks show live: plotly explorers with ipywidgets sliders (:mod:`.explorers`) and
a training run's curves redrawn as it trains (:mod:`.live`). The only modules of the package
that import plotly, ipywidgets or IPython."""

from .explorers import (
    PLOTLY_MIME,
    display_data,
    field_figure,
    lambda_explorer,
    pca_explorer,
    png_bytes,
    spread_figure,
    training_figure,
)
from .live import LivePlot

__all__ = [
    "PLOTLY_MIME",
    "LivePlot",
    "display_data",
    "field_figure",
    "lambda_explorer",
    "pca_explorer",
    "png_bytes",
    "spread_figure",
    "training_figure",
]
