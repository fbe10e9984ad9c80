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
from collections.abc import Iterable, Mapping, Sequence

import matplotlib as mpl
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from ..model import Encoder, random_twin
from .attention import KEEP, attention_pictures, check_keep
from .export import Drawn, animation_path, figure_to_array, save_animation, save_png
from .patches import MAP_KINDS, attention_maps, check_images, patch_tokens
from .pca import FITS, fit_pca_maps, to_rgb


def map_rows(
    images: torch.Tensor,
    encoders: Mapping[str, Encoder],
    keep: float = KEEP,
    fits: Sequence[str] = FITS,
) -> dict[str, np.ndarray]:
    """``{row label: (N, S, S, 3) uint8}``: the images, then for each map kind (the PCA
    ``fits``, and the attention masks for encoders with a [CLS] token) one row per encoder."""
    size = images.shape[-1]
    tokens = {name: patch_tokens(enc, images) for name, enc in encoders.items()}
    rows = {"image": images.permute(0, 2, 3, 1).numpy()}
    for fit in fits:
        for name, t in tokens.items():
            rows[f"{MAP_KINDS[fit]}\n{name}"] = to_rgb(fit_pca_maps(t, fit=fit), size)
    for name, enc in encoders.items():
        if enc.has_cls:
            maps = attention_maps(enc, images)
            label = f"{MAP_KINDS['attention']}, {keep:.0%}\n{name}"
            rows[label] = attention_pictures(maps, keep, (size, size))
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
    encoder: Encoder,
    images: torch.Tensor,
    out: str | os.PathLike,
    *,
    names: Sequence[str] | None = None,
    keep: float = KEEP,
    label: str = "trained",
    caption: str | None = None,
) -> Drawn:
    """The encoder's PCA maps (joint and per image) and attention masks beside those of the
    same architecture at random initialisation (:func:`~lejepa_viz.model.random_twin`), for
    ``images`` ``(N, 3, S, S)`` uint8, as one PNG at ``out``: the library call behind
    ``lejepa-viz maps``.

    ``names`` title the columns, ``label`` names the encoder's rows, ``caption`` goes under the
    grid (e.g. the IoU table's numbers).
    """
    keep = check_keep(keep)
    check_images(encoder, images)
    random = random_twin(encoder).to(encoder.mean.device)
    rows = map_rows(images, {label: encoder, "random init": random}, keep)
    size = images.shape[-1]
    path = save_png(grid_picture(rows, names, caption, cell=max(64, min(size, 110))), out)
    summary = f"{len(rows) - 1} map rows of {len(images)} images, {label} beside random init"
    return Drawn(path, summary, {"rows": list(rows)})


def evolution_gif(
    encoders: Iterable[Encoder],
    labels: Sequence[str],
    images: torch.Tensor,
    out: str | os.PathLike,
    *,
    names: Sequence[str] | None = None,
    keep: float = KEEP,
    duration_ms: float = 800,
    progress: bool = True,
) -> Drawn:
    """The same images' maps across a series of checkpoints, one GIF frame per checkpoint:
    the images, the per-image PCA (the paper's Fig. 14) and, for ViTs with a [CLS] token, the
    attention masks (Fig. 13) — how the maps emerge over training.

    Args:
        encoders: the checkpoints' encoders in training order, each used once (a generator
            that loads them one at a time keeps one in memory).
        labels: one caption per frame, one per encoder.
        images: ``(N, 3, S, S)`` uint8; each encoder sees them at its own resolution.
        out: the ``.gif`` (or ``.mp4``) to write.
        names: titles of the image columns.
        keep: the share of the [CLS] attention a mask holds.
        duration_ms: time per frame.
        progress: a progress bar over the checkpoints.
    """
    keep = check_keep(keep)
    out = animation_path(out)
    labels = list(labels)
    if not labels:
        raise ValueError("evolve needs at least one checkpoint")
    frames = []
    size = images.shape[-1]
    for encoder, label in tqdm(
        zip(encoders, labels, strict=True),
        total=len(labels),
        desc="checkpoints",
        disable=not progress,
    ):
        rows = map_rows(images, {"": encoder}, keep, fits=("per-image",))
        rows = {k.rstrip("\n"): v for k, v in rows.items()}
        frames.append(grid_picture(rows, names, caption=label, cell=max(64, min(size, 110))))
    path = save_animation(frames, out, duration_ms)
    summary = f"{len(frames)} checkpoints, {labels[0]} to {labels[-1]}"
    return Drawn(path, summary, {"frames": len(frames), "labels": labels})
