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
from .scenes import encoder_iou, scene_iou


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


def with_truth(rows: dict[str, np.ndarray], masks: torch.Tensor | None) -> dict:
    """``rows`` of a map grid with the true masks ``(N, S, S)`` (white on black) under the
    images; unchanged without masks."""
    if masks is None:
        return rows
    truth = masks.bool()[..., None].expand(-1, -1, -1, 3).to(torch.uint8).numpy() * 255
    return {"image": rows.pop("image"), "true mask": truth, **rows}


def maps_figure(
    encoder: Encoder,
    images: torch.Tensor,
    out: str | os.PathLike,
    *,
    names: Sequence[str] | None = None,
    masks: torch.Tensor | None = None,
    keep: float = KEEP,
    label: str = "trained",
    caption: str | None = None,
) -> Drawn:
    """The encoder's PCA maps (joint and per image) and attention masks beside those of the
    same architecture at random initialisation (:func:`~lejepa_viz.model.random_twin`), for
    ``images`` ``(N, 3, S, S)`` uint8, as one PNG at ``out``: the library call behind
    ``lejepa-viz maps``.

    ``names`` title the columns, ``masks`` ``(N, S, S)`` (scenes with known objects) add the
    true masks under the images, ``label`` names the encoder's rows, ``caption`` goes under the
    grid (e.g. the IoU table's numbers).
    """
    keep = check_keep(keep)
    check_images(encoder, images)
    random = random_twin(encoder).to(encoder.mean.device)
    rows = map_rows(images, {label: encoder, "random init": random}, keep)
    rows = with_truth(rows, masks)
    size = images.shape[-1]
    path = save_png(grid_picture(rows, names, caption, cell=max(64, min(size, 110))), out)
    summary = f"{len(rows) - 1} rows of {len(images)} images, {label} beside random init"
    return Drawn(path, summary, {"rows": list(rows)})


CURVE_KINDS = ("per-image", "attention")  # the maps whose IoU the evolution's curve follows


def curve_picture(
    labels: Sequence[str], ious: dict[str, list[float]], references: dict, at: int, width: int
) -> np.ndarray:
    """The IoU of each map kind across checkpoints as a small plot ``(H, width, 3)`` uint8:
    one line a kind, its value at checkpoint ``at`` marked, the random-init and raw-pixel
    levels (``references``: ``{kind: {model: iou}}``) as dashed lines."""
    dpi, colours = 100, {"per-image": "#1b6ca8", "attention": "#d1495b"}
    with mpl.rc_context({"font.size": 7.5}):
        fig = Figure(figsize=(width / dpi, 1.7), dpi=dpi)
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0.07, 0.2, 0.62, 0.7))
        x = np.arange(len(labels))
        for kind, values in ious.items():
            colour = colours.get(kind, "#444444")
            ax.plot(x, values, "o-", ms=3, lw=1.4, color=colour, label=MAP_KINDS[kind])
            ax.plot([at], [values[at]], "o", ms=7, color=colour)
            for model, style in (("random", "--"), ("pixels", ":")):
                if model in references.get(kind, {}):
                    ax.axhline(references[kind][model], ls=style, lw=1, color=colour)
        ax.set(ylabel="IoU, held-out scenes", xticks=x, xlim=(-0.3, len(labels) - 0.7))
        ax.set_xticklabels([label.split(" (")[0] for label in labels], fontsize=6.5)
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
        fig.text(
            0.72, 0.12, "dashed: same ViT at random init\ndotted: raw patch pixels", fontsize=7
        )
        return figure_to_array(fig)


def evolution_gif(
    encoders: Iterable[Encoder],
    labels: Sequence[str],
    images: torch.Tensor,
    out: str | os.PathLike,
    *,
    names: Sequence[str] | None = None,
    masks: torch.Tensor | None = None,
    scenes: tuple[torch.Tensor, torch.Tensor] | None = None,
    keep: float = KEEP,
    duration_ms: float = 800,
    progress: bool = True,
) -> Drawn:
    """The same images' maps across a series of checkpoints, one GIF frame per checkpoint:
    the images, the per-image PCA (the paper's Fig. 14) and, for ViTs with a [CLS] token, the
    attention masks (Fig. 13) — how the maps emerge over training; with ``scenes``, under them
    the IoU of each checkpoint's maps on those scenes, a curve that grows frame by frame.

    Args:
        encoders: the checkpoints' encoders in training order, each used once (a generator
            that loads them one at a time keeps one in memory).
        labels: one caption per frame, one per encoder.
        images: ``(N, 3, S, S)`` uint8; each encoder sees them at its own resolution.
        out: the ``.gif`` (or ``.mp4``) to write.
        names: titles of the image columns.
        masks: ``(N, S, S)`` true masks of the images (scenes), drawn under them.
        scenes: held-out ``(images, masks)`` to score each checkpoint on
            (:func:`~lejepa_viz.viz.scenes.encoder_iou`), beside the last checkpoint's random
            twin and raw pixels.
        keep: the share of the [CLS] attention a mask holds.
        duration_ms: time per frame.
        progress: a progress bar over the checkpoints.

    Returns:
        :class:`~lejepa_viz.viz.export.Drawn`; with ``scenes`` its numbers hold ``"iou"``,
        ``{kind: [IoU of each checkpoint]}``, and ``"references"``.
    """
    keep = check_keep(keep)
    out = animation_path(out)
    labels = list(labels)
    if not labels:
        raise ValueError("evolve needs at least one checkpoint")
    grids, ious, size = [], {}, images.shape[-1]
    for encoder, label in tqdm(
        zip(encoders, labels, strict=True),
        total=len(labels),
        desc="checkpoints",
        disable=not progress,
    ):
        rows = map_rows(images, {"": encoder}, keep, fits=("per-image",))
        rows = with_truth({k.rstrip("\n"): v for k, v in rows.items()}, masks)
        grids.append(grid_picture(rows, names, caption=label, cell=max(64, min(size, 110))))
        if scenes is not None:
            for kind, score in encoder_iou(encoder, *scenes, keep, resamples=1).items():
                if kind in CURVE_KINDS:
                    ious.setdefault(kind, []).append(score.iou)
    numbers: dict = {"frames": len(grids), "labels": labels}
    frames = grids
    if scenes is not None:
        reference = scene_iou(encoder, *scenes, keep=keep, resamples=1)
        references = {
            k: {m: v.iou for m, v in reference[k].items() if m != "trained"} for k in ious
        }
        width = grids[0].shape[1]
        frames = [
            np.concatenate([grid, curve_picture(labels, ious, references, i, width)])
            for i, grid in enumerate(grids)
        ]
        numbers |= {"iou": ious, "references": references}
    path = save_animation(frames, out, duration_ms)
    summary = f"{len(frames)} checkpoints, {labels[0]} to {labels[-1]}"
    if ious:
        summary += "; IoU " + ", ".join(
            f"{MAP_KINDS[k]} {v[0]:.3f} → {v[-1]:.3f}" for k, v in ious.items()
        )
    return Drawn(path, summary, numbers)
