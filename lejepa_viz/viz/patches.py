"""What a ViT sees patch by patch, as numbers on the patch grid: its last-layer patch tokens and
its [CLS] attention, over any number of images in batches; and the map kinds drawn from them.

Every map of :mod:`.pca`, :mod:`.attention`, :mod:`.maps`, :mod:`.video` and :mod:`.scenes`
starts here: :func:`per_patch` runs a readout of :mod:`lejepa_viz.model` over the images (on
the encoder's device, under bf16 autocast on CUDA, a progress bar from four batches) and lays
its output on the ``h x w`` grid.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .._checks import integer_at_least
from ..model import Encoder, cls_attention, require_vit
from ..model import patch_tokens as last_patch_tokens

# The maps of a ViT's patches, by name: one owner for the labels of every table and figure.
MAP_KINDS = {
    "joint": "PCA, one fit for all",
    "per-image": "PCA, one fit per image",
    "attention": "[CLS] attention",
}


def check_images(encoder: Encoder, images: torch.Tensor) -> None:
    """Refuse what the patch maps cannot read: an encoder that is not a ViT, or ``images``
    that are not a non-empty ``(N, C, H, W)`` tensor of the encoder's channels, uint8 or
    floats in [0, 1]. Cheap: call it before any heavy work."""
    require_vit(encoder, "patch maps")
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or len(images) == 0:
        shape = tuple(getattr(images, "shape", ()))
        raise ValueError(f"images must be a non-empty tensor (N, C, H, W), got shape {shape}")
    chans = len(encoder.channel_mean)
    if images.shape[1] != chans:
        raise ValueError(f"images must have {chans} channels, got shape {tuple(images.shape)}")
    if images.dtype != torch.uint8 and (images.min() < 0 or images.max() > 1):
        raise ValueError(
            f"float images must lie in [0, 1], got values in "
            f"[{images.min().item():.3g}, {images.max().item():.3g}]"
        )


def per_patch(
    encoder: Encoder,
    images: torch.Tensor,
    compute: Callable[[Encoder, torch.Tensor], torch.Tensor],
    batch_size: int = 16,
    desc: str = "patch tokens",
) -> torch.Tensor:
    """``compute(encoder, batch)`` over ``images`` in batches, on the patch grid: ``(N, h, w, *)``
    float32 on the CPU, for a ViT encoder (``compute`` returns ``(B, h·w, *)``).

    ``images`` are ``(N, C, H, W)`` floats in [0, 1], or uint8 (divided by 255); images of
    another size than the encoder's input are resized to it (antialiased bilinear).
    """
    batch_size = integer_at_least(batch_size, 1, "batch_size")
    check_images(encoder, images)
    embed = encoder.backbone.patch_embed
    (h, w), in_size = embed.grid_size, tuple(embed.img_size)
    device = encoder.mean.device
    starts = range(0, len(images), batch_size)
    out = []
    for i in tqdm(starts, desc=desc, unit="batch", disable=len(starts) < 4, leave=False):
        x = images[i : i + batch_size].to(device)
        x = x.float() / 255 if x.dtype == torch.uint8 else x.float()  # (B, C, H, W)
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
        >>> enc = Encoder.build("test_vit", 3, 64, (0.5,) * 3, (0.5,) * 3).eval()
        >>> patch_tokens(enc, torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 4, 4, 64])
    """
    return per_patch(encoder, images, last_patch_tokens, batch_size)


def attention_maps(encoder: Encoder, images: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """[CLS]→patch attention of the last block, ``(N, heads, h, w)`` float32 on the CPU, for a
    ViT with a [CLS] token (images as :func:`per_patch` takes them).

    Example:
        >>> enc = Encoder.build("test_vit", 3, 64, (0.5,) * 3, (0.5,) * 3).eval()
        >>> attention_maps(enc, torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 2, 4, 4])
    """
    require_vit(encoder, "attention maps", cls=True)
    maps = per_patch(
        encoder,
        images,
        lambda e, x: cls_attention(e, x).transpose(1, 2),
        batch_size,
        desc="attention",
    )
    return maps.permute(0, 3, 1, 2).contiguous()  # (N, h, w, heads) -> (N, heads, h, w)
