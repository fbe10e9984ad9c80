"""Attention masks of a ViT's [CLS] token, the way the paper's Fig. 13 and DINO draw them.

The last block's attention of [CLS] over the patches (:func:`~lejepa_viz.viz.patches.
attention_maps`), averaged over the heads, is thresholded by DINO's rule: keep the patches that
hold ``keep`` (60 %) of the attention mass, the most attended first. As in the original
release's demo, the kept patches show their attention in the inferno colour map, the rest is
black, one block per patch (:func:`heat_blocks`). :func:`attention_pairs` writes image | mask
pairs (``lejepa-viz attention``); the video does it frame by frame (:mod:`.video`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F

from ..model import Encoder
from .export import Drawn, check_pairs, save_pairs
from .patches import attention_maps, check_images

KEEP = 0.6  # DINO's threshold: the patches holding 60% of the attention mass


def attention_masks(maps: torch.Tensor, keep: float = KEEP) -> torch.Tensor:
    """DINO's rule on attention maps ``(N, heads, h, w)`` averaged over the heads (or ``(N, h,
    w)``): the smallest set of patches, most attended first, that holds ``keep`` of each
    image's attention mass. Returns bool ``(N, h, w)``.

    Example:
        >>> a = torch.tensor([[[0.5, 0.3], [0.15, 0.05]]])  # (1, 2, 2)
        >>> attention_masks(a, keep=0.6).int().tolist()   # 0.5 alone holds less than 0.6
        [[[1, 1], [0, 0]]]
    """
    keep = check_keep(keep)
    if maps.ndim == 4:
        maps = maps.mean(1)
    if maps.ndim != 3:
        raise ValueError(f"maps must have shape (N, heads, h, w) or (N, h, w), got {maps.shape}")
    flat = maps.flatten(1).double()  # (N, P)
    share = flat / flat.sum(1, keepdim=True)
    order = share.argsort(1, descending=True)
    before = share.gather(1, order).cumsum(1) - share.gather(1, order)  # mass of the patches above
    kept = torch.zeros_like(flat, dtype=torch.bool).scatter_(1, order, before < keep)
    return kept.view(maps.shape)


def heat_blocks(
    heat: np.ndarray | torch.Tensor,
    shown: np.ndarray | torch.Tensor,
    size: tuple[int, int],
    colormap: str = "inferno",
) -> np.ndarray:
    """Patch maps as pictures, the way the original demo draws them: ``heat`` ``(N, h, w)`` in
    ``colormap`` where ``shown`` (bool, same shape), black elsewhere, scaled by the 99th
    percentile of the shown heat over all N, one block per patch: ``(N, H, W, 3)`` uint8."""
    heat, shown = np.asarray(heat, dtype=float), np.asarray(shown, dtype=bool)
    top = np.percentile(heat[shown], 99) if shown.any() else 1.0
    colours = matplotlib.colormaps[colormap](np.clip(heat / (top or 1.0), 0, 1))[..., :3]
    colours[~shown] = 0  # pure black background
    grid = torch.from_numpy(colours).float().permute(0, 3, 1, 2)  # (N, 3, h, w)
    blocks = F.interpolate(grid, size=size, mode="nearest")
    return (blocks * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def attention_pictures(
    maps: torch.Tensor, keep: float = KEEP, size: tuple[int, int] | None = None
) -> np.ndarray:
    """Attention maps ``(N, heads, h, w)`` (:func:`~lejepa_viz.viz.patches.attention_maps`) as
    their masks' pictures ``(N, H, W, 3)`` uint8 (``size = (H, W)``, default one pixel a
    patch): the mean-head [CLS] attention of the kept patches in inferno, the rest black
    (:func:`heat_blocks`)."""
    return heat_blocks(maps.mean(1), attention_masks(maps, keep), size or tuple(maps.shape[-2:]))


def check_keep(keep: float) -> float:
    """``keep`` as a float if it is a share of the attention mass in (0, 1], else a
    ``ValueError`` naming it (checked before any forward pass)."""
    if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0 < keep <= 1:
        raise ValueError(f"keep must be a fraction in (0, 1], got {keep!r}")
    return float(keep)


def attention_pairs(
    encoder: Encoder,
    images: torch.Tensor,
    names: Sequence[str],
    out_dir: str | os.PathLike,
    *,
    keep: float = KEEP,
    batch_size: int = 16,
) -> Drawn:
    """Each image beside its [CLS] attention mask, saved as ``out_dir/<name>.png`` pairs.

    The library call behind ``lejepa-viz attention``; the encoder, images and names as for
    :func:`~lejepa_viz.viz.pca.pca_maps`.

    Returns:
        :class:`~lejepa_viz.viz.export.Drawn`: ``out_dir``, and the share of the patches each
        mask keeps (mean over the images).
    """
    keep = check_keep(keep)
    check_images(encoder, images)
    check_pairs(names, images)
    maps = attention_maps(encoder, images, batch_size)  # (N, heads, h, w)
    paths = save_pairs(names, images, attention_pictures(maps, keep, images.shape[-2:]), out_dir)
    share = attention_masks(maps, keep).float().mean().item()
    summary = (
        f"{len(paths)} image | attention-mask pairs; the masks hold {keep:.0%} of "
        f"the [CLS] attention in {share:.0%} of the patches on average"
    )
    return Drawn(Path(out_dir), summary, {"files": [str(p) for p in paths], "patch_share": share})
