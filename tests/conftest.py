"""Shared test helpers: the plain formulas that serve as independent truth."""

import contextlib
import math
import shutil

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from lejepa_viz.train import TrainConfig

# Debian's chromium, driven by Playwright (no browser download): the browser tests' only browser.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None
needs_browser = pytest.mark.skipif(
    CHROMIUM is None or sync_playwright is None,
    reason="needs Debian's chromium and playwright (make test installs both)",
)


@contextlib.contextmanager
def chromium_page(width: int, height: int, timeout_ms: int):
    """A headless chromium page of ``width`` × ``height`` CSS pixels (no sandbox: CI runs as
    root), closed on exit; its actions wait up to ``timeout_ms``."""
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(timeout_ms)
            yield page
        finally:
            browser.close()


# one colour per frame of the test video
COLOURS = np.array(
    [
        (230, 30, 30),
        (30, 200, 40),
        (40, 40, 220),
        (220, 220, 40),
        (200, 40, 200),
        (40, 200, 200),
        (250, 250, 250),
        (20, 20, 20),
    ],
    dtype=np.uint8,
)


def plain_epps_pulley(u: torch.Tensor, t_max: float = 3.0, n_points: int = 17) -> torch.Tensor:
    """Textbook Epps–Pulley of each column of u (*, N, K) -> (*, K), written out directly."""
    dt = t_max / (n_points - 1)
    t = torch.tensor([j * dt for j in range(n_points)], dtype=u.dtype)
    w = torch.tensor(
        [dt if j in (0, n_points - 1) else 2 * dt for j in range(n_points)], dtype=u.dtype
    )
    w = w * torch.exp(-(t**2) / 2)
    ut = u.unsqueeze(-1) * t  # (*, N, K, T)
    re = torch.cos(ut).mean(-3) - torch.exp(-(t**2) / 2)
    im = torch.sin(ut).mean(-3)
    return u.shape[-2] * ((re**2 + im**2) * w).sum(-1)


def closed_form_epps_pulley(x: torch.Tensor) -> torch.Tensor:
    """N ∫ |φ_N(t) - e^{-t²/2}|² e^{-t²/2} dt over the real line, in closed form, for a 1-D sample."""
    n = x.numel()
    d = x[:, None] - x[None, :]
    return n * (
        math.sqrt(2 * math.pi) * torch.exp(-(d**2) / 2).mean()
        - 2 * math.sqrt(math.pi) * torch.exp(-(x**2) / 4).mean()
        + math.sqrt(2 * math.pi / 3)
    )


def plain_sigreg(z: torch.Tensor, num_slices: int, seed: int, step: int = 0) -> float:
    """SIGReg of ``z`` (N, D) written out: the plain Epps–Pulley formula in float64, averaged
    over the ``num_slices`` directions that ``directions(D, K, seed=seed, step=step)`` draws."""
    from lejepa_viz.multivariate import directions

    A = directions(z.shape[-1], num_slices, seed=seed, step=step).double()
    return plain_epps_pulley(z.double() @ A).mean().item()


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(1234)


@pytest.fixture(scope="session")
def mp4(tmp_path_factory):
    """An 8-frame 48 x 64 video, frame k filled with COLOURS[k]."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    frames = np.broadcast_to(COLOURS[:, None, None, :], (8, 48, 64, 3))
    iio.imwrite(path, np.ascontiguousarray(frames), plugin="FFMPEG", fps=10)
    return path


def tiny_config(out, **kw):
    """A TrainConfig of a few seconds on the digits (3 steps of 16 images), in folder ``out``."""
    base = dict(
        dataset="digits",
        steps=3,
        batch_size=16,
        num_slices=16,
        proj_hidden=32,
        proj_dim=8,
        log_every=1,
        snapshot_images=16,
        final_probe=False,
        progress=False,
    )
    return TrainConfig(**{**base, **kw}, out=str(out))
