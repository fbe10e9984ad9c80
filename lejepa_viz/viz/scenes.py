"""Synthetic scenes with known object masks, and a number for PCA patch-feature maps.

A PCA map that only *looks* good is not evidence. :func:`make_scenes` pastes shapes (disc,
square, triangle, ellipse) filled with a texture cut from one bundled photo onto a background
texture cut from another photo, so the object mask is known exactly. :func:`first_component_iou`
then scores patch features: the first principal component, fitted jointly over every scene's
patches, is thresholded at 0 and compared with the true masks (mean IoU over the scenes).

Example:
    >>> images, masks = make_scenes(4, size=32, seed=0)
    >>> images.shape, images.dtype, masks.shape, masks.dtype
    (torch.Size([4, 3, 32, 32]), torch.uint8, torch.Size([4, 32, 32]), torch.bool)
    >>> mask_iou(masks, masks).tolist()
    [1.0, 1.0, 1.0, 1.0]
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from ..data import load_dataset
from ..model import Encoder, random_twin
from .attention import KEEP, attention_masks
from .patches import MAP_KINDS, attention_maps, patch_tokens
from .pca import FITS, fit_pca_maps

SCENE_SHAPES = ("disc", "square", "triangle", "ellipse")


@lru_cache(maxsize=2)
def _photos(size: int = 224) -> torch.Tensor:
    """The bundled photos, (P, 3, size, size) uint8 (loaded once)."""
    return load_dataset("photos", image_size=size).images


def _shape_mask(
    shape: str, size: int, cx: float, cy: float, r: float, angle: float, aspect: float
) -> np.ndarray:
    """Bool (size, size): pixel centres inside the shape (centre (cx, cy), size r, rotated)."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    c, s = math.cos(angle), math.sin(angle)
    u = c * (xx - cx) + s * (yy - cy)  # coordinates in the shape's own (rotated) frame
    v = -s * (xx - cx) + c * (yy - cy)
    if shape == "disc":
        return u**2 + v**2 <= r**2
    if shape == "ellipse":
        return (u / r) ** 2 + (v / (r * aspect)) ** 2 <= 1
    if shape == "square":
        half = r / math.sqrt(2) * 1.25  # about the area of the disc of radius r
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    if shape == "triangle":  # equilateral, circumradius 1.3 r: inside the three half-planes
        R = 1.3 * r
        inside = np.ones_like(u, dtype=bool)
        for k in range(3):
            a = math.pi / 2 + 2 * math.pi * k / 3  # outward normal of edge k
            inside &= u * math.cos(a) + v * math.sin(a) <= R / 2
        return inside
    raise ValueError(f"shape must be one of {SCENE_SHAPES}, got {shape!r}")


