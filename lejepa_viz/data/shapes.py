"""The other kind of scene: shapes cut from one bundled photo, pasted on a crop of another.

Not the world the gallery's ViT trains on (:mod:`.scenes`: items on a small pool of textures),
so scoring a model on these asks whether what it learned of objects carries over to objects
and backgrounds it never saw. :func:`shape_scenes` gives the scenes and their exact masks.

Example:
    >>> images, masks = shape_scenes(4, size=32, seed=0)
    >>> images.shape, images.dtype, masks.shape, masks.dtype
    (torch.Size([4, 3, 32, 32]), torch.uint8, torch.Size([4, 32, 32]), torch.bool)
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .datasets import load_dataset

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


def shape_scenes(
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


HELD_OUT = {  # the scenes a model is scored on, by kind
    "world": "held-out scenes of the world (items and textures it never trained on)",
    "shapes": "shapes cut from photos on photos (another kind of scene)",
}
SHAPES_SEED = 12345


def held_out_scenes(n: int, size: int = 64) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{kind: (images (n, 3, S, S) uint8, masks (n, S, S) bool)}`` for the kinds of
    :data:`HELD_OUT`: the first ``n`` scenes of the held-out world
    (``load_dataset("scenes:n", "test")``) and ``n`` shape scenes."""
    world = load_dataset(f"scenes:{n}", "test", image_size=size)
    return {"world": (world.images, world.masks), "shapes": shape_scenes(n, size, SHAPES_SEED)}
