"""The course website (``make site``), built from the committed notebooks and read in Chromium.

The site is built into a temporary folder by ``tools/build_site.py``, served on a free
localhost port and opened page by page in Debian's ``chromium`` driven by Playwright (no browser
download): no page raises a JavaScript error or logs a failed load, every image loads, every
internal link reaches a page that exists and, with a ``#fragment``, an element of that id; on
notebook 05 a kernel-less slider dragged to its end redraws its plotly figure. It skips only
when chromium or playwright is missing; the build itself is tested without a browser too.
"""

from __future__ import annotations

import functools
import http.server
import re
import sys
import threading
import urllib.parse
from pathlib import Path

import nbformat
import pytest

from conftest import chromium_page, needs_browser

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
sys.path.insert(0, str(REPO / "tools"))
import build_site  # noqa: E402

PAGE_FACTS_JS = """() => ({
    broken: Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)
        .map(i => i.src.slice(0, 120)),
    images: document.images.length,
    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
    ids: Array.from(document.querySelectorAll('[id]')).map(e => e.id),
    plots: document.querySelectorAll('.js-plotly-plot').length,
})"""

# The first plotly figure with a slider: which traces it shows and what its slider reads.
SLIDER_STATE_JS = """() => {
    const gd = Array.from(document.querySelectorAll('.js-plotly-plot'))
        .find(p => p.layout && p.layout.sliders && p.layout.sliders.length);
    return gd && JSON.stringify([gd.data.map(t => t.visible), gd.layout.sliders[0].active,
                                 gd.layout.title && gd.layout.title.text]);
}"""


# MathJax (3, local) has typeset the page: every formula is drawn, none as an error.
MATH_JS = """async () => {
    await window.MathJax.startup.promise;
    const math = Array.from(document.querySelectorAll('.math'));
    return [math.length, math.filter(m => m.querySelector('mjx-container')).length,
            document.querySelectorAll('mjx-merror').length];
}"""


