"""PCA maps of ViT patch features: what the encoder sees in each 16 x 16 patch, as colours.

The last-layer patch tokens of every image, ``(N, h, w, F)``, are pooled into one matrix and
reduced by a single PCA (scikit-learn), so a colour means the same thing in every image. The
first three components, min-max scaled over the whole set, become red, green and blue; the map
is smoothly upsampled to the image and saved beside it. With ``foreground=True`` the DINOv2
recipe is followed: the first component, oriented so the object is positive, is thresholded
into a foreground mask, a second PCA is fitted on the foreground patches only, and the
background is drawn black.

Sign rule: a principal component has no sign of its own. Objects sit inside the frame and
backgrounds reach its edges, so the first component is flipped when its mean over the border
patches (the outer ring of every map) is above its mean over the centre patches (the middle
half of rows and columns), pooled over all images (:func:`object_sign`). The threshold is in
standard deviations of that first component over all patches (it has mean 0): ``0`` keeps the
patches above the mean, ``1`` those more than one standard deviation above.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .._checks import integer_at_least
from ..model import Encoder
from .export import Drawn, check_pairs, save_pairs
from .patches import check_images, patch_tokens


@dataclass
class PCAMaps:
    """PCA of the patch tokens of N images, on the ``h x w`` patch grid: one PCA for all the
    images (joint) or one for each (per image).

    Attributes:
        components: ``(N, h, w, K)`` projections on the K components that colour the map
            (those of the foreground PCA when ``mask`` is set).
        pc1: ``(N, h, w)`` first component of the PCA of all (the image's) patches, oriented so
            the object is positive (:func:`object_sign`) and standardised (mean 0, std 1).
        mask: ``(N, h, w)`` bool foreground (``pc1 > threshold``), or None.
        explained_variance_ratio: ``(K,)`` of the PCA that gives ``components``; ``(N, K)``
            per image.
        per_image: one PCA per image (colours are scaled per image too).
    """

    components: np.ndarray
    pc1: np.ndarray
    mask: np.ndarray | None
    explained_variance_ratio: np.ndarray
    per_image: bool = False


def object_sign(maps: np.ndarray | torch.Tensor) -> float:
    """+1 or -1: the sign that makes the object positive in first-component maps ``(N, h, w)``.

    The mean over the border patches (the outer ring of every map) must not exceed the mean
    over the centre patches (the middle half of rows and columns); ties keep +1.

    Example:
        >>> maps = -np.pad(np.ones((1, 2, 2)), ((0, 0), (1, 1), (1, 1)))  # object negative
        >>> object_sign(maps)
        -1.0
    """
    maps = np.asarray(maps)
    h, w = maps.shape[-2:]
    border = np.ones((h, w), dtype=bool)
    border[1:-1, 1:-1] = False
    centre = np.zeros((h, w), dtype=bool)
    centre[h // 4 : h - h // 4, w // 4 : w - w // 4] = True
    return 1.0 if maps[:, border].mean() <= maps[:, centre].mean() else -1.0


FITS = ("joint", "per-image")


def fit_pca_maps(
    tokens: torch.Tensor | np.ndarray,
    n_components: int = 3,
    foreground: bool = False,
    threshold: float = 0.0,
    fit: str = "joint",
) -> PCAMaps:
    """PCA of patch tokens for maps: ``fit="joint"``, one PCA over the patches of all images,
    so colours mean the same in every image; ``fit="per-image"``, one PCA for each image on
    its own patches, the paper's recipe (its Fig. 14), so each map shows its image's own parts.

    Args:
        tokens: patch tokens ``(N, h, w, F)`` (:func:`patch_tokens`).
        n_components: components kept, K.
        foreground: mask the background (``pc1 <= threshold``) and refit the K components on
            the foreground patches only (the DINOv2 recipe), so all colours go to the objects.
        threshold: the foreground cut on the standardised first component, in standard
            deviations above its mean over the (image's) patches.
        fit: ``"joint"`` or ``"per-image"``.

    Example:
        >>> maps = fit_pca_maps(np.random.default_rng(0).normal(size=(2, 4, 4, 8)))
        >>> maps.components.shape, maps.pc1.shape, maps.mask, round(float(maps.pc1.std()), 6)
        ((2, 4, 4, 3), (2, 4, 4), None, 1.0)
        >>> fit_pca_maps(np.random.default_rng(0).normal(size=(2, 4, 4, 8)), fit="per-image").pc1.std((1, 2)).round(6).tolist()
        [1.0, 1.0]
    """
    from sklearn.decomposition import PCA

    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    if fit == "per-image":
        if np.ndim(tokens) != 4:
            raise ValueError(f"tokens must have shape (N, h, w, F), got {np.shape(tokens)}")
        return _stack([fit_pca_maps(t[None], n_components, foreground, threshold) for t in tokens])

    if isinstance(tokens, torch.Tensor):
        tokens = tokens.detach().cpu()
        tokens = (tokens if tokens.dtype == torch.float64 else tokens.float()).numpy()
    tokens = np.asarray(tokens)
    if tokens.ndim != 4:
        raise ValueError(f"tokens must have shape (N, h, w, F), got {tokens.shape}")
    if not np.isfinite(tokens).all():
        raise ValueError("tokens contain NaN or Inf values")
    N, h, w, dim = tokens.shape
    integer_at_least(n_components, 1, "n_components")
    if n_components > min(N * h * w - 1, dim):
        raise ValueError(
            f"n_components must be at most min(patches - 1, F) = "
            f"{min(N * h * w - 1, dim)}, got {n_components}"
        )
    flat = tokens.reshape(-1, dim)  # (N·h·w, F): every patch of every image
    # with a foreground, only PC1 of all patches is used (the mask); the colours come after
    pca = PCA(n_components=1 if foreground else n_components, random_state=0).fit(flat)
    proj = pca.transform(flat)  # (N·h·w, K)
    proj[:, 0] *= object_sign(proj[:, 0].reshape(N, h, w))
    pc1 = proj[:, 0] / max(float(proj[:, 0].std()), 1e-12)
    ratio, mask = pca.explained_variance_ratio_, None
    if foreground:
        mask = pc1 > threshold
        if mask.sum() <= n_components:
            raise ValueError(
                f"threshold={threshold} leaves {int(mask.sum())} foreground patches; "
                f"the foreground PCA needs more than {n_components}: lower it"
            )
        fg = PCA(n_components=n_components, random_state=0).fit(flat[mask])
        proj, ratio = fg.transform(flat), fg.explained_variance_ratio_
        mask = mask.reshape(N, h, w)
    return PCAMaps(
        proj.reshape(N, h, w, n_components).astype(np.float32),
        pc1.reshape(N, h, w).astype(np.float32),
        mask,
        ratio.astype(np.float32),
    )


def _stack(fits: list[PCAMaps]) -> PCAMaps:
    """Per-image fits of one image each as the maps of all of them."""
    masks = [f.mask for f in fits]
    return PCAMaps(
        np.concatenate([f.components for f in fits]),
        np.concatenate([f.pc1 for f in fits]),
        None if masks[0] is None else np.concatenate(masks),
        np.stack([f.explained_variance_ratio for f in fits]),
        per_image=True,
    )


def to_rgb(maps: PCAMaps, size: int) -> np.ndarray:
    """The first three components as RGB images ``(N, size, size, 3)`` uint8.

    Each component is min-max scaled to [0, 1] over all images' patches (over each image's for
    per-image maps; over the foreground patches when masked), so under a joint fit one feature
    gets one colour everywhere; masked-out patches are black. The ``h x w`` maps are upsampled bicubically, so the map is smooth.

    Example:
        >>> rgb = to_rgb(fit_pca_maps(np.random.default_rng(0).normal(size=(2, 4, 4, 8))), 16)
        >>> rgb.shape, rgb.dtype, int(rgb.min()), int(rgb.max())
        ((2, 16, 16, 3), dtype('uint8'), 0, 255)
    """
    integer_at_least(size, 1, "size")
    if maps.components.shape[-1] < 3:
        raise ValueError(f"to_rgb needs 3 components, got {maps.components.shape[-1]}")
    comps = maps.components[..., :3]  # (N, h, w, 3)
    groups = [slice(i, i + 1) for i in range(len(comps))] if maps.per_image else [slice(None)]
    scaled = np.empty_like(comps)
    for group in groups:  # all images at once (joint), or each image on its own
        part = comps[group]
        keep = part if maps.mask is None else part[maps.mask[group]]
        lo, hi = keep.reshape(-1, 3).min(0), keep.reshape(-1, 3).max(0)
        scaled[group] = np.clip((part - lo) / np.where(hi > lo, hi - lo, 1), 0, 1)
    if maps.mask is not None:
        scaled = scaled * maps.mask[..., None]
    grid = torch.from_numpy(scaled).float().permute(0, 3, 1, 2)  # (N, 3, h, w)
    up = F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=False)
    return (up.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def montage(images: torch.Tensor | np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """Images above their maps: ``(N, 3, S, S)`` uint8 and ``(N, S, S, 3)`` -> ``(2S, N·S, 3)``.

    Example:
        >>> montage(np.zeros((2, 3, 4, 4), np.uint8), np.ones((2, 4, 4, 3), np.uint8)).shape
        (8, 8, 3)
    """
    pixels = np.asarray(images).transpose(0, 2, 3, 1)
    rgb = np.asarray(rgb)
    if pixels.shape != rgb.shape:
        raise ValueError(
            f"images (N, 3, S, S) and rgb (N, S, S, 3) must match, got "
            f"{tuple(np.shape(images))} and {rgb.shape}"
        )
    return np.concatenate([np.concatenate(list(pixels), 1), np.concatenate(list(rgb), 1)], 0)


def pca_maps(
    encoder: Encoder,
    images: torch.Tensor,
    names: Sequence[str],
    out_dir: str | os.PathLike,
    *,
    fit: str = "joint",
    foreground: bool = False,
    threshold: float = 0.0,
    batch_size: int = 16,
) -> Drawn:
    """PCA maps of a ViT's patch features, saved as ``out_dir/<name>.png`` image | map pairs.

    The library call behind ``lejepa-viz pca``.

    Args:
        encoder: a ViT :class:`~lejepa_viz.model.Encoder` (``lejepa_viz.load_encoder``).
        images: ``(N, 3, S, S)`` uint8 (:func:`~lejepa_viz.viz.images.load_images`); the maps
            are drawn at ``S`` pixels, the encoder sees the images at its own input size.
        names: N file names.
        out_dir: where the PNGs go.
        fit: ``"joint"`` (one PCA for all images) or ``"per-image"`` (the paper's).
        foreground: black background, colours refitted on the foreground (DINOv2 recipe).
        threshold: foreground cut in standard deviations of the first component.
        batch_size: images per forward pass.

    Returns:
        :class:`~lejepa_viz.viz.export.Drawn`: ``out_dir``, and the variance the three colours
        explain.
    """
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    check_images(encoder, images)
    check_pairs(names, images)
    maps = fit_pca_maps(
        patch_tokens(encoder, images, batch_size),
        foreground=foreground,
        threshold=threshold,
        fit=fit,
    )
    paths = save_pairs(names, images, to_rgb(maps, images.shape[-1]), out_dir)
    explained = np.atleast_2d(maps.explained_variance_ratio).sum(-1)  # (1,) or (N,)
    summary = (
        f"{len(paths)} image | PCA map pairs ({fit} fit); the three colours explain "
        f"{explained.mean():.0%} of the patch features' variance"
        + (" on average" if fit == "per-image" else "")
    )
    return Drawn(
        Path(out_dir), summary, {"files": [str(p) for p in paths], "explained": explained.tolist()}
    )
