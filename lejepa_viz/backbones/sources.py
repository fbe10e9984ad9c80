"""Every way to get a backbone: the sources of :func:`load_backbone` and :func:`load_encoder`
(see :mod:`lejepa_viz.backbones`), and :func:`save_backbone`, which writes the folders our
runs keep."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import timm
import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn
from torch import nn

from .._checks import integer_at_least
from ..model import Encoder, create_backbone
from ..runs import atomic_path, save_json
from .hub import HUB_WEIGHTS, hub_folder
from .state import (
    ANCHOR,
    build,
    find_prefix,
    flatten,
    load_strict,
    normalisation,
    read_state,
    vit_architecture,
)

FILE_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")
EXTRA_HEADS = ("cva_module_proj.", "head.", "fc_norm.")  # heads beside an encoder, not of it


@dataclass
class Backbone:
    """A loaded backbone and how to feed it.

    Attributes:
        model: the timm model (``num_classes=0``), in eval mode on the CPU.
        name: its timm architecture name.
        kwargs: the timm keyword arguments beyond the name's defaults
            (``timm.create_model(name, **kwargs)`` rebuilds it).
        image_size: the input resolution it was trained at.
        mean, std: per-channel normalisation of images in [0, 1].
        source: what was loaded and how (the file, the key prefix used, the heads left out).
    """

    model: nn.Module
    name: str
    kwargs: dict = field(default_factory=dict)
    image_size: int = 224
    mean: tuple[float, ...] = tuple(IMAGENET_DEFAULT_MEAN)
    std: tuple[float, ...] = tuple(IMAGENET_DEFAULT_STD)
    source: str = ""


def load_backbone(
    source: str | os.PathLike,
    *,
    backbone: str | None = None,
    trust: bool = False,
) -> Backbone:
    """The backbone ``source`` names (see the module docstring), in eval mode.

    Args:
        source: a checkpoint, weight file, Hugging Face folder, ``hf:`` spec or timm name.
        backbone: the timm architecture of the weights, where their shapes do not say it
            (every non-ViT); for ViTs it overrides the inferred one.
        trust: read pickles that ``torch.load(weights_only=True)`` refuses (they can run
            code: only for files you trust).

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: weights that do not fit (the keys and shapes are listed), an unknown
            architecture, or a pickle that needs ``trust``.
        ConnectionError: a download without a network (the message names the file and where
            to put it).

    Example:
        >>> model = timm.create_model("vit_pico_patch8", num_classes=0)
        >>> import tempfile, safetensors.torch
        >>> path = Path(tempfile.mkdtemp()) / "w.safetensors"
        >>> safetensors.torch.save_file(model.state_dict(), path)
        >>> b = load_backbone(path)
        >>> b.kwargs["embed_dim"], b.kwargs["depth"], b.image_size, "no prefix" in b.source
        (192, 4, 64, True)
    """
    loaded = _load(source, backbone, trust)
    if isinstance(loaded, Backbone):
        return loaded
    return Backbone(
        loaded.backbone,
        loaded.name,
        dict(loaded.backbone_kwargs),
        loaded.image_size,
        loaded.channel_mean,
        loaded.channel_std,
        f"{source}: a lejepa-viz checkpoint",
    )


def load_encoder(
    source: str | os.PathLike,
    *,
    backbone: str | None = None,
    image_size: int | None = None,
    trust: bool = False,
) -> Encoder:
    """The :class:`~lejepa_viz.model.Encoder` of ``source``, in eval mode on the CPU: the whole
    trained encoder of a ``lejepa-viz train`` checkpoint (projector included), else the
    backbone :func:`load_backbone` reads, wrapped as it is (its projector untrained) with its
    own preprocessing. What the apps call once to turn a name into an encoder.

    Args:
        source, backbone, trust: as for :func:`load_backbone`.
        image_size: use a ViT at this input resolution (its position embeddings resampled);
            default: the resolution it was trained at.

    Raises:
        As :func:`load_backbone`; ValueError for an ``image_size`` below 1, or given for a
        backbone that is not a ViT.

    Example:
        >>> load_encoder("no_such_model_or_file")
        Traceback (most recent call last):
        ...
        ValueError: 'no_such_model_or_file' is neither a file, a folder, an hf:ORG/NAME spec nor a timm model name
    """
    if image_size is not None:
        integer_at_least(image_size, 1, "image_size")
    loaded = _load(source, backbone, trust)
    if isinstance(loaded, Backbone):
        loaded = Encoder(
            loaded.model,
            name=loaded.name,
            image_size=loaded.image_size,
            mean=loaded.mean,
            std=loaded.std,
            backbone_kwargs=loaded.kwargs,
        )
    if image_size is not None:
        loaded.set_input_size(image_size)
    return loaded.eval()


def encoder_from_checkpoint(ckpt: dict) -> Encoder:
    """The encoder stored in a loaded ``lejepa-viz train`` checkpoint dict, in eval mode."""
    if not isinstance(ckpt, dict) or "encoder_config" not in ckpt or "model" not in ckpt:
        raise ValueError("not a lejepa-viz checkpoint (needs encoder_config and model)")
    encoder = Encoder.build(**ckpt["encoder_config"])
    prefix = "encoder."  # the checkpoint holds the whole model: encoder + online probe
    encoder.load_state_dict(
        {k[len(prefix) :]: v for k, v in ckpt["model"].items() if k.startswith(prefix)}
    )
    return encoder.eval()


def _load(source: str | os.PathLike, backbone: str | None, trust: bool) -> Backbone | Encoder:
    """What ``source`` holds, read once: our checkpoints as the whole encoder."""
    text = os.fspath(source)
    if text.startswith("hf:"):
        return _from_folder(hub_folder(text[3:]), backbone, trust, label=text)
    path = Path(text).expanduser()
    if path.is_dir():
        return _from_folder(path, backbone, trust, label=str(path))
    if path.is_file():
        return _from_file(path, backbone, trust)
    if path.suffix.lower() in FILE_SUFFIXES or os.sep in text:
        raise FileNotFoundError(f"weights file {path} does not exist")
    if timm.is_model(text):
        return _from_timm(text)
    raise ValueError(
        f"{text!r} is neither a file, a folder, an hf:ORG/NAME spec nor a timm model name"
    )


def _from_state(
    state: dict[str, torch.Tensor], backbone: str | None, config: dict | None, label: str
) -> Backbone:
    config = config or {}
    ours = config.get("backbone") if backbone is None else None  # save_backbone's folders
    if ours or (backbone is not None and not any(k.endswith(ANCHOR) for k in state)):
        prefix = ""  # a named architecture: its keys as they are
    else:
        prefix = find_prefix(state)  # none, or several backbones: the message says so
    state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    heads = sorted({k.split(".")[0] for k in state if k.startswith(EXTRA_HEADS)})
    state = {k: v.float() for k, v in state.items() if not k.startswith(EXTRA_HEADS)}
    where = f"prefix {prefix!r}" if prefix else "no prefix"
    if ours:
        name, kwargs, size = ours, dict(config.get("backbone_kwargs") or {}), config["image_size"]
        extra = {k: v for k, v in kwargs.items() if k not in ("in_chans", "img_size")}
        model = create_backbone(name, len(config["image_mean"]), size, **extra)
    elif backbone is not None:
        name, kwargs, size = backbone, {}, 224
        if ANCHOR in state and "pos_embed" in state:  # built at the resolution of the file
            try:
                kwargs = {"img_size": vit_architecture(state, config)[2]}
            except (ValueError, KeyError):
                pass
        model = build(name, kwargs)
        if isinstance(model, VisionTransformer):
            size = model.patch_embed.img_size[0]
            state = checkpoint_filter_fn(state, model)  # DINOv2 / CLIP layouts, pos. embedding
    else:
        name, kwargs, size = vit_architecture(state, config)
        model = build(name, kwargs)
    load_strict(model, state, f"{label} ({where})")
    mean, std = normalisation(backbone, config)  # a guessed name says nothing of it
    left = f", left out {heads}" if heads else ""
    source = f"{label}: {len(state)} tensors, {where}{left}"
    return Backbone(model.eval(), name, kwargs, size, mean, std, source)


def _from_file(path: Path, backbone: str | None, trust: bool) -> Backbone | Encoder:
    if path.suffix.lower() not in FILE_SUFFIXES:
        raise ValueError(f"weights {path} must end in one of {' '.join(FILE_SUFFIXES)}")
    raw = read_state(path, trust)  # read once, whatever it turns out to be
    if isinstance(raw, dict) and "encoder_config" in raw and backbone is None:
        return encoder_from_checkpoint(raw)  # one of ours, with its projector
    state = flatten(raw)
    if not state:
        raise ValueError(f"{path} holds no tensors")
    return _from_state(state, backbone, None, str(path))


def _from_folder(folder: Path, backbone: str | None, trust: bool, label: str) -> Backbone:
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else None
    for name in HUB_WEIGHTS:
        if (folder / name).is_file():
            state = flatten(read_state(folder / name, trust))
            return _from_state(state, backbone, config, f"{label}/{name}")
    raise FileNotFoundError(f"{folder} holds none of {' '.join(HUB_WEIGHTS)}")


def _from_timm(name: str) -> Backbone:
    cfg = timm.get_pretrained_cfg(name)
    if not (cfg and cfg.has_weights):
        raise ValueError(
            f"timm has no pretrained weights for {name!r}; pass a weight file, a folder or a "
            "lejepa-viz checkpoint instead"
        )
    try:
        model = timm.create_model(name, pretrained=True, num_classes=0)
    except Exception as err:  # huggingface_hub / urllib errors when offline, of many types
        raise ConnectionError(
            f"could not get timm's pretrained weights for {name!r} ({type(err).__name__}: "
            f"{err}). Downloading them needs a network connection to the Hugging Face Hub; "
            "without one, pass a local weight file or folder for this architecture instead "
            "(HF_HUB_OFFLINE=1 makes an offline attempt fail at once instead of retrying)."
        ) from err
    size = model.pretrained_cfg.get("input_size", (3, 224, 224))[-1]
    mean, std = normalisation(name, None)
    return Backbone(model.eval(), name, {}, size, mean, std, f"timm {name} (pretrained)")


def save_backbone(encoder: Encoder, folder: str | os.PathLike, **info) -> Path:
    """Write ``encoder``'s backbone as a Hugging Face style folder that :func:`load_backbone`
    reads: ``model.safetensors`` (float16, half the size) and ``config.json`` (architecture,
    resolution, normalisation and ``info``, e.g. the training step). Returns the folder."""
    import safetensors.torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        k: v.detach().to("cpu", torch.float16).contiguous()
        for k, v in encoder.backbone.state_dict().items()
    }
    c = encoder.config
    config = {
        "backbone": c["backbone"],
        "backbone_kwargs": c.get("backbone_kwargs", {}),
        "image_size": c["image_size"],
        "image_mean": list(c["mean"]),
        "image_std": list(c["std"]),
        **info,
    }
    with atomic_path(folder / "model.safetensors") as tmp:
        safetensors.torch.save_file(state, str(tmp))
    save_json(folder / "config.json", config)
    return folder
