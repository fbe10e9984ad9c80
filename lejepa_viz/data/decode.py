"""Decoding files into arrays: IDX (the MNIST format), images, image folders and videos.

The one place where bytes on disk become pixels, shared by the datasets (:mod:`.datasets`)
and the pictures (:mod:`lejepa_viz.viz`): every image is decoded the same way, EXIF
orientation applied, shorter side resized, center-cropped to a square of 8-bit RGB.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from .._checks import integer_at_least

IMAGE_EXTENSIONS = frozenset(".jpg .jpeg .png .bmp .gif .tif .tiff .webp .ppm .pgm".split())
_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not, checking its header.

    Raises:
        ValueError: naming the file when it is unreadable, its magic number is wrong, or its
            length disagrees with the shape in its header.

    Example:
        >>> import tempfile
        >>> f = Path(tempfile.mkdtemp()) / "x.idx"
        >>> _ = f.write_bytes(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6)))
        >>> read_idx(f).tolist()
        [[0, 1, 2], [3, 4, 5]]
    """
    path = Path(path)
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        raise ValueError(f"cannot read IDX file {path}: {err}") from err
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _IDX_DTYPES:
        raise ValueError(f"corrupt IDX file {path}: bad magic number {data[:4].hex() or 'empty'}")
    ndim, header = data[3], 4 + 4 * data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = header + math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(
            f"corrupt IDX file {path}: header says shape {shape} ({expected} bytes), "
            f"the file has {len(data)} bytes"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(shape).copy()


def square_rgb(im: Image.Image, size: int) -> np.ndarray:
    """``(size, size, 3)`` uint8: 8-bit RGB, shorter side resized to ``size`` (antialiased
    bilinear), center-cropped. 16-bit and float images are scaled to 8 bits, transparent
    ones flattened onto white.

    Example:
        >>> square_rgb(Image.new("L", (40, 20), 128), 10).shape
        (10, 10, 3)
    """
    if im.mode.startswith("I") or im.mode == "F":  # 16/32-bit integer or float greyscale
        a = np.asarray(im, dtype=np.float64)
        if im.mode.startswith("I;16") or a.max() > 255:
            a = a / 257 if a.max() <= 65535 else (a - a.min()) * 255 / max(np.ptp(a), 1e-12)
        elif im.mode == "F" and a.max() <= 1:
            a = a * 255
        im = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))
    if "A" in im.getbands() or (im.mode == "P" and "transparency" in im.info):
        im = Image.alpha_composite(Image.new("RGBA", im.size, "white"), im.convert("RGBA"))
    im = im.convert("RGB")
    w, h = im.size
    scale = size / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    im = im.resize((new_w, new_h), Image.Resampling.BILINEAR)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return np.asarray(im.crop((left, top, left + size, top + size)))


def decode_image(im: Image.Image, size: int) -> np.ndarray:
    """An opened image as :func:`square_rgb` of its upright view (EXIF orientation applied);
    large JPEGs are decoded at a reduced scale first (when not yet loaded)."""
    im.draft(None, (size, size))  # JPEG: decode at 1/2, 1/4 or 1/8 scale when large
    return square_rgb(ImageOps.exif_transpose(im), size)


def read_image(path: str | os.PathLike, size: int) -> np.ndarray:
    """One image file as ``(size, size, 3)`` uint8 (see :func:`decode_image`).

    Raises:
        ValueError: naming the file when it cannot be decoded (not an image, truncated,
            a decompression bomb, ...).
    """
    try:
        with Image.open(path) as im:
            return decode_image(im, size)
    except Exception as err:
        raise ValueError(f"cannot read image file {path} ({type(err).__name__}: {err})") from err


def find_images(folder: str | os.PathLike) -> list[Path]:
    """The image files below ``folder``, recursively, in natural order (``img2`` < ``img10``).

    Files with an extension of :data:`IMAGE_EXTENSIONS` in any case; hidden files and folders
    (``.x``, macOS ``._x.jpg``) are left out. An empty list when there are none.
    """
    folder = Path(folder)
    files = [
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and p.is_file()
    ]
    return sorted(files, key=lambda p: _natural(p.relative_to(folder)))


def _natural(relative: Path) -> list:
    """Sort key: digit runs compare as numbers (``frame2`` < ``frame10``)."""
    parts = re.split(r"(\d+)", relative.as_posix().lower())
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts]


def read_video(
    path: str | os.PathLike, max_frames: int | None = None, size: int = 224, every: int = 1
) -> torch.Tensor:
    """Frames of a video file as ``(F, 3, size, size)`` uint8 (shorter side resized to
    ``size``, center-cropped), through imageio's FFMPEG plugin (imageio-ffmpeg).

    Args:
        path: any video ffmpeg reads (mp4, mov, webm, avi, gif, ...).
        max_frames: stop after this many frames (None: all).
        size: side of the square frames.
        every: keep every ``every``-th frame (2 halves the frame rate).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file cannot be decoded or holds no frames.
    """
    import imageio.v3 as iio

    integer_at_least(size, 1, "size")
    integer_at_least(every, 1, "every")
    if max_frames is not None:
        integer_at_least(max_frames, 1, "max_frames")
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"video file {path} does not exist")
    frames = []
    try:
        reader = iio.imiter(path, plugin="FFMPEG")
        try:
            for i, frame in enumerate(reader):  # (H, W, 3) uint8
                if i % every == 0:
                    frames.append(square_rgb(Image.fromarray(frame), size))
                if max_frames is not None and len(frames) >= max_frames:
                    break
        finally:
            reader.close()  # stops the ffmpeg process when we leave early
    except Exception as err:
        raise ValueError(
            f"cannot read video file {path} ({type(err).__name__}: {err}); is it a video "
            "ffmpeg can decode?"
        ) from err
    if not frames:
        raise ValueError(f"video file {path} holds no frames")
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()
