"""Writing pictures: GIF (loops forever), MP4 (with imageio-ffmpeg), PNG; always atomically.

Every writer renders to a temporary file beside the target and renames it into place
(:func:`lejepa_viz.runs.atomic_path`), so an interrupted or failed export never leaves a
half-written file (e.g. in ``eval/``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import imageio.v3 as iio
import numpy as np

from ..runs import atomic_path

ANIMATION_SUFFIXES = (".gif", ".mp4")


class Drawn(NamedTuple):
    """What every picture entry point returns, and what the CLI and the gallery print: the file
    written, its numbers (the ones that say the picture shows what it is named for), and
    ``summary``, those numbers in one sentence."""

    path: Path
    summary: str
    numbers: dict


def figure_to_array(fig) -> np.ndarray:
    """The RGB pixels ``(H, W, 3)`` uint8 of a matplotlib figure, drawn now."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def _frames(frames: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Validate frames: a non-empty stack of equal-sized RGB uint8 images ``(F, H, W, 3)``."""
    if len(frames) == 0:
        raise ValueError("no frames to write")
    shapes = {np.shape(f) for f in frames}
    if len(shapes) != 1:
        raise ValueError(f"all frames must have one size, got {sorted(shapes)}")
    stack = np.stack([np.asarray(f) for f in frames])
    if stack.ndim != 4 or stack.shape[-1] != 3 or stack.dtype != np.uint8:
        raise ValueError(
            f"frames must be RGB uint8 images (H, W, 3), got {stack.dtype} {stack.shape[1:]}"
        )
    return stack


def animation_path(path: str | os.PathLike) -> Path:
    """``path`` as a Path, checked to name a ``.gif`` or ``.mp4`` (call it before rendering)."""
    path = Path(path)
    if path.suffix.lower() not in ANIMATION_SUFFIXES:
        raise ValueError(f"animation file must end in {' or '.join(ANIMATION_SUFFIXES)}: {path}")
    return path


def save_animation(
    frames: Sequence[np.ndarray] | np.ndarray, path: str | os.PathLike, duration_ms: float = 100
) -> Path:
    """Write ``frames`` (each ``(H, W, 3)`` uint8) as an animation at ``path``.

    ``.gif``: loops forever, ``duration_ms`` per frame. ``.mp4``: H.264 at ``1000 /
    duration_ms`` frames per second through imageio-ffmpeg (a clear error when it is missing).
    Pillow merges consecutive identical GIF frames into one longer frame.

    Example:
        >>> import tempfile
        >>> frames = np.zeros((3, 8, 8, 3), np.uint8) + np.uint8([0, 90, 180])[:, None, None, None]
        >>> out = save_animation(frames, Path(tempfile.mkdtemp()) / "a.gif")
        >>> iio.improps(out).shape[0]
        3
    """
    path = animation_path(path)
    stack = _frames(frames)
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".gif":
            iio.imwrite(tmp, stack, extension=".gif", duration=duration_ms, loop=0)
        else:
            try:
                import imageio_ffmpeg  # noqa: F401
            except ImportError as err:
                raise RuntimeError(
                    f"writing {path} needs imageio-ffmpeg (pip install imageio-ffmpeg); "
                    "or ask for a .gif"
                ) from err
            even = stack[:, : stack.shape[1] // 2 * 2, : stack.shape[2] // 2 * 2]  # yuv420p
            iio.imwrite(
                tmp,
                even,
                extension=".mp4",
                plugin="FFMPEG",
                fps=1000 / duration_ms,
                macro_block_size=1,
            )
    return path


def save_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write one RGB uint8 image ``(H, W, 3)`` as a PNG at ``path``."""
    path = Path(path)
    (image,) = _frames([image])
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, image, extension=".png")
    return path


def check_pairs(names: Sequence[str], images) -> list[str]:
    """The file stems of ``names`` for N images ``(N, ...)``: characters other than letters,
    digits, ``-``, ``_`` and ``.`` become ``_``. Refuses a count that differs from the
    images' or names that give one file name twice.

    Example:
        >>> check_pairs(["a b", "c"], np.zeros((2, 3, 4, 4)))
        ['a_b', 'c']
    """
    if len(names) != len(images):
        raise ValueError(f"need one name per image, got {len(names)} for {len(images)}")
    stems = [
        "".join(c if c.isalnum() or c in "-_." else "_" for c in n).strip(".") or "image"
        for n in names
    ]
    if len(set(stems)) != len(stems):
        raise ValueError(f"names must give distinct file names, got {list(names)}")
    return stems


def save_pairs(
    names: Sequence[str],
    images: np.ndarray,
    rgb: np.ndarray,
    out_dir: str | os.PathLike,
) -> list[Path]:
    """Write ``out_dir/<name>.png``: each image and its map side by side, ``(S, 2·S, 3)``.

    Args:
        names: N file names (characters other than letters, digits, ``-``, ``_`` and ``.``
            become ``_``).
        images: ``(N, 3, S, S)`` uint8 (a tensor or an array), as
            :func:`~lejepa_viz.viz.images.load_images` gives.
        rgb: ``(N, S, S, 3)`` uint8 maps (:func:`to_rgb`).
        out_dir: created when missing; each PNG is written atomically.

    Example:
        >>> import tempfile
        >>> images = np.zeros((1, 3, 8, 8), np.uint8)
        >>> paths = save_pairs(["a b"], images, np.full((1, 8, 8, 3), 255, np.uint8),
        ...                    tempfile.mkdtemp())
        >>> paths[0].name
        'a_b.png'
    """
    pixels = np.asarray(images).transpose(0, 2, 3, 1)
    if pixels.shape != np.shape(rgb):
        raise ValueError(
            f"images (N, 3, S, S) and rgb (N, S, S, 3) must match, got {pixels.shape} and "
            f"{np.shape(rgb)}"
        )
    stems = check_pairs(names, images)
    out_dir = Path(out_dir)
    return [
        save_png(np.concatenate([img, m], axis=1), out_dir / f"{stem}.png")
        for stem, img, m in zip(stems, pixels, rgb, strict=True)
    ]
