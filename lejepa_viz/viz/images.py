"""Image input for the patch-feature pictures: bundled photos, image files or image folders.

:func:`load_images` turns what a user points at (nothing, files, folders) into names and one
``(N, 3, S, S)`` uint8 tensor, decoded exactly as :mod:`lejepa_viz.data.decode` decodes
the datasets' image folders (shorter side resized, center-cropped, EXIF orientation applied). Unlike a
training folder, where a stray greyscale image is simply converted, an image given here to be
*looked at* must be 8-bit colour: greyscale, transparent and 16-bit images are refused with a
message that says how to convert them, so no map is silently drawn from a picture that is not
what the user has on screen. Colour palette images (GIF, 8-bit PNG) and images whose alpha
channel is fully opaque are converted to RGB silently: nothing is lost.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .._checks import integer_at_least
from ..data import IMAGE_EXTENSIONS, decode_image, find_images, load_dataset

PathLike = str | os.PathLike
_TO_RGB = 'PIL.Image.open(f).convert("RGB").save(...)'
_16_TO_RGB = (
    'PIL.Image.fromarray((np.asarray(PIL.Image.open(f)) // 257).astype("uint8"))'
    '.convert("RGB").save(...) (a plain .convert("RGB") clips 16-bit values at 255)'
)


def image_files(source: PathLike | Sequence[PathLike]) -> list[tuple[Path, str]]:
    """The image files of ``source`` with a display name each, in a stable order.

    Args:
        source: an image file, a folder, or a list of them (kept in the order given).
            Folders are searched recursively (ImageNet / Imagenette layout ``class/xxx.JPEG``
            included) for the extensions of ``IMAGE_EXTENSIONS`` in any case, skipping hidden
            files, and their images sorted in natural order (``img2`` before ``img10``).

    Returns:
        ``[(path, name)]``: a file's name is its stem; a folder's images are named by their
        path inside the folder, ``/`` replaced by ``_`` (``n01440764_ILSVRC2012_val_0001``).
        Repeated names get ``-2``, ``-3``, ... appended.

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: a folder holds no image files.
    """
    sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if not sources:
        raise ValueError("source is an empty list; pass image files or a folder of images")
    found: list[tuple[Path, str]] = []
    for src in sources:
        path = Path(src).expanduser()
        if path.is_file():
            found.append((path, path.stem))
        elif path.is_dir():
            files = find_images(path)
            if not files:
                exts = " ".join(sorted(IMAGE_EXTENSIONS))
                raise ValueError(
                    f"no images found in folder {path} (searched recursively for {exts}, any "
                    "case); put image files there or pass the files themselves"
                )
            found += [(p, "_".join(p.relative_to(path).with_suffix("").parts)) for p in files]
        else:
            raise FileNotFoundError(
                f"image path {path} does not exist; pass image files or a folder of images"
            )
    seen: dict[str, int] = {}
    named = []
    for path, name in found:
        seen[name] = seen.get(name, 0) + 1
        named.append((path, name if seen[name] == 1 else f"{name}-{seen[name]}"))
    return named


def read_image(path: PathLike, size: int = 224) -> np.ndarray:
    """One 8-bit colour image file as ``(size, size, 3)`` uint8: shorter side resized to
    ``size``, center-cropped.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: naming the file, when it cannot be decoded, or is greyscale (PIL modes
            1, L, LA, or a palette of greys), has transparent pixels (RGBA, LA, PA, or a
            palette with a transparent colour) or has 16/32-bit samples (I;16, I, F); the
            message says how to convert it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file {path} does not exist")
    try:
        with Image.open(path) as im:
            problem = _colour_problem(im)
            if not problem:  # decoded from the same open file, as the datasets decode
                return decode_image(im, size)
    except Exception as err:  # not an image, truncated, a decompression bomb, ...
        raise ValueError(
            f"cannot read image file {path} ({type(err).__name__}: {err}); re-save it in a "
            "common format (JPEG, PNG) or leave it out"
        ) from err
    raise ValueError(f"image file {path}: {problem}")


def load_images(
    source: PathLike | Sequence[PathLike] | None = None, size: int = 224
) -> tuple[list[str], torch.Tensor]:
    """Names and pixels of the images to draw maps for.

    Args:
        source: ``None`` for the bundled photos (``load_dataset("photos")``), else an image
            file, a folder (searched recursively) or a list of them; see :func:`image_files`
            and :func:`read_image` for the order, the names and which images are refused.
        size: side of the square images (shorter side resized, center-cropped).

    Returns:
        ``(names, images)``: ``N`` names and ``(N, 3, size, size)`` uint8 images.

    Example:
        >>> names, images = load_images(size=32)
        >>> names[:2], tuple(images.shape[1:]), images.dtype
        (['astronaut', 'chelsea'], (3, 32, 32), torch.uint8)
    """
    integer_at_least(size, 1, "size")
    if source is None:
        ds = load_dataset("photos", image_size=size)
        return list(ds.classes), ds.images
    files = image_files(source)
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        arrays = list(pool.map(read_image, [p for p, _ in files], [size] * len(files)))
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()  # (N, 3, S, S)
    return [name for _, name in files], images


def _colour_problem(im: Image.Image) -> str | None:
    """What keeps ``im`` from being an 8-bit colour image, with the fix; None when it is one."""
    mode = im.mode
    if mode.startswith("I") or mode == "F":
        return (
            f"image with 16/32-bit samples (PIL mode {mode!r}); convert it to 8-bit RGB, "
            f"e.g. {_16_TO_RGB}"
        )
    grey = mode in ("1", "L", "LA", "La")
    if mode in ("P", "PA"):
        rgb = np.asarray(im.convert("RGB"))
        grey = bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
    if grey:
        return (
            f"greyscale image (PIL mode {mode!r}); the maps are drawn for colour photos. "
            f"To use it anyway, convert it to RGB: {_TO_RGB}"
        )
    if "A" in im.getbands() or "a" in im.getbands() or "transparency" in im.info:
        alpha = im.convert("RGBA").getchannel("A")
        if alpha.getextrema()[0] < 255:
            return (
                f"image with transparent pixels (PIL mode {mode!r}); flatten it onto a "
                f"background first, e.g. {_TO_RGB} (which drops the alpha channel)"
            )
    return None
