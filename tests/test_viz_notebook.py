"""lejepa_viz.viz.notebook: the explorers, driven headless (their widgets and figures)."""

import json

import torch

from lejepa_viz.toys.clouds import make_cloud
from lejepa_viz.toys.tiny import lambda_runs
from lejepa_viz.viz import notebook


def test_lambda_explorer_redraws_when_lambda_moves():
    runs = lambda_runs((0.0, 0.2), "cloud", steps=10, every=5, n=64)
    box = notebook.lambda_explorer(runs, make_cloud("moons", 64), draws=2)

    def title(name):
        (out,) = box.outputs[name].outputs
        return out["data"][notebook.PLOTLY_MIME]["layout"]["title"]["text"]

    assert "λ = 0 " in title("field")
    spread_before = json.dumps(box.outputs["spread"].outputs)
    box.sliders["lam"].value = 0.2
    assert "λ = 0.2 " in title("field")
    assert "λ = 0.2" in json.dumps(box.outputs["training"].outputs, ensure_ascii=False)
    assert json.dumps(box.outputs["spread"].outputs) == spread_before  # λ does not touch it
    box.sliders["num_slices"].value = 8
    assert json.dumps(box.outputs["spread"].outputs) != spread_before


def test_pca_explorer_refits_on_threshold():
    images = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    tokens = torch.randn(2, 4, 4, 8, generator=torch.Generator().manual_seed(0))
    box = notebook.pca_explorer(images, tokens)
    first = box.image.value
    assert first[:8] == b"\x89PNG\r\n\x1a\n" and "foreground" in box.info.value
    box.threshold.value = 1.0
    assert box.image.value != first
    box.threshold.value = 2.0  # too few patches left: the message, not an exception
    assert "lower it" in box.info.value
    box.foreground.value = False
    assert "foreground" not in box.info.value


def test_a_plotly_figure_carries_a_static_png_of_its_size():
    import base64
    import io

    import plotly.graph_objects as go
    import pytest
    from PIL import Image

    pytest.importorskip("kaleido")
    fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 0]), layout=dict(width=320, height=200))
    data = notebook.display_data(fig)["data"]
    if "image/png" not in data:
        pytest.skip("kaleido found no browser to draw with")
    png = Image.open(io.BytesIO(base64.b64decode(data["image/png"])))
    assert png.size == (320, 200) and data[notebook.PLOTLY_MIME]["data"][0]["y"] == [1, 0]


def test_a_gif_is_embedded_whole_as_a_data_uri(tmp_path, monkeypatch):
    import base64
    import re

    import numpy as np
    import pytest

    from lejepa_viz.viz.export import save_animation

    frames = [np.full((8, 8, 3), v, np.uint8) for v in (0, 128, 255)]
    path = save_animation(frames, tmp_path / "a.gif", duration_ms=50)
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objs, **kw: shown.extend(objs))
    notebook.gif(path, width=120)
    (html,) = [obj.data for obj in shown]
    encoded = re.search(r'src="data:image/gif;base64,([^"]+)"', html).group(1)
    assert base64.b64decode(encoded) == path.read_bytes() and 'width="120"' in html
    with pytest.raises(ValueError, match="expected a .gif"):
        notebook.gif(tmp_path / "a.png")
