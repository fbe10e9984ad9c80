"""Data: datasets held in memory as uint8 tensors, and batched multi-view augmentation.

``load_dataset(name, split)`` gives an :class:`ImageDataset` (Fashion-MNIST, digits, bundled
photos, image folders); :class:`MultiViewAugment` turns a batch of its images into the global
and local views LeJEPA trains on.
"""

from .datasets import (
    FASHION_MNIST_CLASSES,
    KNOWN_DATASETS,
    DatasetNotFoundError,
    ImageDataset,
    channel_stats,
    load_dataset,
    read_idx,
)
from .views import (
    MultiViewAugment,
    ViewConfig,
    crop_theta,
    eval_transform,
    gaussian_blur,
    to_float,
)

__all__ = [
    "FASHION_MNIST_CLASSES",
    "KNOWN_DATASETS",
    "DatasetNotFoundError",
    "ImageDataset",
    "MultiViewAugment",
    "ViewConfig",
    "channel_stats",
    "crop_theta",
    "eval_transform",
    "gaussian_blur",
    "load_dataset",
    "read_idx",
    "to_float",
]
