"""The patch-feature video: each frame beside what a ViT attends to, or its first component.

Frames come from a video file (imageio-ffmpeg), a folder of frame images, or, by default, a
smooth camera path that pans and zooms across a bundled photo (:func:`camera_path`). With a
[CLS] token the map is the paper's (Fig. 13): the last block's [CLS] attention thresholded into
a mask, drawn over the frame. Otherwise (or with ``method="pca"``) one PCA is fitted over the
patches of *all* frames, so the heat means the same in every frame; its first component,
oriented so the object is positive (:func:`~lejepa_viz.viz.pca.object_sign`) and clipped at the
threshold, is drawn per patch in the inferno colour map on black, blocky as the patches are.
:func:`video_gif` writes the looping GIF behind ``lejepa-viz video``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .._checks import integer_at_least, positive
from ..data import photo_original
from ..model import Encoder
from .attention import KEEP, attention_pictures, check_keep, heat_blocks
from .export import Drawn, animation_path, save_animation
from .images import image_files, load_images
from .patches import attention_maps, check_images, patch_tokens
from .pca import fit_pca_maps

DEFAULT_PHOTO = "astronaut"  # 512 x 512, the sharpest bundled photo: a 2x zoom stays sharp


def read_frames(
    folder: str | os.PathLike, size: int = 224, max_frames: int | None = None
) -> torch.Tensor:
    """The image files of ``folder`` as frames ``(F, 3, size, size)`` uint8, in natural order
    (``frame2`` before ``frame10``), the first ``max_frames`` of them (None: all), read by
    :func:`~lejepa_viz.viz.images.load_images`'s rules (recursive, colour images only)."""
    if not Path(folder).expanduser().is_dir():
        raise ValueError(f"frames folder {folder} is not a folder of image files")
    if max_frames is not None:
        integer_at_least(max_frames, 1, "max_frames")
    files = [path for path, _ in image_files(folder)][:max_frames]
    return load_images(files, size)[1]


def camera_path(
    image: str | np.ndarray = DEFAULT_PHOTO,
    num_frames: int = 60,
    size: int = 224,
    seed: int = 0,
    zoom: float = 2.0,
) -> torch.Tensor:
    """A smooth, looping camera path that pans and zooms across one photo.

    The square view zooms from the whole photo (its shorter side) in to ``1 / zoom`` of it and
    back, once per loop, while its centre follows a Lissajous curve (one and two turns per
    loop, phases drawn from ``seed``) inside the photo. Each view is cut from the original at
    sub-pixel positions and resized with Lanczos filtering, so motion is smooth and the zoom
    stays sharp while the view has at least ``size`` pixels of the original.

    Args:
        image: a bundled photo name (see :func:`~lejepa_viz.data.datasets.photo_original`) or an
            ``(H, W, 3)`` uint8 array.
        num_frames: frames in one loop.
        size: side of the square frames.
        seed: the path's phases.
        zoom: the largest magnification, >= 1.

    Returns:
        ``(num_frames, 3, size, size)`` uint8 frames; the last leads smoothly into the first.

    Example:
        >>> frames = camera_path("chelsea", num_frames=4, size=32)
        >>> frames.shape, frames.dtype, bool((frames[0] != frames[1]).any())
        (torch.Size([4, 3, 32, 32]), torch.uint8, True)
    """
    integer_at_least(num_frames, 1, "num_frames")
    integer_at_least(size, 1, "size")
    if positive(zoom, "zoom") < 1:
        raise ValueError(f"zoom must be >= 1, got {zoom}")
    pixels = photo_original(image) if isinstance(image, str) else np.asarray(image)
    if pixels.ndim != 3 or pixels.shape[-1] != 3 or pixels.dtype != np.uint8:
        raise ValueError(f"image must be a photo name or (H, W, 3) uint8, got {pixels.shape}")
    photo = Image.fromarray(pixels)
    W, H = photo.size
    rng = np.random.default_rng(seed)
    phase_x, phase_y = rng.uniform(0, 2 * math.pi, size=2)
    frames = []
    for k in range(num_frames):
        t = 2 * math.pi * k / num_frames  # one loop
        side = min(W, H) / (1 + (zoom - 1) * (1 - math.cos(t)) / 2)  # view side in pixels
        u = 0.5 + 0.5 * math.sin(t + phase_x)  # where the view sits in the free room, 0..1
        v = 0.5 + 0.5 * math.sin(2 * t + phase_y)
        left, top = u * (W - side), v * (H - side)
        box = (left, top, left + side, top + side)
        view = photo.resize((size, size), Image.Resampling.LANCZOS, box=box)
        frames.append(np.asarray(view))
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()


