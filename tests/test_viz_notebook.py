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


def test_a_stepped_figure_shows_each_figure_whole_at_its_step():
    import plotly.graph_objects as go
    import pytest

    parts = [
        go.Figure([go.Scatter(x=[0, 1], y=[i, i + 1], name=f"a{i}") for _ in range(i + 1)])
        .update_layout(title_text=f"figure {i}")
        .add_annotation(text=f"note {i}", x=0, y=0)
        for i in range(3)
    ]
    fig = notebook.stepped_figure(parts, ["x", "y", "z"], "knob", active=1)
    assert len(fig.data) == 1 + 2 + 3
    (slider,) = fig.layout.sliders
    assert slider.active == 1 and [s.label for s in slider.steps] == ["x", "y", "z"]
    assert [t.visible for t in fig.data] == [False, True, True, False, False, False]
    for i, (step, part) in enumerate(zip(slider.steps, parts, strict=True)):
        visible, layout = step.args
        shown = [t for t, v in zip(fig.data, visible["visible"], strict=True) if v]
        assert [t.to_plotly_json() for t in shown] == [
            go.Scatter(t).update(visible=i == 1).to_plotly_json() for t in part.data
        ]
        assert (
            layout["title.text"] == f"figure {i}" and layout["annotations"][0].text == f"note {i}"
        )
    assert fig.layout.title.text == "figure 1"
    with pytest.raises(ValueError, match="one label per figure"):
        notebook.stepped_figure(parts, ["x"], "knob")


def test_the_kernel_less_sliders_show_what_the_widget_draws():
    """Every step of the static figures against the ipywidgets explorer moved to that value."""
    from plotly.utils import PlotlyJSONEncoder

    runs = lambda_runs((0.0, 0.2), "cloud", steps=10, every=5, n=64)
    cloud = make_cloud("moons", 64)
    grid = dict(knots=(5, 17), t_maxes=(1.0, 3.0))
    static = notebook.knob_sliders(runs, cloud, draws=2, lam=0.15, **grid)
    box = notebook.lambda_explorer(runs, cloud, draws=2)  # K = 64, 17 knots, t_max = 3

    def as_json(trace):  # a trace, shown, as plain JSON (its arrays as lists)
        return json.dumps(
            dict(trace.to_plotly_json(), visible=True), cls=PlotlyJSONEncoder, sort_keys=True
        )

    def shown(fig, step):
        visible = fig.layout.sliders[0].steps[step].args[0]["visible"]
        return [as_json(t) for t, v in zip(fig.data, visible, strict=True) if v]

    def drawn(name):
        return [as_json(t) for t in box.figures[name].data]

    assert static["field"].layout.sliders[0].active == 1  # the run closest to λ = 0.15: 0.2
    for step, lam in enumerate((0.0, 0.2)):
        box.sliders["lam"].value = lam
        for name in ("field", "training"):
            assert shown(static[name], step) == drawn(name)
    box.sliders["num_slices"].value = 256  # the static spread figures' largest K
    for step, knots in enumerate((5, 17)):
        box.sliders["n_points"].value = knots
        assert shown(static["knots"], step) == drawn("spread")
    box.sliders["n_points"].value = 17
    for step, t_max in enumerate((1.0, 3.0)):
        box.sliders["t_max"].value = t_max
        assert shown(static["t_max"], step) == drawn("spread")
