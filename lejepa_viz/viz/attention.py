"""Attention masks of a ViT's [CLS] token, the way the paper's Fig. 13 and DINO draw them.

The last block's attention of [CLS] over the patches (:meth:`~lejepa_viz.model.Encoder.
cls_attention`), averaged over the heads, is thresholded by DINO's rule: keep the patches that
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
from .images import load_images
from .pca import per_patch, picture_encoder, save_pairs

KEEP = 0.6  # DINO's threshold: the patches holding 60% of the attention mass


def attention_maps(encoder: Encoder, images: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """[CLS]→patch attention of the last block, ``(N, heads, h, w)`` float32 on the CPU.

    Args:
        encoder: a ViT :class:`~lejepa_viz.model.Encoder` with a [CLS] token, in eval mode.
        images: ``(N, 3, H, W)`` uint8 or floats in [0, 1] (resized to the encoder's input).
        batch_size: images per forward pass.

    Example:
        >>> enc = Encoder("test_vit", 3, 64, (0.5,) * 3, (0.5,) * 3).eval()
        >>> attention_maps(enc, torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 2, 4, 4])
    """
    if not encoder.has_cls:
        name = encoder.config["backbone"]
        raise ValueError(
            f"attention maps need a ViT with a [CLS] token; {name!r} has none (use the PCA "
            "maps: --method pca)"
        )
    maps = per_patch(
        encoder,
        images,
        lambda e, x: e.cls_attention(x).transpose(1, 2),
        batch_size,
        desc="attention",
    )
    return maps.permute(0, 3, 1, 2).contiguous()  # (N, h, w, heads) -> (N, heads, h, w)


def attention_masks(maps: torch.Tensor, keep: float = KEEP) -> torch.Tensor:
    """DINO's rule on attention maps ``(N, heads, h, w)`` averaged over the heads (or ``(N, h,
    w)``): the smallest set of patches, most attended first, that holds ``keep`` of each
    image's attention mass. Returns bool ``(N, h, w)``.

    Example:
        >>> a = torch.tensor([[[0.5, 0.3], [0.15, 0.05]]])  # (1, 2, 2)
        >>> attention_masks(a, keep=0.6).int().tolist()   # 0.5 alone holds less than 0.6
        [[[1, 1], [0, 0]]]
    """
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be a fraction in (0, 1], got {keep}")
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
    encoder: Encoder, images: torch.Tensor, keep: float = KEEP, batch_size: int = 16
) -> np.ndarray:
    """The attention mask of each image as a picture ``(N, H, W, 3)`` uint8: the mean-head
    [CLS] attention of the kept patches in inferno, the rest black (:func:`heat_blocks`)."""
    maps = attention_maps(encoder, images, batch_size)  # (N, heads, h, w)
    return heat_blocks(maps.mean(1), attention_masks(maps, keep), tuple(images.shape[-2:]))


def attention_pairs(
    source: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    *,
    checkpoint: str | os.PathLike | None = None,
    backbone: str | None = None,
    weights: str | os.PathLike | None = None,
    encoder: Encoder | None = None,
    out_dir: str | os.PathLike,
    size: int = 224,
    keep: float = KEEP,
    model_size: int | None = None,
    batch_size: int = 16,
    device: str = "auto",
) -> list[Path]:
    """Each image beside its [CLS] attention mask, saved as ``out_dir/<name>.png`` pairs.

    The library call behind ``lejepa-viz attention --images PATH... --out DIR``; the images and
    the encoder are given as for :func:`~lejepa_viz.viz.pca.pca_maps`.

    Returns:
        The paths written, one per image.
    """
    names, images = load_images(source, size)
    encoder = picture_encoder(encoder, checkpoint, backbone, weights, model_size, size, device)
    return save_pairs(names, images, attention_pictures(encoder, images, keep, batch_size), out_dir)
