"""Outputs that survive a kernel-less viewer (GitHub, nbviewer, ``jupyter nbconvert --to html``).

A plotly figure is shown as one output holding both plotly's own mimetype (interactive in
JupyterLab, offline) and a static PNG (what a viewer without JavaScript shows; drawn by kaleido
with the system's Chromium when kaleido is installed). A widget's committed output keeps only
its text, so :func:`show_static` leaves a PNG of what the widget shows now. A GIF is embedded as
an ``<img>`` with a data URI: nbconvert's display order has no ``image/gif``.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import warnings
from pathlib import Path

PLOTLY_MIME = "application/vnd.plotly.v1+json"
_server: list[bool] = []  # [started?] once a kaleido server was tried


def plotly_png(fig, width: int | None = None, height: int | None = None) -> bytes | None:
    """A plotly figure as PNG bytes at its layout's size (or ``width`` × ``height``), or None
    where kaleido (or a Chromium for it) is missing. One headless browser serves every call."""
    try:
        import kaleido
        import plotly.io as pio
    except ImportError:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kaleido's notes about options a server ignores
        if not _server:
            try:
                kaleido.start_sync_server(silence_warnings=True)
                atexit.register(kaleido.stop_sync_server, silence_warnings=True)
                _server.append(True)
            except Exception:  # no browser: no PNGs in this process, and no retries
                _server.append(False)
        if not _server[0]:
            return None
        try:
            return pio.to_image(fig, format="png", width=width, height=height, scale=1)
        except Exception:  # no browser kaleido can drive
            return None


def display_data(fig, png: bool = True) -> dict:
    """A plotly figure as a notebook ``display_data`` output: plotly's mimetype (rendered by
    JupyterLab's plotly extension, offline, whatever ``plotly.io.renderers.default`` is) and,
    with ``png`` and where kaleido can draw it, the same figure as a static ``image/png``.

    JupyterLab's plotly renderer shows a bundled PNG *instead of* the live graph (until the
    mouse enters it): outputs a widget redraws live pass ``png=False``."""
    import plotly.io as pio

    spec = json.loads(pio.to_json(fig, validate=False))
    spec["config"] = {"displaylogo": False}
    data = {PLOTLY_MIME: spec, "text/plain": f"<plotly figure: {fig.layout.title.text or ''}>"}
    png = plotly_png(fig) if png else None
    if png is not None:
        data["image/png"] = base64.b64encode(png).decode()
    return {"output_type": "display_data", "metadata": {}, "data": data}


def show(fig) -> None:
    """Display a plotly figure interactively *and* as a static PNG, in one output."""
    from IPython.display import publish_display_data

    publish_display_data(display_data(fig)["data"])


def show_static(widget) -> None:
    """Leave a static picture of what an explorer widget shows now, for viewers that run no
    kernel (a widget's committed output is only its text): the PNG of each plotly figure in its
    ``.figures`` (or bundled in its ``.outputs``) and the image of its ``.image``."""
    from IPython.display import Image, display

    shown = 0
    for fig in getattr(widget, "figures", {}).values():  # the plotly figures it shows now
        png = plotly_png(fig)
        if png is not None:
            display(Image(data=png, format="png"))
            shown += 1
    for output in getattr(widget, "outputs", {}).values():
        for item in output.outputs:
            png = item.get("data", {}).get("image/png")
            if png is not None:
                display(Image(data=base64.b64decode(png), format="png"))
                shown += 1
    image = getattr(widget, "image", None)
    if image is not None and image.value:
        display(Image(data=image.value, format="png"))
        shown += 1
    if not shown:
        print("(no static picture: install kaleido to draw plotly figures as PNG)")


def gif(path: str | os.PathLike, width: int | None = None) -> None:
    """Embed the GIF at ``path`` so that every viewer shows it animated (an ``<img>`` with the
    file inside as a data URI; ``width`` in CSS pixels)."""
    from IPython.display import HTML, display

    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise ValueError(f"expected a .gif file, got {path}")
    data = base64.b64encode(path.read_bytes()).decode()
    style = f' width="{width}"' if width else ""
    display(HTML(f'<img src="data:image/gif;base64,{data}" alt="{path.name}"{style}>'))
