"""The ``lejepa-viz`` program (``python -m lejepa_viz``): every command of
:mod:`lejepa_viz.cli` and ``gallery`` (:mod:`lejepa_viz.gallery`), which runs the others.

It sits above both so that the gallery can run the command line without the command line
importing the gallery.
"""

from __future__ import annotations

import sys

from .cli import COMMANDS
from .cli import main as cli_main
from .gallery import add_gallery


def main(argv: list[str] | None = None) -> int:
    """``lejepa-viz ARGS``: exit status 0, or 2 with a one-line message for bad input."""
    return cli_main(argv, (*COMMANDS, add_gallery))


if __name__ == "__main__":
    sys.exit(main())
