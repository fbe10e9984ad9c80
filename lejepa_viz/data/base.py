"""The record every dataset is returned as, and the per-channel statistics the encoder uses."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

STATS_IMAGES = 1000  # a dataset's mean and std: of at most this many training images
UNLABELLED = -1  # the label of a training image without a class (STL-10's unlabelled images)


@dataclass
class ImageDataset:
    """A labelled image dataset, its images in memory or packed on disk.

    Attributes:
        images: ``(N, C, H, W)`` uint8, all of one size: a tensor, or for a large folder a
            :class:`~.packed.PackedImages` that indexes like one and reads from disk.
        labels: ``(N,)`` int64 class indices into ``classes``.
        classes: class names.
        name: the name it was loaded by.
        mean: per-channel mean of the *train* split's images / 255 (what the encoder subtracts;
            for a folder, of at most :data:`STATS_IMAGES` of them, evenly spaced, whichever
            split is loaded).
        std: per-channel standard deviation, likewise.
        skipped: unreadable image files left out (``skip_bad_images=True``).
        masks: ``(N, H, W)`` bool object masks, for evaluation only (the scenes), or None.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    skipped: int = 0
    masks: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            shape = f"{self.images.dtype} {tuple(self.images.shape)}"
            raise ValueError(f"images must be uint8 of shape (N, C, H, W), got {shape}")
        if self.labels.shape != (len(self.images),):
            shape = tuple(self.labels.shape)
            raise ValueError(f"labels must have shape ({len(self.images)},), got {shape}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_channels(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 ``(N, C, H, W)`` images / 255.

    Example:
        >>> channel_stats(torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1))
        ((0.5,), (0.5,))
    """
    C = images.shape[1]
    total = torch.zeros(C, dtype=torch.float64)
    squares = torch.zeros(C, dtype=torch.float64)
    for part in images.split(4096):  # float64 copies of a chunk only
        x = part.to(torch.float64).div_(255).transpose(0, 1).reshape(C, -1)
        total += x.sum(1)
        squares += x.square().sum(1)
    n = images.numel() // C
    mean = total / n
    std = (squares / n - mean.square()).clamp_min(0).sqrt()
    return tuple(round(v, 6) for v in mean.tolist()), tuple(round(v, 6) for v in std.tolist())


def resize(images: torch.Tensor, size: int, mode: str = "bilinear") -> torch.Tensor:
    x = F.interpolate(images.float(), size=(size, size), mode=mode, antialias=mode == "bilinear")
    return x.round_().clamp_(0, 255).to(torch.uint8)


def labelled(ds: ImageDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """The images and labels of ``ds``'s labelled rows (all of them unless some are
    :data:`UNLABELLED`): what a probe fits."""
    keep = ds.labels != UNLABELLED
    if bool(keep.all()):
        return ds.images, ds.labels
    index = keep.nonzero()[:, 0]
    return ds.images[index], ds.labels[index]
