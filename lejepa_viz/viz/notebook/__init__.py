"""What notebooks show live: plotly explorers with ipywidgets sliders (:mod:`.explorers`), a
training run's curves redrawn as it trains (:mod:`.live`), and outputs that a viewer without a
kernel still shows (:mod:`.display`), and explorers whose sliders run without one
(:mod:`.stepped`). The only modules of the package
that import plotly, ipywidgets or IPython."""

from .display import PLOTLY_MIME, display_data, gif, show, show_static
from .explorers import (
    field_figure,
    lambda_explorer,
    pca_explorer,
    png_bytes,
    spread_figure,
    training_figure,
)
from .live import LivePlot
from .stepped import knob_sliders, stepped_figure

__all__ = [
    "PLOTLY_MIME",
    "LivePlot",
    "display_data",
    "field_figure",
    "gif",
    "knob_sliders",
    "lambda_explorer",
    "pca_explorer",
    "png_bytes",
    "show",
    "show_static",
    "spread_figure",
    "stepped_figure",
    "training_figure",
]
