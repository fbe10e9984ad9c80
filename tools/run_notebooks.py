"""Execute the notebooks in their full setting, clean them and check their size: the outputs
committed to the repository. ``python tools/run_notebooks.py [NOTEBOOK ...]`` (default: all of
``notebooks/``, in order); ``make notebooks`` runs it.

Each notebook runs top to bottom in a fresh kernel from ``notebooks/`` with
``LEJEPA_VIZ_FAST`` unset, so it trains on the full data (cached runs under ``runs/notebooks/``
are loaded). The wall time of each is printed; a notebook that fails stops the run and is left
unchanged.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).parent))
from clean_notebook import clean, problems  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run(path: Path) -> float:
    """Execute ``path`` in place in the full setting; return its wall time in seconds."""
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    os.environ.pop("LEJEPA_VIZ_FAST", None)  # the kernel inherits this process's environment
    resources = {"metadata": {"path": str(path.parent)}}  # run from notebooks/
    NotebookClient(nb, timeout=None, kernel_name="python3", resources=resources).execute()
    seconds = time.perf_counter() - start
    nbformat.write(clean(nb), path)
    return seconds


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    bad = []
    for path in paths:
        print(f"{path.name}: running (full setting) ...", flush=True)
        seconds = run(path)
        found = problems(path)
        bad += found
        print(
            f"{path.name}: {seconds / 60:.1f} min{'' if not found else ' · ' + '; '.join(found)}",
            flush=True,
        )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