METHODS = ("attention", "pca")


def patch_video(
    frames: torch.Tensor,
    encoder: Encoder,
    *,
    method: str = "pca",
    threshold: float = 0.0,
    keep: float = KEEP,
    colormap: str = "inferno",
    batch_size: int = 16,
) -> list[np.ndarray]:
    """Each frame beside what the ViT sees in it, patch by patch.

    ``method="attention"`` (the paper's Fig. 13, the original demo GIFs): the [CLS] attention
    mask (:func:`~lejepa_viz.viz.attention.attention_masks`: the patches holding ``keep`` of
    the last block's attention, mean over heads), their attention as a heat map on black.
    ``method="pca"``: a heat map of the first principal component of the patch tokens above
    ``threshold``, one PCA over all frames.

    Args:
        frames: ``(F, 3, H, W)`` uint8 frames.
        encoder: a ViT encoder (``lejepa_viz.load_encoder``); frames of another size are
            resized to its input.
        method: ``"attention"`` (needs a [CLS] token) or ``"pca"``.
        threshold: PCA: patches at or below it (in standard deviations of the first component
            over all frames' patches) are black; 0 = the mean.
        keep: attention: the share of the attention mass the mask holds.
        colormap: PCA: a matplotlib colour map, scaled by the 99th percentile over all frames.
        batch_size: frames per forward pass.

    Returns:
        F frames ``(H, 2·W, 3)`` uint8: the frame, then its map, one block per patch.

    Example:
        >>> enc = Encoder.build("test_vit", 3, 64, (0.5,) * 3, (0.5,) * 3).eval()
        >>> out = patch_video(camera_path("chelsea", num_frames=2, size=64), enc)
        >>> len(out), out[0].shape, out[0].dtype
        (2, (64, 128, 3), dtype('uint8'))
    """
    if not isinstance(frames, torch.Tensor) or frames.dtype != torch.uint8 or frames.ndim != 4:
        raise ValueError(
            "frames must be uint8 of shape (F, 3, H, W), got "
            f"{getattr(frames, 'dtype', type(frames))} {tuple(frames.shape)}"
        )
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    pictures = frames.permute(0, 2, 3, 1).numpy()
    if method == "attention":
        maps = attention_maps(encoder, frames, batch_size)
        blocks = attention_pictures(maps, keep, tuple(frames.shape[-2:]))
    else:
        tokens = patch_tokens(encoder, frames, batch_size)  # (F, h, w, C)
        pc1 = fit_pca_maps(tokens, n_components=1).pc1  # (F, h, w), joint PCA, object positive
        heat = np.clip(pc1 - threshold, 0, None)
        blocks = heat_blocks(heat, heat > 0, tuple(frames.shape[-2:]), colormap)
    return [np.concatenate([p, b], axis=1) for p, b in zip(pictures, blocks, strict=True)]


def video_gif(
    encoder: Encoder,
    frames: torch.Tensor,
    out: str | os.PathLike,
    *,
    method: str | None = None,
    threshold: float = 0.0,
    keep: float = KEEP,
    duration_ms: float = 100,
) -> Drawn:
    """The patch-feature video as a looping GIF (or MP4): frame | its attention mask or map.

    The library call behind ``lejepa-viz video``.

    Args:
        encoder: a ViT encoder (``lejepa_viz.load_encoder``).
        frames: ``(F, 3, H, W)`` uint8 frames: :func:`camera_path` across a photo,
            :func:`read_frames` of a folder, or ``lejepa_viz.data.read_video`` of a file.
        out: ``.gif`` (loops forever) or ``.mp4``, written atomically.
        method: ``"attention"`` or ``"pca"`` (see :func:`patch_video`); None: attention for a
            ViT with a [CLS] token, else PCA.
        threshold: PCA heat-map cut (see :func:`patch_video`).
        keep: the attention mass the mask holds.
        duration_ms: display time of each frame.
    """
    out = animation_path(out)  # a wrong suffix fails before any work
    keep = check_keep(keep)
    method = method or ("attention" if encoder.has_cls else "pca")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    check_images(encoder, frames)
    pictures = patch_video(frames, encoder, method=method, threshold=threshold, keep=keep)
    path = save_animation(pictures, out, duration_ms)
    what = "[CLS] attention mask" if method == "attention" else "first principal component"
    summary = f"{len(pictures)} frames, each beside its {what}"
    return Drawn(path, summary, {"frames": len(pictures), "method": method})