def console_error(msg, url: str, errors: list) -> None:
    """Keep the console's errors; a failed load is reported with its address elsewhere."""
    if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
        errors.append(f"{url}: {msg.text}")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The built site, served on a free localhost port: (root folder, base URL)."""
    out = tmp_path_factory.mktemp("site") / "site"
    build_site.build(out)
    handler = functools.partial(QuietHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield out, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request log on the test's output
        pass


def test_the_site_has_every_notebook_and_picture_and_live_plotly(site):
    out, _ = site
    notebooks = sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))
    assert sorted(p.stem for p in (out / "notebooks").glob("*.html")) == notebooks
    assert (out / "_static" / "plotly.min.js").stat().st_size > 1_000_000  # no CDN
    committed = {p.name for p in (REPO / "eval").rglob("*") if p.suffix in (".png", ".gif")}
    assert committed <= {p.name for p in (out / "_images").iterdir()}  # every one on a page
    nb = nbformat.read(REPO / "notebooks" / "05_interactive_lambda_slices.ipynb", as_version=4)
    figures = sum(
        build_site.PLOTLY_MIME in o.get("data", {}) for c in nb.cells for o in c.get("outputs", [])
    )
    page = (out / "notebooks" / "05_interactive_lambda_slices.html").read_text()
    assert figures >= 4 and page.count("Plotly.newPlot(") == figures  # each one drawn live


def test_a_link_to_a_folder_or_a_picture_becomes_a_section_that_shows_it(tmp_path):
    (tmp_path / "pics").mkdir()
    for name in ("b.png", "a.gif", "notes.txt"):
        (tmp_path / "pics" / name).write_bytes(b"x")
    (tmp_path / "c.png").write_bytes(b"x")
    text = "[the folder](pics/) · [one](c.png) · ![shown](c.png) · [web](https://x.org/c.png)"
    got = build_site.site_markdown(text, tmp_path)
    assert got.startswith(
        "[the folder](picture-pics) · [one](picture-c-png) · ![shown](c.png) · "
        "[web](https://x.org/c.png)"
    )
    assert "(picture-pics)=\n## `pics/`\n\n![a.gif](pics/a.gif)\n\n![b.png](pics/b.png)\n" in got
    assert "(picture-c-png)=\n## `c.png`\n\n![c.png](c.png)\n" in got and "notes" not in got


@needs_browser
def test_every_page_loads_clean_and_a_slider_moves_a_figure(site):
    out, base = site
    pages = sorted(
        p.relative_to(out).as_posix() for p in out.rglob("*.html") if "_static" not in p.parts
    )
    facts, errors = {}, []
    ARTIFACTS.mkdir(exist_ok=True)
    with chromium_page(1400, 1000, timeout_ms=60_000) as page:
        page.on("pageerror", lambda err: errors.append(f"{page.url}: {err}"))
        page.on("console", lambda msg: console_error(msg, page.url, errors))
        page.on("requestfailed", lambda r: errors.append(f"{r.url}: {r.failure}"))
        page.on(
            "response",  # the browser's own favicon request is no page's
            lambda r: (
                r.status >= 400
                and not r.url.endswith("/favicon.ico")
                and errors.append(f"{r.url}: HTTP {r.status}")
            ),
        )
        for name in pages:
            page.goto(base + name, wait_until="load")
            facts[name] = page.evaluate(PAGE_FACTS_JS)
            facts[name]["math"] = page.evaluate(MATH_JS) if page.locator(".math").count() else None

        page.goto(base + "notebooks/05_interactive_lambda_slices.html", wait_until="load")
        rail = page.locator(".slider-container .slider-rail-touch-rect").first
        rail.scroll_into_view_if_needed()
        before = page.evaluate(SLIDER_STATE_JS)
        box = rail.bounding_box()
        page.screenshot(path=str(ARTIFACTS / "site-05-before.png"))
        page.mouse.click(box["x"] + box["width"] - 3, box["y"] + box["height"] / 2)
        page.wait_for_function(f"() => ({SLIDER_STATE_JS})() !== {before!r}")
        after = page.evaluate(SLIDER_STATE_JS)
        page.screenshot(path=str(ARTIFACTS / "site-05-after.png"))

    assert errors == [], "\n".join(errors)
    assert {name for name, f in facts.items() if f["broken"]} == set(), {
        n: f["broken"] for n, f in facts.items() if f["broken"]
    }
    assert facts["index.html"]["images"] >= 6  # the README's pictures
    typeset = {n: f["math"] for n, f in facts.items() if f["math"]}
    assert typeset["notebooks/07_which_lejepa.html"][0] >= 1  # its loss, as a display formula
    assert all(n == drawn and not err for n, drawn, err in typeset.values()), typeset
    assert facts["notebooks/05_interactive_lambda_slices.html"]["plots"] >= 4
    ids = {base + name: set(f["ids"]) for name, f in facts.items()}
    bad = []
    for name, f in facts.items():
        for link in f["links"]:
            url, _, fragment = link.partition("#")
            if not url.startswith(base):
                continue  # another site: not ours to check offline
            target = url if url.endswith(".html") else url + "index.html"
            if target in ids:
                if fragment and urllib.parse.unquote(fragment) not in ids[target]:
                    bad.append(f"{name}: {link} (no such id)")
            elif not (out / url[len(base) :]).is_file():
                bad.append(f"{name}: {link} (no such file)")
    assert bad == [], "\n".join(bad)
    assert before != after  # the figure shows other traces, the slider another step


def test_every_markdown_table_becomes_a_table(site):
    """A table's delimiter row (``|---|``, its dashes typeset as ``|—–|``) left in a page's text
    means its pipes were printed: a cell's Markdown read as CommonMark, which has no tables."""
    from bs4 import BeautifulSoup

    out, _ = site
    printed = {}
    for page in [
        out / "index.html",
        *(out / "notebooks").glob("*.html"),
        *(out / "eval").glob("*.html"),
    ]:
        soup = BeautifulSoup(page.read_text(), "html.parser")
        for hidden in soup(["pre", "code", "script", "style"]):
            hidden.decompose()
        rows = re.findall(r"\|\s*:?[-–—]+:?\s*\|", soup.get_text())
        if rows:
            printed[page.name] = rows[:2]
    tables = sum(
        page.read_text().count("<table") for page in (out / "notebooks").glob("0[47]*.html")
    )
    assert not printed and tables >= 3  # 04's two IoU tables and 07's variants


def test_no_table_cell_is_split_by_a_pipe_in_its_code():
    """GitHub and the site split a table row at every unescaped ``|``, even inside a code span,
    and drop the cells past the header's: ``|x|`` in a cell must be written ``\\|x\\|``."""
    texts = {
        str(p.relative_to(REPO)): p.read_text()
        for p in (REPO / "README.md", REPO / "eval" / "README.md")
    }
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        texts[path.name] = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    split = [
        (name, line[:60])
        for name, text in texts.items()
        for line in text.splitlines()
        if line.startswith("|")
        and any(re.search(r"(?<!\\)\|", code) for code in re.findall(r"`[^`]*`", line))
    ]
    assert not split
