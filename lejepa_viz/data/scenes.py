"""A world of synthetic scenes with exact object masks: data in which objects are learnable.

Each scene is one background from a small fixed pool (texture crops, tinted, and smooth colour
fields; flipped at random) with one to three objects on it: Fashion-MNIST items and digits,
each scaled, rotated, flipped and placed, filled with a flat colour or a texture crop and shaded
by the item's own intensities, the later ones occluding the earlier. The mask holds exactly
the pixels the objects cover; it is kept for evaluation and never shown to training. With few
backgrounds and many varied objects, what makes a scene itself is its objects: what
self-supervised learning has to encode, and a [CLS] token to attend to.

:class:`SceneWorld` renders any range of an unlimited, seeded stream: scene ``i`` comes from
chunk ``i // CHUNK``, drawn from a generator seeded with ``(seed, chunk)``, so it is the same on
every machine and for any batch size. ``load_dataset("scenes", split)``
(:mod:`.datasets`) builds the train and held-out worlds, which share no object instance and
no texture source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .._checks import integer_at_least

CHUNK = 512  # scenes drawn from one generator state
ITEM_THRESHOLD = 0.2  # an item's pixel belongs to the object above this intensity


@dataclass
class Scenes:
    """Rendered scenes: ``images`` ``(n, 3, S, S)`` uint8, their object ``masks`` ``(n, S, S)``
    bool, and ``labels`` ``(n,)``: the class of the object with the most visible pixels."""

    images: torch.Tensor
    masks: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.images)


def _uniform(generator: torch.Generator, low: float, high: float, *shape: int) -> torch.Tensor:
    return low + (high - low) * torch.rand(*shape, generator=generator)


def _crops(
    textures: torch.Tensor, index: torch.Tensor, size: int, scale: tuple, generator
) -> torch.Tensor:
    """A random square crop of ``textures[index[b]]`` for each ``b``, covering ``scale`` of the
    texture's side, resized to ``size``: ``(B, 3, size, size)`` floats in [0, 1]."""
    B = len(index)
    side = _uniform(generator, *scale, B)  # as a fraction of the texture's side
    centre = (torch.rand(B, 2, generator=generator) * 2 - 1) * (1 - side)[:, None]
    theta = torch.zeros(B, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = side
    theta[:, :, 2] = centre
    grid = F.affine_grid(theta, [B, 3, size, size], align_corners=False)
    out = torch.empty(B, 3, size, size)
    for t in index.unique().tolist():
        pick = index == t
        source = textures[t : t + 1].float().div(255).expand(int(pick.sum()), -1, -1, -1)
        out[pick] = F.grid_sample(source, grid[pick], mode="bilinear", align_corners=False)
    return out


class SceneWorld:
    """An unlimited, seeded stream of scenes with their object masks (see the module docstring).

    Args:
        items: ``(M, 1, h, w)`` uint8 item intensities (Fashion-MNIST items, digits): an item's
            pixels above :data:`ITEM_THRESHOLD` of 255 make its shape.
        item_labels: ``(M,)`` class of each item.
        textures: ``(P, 3, R, R)`` uint8 textures the backgrounds and the textured fills are cut
            from.
        size: side S of the scenes in pixels.
        backgrounds: how many backgrounds the pool holds (a quarter of them smooth fields).
        max_objects: one to this many objects a scene, equally likely.
        scale: range of an object's side as a fraction of S.
        seed: the stream; the background pool comes from it too.

    Example:
        >>> items = torch.zeros(4, 1, 28, 28, dtype=torch.uint8); items[:, :, 6:22, 8:20] = 255
        >>> world = SceneWorld(items, torch.arange(4), torch.zeros(1, 3, 32, 32, dtype=torch.uint8),
        ...                    size=32, backgrounds=2)
        >>> scenes = world.render(0, 5)
        >>> scenes.images.shape, scenes.masks.shape, bool(scenes.masks.any((1, 2)).all())
        (torch.Size([5, 3, 32, 32]), torch.Size([5, 32, 32]), True)
    """

    def __init__(
        self,
        items: torch.Tensor,
        item_labels: torch.Tensor,
        textures: torch.Tensor,
        *,
        size: int = 64,
        backgrounds: int = 16,
        max_objects: int = 3,
        scale: tuple[float, float] = (0.35, 0.65),
        seed: int = 0,
    ):
        if items.ndim != 4 or items.shape[1] != 1 or items.dtype != torch.uint8 or not len(items):
            raise ValueError(
                f"items must be uint8 (M, 1, h, w), got {items.dtype} {tuple(items.shape)}"
            )
        if item_labels.shape != (len(items),):
            raise ValueError(f"item_labels must be ({len(items)},), got {tuple(item_labels.shape)}")
        if textures.ndim != 4 or textures.shape[1] != 3 or textures.dtype != torch.uint8:
            raise ValueError(f"textures must be uint8 (P, 3, R, R), got {tuple(textures.shape)}")
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"scale must be (low, high) within (0, 1], got {scale}")
        self.items, self.item_labels, self.textures = items, item_labels, textures
        self.size = integer_at_least(size, 8, "size")
        self.max_objects = integer_at_least(max_objects, 1, "max_objects")
        self.scale, self.seed = (float(scale[0]), float(scale[1])), seed
        self.backgrounds = self._background_pool(integer_at_least(backgrounds, 1, "backgrounds"))

    def _generator(self, *key: int) -> torch.Generator:
        mixed = int(np.random.SeedSequence([self.seed, *key]).generate_state(1)[0])
        return torch.Generator().manual_seed(mixed)

    def _background_pool(self, count: int) -> torch.Tensor:
        """``(count, 3, S, S)`` floats: texture crops under a random tint, and (every fourth)
        smooth colour fields."""
        g, S = self._generator(2**31), self.size
        index = torch.randint(len(self.textures), (count,), generator=g)
        crops = _crops(self.textures, index, S, (0.3, 0.8), g)
        tint = _uniform(g, 0.4, 1.1, count, 3, 1, 1)
        fields = F.interpolate(torch.rand(count, 3, 3, 3, generator=g), size=(S, S), mode="bicubic")
        smooth = (torch.arange(count) % 4 == 3).view(-1, 1, 1, 1)
        return torch.where(smooth, fields, crops * tint).clamp(0, 1)

    def render(self, start: int, n: int) -> Scenes:
        """Scenes ``start`` to ``start + n - 1`` of the stream."""
        integer_at_least(start, 0, "start")
        integer_at_least(n, 0, "n")
        first, last = start // CHUNK, (start + n - 1) // CHUNK
        parts = [self._chunk(c) for c in range(first, last + 1)] if n else []
        if not parts:
            S = self.size
            return Scenes(
                torch.empty(0, 3, S, S, dtype=torch.uint8),
                torch.empty(0, S, S, dtype=torch.bool),
                torch.empty(0, dtype=torch.int64),
            )
        cut = slice(start - first * CHUNK, start - first * CHUNK + n)
        return Scenes(
            *(torch.cat([getattr(p, f) for p in parts])[cut] for f in ("images", "masks", "labels"))
        )

    def _chunk(self, c: int) -> Scenes:
        g, S, B = self._generator(c), self.size, CHUNK
        image = self.backgrounds[torch.randint(len(self.backgrounds), (B,), generator=g)]
        flips = torch.rand(B, 2, generator=g) < 0.5
        image = torch.where(flips[:, 0, None, None, None], image.flip(-1), image)
        image = torch.where(flips[:, 1, None, None, None], image.flip(-2), image)
        count = torch.randint(1, self.max_objects + 1, (B,), generator=g)
        owner = torch.full((B, S, S), -1)
        labels = torch.empty(self.max_objects, B, dtype=torch.int64)
        for k in range(self.max_objects):
            shape, item = self._place(g, B)  # (B, 1, S, S) intensities, (B,) item indices
            labels[k] = self.item_labels[item]
            covered = (shape[:, 0] > ITEM_THRESHOLD) & (k < count)[:, None, None]
            image = torch.where(covered[:, None], self._fill(g, B) * (0.4 + 0.6 * shape), image)
            owner = torch.where(covered, k, owner)
        visible = F.one_hot(owner.flatten(1) + 1, self.max_objects + 1).sum(1)[:, 1:]  # (B, K)
        label = labels.T.gather(1, visible.argmax(1, keepdim=True))[:, 0]
        pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8)
        return Scenes(pixels, owner >= 0, label)

    def crossing(self, index: int = 0, num_frames: int = 48) -> Scenes:
        """A moving scene, frame by frame: a background and one object, both drawn from the
        world by a generator seeded with ``index`` (not scene ``index``'s), the object crossing
        from left to right and back along a gentle arc, ``num_frames`` frames ``(F, 3, S, S)``
        with the object's mask in each: a video whose true masks are known (the gallery's video
        of the world)."""
        integer_at_least(num_frames, 2, "num_frames")
        g, S, F_ = self._generator(2**31 - 1, index), self.size, num_frames
        image = self.backgrounds[torch.randint(len(self.backgrounds), (1,), generator=g)].expand(
            F_, -1, -1, -1
        )
        item = self.items[torch.randint(len(self.items), (1,), generator=g)].float().div(255)
        side = float(_uniform(g, *self.scale, 1))
        fill = self._fill(g, 1)
        t = torch.linspace(0, 2 * math.pi, F_ + 1)[:-1]
        travel = 1 - side
        centre = torch.stack([-travel * torch.cos(t), 0.3 * travel * torch.sin(2 * t)], dim=1)
        theta = torch.zeros(F_, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = 1 / side
        theta[:, :, 2] = -centre / side
        grid = F.affine_grid(theta, [F_, 1, S, S], align_corners=False)
        shape = F.grid_sample(
            item.expand(F_, -1, -1, -1), grid, mode="bilinear", align_corners=False
        )
        covered = shape > ITEM_THRESHOLD  # (F, 1, S, S)
        frames = torch.where(covered, fill * (0.4 + 0.6 * shape), image)
        pixels = (frames.clamp(0, 1) * 255).round().to(torch.uint8)
        return Scenes(pixels, covered[:, 0], torch.zeros(F_, dtype=torch.int64))

    def _place(self, g: torch.Generator, B: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One object a scene: its item's intensities scaled, rotated, flipped and placed on the
        ``S x S`` canvas, ``(B, 1, S, S)`` in [0, 1], and the items drawn ``(B,)``."""
        item = torch.randint(len(self.items), (B,), generator=g)
        side = _uniform(g, *self.scale, B)  # of the canvas
        centre = (torch.rand(B, 2, generator=g) * 2 - 1) * (1 - side)[:, None]
        angle = _uniform(g, -math.pi / 6, math.pi / 6, B)
        flip = torch.where(torch.rand(B, generator=g) < 0.5, -1.0, 1.0)
        cos, sin = angle.cos() / side, angle.sin() / side
        theta = torch.zeros(B, 2, 3)  # canvas coordinates -> the item's, centred on the object
        theta[:, 0, 0], theta[:, 0, 1] = flip * cos, flip * sin
        theta[:, 1, 0], theta[:, 1, 1] = -sin, cos
        theta[:, :, 2] = -(theta[:, :, :2] @ centre[:, :, None])[:, :, 0]
        grid = F.affine_grid(theta, [B, 1, self.size, self.size], align_corners=False)
        source = self.items[item].float().div(255)
        return F.grid_sample(source, grid, mode="bilinear", align_corners=False), item

    def _fill(self, g: torch.Generator, B: int) -> torch.Tensor:
        """What each object is painted with, ``(B, 3, S, S)``: a flat colour, or (half of them)
        a texture crop under a random tint."""
        colour = torch.rand(B, 3, 1, 1, generator=g).expand(-1, -1, self.size, self.size)
        index = torch.randint(len(self.textures), (B,), generator=g)
        crops = _crops(self.textures, index, self.size, (0.2, 0.6), g)
        crops = crops * _uniform(g, 0.5, 1.3, B, 3, 1, 1)
        textured = (torch.rand(B, generator=g) < 0.5).view(-1, 1, 1, 1)
        return torch.where(textured, crops, colour)
