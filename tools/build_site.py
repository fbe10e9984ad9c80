"""Build the course website from the committed notebooks: ``python tools/build_site.py``.

Nothing is executed: the pages show the committed outputs of the full runs. The README is the
landing page, the notebooks follow in order, then ``eval/README.md`` with every committed
picture. Plotly outputs are live on the site: each one's plotly JSON is written out as HTML
that draws it with the local ``plotly.min.js`` (its static PNG stays for GitHub and nbviewer),
so the sliders of the kernel-less explorers move in the page's JavaScript.

Sources are staged in a temporary folder (the README's and eval's links rewritten for the
site), Sphinx builds with warnings as errors (a broken internal link fails the build) and
the site lands in ``site/`` (default); serve it with ``python -m http.server -d site``.
"""

from __future__ import annotations

import argparse
import copy
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
PLOTLY_MIME = "application/vnd.plotly.v1+json"
LINK = re.compile(r"(?<!!)(\[[^\]]*\])\(([^)\s]+)\)")  # a markdown link, not an image
PICTURES = (".png", ".gif", ".jpg", ".jpeg", ".webp")


def plotly_html(spec: dict) -> str:
    """The HTML that draws a plotly JSON output with the page's ``plotly.min.js``."""
    import plotly.io as pio

    spec = copy.deepcopy(spec)
    config = {**spec.pop("config", {}), "responsive": True}
    spec.get("layout", {}).pop("width", None)  # as wide as the page's column: no clipped legend
    return pio.to_html(
        spec,
        include_plotlyjs=False,
        full_html=False,
        config=config,
        validate=False,
        default_width="100%",
    )


def live_plotly(nb: nbformat.NotebookNode) -> int:
    """Give every plotly output an HTML twin the site renders before its PNG; returns how
    many outputs changed."""
    changed = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if PLOTLY_MIME in data:
                data["text/html"] = plotly_html(data[PLOTLY_MIME])
                changed += 1
    return changed


def site_markdown(text: str, folder: Path) -> str:
    """Markdown of ``folder`` with the links a page cannot show rewritten: a link (not an
    image) to a picture or to a folder of pictures points to a section appended below that
    shows them, so that every committed picture is on a page."""
    galleries = []

    def target(match: re.Match) -> str:
        link, path = match.group(2), folder / match.group(2)
        if "://" in link or link.startswith("#") or not path.exists():
            return match.group(0)
        pictures = [path] if path.suffix in PICTURES else []
        if path.is_dir():
            pictures = sorted(p for p in path.iterdir() if p.suffix in PICTURES)
        if not pictures:
            return match.group(0)
        anchor = "picture-" + re.sub(r"[^a-z0-9]+", "-", link.lower()).strip("-")
        shown = "\n\n".join(f"![{p.name}]({p.relative_to(folder)})" for p in pictures)
        galleries.append(f"\n({anchor})=\n## `{link}`\n\n{shown}\n")
        return f"{match.group(1)}({anchor})"

    text = LINK.sub(target, text)
    return text + "".join(galleries)


def stage(src: Path) -> list[str]:
    """Write the site's sources into ``src``; returns the notebook pages in order."""
    shutil.copy(ROOT / "docs" / "conf.py", src / "conf.py")
    static = src / "_static"
    static.mkdir()
    import plotly

    shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", static)
    shutil.copytree(ROOT / "eval", src / "eval")
    (src / "eval" / "README.md").write_text(
        site_markdown((ROOT / "eval" / "README.md").read_text(), ROOT / "eval")
    )
    (src / "notebooks").mkdir()
    pages = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        live_plotly(nb)
        nbformat.write(nb, src / "notebooks" / path.name)
        pages.append(f"notebooks/{path.stem}")
    toc = "\n".join(
        ["", "```{toctree}", ":hidden:", ":caption: The course", "", *pages, "```", ""]
        + ["```{toctree}", ":hidden:", ":caption: Results", "", "eval/README", "```", ""]
    )
    readme = site_markdown((ROOT / "README.md").read_text(), ROOT)
    (src / "index.md").write_text(readme + toc)
    return pages


def build(out: Path, quiet: bool = True) -> Path:
    """Stage and build the site into ``out``; returns ``out / "index.html"``."""
    with tempfile.TemporaryDirectory(prefix="lejepa-site-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        stage(src)
        doctrees = Path(tmp) / "doctrees"
        cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-d"]
        cmd += [str(doctrees), str(src), str(out)] + (["-q"] if quiet else [])
        if out.exists():
            shutil.rmtree(out)
        subprocess.run(cmd, check=True)
    (out / ".nojekyll").touch()  # GitHub Pages: serve _static/ and _images/ as they are
    return out / "index.html"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "site", help="where the site goes")
    parser.add_argument("--verbose", action="store_true", help="Sphinx's progress too")
    args = parser.parse_args(argv)
    try:
        index = build(args.out.resolve(), quiet=not args.verbose)
    except subprocess.CalledProcessError as err:
        raise SystemExit(
            f"the site did not build (Sphinx exited {err.returncode}): see above"
        ) from None
    print(f"built {index}; serve it with: python -m http.server -d {args.out}")


if __name__ == "__main__":
    main()