def _texture(
    photo: torch.Tensor, rng: np.random.Generator, size: int, scale: tuple[float, float]
) -> torch.Tensor:
    """A random square crop of ``photo`` (3, S, S) covering ``scale`` of its side, resized to
    ``size`` (antialiased bilinear), as uint8 (3, size, size)."""
    S = photo.shape[-1]
    side = max(2, round(S * rng.uniform(*scale)))
    top, left = rng.integers(0, S - side + 1, size=2)
    crop = photo[:, top : top + side, left : left + side].float()[None]
    out = F.interpolate(
        crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    return out[0].round_().clamp_(0, 255).to(torch.uint8)


def make_scenes(
    n: int,
    size: int = 64,
    seed: int = 0,
    *,
    num_shapes: int = 1,
    shapes: tuple[str, ...] = SCENE_SHAPES,
    radius: tuple[float, float] = (0.18, 0.32),
    crop: tuple[float, float] = (0.25, 0.6),
    background_crop: tuple[float, float] | None = None,
    min_area: float = 0.03,
    photos: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` synthetic scenes of ``size``² pixels and their object masks, the same for a seed.

    Each scene: a background texture (a random square crop of one bundled photo, ``crop`` of
    its side, resized to ``size``) and ``num_shapes`` shapes from ``shapes`` (random centre in
    the middle 60 % of the image, size ``radius`` x ``size``, rotation, and ellipse aspect),
    all filled with one texture cut from a *different* photo. The mask holds exactly the pixels
    that come from the object texture (the union of the shapes); scenes whose object would
    cover less than ``min_area`` of the image are redrawn.

    Args:
        n: number of scenes.
        size: side in pixels.
        seed: everything random derives from it.
        num_shapes: shapes per scene (one object texture for all of them).
        shapes: which shapes to draw from (:data:`SCENE_SHAPES`).
        radius: range of the shape size (disc radius) as a fraction of ``size``.
        crop: range of the texture crops' side as a fraction of the photo's side.
        background_crop: the same for the background only (default: ``crop``); a smaller
            range zooms in, making backgrounds smoother than objects, as in most photos.
        min_area: smallest object area, as a fraction of the image.
        photos: (P, 3, S, S) uint8 source photos, P >= 2 (default: the bundled photos at 224).

    Returns:
        ``(images, masks)``: ``(n, 3, size, size)`` uint8 and ``(n, size, size)`` bool.
    """
    if n < 0 or size < 4 or num_shapes < 1:
        raise ValueError(
            f"need n >= 0, size >= 4 and num_shapes >= 1, got {n}, {size}, {num_shapes}"
        )
    if not shapes or any(s not in SCENE_SHAPES for s in shapes):
        raise ValueError(f"shapes must be a non-empty subset of {SCENE_SHAPES}, got {shapes}")
    photos = _photos() if photos is None else photos
    if photos.ndim != 4 or photos.shape[1] != 3 or photos.dtype != torch.uint8 or len(photos) < 2:
        raise ValueError(f"photos must be uint8 (P>=2, 3, S, S), got {tuple(photos.shape)}")
    rng = np.random.default_rng(seed)
    images = torch.empty(n, 3, size, size, dtype=torch.uint8)
    masks = torch.empty(n, size, size, dtype=torch.bool)
    for i in range(n):
        bg_photo, obj_photo = rng.choice(len(photos), size=2, replace=False)
        background = _texture(photos[bg_photo], rng, size, background_crop or crop)
        obj = _texture(photos[obj_photo], rng, size, crop)
        while True:
            mask = np.zeros((size, size), dtype=bool)
            for _ in range(num_shapes):
                shape = shapes[rng.integers(len(shapes))]
                cx, cy = rng.uniform(0.2 * size, 0.8 * size, size=2)
                r = rng.uniform(*radius) * size
                angle, aspect = rng.uniform(0, 2 * math.pi), rng.uniform(0.45, 0.75)
                mask |= _shape_mask(shape, size, cx, cy, r, angle, aspect)
            if mask.mean() >= min_area:
                break
        m = torch.from_numpy(mask)
        masks[i] = m
        images[i] = torch.where(m, obj, background)
    return images, masks


def mask_iou(pred: torch.Tensor, truth: torch.Tensor) -> float | torch.Tensor:
    """Intersection over union of bool masks ``(H, W)`` -> float, or ``(*, H, W)`` -> ``(*)``
    per mask. Two empty masks agree perfectly: IoU 1.

    Example:
        >>> a = torch.zeros(4, 4, dtype=torch.bool); a[:, :2] = True
        >>> b = torch.zeros(4, 4, dtype=torch.bool); b[:, 1:3] = True
        >>> mask_iou(a, b)
        0.3333333432674408
    """
    if pred.shape != truth.shape or pred.ndim < 2:
        raise ValueError(
            f"pred and truth must be masks of one shape (*, H, W), got "
            f"{tuple(pred.shape)} and {tuple(truth.shape)}"
        )
    pred, truth = pred.bool(), truth.bool()
    inter = (pred & truth).flatten(-2).sum(-1).float()
    union = (pred | truth).flatten(-2).sum(-1).float()
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))
    return iou.item() if pred.ndim == 2 else iou


class ComponentScore(NamedTuple):
    """What :func:`first_component_score` measures (IoUs are means over the scenes)."""

    iou: float  # with the sign chosen by the rule (no masks used)
    oracle_iou: float  # the better of the two signs (uses the masks): the rule's ceiling
    ious: torch.Tensor  # (N,) IoU of each scene with the rule's sign
    maps: torch.Tensor  # (N, h, w) first-component scores, oriented by the rule


def first_component_maps(tokens: torch.Tensor, per_image: bool = False) -> torch.Tensor:
    """Standardised first principal component of patch tokens ``(N, h, w, F)`` -> ``(N, h, w)``,
    its sign set so that the object is positive (:func:`~lejepa_viz.viz.pca.object_sign`).

    ``per_image=False``: one PCA fitted jointly over the patches of all N images, one sign.
    ``per_image=True``: a PCA and a sign for each image on its own patches.
    """
    if tokens.ndim != 4:
        raise ValueError(f"tokens must have shape (N, h, w, F), got {tuple(tokens.shape)}")
    fit = "per-image" if per_image else "joint"
    return torch.from_numpy(fit_pca_maps(tokens, n_components=1, fit=fit).pc1)


def first_component_score(
    tokens: torch.Tensor, masks: torch.Tensor, threshold: float = 0.0, per_image: bool = False
) -> ComponentScore:
    """The first principal component of patch tokens as an object mask, scored against
    ``masks``. See :func:`first_component_iou`. The oracle flips the one joint sign
    (``per_image=False``) or each image's sign (``per_image=True``), whichever scores higher."""
    if masks.ndim != 3 or tokens.ndim != 4 or len(masks) != len(tokens):
        raise ValueError(
            f"need tokens (N, h, w, F) and masks (N, H, W), got "
            f"{tuple(tokens.shape)} and {tuple(masks.shape)}"
        )
    maps = first_component_maps(tokens, per_image)
    truth = masks.bool().cpu()

    def score(m: torch.Tensor) -> torch.Tensor:
        pred = F.interpolate(
            (m > threshold).float()[:, None], size=truth.shape[-2:], mode="nearest"
        )[:, 0].bool()
        return mask_iou(pred, truth)

    ious, flipped = score(maps), score(-maps)
    oracle = torch.maximum(ious, flipped).mean() if per_image else max(ious.mean(), flipped.mean())
    return ComponentScore(ious.mean().item(), float(oracle), ious, maps)


def first_component_iou(
    tokens: torch.Tensor, masks: torch.Tensor, threshold: float = 0.0, per_image: bool = False
) -> float:
    """Mean IoU between the thresholded first principal component of patch tokens and the masks.

    PCA(1) is fitted jointly over the patches of all N scenes; its sign is fixed without the
    masks (border patches below centre patches, see ``object_sign``); patches
    scoring above ``threshold`` form the predicted mask, upsampled (nearest) from ``h x w`` to
    the masks' ``H x W``. :func:`first_component_score` also gives the oracle-sign IoU.

    Args:
        tokens: patch features ``(N, h, w, F)`` (:func:`~lejepa_viz.viz.patches.patch_tokens`).
        masks: true object masks ``(N, H, W)``, bool.
        threshold: cut on the first-component score (0 = the mean over all patches).
        per_image: fit a PCA and choose a sign for each image instead of one for all.
    """
    return first_component_score(tokens, masks, threshold, per_image).iou


def attention_iou(
    encoder: Encoder, images: torch.Tensor, masks: torch.Tensor, keep: float = KEEP
) -> float:
    """Mean IoU between the [CLS] attention masks of ``images`` (DINO's rule, ``keep`` of the
    mass) and the true ``masks`` ``(N, H, W)``; no sign to choose, so no oracle."""
    kept = attention_masks(attention_maps(encoder, images), keep)  # (N, h, w)
    pred = F.interpolate(kept.float()[:, None], size=masks.shape[-2:], mode="nearest")[:, 0]
    return mask_iou(pred.bool(), masks.bool().cpu()).mean().item()


def scene_iou(encoder, num_scenes: int = 96, size: int = 64, seed: int = 12345) -> dict:
    """Score an encoder's patch maps on held-out synthetic scenes, beside two references.

    Returns:
        ``{"joint": {...}, "per-image": {...}, "attention": {...}, "num_scenes", "size"}``: for
        the joint and the per-image PCA, a :class:`ComponentScore` (rule sign and oracle sign)
        of ``encoder``, of the same architecture at random initialisation (:func:`random_twin`)
        and of the raw pixels of each patch (``"trained"``, ``"random"``, ``"pixels"``); for the
        [CLS] attention masks (ViTs with a [CLS] token), the mean IoU of the first two.
        ``encoder`` is a ViT :class:`~lejepa_viz.model.Encoder`.
    """
    images, masks = make_scenes(num_scenes, size=size, seed=seed)
    encoders = {"trained": encoder, "random": random_twin(encoder)}
    tokens = {name: patch_tokens(enc, images) for name, enc in encoders.items()}
    p = encoder.backbone.patch_embed.patch_size[0] * size // encoder.image_size
    h = size // p  # raw pixels on the same patch grid as the encoder at this size
    pixels = images.float().unfold(2, p, p).unfold(3, p, p)  # (N, 3, h, w, p, p)
    tokens["pixels"] = pixels.permute(0, 2, 3, 1, 4, 5).reshape(num_scenes, h, h, -1)
    out = {
        fit: {
            name: first_component_score(t, masks, per_image=fit == "per-image")
            for name, t in tokens.items()
        }
        for fit in FITS
    }
    if encoder.has_cls:
        out["attention"] = {name: attention_iou(e, images, masks) for name, e in encoders.items()}
    return {**out, "num_scenes": num_scenes, "size": size}


def map_iou(score) -> float:
    """A map's IoU: a PCA map's :class:`~lejepa_viz.viz.scenes.ComponentScore` (rule sign), or
    an attention map's plain number."""
    return score if isinstance(score, float) else score.iou


def verdict(iou: dict) -> str:
    """One honest sentence on the IoU table: does training beat random initialisation?"""
    kinds = [k for k in MAP_KINDS if k in iou]
    gains = {k: map_iou(iou[k]["trained"]) - map_iou(iou[k]["random"]) for k in kinds}
    best = max(gains, key=gains.get)
    if gains[best] > 0.02:
        return (
            f"LeJEPA training raises the IoU over the same ViT at random init most for the "
            f"{best} maps (+{gains[best]:.3f}); where the gain is under 0.02 the maps find the "
            "pasted shape no better than random features do."
        )
    return (
        f"LeJEPA training does not beat random initialisation here (best gain "
        f"{gains[best]:+.3f}, {best}): these maps do not segment the pasted shapes better "
        "than random features do, however structured they look."
    )


def iou_table(iou: dict) -> list[str]:
    """The IoU of every map kind for the trained ViT, its random twin and raw pixels."""
    kinds = [k for k in MAP_KINDS if k in iou]

    def cell(kind: str, who: str) -> str:
        score = iou[kind].get(who)
        if score is None:
            return "—"
        if isinstance(score, float):
            return f"{score:.3f}"
        return f"{score.iou:.3f} ({score.oracle_iou:.3f})"

    lines = [
        "| map | LeJEPA ViT | same ViT, random init | raw patch pixels |",
        "|-----|-----------:|----------------------:|-----------------:|",
    ]
    lines += [
        f"| {MAP_KINDS[k]} | {cell(k, 'trained')} | {cell(k, 'random')} | {cell(k, 'pixels')} |"
        for k in kinds
    ]
    return lines
