"""Every patch map of a ViT on the same images, in one figure, each beside a reference.

Rows: the images; the first three principal components of the patch tokens as RGB, fitted
jointly over all images and per image (the paper's Fig. 14); the [CLS] attention masks (its
Fig. 13). Each map row is drawn for every encoder given — typically the trained one and the
same architecture at random initialisation (:func:`~lejepa_viz.model.random_twin`), so what
training added can be seen, not assumed. :func:`maps_figure` is the library call behind
``lejepa-viz maps`` and the gallery's ``maps.png``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from ..backbones import load_patch_encoder
from ..model import Encoder, random_twin
from .attention import KEEP, attention_pictures
from .export import animation_path, figure_to_array, save_animation, save_png
from .images import load_images
from .pca import fit_pca_maps, patch_tokens, picture_encoder, to_rgb


def map_rows(
    images: torch.Tensor, encoders: Mapping[str, Encoder], keep: float = KEEP
) -> dict[str, np.ndarray]:
    """``{row label: (N, S, S, 3) uint8}``: the images, then for each map kind (joint PCA,
    per-image PCA, attention when the encoders have a [CLS] token) one row per encoder."""
    size = images.shape[-1]
    tokens = {name: patch_tokens(enc, images) for name, enc in encoders.items()}
    rows = {"image": images.permute(0, 2, 3, 1).numpy()}
    for fit, label in (("joint", "PCA, one fit for all"), ("per-image", "PCA, per image")):
        for name, t in tokens.items():
            rows[f"{label}\n{name}"] = to_rgb(fit_pca_maps(t, fit=fit), size)
    for name, enc in encoders.items():
        if enc.has_cls:
            rows[f"[CLS] attention, {keep:.0%}\n{name}"] = attention_pictures(enc, images, keep)
    return rows


def grid_picture(
    rows: Mapping[str, np.ndarray],
    names: Sequence[str] | None = None,
    caption: str | None = None,
    cell: int = 100,
) -> np.ndarray:
    """Rows of pictures ``{label: (N, S, S, 3)}`` as one labelled grid ``(H, W, 3)`` uint8:
    a label column on the left, ``names`` above the columns, ``caption`` under the grid."""
    labels, pictures = list(rows), list(rows.values())
    n = len(pictures[0])
    label_w, top, bottom = 1.7 * cell, 0.25 * cell, (0.5 * cell if caption else 0.1 * cell)
    width, height = label_w + n * cell, top + len(rows) * cell + bottom
    dpi = 100
    with mpl.rc_context({"font.size": 8}):
        fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
        FigureCanvasAgg(fig)
        for r, (label, row) in enumerate(zip(labels, pictures, strict=True)):
            y = 1 - (top + (r + 1) * cell) / height
            fig.text(0.01, y + 0.5 * cell / height, label, va="center", fontsize=7.5)
            for c in range(n):
                ax = fig.add_axes(
                    ((label_w + c * cell + 1) / width, y, (cell - 2) / width, (cell - 2) / height)
                )
                ax.imshow(row[c], interpolation="lanczos")
                ax.set_axis_off()
                if r == 0 and names is not None:
                    ax.set_title(names[c], fontsize=7.5, pad=2)
        if caption:
            fig.text(0.01, 0.5 * bottom / height, caption, va="center", fontsize=7.5, wrap=True)
        return figure_to_array(fig)


def maps_figure(
    source: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    *,
    checkpoint: str | os.PathLike | None = None,
    backbone: str | None = None,
    weights: str | os.PathLike | None = None,
    encoder: Encoder | None = None,
    out: str | os.PathLike,
    size: int = 224,
    model_size: int | None = None,
    keep: float = KEEP,
    label: str = "trained",
    caption: str | None = None,
    device: str = "auto",
) -> Path:
    """The encoder's PCA maps (joint and per image) and attention masks beside those of the
    same architecture at random initialisation, for the images, as one PNG at ``out``.

    Images and encoder are given as for :func:`~lejepa_viz.viz.pca.pca_maps`; ``label`` names
    the encoder's rows, ``caption`` goes under the grid (e.g. the IoU table's numbers).
    """
    names, images = load_images(source, size)
    trained = picture_encoder(encoder, checkpoint, backbone, weights, model_size, size, device)
    random = random_twin(trained).to(next(trained.parameters()).device)
    rows = map_rows(images, {label: trained, "random init": random}, keep)
    return save_png(grid_picture(rows, names, caption, cell=max(64, min(size, 110))), out)


def evolution_gif(
    sources: Sequence,
    out: str | os.PathLike,
    *,
    images: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    backbone: str | None = None,
    labels: Sequence[str] | None = None,
    size: int = 224,
    keep: float = KEEP,
    duration_ms: float = 800,
    trust: bool = False,
    progress: bool = True,
) -> Path:
    """The same images' maps across a series of checkpoints, one GIF frame per checkpoint:
    the images, the per-image PCA (the paper's Fig. 14) and, for ViTs with a [CLS] token, the
    attention masks (Fig. 13) — how the maps emerge over training.

    Args:
        sources: the checkpoints in training order, each anything
            :func:`~lejepa_viz.backbones.load_backbone` takes (our runs'
            ``backbones/stepNNNNNN`` folders, OK-AI's ``checkpoints/epNNN``, files), or a loaded
            :class:`~lejepa_viz.backbones.Backbone`.
        out: the ``.gif`` (or ``.mp4``) to write.
        images: image files or folders (default: the bundled photos).
        backbone: the timm architecture, where the weights' shapes do not say it.
        labels: one caption per frame (default: each source's name).
        size: pixels of the shown images; each encoder sees them at its own resolution.
        keep: the share of the [CLS] attention a mask holds.
        duration_ms: time per frame.
        trust: allow full unpickling of the sources (see ``load_backbone``).
        progress: a progress bar over the checkpoints.
    """
    if len(sources) < 1:
        raise ValueError("evolve needs at least one checkpoint")
    if labels is None:  # each source's name (a loaded Backbone: what it was loaded from)
        labels = [s.source if hasattr(s, "source") else Path(os.fspath(s)).name for s in sources]
    labels = list(labels)
    if len(labels) != len(sources):
        raise ValueError(f"{len(labels)} labels for {len(sources)} checkpoints")
    out = animation_path(out)
    names, pictures = load_images(images, size)
    frames = []
    for source, label in tqdm(
        list(zip(sources, labels, strict=True)), desc="checkpoints", disable=not progress
    ):
        encoder = load_patch_encoder(weights=source, backbone=backbone, trust=trust)
        rows = {
            "image": pictures.permute(0, 2, 3, 1).numpy(),
            "PCA, per image": to_rgb(
                fit_pca_maps(patch_tokens(encoder, pictures), fit="per-image"), size
            ),
        }
        if encoder.has_cls:
            rows[f"[CLS] attention, {keep:.0%}"] = attention_pictures(encoder, pictures, keep)
        frames.append(grid_picture(rows, names, caption=label, cell=max(64, min(size, 110))))
    return save_animation(frames, out, duration_ms)
