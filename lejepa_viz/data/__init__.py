"""Data: image decoding, datasets held in memory as uint8 tensors, batched multi-view views.

``load_dataset(name, split)`` gives an :class:`ImageDataset` (Fashion-MNIST, digits, bundled
photos, image folders); :class:`MultiViewAugment` turns a batch of its images into the global
and local views LeJEPA trains on; :mod:`.decode` turns files (IDX, images, videos) into arrays.
"""

from .datasets import (
    FASHION_MNIST_CLASSES,
    KNOWN_DATASETS,
    PHOTO_NAMES,
    DatasetNotFoundError,
    ImageDataset,
    channel_stats,
    load_dataset,
    photo_original,
)
from .decode import (
    IMAGE_EXTENSIONS,
    decode_image,
    find_images,
    read_idx,
    read_image,
    read_video,
    square_rgb,
)
from .views import MultiViewAugment, ViewConfig, crop_theta, gaussian_blur, to_float

__all__ = [
    "FASHION_MNIST_CLASSES",
    "IMAGE_EXTENSIONS",
    "KNOWN_DATASETS",
    "PHOTO_NAMES",
    "DatasetNotFoundError",
    "ImageDataset",
    "MultiViewAugment",
    "ViewConfig",
    "channel_stats",
    "crop_theta",
    "decode_image",
    "find_images",
    "gaussian_blur",
    "load_dataset",
    "photo_original",
    "read_idx",
    "read_image",
    "read_video",
    "square_rgb",
    "to_float",
]
