"""Sphinx configuration of the course website (``make site``; staged by ``tools/build_site.py``).

Sphinx with myst-nb renders the committed notebooks as they are, outputs included, without
executing them, in sphinx-book-theme (the engine and look of Jupyter Book 1). Chosen over
Jupyter Book 2 / mystmd, which needs Node.js and fetches its theme from the network, and over
MkDocs with mkdocs-jupyter, whose nbconvert rendering has no hook to prefer an output's live
plotly HTML over its static PNG. Everything it needs is a Python package, and so is everything
the pages load (plotly.js; MathJax from sphinx-mathjax-offline): the site builds and reads
offline.
"""

project = "lejepa_viz"
author = "the lejepa_viz developers"
copyright = "2025–2026, the lejepa_viz developers"

# sphinx-mathjax-offline: MathJax 3 copied into the site (Sphinx's default loads it from a CDN)
extensions = ["myst_nb", "sphinx-mathjax-offline"]
nb_execution_mode = "off"  # the committed outputs are the full runs: never re-executed here
myst_heading_anchors = 3  # README links such as (#benchmark) resolve to the heading
myst_enable_extensions = ["dollarmath", "amsmath"]
# Markdown that cells display (the IoU and variant tables of 04 and 07) is read as GitHub reads it:
# myst-nb's default, CommonMark, has no tables and printed their pipes as text.
nb_render_markdown_format = "gfm"
suppress_warnings = ["mystnb.unknown_mime_type"]  # plotly's JSON: its HTML twin is shown
exclude_patterns = ["_build"]

html_theme = "sphinx_book_theme"
html_title = "lejepa_viz · LeJEPA, seen and used"
html_static_path = ["_static"]
html_js_files = ["plotly.min.js"]  # copied from the installed plotly: no CDN, works offline
html_context = {"default_mode": "light"}  # the figures are drawn on white

html_theme_options = {"show_toc_level": 2, "home_page_in_toc": True}
