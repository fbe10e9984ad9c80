"""PCA maps of ViT patch features: what the encoder sees in each 16 x 16 patch, as colours.

The last-layer patch tokens of every image, ``(N, h, w, F)``, are pooled into one matrix and
reduced by a single PCA (scikit-learn), so a colour means the same thing in every image. The
first three components, min-max scaled over the whole set, become red, green and blue; the map
is smoothly upsampled to the image and saved beside it. With ``foreground=True`` the DINOv2
recipe is followed: the first component, oriented so the object is positive, is thresholded
into a foreground mask, a second PCA is fitted on the foreground patches only, and the
background is drawn black.

Sign rule: a principal component has no sign of its own. Objects sit inside the frame and
backgrounds reach its edges, so the first component is flipped when its mean over the border
patches (the outer ring of every map) is above its mean over the centre patches (the middle
half of rows and columns), pooled over all images (:func:`object_sign`). The threshold is in
standard deviations of that first component over all patches (it has mean 0): ``0`` keeps the
patches above the mean, ``1`` those more than one standard deviation above.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .._checks import integer_at_least
from ..backbones import load_patch_encoder
from ..distributed import resolve_device
from ..model import VIT_HINT, Encoder
from .export import save_png
from .images import load_images


def picture_encoder(
    encoder: Encoder | None,
    checkpoint: str | os.PathLike | None,
    backbone: str | None,
    weights: str | os.PathLike | None,
    model_size: int | None,
    size: int,
    device: str,
) -> Encoder:
    """The encoder a picture asks for, on ``device``: ``encoder`` itself, or the one that
    :func:`~lejepa_viz.backbones.load_patch_encoder` loads at ``model_size`` (default: the
    picture's ``size`` for a timm backbone, the training resolution for a checkpoint)."""
    if encoder is None:
        if model_size is None and backbone is not None and weights is None:
            model_size = size
        encoder = load_patch_encoder(checkpoint, backbone, weights, model_size)
    return encoder.to(resolve_device(device))


def per_patch(
    encoder: Encoder,
    images: torch.Tensor,
    compute,
    batch_size: int = 16,
    desc: str = "patch tokens",
) -> torch.Tensor:
    """``compute(encoder, batch)`` over ``images`` in batches, on the patch grid: ``(N, h, w, *)``
    float32 on the CPU, for a ViT encoder (``compute`` returns ``(B, h·w, *)``).

    ``images`` are ``(N, 3, H, W)`` floats in [0, 1], or uint8 (divided by 255); images of
    another size than the encoder's input are resized to it (antialiased bilinear). Batches go
    to the encoder's device, under bf16 autocast on CUDA; a progress bar shows from 4 batches.
    """
    batch_size = integer_at_least(batch_size, 1, "batch_size")
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or len(images) == 0:
        shape = tuple(getattr(images, "shape", ()))
        raise ValueError(f"images must be a non-empty tensor (N, C, H, W), got shape {shape}")
    if images.shape[1] != encoder.config["in_chans"]:
        raise ValueError(
            f"images must have {encoder.config['in_chans']} channels, got shape "
            f"{tuple(images.shape)}"
        )
    if images.dtype != torch.uint8 and (images.min() < 0 or images.max() > 1):
        raise ValueError(
            f"float images must lie in [0, 1], got values in "
            f"[{images.min().item():.3g}, {images.max().item():.3g}]"
        )
    if not encoder.is_vit:
        name = encoder.config["backbone"]
        raise ValueError(f"patch maps need a ViT backbone ({VIT_HINT}); {name!r} is not one")
    embed = encoder.backbone.patch_embed
    (h, w), in_size = embed.grid_size, tuple(embed.img_size)
    device = next(encoder.parameters()).device
    starts = range(0, len(images), batch_size)
    out = []
    for i in tqdm(starts, desc=desc, unit="batch", disable=len(starts) < 4, leave=False):
        x = images[i : i + batch_size].to(device)
        x = x.float() / 255 if x.dtype == torch.uint8 else x.float()  # (B, 3, H, W)
        if tuple(x.shape[-2:]) != in_size:
            x = F.interpolate(x, size=in_size, mode="bilinear", antialias=True, align_corners=False)
        with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
            out.append(compute(encoder, x).float().cpu())  # (B, h·w, *)
    values = torch.cat(out)
    return values.view(len(images), h, w, *values.shape[2:])


def patch_tokens(encoder: Encoder, images: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """Last-layer patch tokens of a ViT encoder on a grid, ``(N, h, w, F)`` float32 on the CPU
    (images as :func:`per_patch` takes them).

    Example:
        >>> enc = Encoder("test_vit", 3, 64, (0.5,) * 3, (0.5,) * 3).eval()
        >>> patch_tokens(enc, torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 4, 4, 64])
    """
    return per_patch(encoder, images, Encoder.patch_tokens, batch_size)


@dataclass
class PCAMaps:
    """PCA of the patch tokens of N images, on the ``h x w`` patch grid: one PCA for all the
    images (joint) or one for each (per image).

    Attributes:
        components: ``(N, h, w, K)`` projections on the K components that colour the map
            (those of the foreground PCA when ``mask`` is set).
        pc1: ``(N, h, w)`` first component of the PCA of all (the image's) patches, oriented so
            the object is positive (:func:`object_sign`) and standardised (mean 0, std 1).
        mask: ``(N, h, w)`` bool foreground (``pc1 > threshold``), or None.
        explained_variance_ratio: ``(K,)`` of the PCA that gives ``components``; ``(N, K)``
            per image.
        per_image: one PCA per image (colours are scaled per image too).
    """

    components: np.ndarray
    pc1: np.ndarray
    mask: np.ndarray | None
    explained_variance_ratio: np.ndarray
    per_image: bool = False


def object_sign(maps: np.ndarray | torch.Tensor) -> float:
    """+1 or -1: the sign that makes the object positive in first-component maps ``(N, h, w)``.

    The mean over the border patches (the outer ring of every map) must not exceed the mean
    over the centre patches (the middle half of rows and columns); ties keep +1.

    Example:
        >>> maps = -np.pad(np.ones((1, 2, 2)), ((0, 0), (1, 1), (1, 1)))  # object negative
        >>> object_sign(maps)
        -1.0
    """
    maps = np.asarray(maps)
    h, w = maps.shape[-2:]
    border = np.ones((h, w), dtype=bool)
    border[1:-1, 1:-1] = False
    centre = np.zeros((h, w), dtype=bool)
    centre[h // 4 : h - h // 4, w // 4 : w - w // 4] = True
    return 1.0 if maps[:, border].mean() <= maps[:, centre].mean() else -1.0


FITS = ("joint", "per-image")


def fit_pca_maps(
    tokens: torch.Tensor | np.ndarray,
    n_components: int = 3,
    foreground: bool = False,
    threshold: float = 0.0,
    fit: str = "joint",
) -> PCAMaps:
    """PCA of patch tokens for maps: ``fit="joint"``, one PCA over the patches of all images,
    so colours mean the same in every image; ``fit="per-image"``, one PCA for each image on
    its own patches, the paper's recipe (its Fig. 14), so each map shows its image's own parts.

    Args:
        tokens: patch tokens ``(N, h, w, F)`` (:func:`patch_tokens`).
        n_components: components kept, K.
        foreground: mask the background (``pc1 <= threshold``) and refit the K components on
            the foreground patches only (the DINOv2 recipe), so all colours go to the objects.
        threshold: the foreground cut on the standardised first component, in standard
            deviations above its mean over the (image's) patches.
        fit: ``"joint"`` or ``"per-image"``.

    Example:
        >>> maps = fit_pca_maps(np.random.default_rng(0).normal(size=(2, 4, 4, 8)))
        >>> maps.components.shape, maps.pc1.shape, maps.mask, round(float(maps.pc1.std()), 6)
        ((2, 4, 4, 3), (2, 4, 4), None, 1.0)
        >>> fit_pca_maps(np.random.default_rng(0).normal(size=(2, 4, 4, 8)), fit="per-image").pc1.std((1, 2)).round(6).tolist()
        [1.0, 1.0]
    """
    from sklearn.decomposition import PCA

    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    if fit == "per-image":
        if np.ndim(tokens) != 4:
            raise ValueError(f"tokens must have shape (N, h, w, F), got {np.shape(tokens)}")
        fits = [fit_pca_maps(t[None], n_components, foreground, threshold) for t in tokens]
        return PCAMaps(
            np.concatenate([f.components for f in fits]),
            np.concatenate([f.pc1 for f in fits]),
            None if not foreground else np.concatenate([f.mask for f in fits]),
            np.stack([f.explained_variance_ratio for f in fits]),
            per_image=True,
        )

    if isinstance(tokens, torch.Tensor):
        tokens = tokens.detach().cpu()
        tokens = (tokens if tokens.dtype == torch.float64 else tokens.float()).numpy()
    tokens = np.asarray(tokens)
    if tokens.ndim != 4:
        raise ValueError(f"tokens must have shape (N, h, w, F), got {tokens.shape}")
    if not np.isfinite(tokens).all():
        raise ValueError("tokens contain NaN or Inf values")
    N, h, w, dim = tokens.shape
    integer_at_least(n_components, 1, "n_components")
    if n_components > min(N * h * w - 1, dim):
        raise ValueError(
            f"n_components must be at most min(patches - 1, F) = "
            f"{min(N * h * w - 1, dim)}, got {n_components}"
        )
    flat = tokens.reshape(-1, dim)  # (N·h·w, F): every patch of every image
    # with a foreground, only PC1 of all patches is used (the mask); the colours come after
    pca = PCA(n_components=1 if foreground else n_components, random_state=0).fit(flat)
    proj = pca.transform(flat)  # (N·h·w, K)
    proj[:, 0] *= object_sign(proj[:, 0].reshape(N, h, w))
    pc1 = proj[:, 0] / max(float(proj[:, 0].std()), 1e-12)
    ratio, mask = pca.explained_variance_ratio_, None
    if foreground:
        mask = pc1 > threshold
        if mask.sum() <= n_components:
            raise ValueError(
                f"threshold={threshold} leaves {int(mask.sum())} foreground patches; "
                f"the foreground PCA needs more than {n_components}: lower it"
            )
        fg = PCA(n_components=n_components, random_state=0).fit(flat[mask])
        proj, ratio = fg.transform(flat), fg.explained_variance_ratio_
        mask = mask.reshape(N, h, w)
    return PCAMaps(
        proj.reshape(N, h, w, n_components).astype(np.float32),
        pc1.reshape(N, h, w).astype(np.float32),
        mask,
        ratio.astype(np.float32),
    )


def to_rgb(maps: PCAMaps, size: int) -> np.ndarray:
    """The first three components as RGB images ``(N, size, size, 3)`` uint8.

    Each component is min-max scaled to [0, 1] over all images' patches (over each image's for
    per-image maps; over the foreground patches when masked), so under a joint fit one feature
    gets one colour everywhere; masked-out patches are black. The ``h x w`` maps are upsampled bicubically, so the map is smooth.

    Example:
        >>> rgb = to_rgb(fit_pca_maps(np.random.default_rng(0).normal(size=(2, 4, 4, 8))), 16)
        >>> rgb.shape, rgb.dtype, int(rgb.min()), int(rgb.max())
        ((2, 16, 16, 3), dtype('uint8'), 0, 255)
    """
    integer_at_least(size, 1, "size")
    if maps.components.shape[-1] < 3:
        raise ValueError(f"to_rgb needs 3 components, got {maps.components.shape[-1]}")
    comps = maps.components[..., :3]  # (N, h, w, 3)
    groups = [slice(i, i + 1) for i in range(len(comps))] if maps.per_image else [slice(None)]
    scaled = np.empty_like(comps)
    for group in groups:  # all images at once (joint), or each image on its own
        part = comps[group]
        keep = part if maps.mask is None else part[maps.mask[group]]
        lo, hi = keep.reshape(-1, 3).min(0), keep.reshape(-1, 3).max(0)
        scaled[group] = np.clip((part - lo) / np.where(hi > lo, hi - lo, 1), 0, 1)
    if maps.mask is not None:
        scaled = scaled * maps.mask[..., None]
    grid = torch.from_numpy(scaled).float().permute(0, 3, 1, 2)  # (N, 3, h, w)
    up = F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=False)
    return (up.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def montage(images: torch.Tensor | np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """Images above their maps: ``(N, 3, S, S)`` uint8 and ``(N, S, S, 3)`` -> ``(2S, N·S, 3)``.

    Example:
        >>> montage(np.zeros((2, 3, 4, 4), np.uint8), np.ones((2, 4, 4, 3), np.uint8)).shape
        (8, 8, 3)
    """
    pixels = np.asarray(images).transpose(0, 2, 3, 1)
    rgb = np.asarray(rgb)
    if pixels.shape != rgb.shape:
        raise ValueError(
            f"images (N, 3, S, S) and rgb (N, S, S, 3) must match, got "
            f"{tuple(np.shape(images))} and {rgb.shape}"
        )
    return np.concatenate([np.concatenate(list(pixels), 1), np.concatenate(list(rgb), 1)], 0)


def save_pairs(
    names: Sequence[str],
    images: torch.Tensor | np.ndarray,
    rgb: np.ndarray,
    out_dir: str | os.PathLike,
) -> list[Path]:
    """Write ``out_dir/<name>.png``: each image and its map side by side, ``(S, 2·S, 3)``.

    Args:
        names: N file names (characters other than letters, digits, ``-``, ``_`` and ``.``
            become ``_``).
        images: ``(N, 3, S, S)`` uint8, as :func:`~lejepa_viz.viz.images.load_images` gives.
        rgb: ``(N, S, S, 3)`` uint8 maps (:func:`to_rgb`).
        out_dir: created when missing; each PNG is written atomically.

    Example:
        >>> import tempfile
        >>> images = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
        >>> paths = save_pairs(["a b"], images, np.full((1, 8, 8, 3), 255, np.uint8),
        ...                    tempfile.mkdtemp())
        >>> paths[0].name
        'a_b.png'
    """
    pixels = (
        images.permute(0, 2, 3, 1).cpu().numpy()
        if isinstance(images, torch.Tensor)
        else np.asarray(images).transpose(0, 2, 3, 1)
    )
    if pixels.shape != np.shape(rgb) or len(names) != len(pixels):
        raise ValueError(
            f"need N names, images (N, 3, S, S) and rgb (N, S, S, 3) of one N and "
            f"S, got {len(names)} names, {tuple(images.shape)} and "
            f"{np.shape(rgb)}"
        )
    stems = [
        "".join(c if c.isalnum() or c in "-_." else "_" for c in n).strip(".") or "image"
        for n in names
    ]
    if len(set(stems)) != len(stems):
        raise ValueError(f"names must give distinct file names, got {list(names)}")
    out_dir = Path(out_dir)
    return [
        save_png(np.concatenate([img, m], axis=1), out_dir / f"{stem}.png")
        for stem, img, m in zip(stems, pixels, rgb, strict=True)
    ]


def pca_maps(
    source: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    *,
    checkpoint: str | os.PathLike | None = None,
    backbone: str | None = None,
    weights: str | os.PathLike | None = None,
    encoder: Encoder | None = None,
    out_dir: str | os.PathLike,
    size: int = 224,
    fit: str = "joint",
    foreground: bool = False,
    threshold: float = 0.0,
    model_size: int | None = None,
    batch_size: int = 16,
    device: str = "auto",
) -> list[Path]:
    """PCA maps of patch features for images, saved as ``out_dir/<name>.png`` pairs.

    The library call behind ``lejepa-viz pca --images PATH... [--checkpoint FILE |
    --backbone NAME [--weights FILE]] --out DIR``.

    Args:
        source: images (see :func:`~lejepa_viz.viz.images.load_images`); None: the bundled
            photos.
        checkpoint, backbone, weights: the encoder (see
            :func:`~lejepa_viz.backbones.load_patch_encoder`).
        encoder: a ViT encoder already loaded, instead of those three.
        out_dir: where the PNGs go.
        size: side of the images and maps in pixels.
        fit: ``"joint"`` (one PCA for all images) or ``"per-image"`` (the paper's).
        foreground: black background, colours refitted on the foreground (DINOv2 recipe).
        threshold: foreground cut in standard deviations of the first component.
        model_size: the encoder's input resolution; default ``size`` for a backbone, the
            training resolution for a checkpoint.
        batch_size: images per forward pass.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ...

    Returns:
        The paths written, one per image.
    """
    names, images = load_images(source, size)
    encoder = picture_encoder(encoder, checkpoint, backbone, weights, model_size, size, device)
    tokens = patch_tokens(encoder, images, batch_size)
    maps = fit_pca_maps(tokens, foreground=foreground, threshold=threshold, fit=fit)
    return save_pairs(names, images, to_rgb(maps, size), out_dir)
