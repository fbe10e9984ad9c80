"""Keep committed notebooks clean: ``python tools/clean_notebook.py [--check] NOTEBOOK...``.

Cleaning keeps the outputs of a full run (what nbval compares with a FAST one) and drops what varies from
machine to machine or bloats the diff: notebook metadata other than the kernel and language
name, cell metadata other than ``tags``, widget outputs, and execution timing. A widget's
state is not kept, so no kernel-less viewer can draw it, and its text fallback
(``VBox(children=...``, a progress bar frozen at 0 %) says nothing: the output is dropped whole
(every widget in our notebooks is followed by its static picture). ``--check`` changes nothing and exits 1 when a notebook
is not clean or is too large; the test suite runs the same check.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
MAX_BYTES = 3_000_000  # a whole notebook
MAX_OUTPUT_BYTES = 1_200_000  # one output (an image, a plotly figure with its PNG, a GIF)
WIDGET = "application/vnd.jupyter.widget-view+json"
# the text fallback of an ipywidgets container or of a tqdm bar once its widget data is gone
WIDGET_FALLBACK = re.compile(r"^(VBox|HBox|Output|Image|FloatSlider)\(|^.*\|\s*\d+/\d+ \[")


def is_widget(output: dict) -> bool:
    """A widget's output: its widget data, or only the text fallback of one."""
    data = output.get("data", {})
    text = data.get("text/plain", "")
    text = "".join(text) if isinstance(text, list) else text
    return WIDGET in data or (set(data) == {"text/plain"} and bool(WIDGET_FALLBACK.match(text)))


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb.metadata = nbformat.from_dict(
        {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    )
    for cell in nb.cells:
        cell.metadata = nbformat.from_dict({k: v for k, v in cell.metadata.items() if k == "tags"})
        if "outputs" in cell:
            cell.outputs = [o for o in cell.outputs if not is_widget(o)]
        for output in cell.get("outputs", []):
            if "metadata" in output:
                output["metadata"] = {}
    return nb


def problems(path: Path) -> list[str]:
    """What makes a committed notebook unclean (empty when clean)."""
    text = path.read_text()
    nb = nbformat.reads(text, as_version=4)
    found = []
    if len(text.encode()) > MAX_BYTES:
        found.append(f"{path}: {len(text.encode()) / 1e6:.1f} MB, over {MAX_BYTES / 1e6:.1f} MB")
    expected = clean(nbformat.reads(text, as_version=4))
    if nb.metadata != expected.metadata:
        found.append(f"{path}: notebook metadata beyond the kernel: {sorted(nb.metadata)}")
    for i, cell in enumerate(nb.cells):
        if cell.metadata != expected.cells[i].metadata:
            found.append(f"{path}: cell {i} has metadata {sorted(cell.metadata)}")
        elif cell != expected.cells[i]:
            found.append(f"{path}: cell {i} has output metadata or state that cleaning drops")
        for output in cell.get("outputs", []):
            size = len(json.dumps(output).encode())
            if size > MAX_OUTPUT_BYTES:
                found.append(f"{path}: cell {i} has a {size / 1e3:.0f} kB output")
    return found


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [Path(a) for a in argv if a != "--check"]
    bad = []
    for path in paths:
        if check:
            bad += problems(path)
        else:
            nb = clean(nbformat.read(path, as_version=4))
            nbformat.write(nb, path)
            bad += [p for p in problems(path) if "MB" in p or "kB" in p]
    print("\n".join(bad) or f"{len(paths)} notebook(s) clean")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
