"""Reading weight files and fitting them to timm models: the tensors of a file, the prefix of a
backbone among them, the ViT their shapes describe, and a strict load that lists what does not
fit. Files are read with ``torch.load(weights_only=True)`` or safetensors; a pickle that needs
more (arbitrary code) is refused unless ``trust=True`` says the file is trusted.
"""

from __future__ import annotations

import re
from pathlib import Path

import timm
import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import nn

ANCHOR = "patch_embed.proj.weight"  # a ViT's first weight: where its keys begin
WIDTHS = {192: "tiny", 384: "small", 768: "base", 1024: "large", 1280: "huge"}
TRUST_HINT = "trust=True (CLI: --trust-weights)"


def read_state(path: Path, trust: bool = False) -> dict:
    """The tensors of a weight file: safetensors, or a ``torch.load`` pickle read with
    ``weights_only=True`` (all of it, nesting included) unless ``trust``."""
    if path.suffix.lower() == ".safetensors":
        import safetensors.torch

        return safetensors.torch.load_file(str(path))
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust)
    except Exception as err:
        if trust or "weights_only" not in str(err):
            raise ValueError(f"cannot read {path} ({type(err).__name__}: {err})") from None
        raise ValueError(
            f"{path} holds Python objects beyond tensors, which torch.load(weights_only=True) "
            f"refuses: unpickling them can run arbitrary code. If you trust the file, pass "
            f"{TRUST_HINT}."
        ) from None


def flatten(state, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor of a nested checkpoint dict, under dotted keys (``state_dict.backbone.x``)."""
    out = {}
    if isinstance(state, dict):
        for key, value in state.items():
            out.update(flatten(value, f"{prefix}{key}."))
    elif isinstance(state, torch.Tensor):
        out[prefix[:-1]] = state
    return out


def find_prefix(keys, anchor: str = ANCHOR) -> str:
    """The prefix under which a ViT's keys sit: the text before ``anchor`` in the one key
    that ends with it (``""`` for a plain state dict).

    Raises:
        ValueError: no key ends with ``anchor``, or several do (e.g. a student and a teacher):
            the message lists the candidates.

    Example:
        >>> find_prefix(["state_dict.backbone.patch_embed.proj.weight", "state_dict.head.w"])
        'state_dict.backbone.'
    """
    found = sorted({k[: -len(anchor)] for k in keys if k.endswith(anchor)})
    if not found:
        raise ValueError(f"no key ends with {anchor!r}: not a ViT (pass backbone=NAME)")
    if len(found) > 1:
        raise ValueError(f"several backbones in one file, under the prefixes {found}")
    return found[0]


def vit_architecture(state: dict[str, torch.Tensor], config: dict | None = None) -> tuple:
    """``(name, kwargs, image_size)`` of the timm ViT that ``state`` (timm key names) fits.

    Width, patch size, depth, [CLS] and register tokens, layer scale and the position grid are
    read from the shapes; ``config`` (a Hugging Face ``config.json``) may give the heads.
    """
    config = config or {}
    width, chans, patch, _ = state[ANCHOR].shape
    depth = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k)))
    cls = "cls_token" in state
    regs = state["reg_token"].shape[1] if "reg_token" in state else 0
    tokens = state["pos_embed"].shape[1]
    grid = int(round((tokens - cls - regs) ** 0.5))
    no_embed_class = grid * grid != tokens - cls - regs  # prefix tokens without positions
    if no_embed_class:
        grid = int(round(tokens**0.5))
    if grid * grid not in (tokens, tokens - cls - regs):
        raise ValueError(f"pos_embed of {tokens} tokens is no square grid (pass backbone=NAME)")
    heads = config.get("num_heads") or max(1, width // 64)
    kwargs = dict(
        embed_dim=width,
        depth=depth,
        num_heads=heads,
        patch_size=patch,
        img_size=grid * patch,
        in_chans=chans,
        mlp_ratio=state["blocks.0.mlp.fc1.weight"].shape[0] / width,
        qkv_bias="blocks.0.attn.qkv.bias" in state,
        class_token=cls,
        reg_tokens=regs,
        no_embed_class=no_embed_class,
        init_values=1e-5 if "blocks.0.ls1.gamma" in state else None,
    )
    size = WIDTHS.get(width, "base")
    name = f"vit_{size}_patch{patch}_{grid * patch}"
    if not timm.is_model(name):
        name = "vit_base_patch16_224"  # the kwargs above define the architecture
    return name, kwargs, grid * patch


def build(name: str, kwargs: dict) -> nn.Module:
    """``timm.create_model(name, **kwargs)`` without classifier, sizes dynamic for ViTs."""
    extra = {"num_classes": 0}
    try:
        return timm.create_model(name, **extra, **kwargs, dynamic_img_size=True)
    except TypeError:  # not a ViT: no dynamic sizes
        return timm.create_model(name, **extra, **kwargs)


def load_strict(model: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """``model.load_state_dict(state)``, or a ValueError listing every missing key, unexpected
    key and shape mismatch (at most 10 of each, with the counts)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: {tuple(state[k].shape)} in the file, {tuple(own[k].shape)} in the model"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        parts = [
            f"{len(items)} {label}: {items[:10]}"
            for label, items in (
                ("missing keys", missing),
                ("unexpected keys", unexpected),
                ("shape mismatches", shapes),
            )
            if items
        ]
        raise ValueError(f"{what} does not fit: " + "; ".join(parts))
    model.load_state_dict(state)


def normalisation(name: str | None, config: dict | None) -> tuple[tuple, tuple]:
    """The folder's config, else the named timm model's pretrained config, else ImageNet's."""
    config = config or {}
    if "image_mean" in config and "image_std" in config:
        return tuple(config["image_mean"]), tuple(config["image_std"])
    cfg = timm.get_pretrained_cfg(name) if name and timm.is_model(name) else None
    mean = cfg.mean if cfg and cfg.mean else IMAGENET_DEFAULT_MEAN
    std = cfg.std if cfg and cfg.std else IMAGENET_DEFAULT_STD
    return tuple(mean), tuple(std)
