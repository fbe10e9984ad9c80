"""Real use in a browser: JupyterLab on localhost, headless Chromium, notebook 05's λ slider.

The test serves a temporary copy of ``notebooks/05_interactive_lambda_slices.ipynb`` with
JupyterLab on a free localhost port (its own config, data, runtime, settings and workspace
directories, so nothing of the user's is read or written), opens it in Debian's ``chromium``
driven by Playwright (no browser download), runs all cells with ``LEJEPA_VIZ_FAST=1``, moves
the λ slider one step with the keyboard and checks that the slider's readout and the plotly
figures changed. Screenshots before and after are saved to ``test-artifacts/`` (gitignored).
It skips only when chromium or playwright is missing.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import chromium_page, needs_browser

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = "05_interactive_lambda_slices.ipynb"
ARTIFACTS = REPO / "test-artifacts"
pytestmark = needs_browser

# All plotly figures on the page, as JSON: what the λ slider must change.
FIGURES_JS = """() => JSON.stringify(Array.from(document.querySelectorAll('.js-plotly-plot'))
    .map(p => [p.data, p.layout && p.layout.title]))"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on a free localhost port serving a copy of notebook 05."""
    root = tmp_path / "root"
    (root / "notebooks").mkdir(parents=True)
    shutil.copy(REPO / "notebooks" / NOTEBOOK, root / "notebooks" / NOTEBOOK)
    settings = tmp_path / "lab-settings"
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))  # every cell stays in the DOM
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "LEJEPA_VIZ_FAST": "1",
        "MPLBACKEND": "Agg",
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
    }
    log = (tmp_path / "lab.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    tail = (tmp_path / "lab.log").read_text()[-3000:]
                    pytest.fail(f"JupyterLab did not start on port {port}:\n{tail}")
                time.sleep(0.5)
        yield url, token, root
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_lambda_slider_redraws_figures(lab):
    url, token, root = lab
    ARTIFACTS.mkdir(exist_ok=True)
    with chromium_page(1500, 1100, timeout_ms=120_000) as page:
        page.goto(f"{url}/lab/tree/notebooks/{NOTEBOOK}?token={token}")
        # The notebook is open and its kernel connected: then run every cell.
        page.wait_for_function("""() => {
            const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            return w && w.content && w.context && w.context.isReady
                && w.sessionContext && w.sessionContext.session
                && w.sessionContext.session.kernel
                && w.sessionContext.session.kernel.connectionStatus === 'connected';
        }""")
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

        label = page.locator(".widget-label", has_text=re.compile(r"^λ$"))
        slider = page.locator(".widget-slider", has=label).first
        slider.wait_for(state="visible")
        box = slider.locator("xpath=ancestor::div[contains(@class, 'widget-vbox')][last()]")
        # The explorer draws its three figures right after showing the sliders.
        page.wait_for_function("""() => Array.from(document.querySelectorAll('.widget-vbox'))
            .some(b => b.querySelectorAll('.js-plotly-plot .main-svg').length >= 3)""")
        readout = slider.locator(".widget-readout")
        before_readout, before = readout.inner_text(), page.evaluate(FIGURES_JS)
        box.scroll_into_view_if_needed()
        box.screenshot(path=str(ARTIFACTS / "browser-05-before.png"))

        handle = slider.locator(".noUi-handle")
        handle.focus()
        handle.press("ArrowRight")
        page.wait_for_function(f"() => ({FIGURES_JS})() !== {json.dumps(before)}")
        page.wait_for_timeout(500)  # let plotly finish drawing before the screenshot
        after_readout, after = readout.inner_text(), page.evaluate(FIGURES_JS)
        box.screenshot(path=str(ARTIFACTS / "browser-05-after.png"))

    assert after != before, "the plotly figures did not change when λ moved"
    assert (before_readout, after_readout) == ("0", "0.02"), (before_readout, after_readout)
    assert "λ = 0.02" in after and "λ = 0.02" not in before  # the titles name the new λ
    assert (ARTIFACTS / "browser-05-before.png").stat().st_size > 10_000
    assert (ARTIFACTS / "browser-05-after.png").stat().st_size > 10_000
