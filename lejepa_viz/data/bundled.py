"""Images that ship with scikit-image and scikit-learn, by name: the photos (a dataset and the
pictures' default subjects) and the textures the scene world paints its backgrounds and objects
with (:mod:`.scenes`). Nothing here needs a network.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .decode import square_rgb

PHOTO_NAMES = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle", "china", "flower")


def photo_original(name: str) -> np.ndarray:
    """A bundled photo at its original resolution, ``(H, W, 3)`` uint8.

    Names (:data:`PHOTO_NAMES`, the class names of ``load_dataset("photos")``): astronaut
    (512 x 512), chelsea, coffee, rocket, motorcycle (scikit-image), china, flower (scikit-learn).

    Example:
        >>> photo_original("astronaut").shape
        (512, 512, 3)
    """
    from skimage import data
    from sklearn.datasets import load_sample_image

    loaders = {
        "astronaut": data.astronaut,
        "chelsea": data.chelsea,
        "coffee": data.coffee,
        "rocket": data.rocket,
        "motorcycle": lambda: data.stereo_motorcycle()[0],
        "china": lambda: load_sample_image("china.jpg"),
        "flower": lambda: load_sample_image("flower.jpg"),
    }
    if name not in loaders:
        raise ValueError(f"unknown bundled photo {name!r}; known: {', '.join(PHOTO_NAMES)}")
    return np.ascontiguousarray(loaders[name]())


# Textures for the scene world's backgrounds and object fills: two pools that share no source.
TRAIN_TEXTURES = ("brick", "grass", "gravel", "moon", "hubble_deep_field", "text", "clock")
TEST_TEXTURES = ("camera", "coins", "cell", "page", "immunohistochemistry", "retina")


def texture_original(name: str) -> np.ndarray:
    """A bundled scikit-image texture at its original resolution as ``(H, W, 3)`` uint8 (grey
    ones repeated over the three channels): :data:`TRAIN_TEXTURES` or :data:`TEST_TEXTURES`.

    Example:
        >>> texture_original("brick").shape
        (512, 512, 3)
    """
    from skimage import data

    if name not in TRAIN_TEXTURES + TEST_TEXTURES:
        known = ", ".join(TRAIN_TEXTURES + TEST_TEXTURES)
        raise ValueError(f"unknown bundled texture {name!r}; known: {known}")
    pixels = np.asarray(getattr(data, name)())
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=-1)
    return np.ascontiguousarray(pixels[..., :3].astype(np.uint8))


def textures(names, size: int = 256) -> torch.Tensor:
    """The textures ``names`` as one ``(P, 3, size, size)`` uint8 tensor (shorter side resized,
    centre-cropped)."""
    squares = [square_rgb(Image.fromarray(texture_original(n)), size) for n in names]
    return torch.from_numpy(np.stack(squares)).permute(0, 3, 1, 2).contiguous()
