"""The committed notebooks: all eight present, clean, FAST-switched, and linked from the README.

nbval runs them top to bottom (``pytest`` collects ``notebooks/`` with ``--nbval-lax``); this
file checks what nbval does not: that what is committed stays small and free of stray state.
"""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
sys.path.insert(0, str(ROOT / "tools"))
from clean_notebook import clean, problems  # noqa: E402


def test_the_eight_notebooks_exist():
    assert [p.name[:3] for p in NOTEBOOKS] == [
        "00_",
        "01_",
        "02_",
        "03_",
        "04_",
        "05_",
        "06_",
        "07_",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean_and_starts_with_the_setup_cell(path):
    assert problems(path) == []
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert 'os.environ.get("LEJEPA_VIZ_FAST") == "1"' in first.source
    assert any("NBVAL_CHECK_OUTPUT" in c.source for c in nb.cells if c.cell_type == "code")
    assert sum(len(c.outputs) for c in nb.cells if c.cell_type == "code") > 0, (
        "commit the outputs of a FAST run"
    )
    assert f"notebooks/{path.name}" in (ROOT / "README.md").read_text()


def test_the_check_finds_stray_metadata_and_huge_outputs(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"state": {}}
    cell = nbformat.v4.new_code_cell("print(1)", metadata={"collapsed": True, "tags": ["x"]})
    cell.outputs = [nbformat.v4.new_output("display_data", {"image/png": "A" * 1_300_000})]
    nb.cells.append(cell)
    path = tmp_path / "dirty.ipynb"
    nbformat.write(nb, path)
    found = "\n".join(problems(path))
    assert "notebook metadata" in found and "cell 0 has metadata" in found and "kB output" in found
    assert clean(nbformat.read(path, as_version=4)).cells[0].metadata == {"tags": ["x"]}
    cli = [sys.executable, str(ROOT / "tools" / "clean_notebook.py"), "--check", str(path)]
    assert subprocess.run(cli, capture_output=True).returncode == 1


def test_the_check_finds_output_metadata_that_cleaning_drops(tmp_path):
    nb = clean(nbformat.v4.new_notebook())
    cell = nbformat.v4.new_code_cell("1")
    cell.outputs = [
        nbformat.v4.new_output("display_data", {"text/plain": "1"}, metadata={"isolated": True})
    ]
    nb.cells.append(cell)
    path = tmp_path / "meta.ipynb"
    nbformat.write(nb, path)
    assert problems(path) == [f"{path}: cell 0 has output metadata or state that cleaning drops"]
    nbformat.write(clean(nbformat.read(path, as_version=4)), path)
    assert problems(path) == []


WIDGET_TEXT = ("VBox(", "HBox(", "Output(", "Image(")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_figure_survives_an_html_export(path):
    """What a viewer without a kernel shows: every figure of the committed notebook is an image
    in ``jupyter nbconvert --to html`` — plotly figures and widgets leave a PNG beside them, GIFs
    are embedded ``<img>`` tags."""
    from nbconvert import HTMLExporter

    nb = nbformat.read(path, as_version=4)
    html, _ = HTMLExporter().from_notebook_node(nb)
    images = 0
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        outputs = [o.get("data", {}) for o in cell.outputs if "data" in o]
        pngs = [d["image/png"] for d in outputs if "image/png" in d]
        embedded = [d["text/html"] for d in outputs if "<img" in str(d.get("text/html", ""))]
        for png in pngs:
            assert png.strip()[:40] in html, f"code cell {i}: a PNG missing from the HTML"
        assert "image/gif" not in {k for d in outputs for k in d}, (
            f"code cell {i}: a raw image/gif output (nbconvert drops it): use notebook.gif"
        )
        plotly = [d for d in outputs if "application/vnd.plotly.v1+json" in d]
        assert all("image/png" in d for d in plotly), f"code cell {i}: plotly figure without PNG"
        widgets = [d for d in outputs if str(d.get("text/plain", "")).startswith(WIDGET_TEXT)]
        assert not widgets or pngs, f"code cell {i}: a widget without a static picture"
        images += len(pngs) + len(embedded)
    assert images > 0 and html.count("<img") >= images


def test_cleaning_drops_widget_outputs_whole_and_keeps_the_rest(tmp_path):
    """A widget's output (its data, or the text fallback left of one: a container's repr, a
    progress bar frozen at 0 %) says nothing without a kernel; cleaning drops it, not a print
    that merely mentions a bar."""
    nb = clean(nbformat.v4.new_notebook())
    cell = nbformat.v4.new_code_cell("explore()")
    bar = "patch tokens:   0%|          | 0/6 [00:00<?, ?batch/s]"
    kept = [
        nbformat.v4.new_output("stream", name="stdout", text="0/6 done | fine\n"),
        nbformat.v4.new_output("display_data", {"image/png": "iVBORw0KGgo=", "text/plain": "x"}),
    ]
    cell.outputs = [
        nbformat.v4.new_output("display_data", {"text/plain": bar}),
        nbformat.v4.new_output("display_data", {"text/plain": "VBox(children=(FloatSlider(),))"}),
        nbformat.v4.new_output(
            "display_data", {"text/plain": "x", "application/vnd.jupyter.widget-view+json": {}}
        ),
        *kept,
    ]
    nb.cells.append(cell)
    path = tmp_path / "widgets.ipynb"
    nbformat.write(nb, path)
    assert problems(path) == [f"{path}: cell 0 has output metadata or state that cleaning drops"]
    cleaned = clean(nbformat.read(path, as_version=4))
    assert cleaned.cells[0].outputs == kept
