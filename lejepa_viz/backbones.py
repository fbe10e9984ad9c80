"""Backbones from anywhere: ``load_backbone(source)`` returns a timm model with its preprocessing.

``source`` is one of

- a ``lejepa-viz train`` checkpoint (``checkpoint.pt``);
- a weight file: ``.safetensors``, or ``.pt`` / ``.pth`` / ``.bin`` / ``.ckpt`` (a plain timm
  state dict, or nested under ``state_dict`` / ``model`` like a PyTorch Lightning checkpoint,
  with the backbone under a prefix such as Lightly's ``backbone.``: the prefix is found from
  the keys, not guessed, and reported);
- a folder in the Hugging Face layout (``config.json`` beside ``model.safetensors`` or
  ``pytorch_model.bin``), e.g. OK-AI's LeJEPA ViTs or one of their ``checkpoints/epNNN``;
- ``hf:ORG/NAME[@REVISION][/SUBFOLDER]``: that folder on the Hugging Face Hub, downloaded once
  into huggingface_hub's cache (a network is needed the first time);
- a timm model name: timm's pretrained weights (a network is needed the first time).

ViT architectures are read from the weights' shapes (width, depth, patch size, tokens, layer
scale); other architectures need ``backbone=NAME``. Every load is strict: missing keys,
unexpected keys and shape mismatches end in a message that lists them. Files are read with
``torch.load(weights_only=True)`` or safetensors; a pickle that needs more (arbitrary code) is
refused unless ``trust=True`` says the file is trusted.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import timm
import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn
from torch import nn

from ._checks import integer_at_least
from .model import VIT_HINT, Encoder, create_backbone, encoder_from_checkpoint, load_encoder
from .runs import atomic_path, save_json

ANCHOR = "patch_embed.proj.weight"  # a ViT's first weight: where its keys begin
FILE_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")
HUB_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
EXTRA_HEADS = ("cva_module_proj.", "head.", "fc_norm.")  # heads beside an encoder, not of it
WIDTHS = {192: "tiny", 384: "small", 768: "base", 1024: "large", 1280: "huge"}
TRUST_HINT = "trust=True (CLI: --trust-weights)"


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


# ----------------------------------------------------------------------------- reading files


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


# ----------------------------------------------------------------------------- architectures


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


# ----------------------------------------------------------------------------- sources


def _from_state(
    state: dict[str, torch.Tensor], backbone: str | None, config: dict | None, label: str
) -> Backbone:
    if backbone is not None and not any(k.endswith(ANCHOR) for k in state):
        prefix = ""  # a non-ViT under the name given: its keys as they are
    else:
        prefix = find_prefix(state)  # none, or several backbones: the message says so
    state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    heads = sorted({k.split(".")[0] for k in state if k.startswith(EXTRA_HEADS)})
    state = {k: v.float() for k, v in state.items() if not k.startswith(EXTRA_HEADS)}
    where = f"prefix {prefix!r}" if prefix else "no prefix"
    left = f", left out {heads}" if heads else ""
    if backbone is not None:
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
    mean, std = _normalisation(backbone, config)  # a guessed name says nothing of it
    source = f"{label}: {len(state)} tensors, {where}{left}"
    return Backbone(model.eval(), name, kwargs, size, mean, std, source)


def _normalisation(name: str | None, config: dict | None) -> tuple[tuple, tuple]:
    """The folder's config, else the named timm model's pretrained config, else ImageNet's."""
    config = config or {}
    if "image_mean" in config and "image_std" in config:
        return tuple(config["image_mean"]), tuple(config["image_std"])
    cfg = timm.get_pretrained_cfg(name) if name and timm.is_model(name) else None
    mean = cfg.mean if cfg and cfg.mean else IMAGENET_DEFAULT_MEAN
    std = cfg.std if cfg and cfg.std else IMAGENET_DEFAULT_STD
    return tuple(mean), tuple(std)


def _from_file(path: Path, backbone: str | None, trust: bool) -> Backbone:
    if path.suffix.lower() not in FILE_SUFFIXES:
        raise ValueError(f"weights {path} must end in one of {' '.join(FILE_SUFFIXES)}")
    raw = read_state(path, trust)  # read once, whatever it turns out to be
    if isinstance(raw, dict) and "encoder_config" in raw and backbone is None:
        encoder = encoder_from_checkpoint(raw)  # one of ours, with its own preprocessing
        c = encoder.config
        return Backbone(
            encoder.backbone.eval(),
            c["backbone"],
            dict(c.get("backbone_kwargs") or {}),
            c["image_size"],
            c["mean"],
            c["std"],
            f"{path}: a lejepa-viz checkpoint",
        )
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


def parse_hub(spec: str) -> tuple[str, str | None, str | None]:
    """``ORG/NAME[@REVISION][/SUBFOLDER]`` → ``(repo_id, revision, subfolder)``.

    Example:
        >>> parse_hub("OK-AI/lejepa-vits16-pretrain-in1k@main/checkpoints/ep010")
        ('OK-AI/lejepa-vits16-pretrain-in1k', 'main', 'checkpoints/ep010')
    """
    m = re.fullmatch(r"([\w.-]+/[\w.-]+?)(?:@([^/]+))?(?:/(.+))?", spec)
    if not m:
        raise ValueError(f"hf: wants ORG/NAME[@REVISION][/SUBFOLDER], got {spec!r}")
    return m.group(1), m.group(2), m.group(3)


def hub_folder(spec: str) -> Path:
    """The local folder of ``hf:`` ``spec``: ``config.json`` and the weights, downloaded once
    through huggingface_hub into its cache (no code from the repository is run)."""
    from huggingface_hub import hf_hub_download

    repo, revision, sub = parse_hub(spec)
    files, last = [], None
    for name in HUB_WEIGHTS:
        try:
            files.append(hf_hub_download(repo, name, subfolder=sub, revision=revision))
            break
        except Exception as err:
            last = err
            if type(err).__name__ in ("EntryNotFoundError", "RemoteEntryNotFoundError"):
                continue
            break
    if not files:
        where = f"{sub}/" if sub else ""
        url = f"https://huggingface.co/{repo}/resolve/{revision or 'main'}/{where}"
        raise ConnectionError(
            f"could not download hf:{spec} ({type(last).__name__}). Without a network, "
            f"download {url}model.safetensors (or pytorch_model.bin) and {url}config.json "
            f"into one folder and pass that folder as the source instead."
        ) from last
    try:
        hf_hub_download(repo, "config.json", subfolder=sub, revision=revision)
    except Exception:
        pass  # the weights' shapes say the architecture
    return Path(files[0]).parent


def _from_timm(name: str) -> Backbone:
    try:
        model = timm.create_model(name, pretrained=True, num_classes=0)
    except Exception as err:  # huggingface_hub / urllib errors when offline, of many types
        raise ConnectionError(
            f"could not get timm's pretrained weights for {name!r} ({type(err).__name__}). "
            "Downloading them needs a network; without one, pass a local weight file or "
            "folder instead."
        ) from err
    size = model.pretrained_cfg.get("input_size", (3, 224, 224))[-1]
    mean, std = _normalisation(name, None)
    return Backbone(model.eval(), name, {}, size, mean, std, f"timm {name} (pretrained)")


def backbone_encoder(b: Backbone) -> Encoder:
    """A loaded ViT backbone as an :class:`~lejepa_viz.model.Encoder` with its preprocessing
    inside (the projector is untrained), what the pictures take; eval mode, on the CPU."""
    if not isinstance(b.model, VisionTransformer):
        raise ValueError(
            f"patch maps need a ViT backbone ({VIT_HINT}); {b.source} is a "
            f"{type(b.model).__name__}, which has no patch tokens"
        )
    chans = b.model.patch_embed.proj.in_channels
    encoder = Encoder(b.name, chans, b.image_size, b.mean, b.std, backbone_kwargs=b.kwargs)
    encoder.backbone = b.model
    return encoder.eval()


def load_patch_encoder(
    checkpoint: str | os.PathLike | None = None,
    backbone: str | None = None,
    weights: str | os.PathLike | None = None,
    image_size: int | None = None,
    *,
    trust: bool = False,
) -> Encoder:
    """The ViT encoder whose patch tokens the maps show, in eval mode on the CPU.

    Args:
        checkpoint: a ``lejepa-viz train`` checkpoint (then leave ``backbone`` out).
        backbone: a timm ViT name; alone it means timm's pretrained weights, which are
            downloaded from the Hugging Face Hub (a network is needed); with ``weights``, the
            architecture of the weights where their shapes do not say it.
        weights: any source of :func:`load_backbone` (a weight file, a Lightning checkpoint,
            a Hugging Face folder, ``hf:ORG/NAME``), or a loaded :class:`Backbone`. With
            ``backbone``, original DINOv2 / CLIP layouts are converted by timm's filter.
        image_size: input resolution. Default: 224 for a backbone, the training resolution
            for a checkpoint; a checkpoint given another size gets its position embeddings
            resampled (bicubic), the way DINOv2 maps are drawn above the training resolution.
        trust: let ``weights`` be a pickle that needs full unpickling (see
            :func:`load_backbone`).

    Raises:
        ValueError: not exactly one of ``checkpoint`` / ``backbone``; ``weights`` without
            ``backbone``; a model that is not a ViT; an unreadable or mismatched weights file.
        FileNotFoundError: ``checkpoint`` or ``weights`` does not exist.
        ConnectionError: timm's pretrained weights could not be downloaded.

    Example:
        >>> load_patch_encoder(backbone="resnet18")
        Traceback (most recent call last):
        ...
        ValueError: patch maps need a ViT backbone (a timm VisionTransformer such as ...
    """
    if image_size is not None:
        integer_at_least(image_size, 1, "image_size")
    if weights is not None:
        if checkpoint is not None:
            raise ValueError("weights goes with backbone or alone; a checkpoint holds its own")
        if not isinstance(weights, Backbone):
            weights = load_backbone(weights, backbone=backbone, trust=trust)
        encoder = backbone_encoder(weights)
        if image_size is not None and image_size != encoder.config["image_size"]:
            encoder.backbone.set_input_size(img_size=image_size)
            encoder.config["image_size"] = image_size
        return encoder
    if (checkpoint is None) == (backbone is None):
        raise ValueError(
            "give exactly one of checkpoint (a lejepa-viz train checkpoint, --checkpoint FILE) "
            f"or backbone (a timm ViT name, --backbone NAME); got checkpoint={checkpoint!r}, "
            f"backbone={backbone!r}"
        )
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint {path} does not exist")
        encoder = load_encoder(str(path))
        if not encoder.is_vit:
            name = encoder.config["backbone"]
            raise ValueError(
                f"patch maps need a ViT backbone ({VIT_HINT}); checkpoint {path} "
                f"holds a {name!r}, which has no patch tokens"
            )
        if image_size is not None and image_size != encoder.config["image_size"]:
            encoder.backbone.set_input_size(img_size=image_size)  # resamples the pos. embedding
            encoder.config["image_size"] = image_size
        return encoder.eval()

    size = 224 if image_size is None else image_size
    if not timm.is_model(backbone):
        raise ValueError(
            f"backbone {backbone!r} is not a timm model; list ViTs with timm.list_models('vit_*')"
        )
    with torch.device("meta"):  # what the architecture is, without allocating or downloading
        arch = create_backbone(backbone, 3, size)
    if not isinstance(arch, VisionTransformer):
        raise ValueError(
            f"patch maps need a ViT backbone ({VIT_HINT}); {backbone!r} is a "
            f"{type(arch).__name__}, which has no patch tokens"
        )
    cfg = timm.get_pretrained_cfg(backbone)
    mean = cfg.mean if cfg else IMAGENET_DEFAULT_MEAN
    std = cfg.std if cfg else IMAGENET_DEFAULT_STD
    if not (cfg and cfg.has_weights):
        raise ValueError(
            f"timm has no pretrained weights for {backbone!r}; pass weights=FILE "
            "(--weights FILE) or checkpoint=FILE (--checkpoint FILE)"
        )
    try:
        encoder = Encoder(backbone, 3, size, mean, std, pretrained=True)
    except Exception as err:  # huggingface_hub / urllib errors when offline, of many types
        raise ConnectionError(
            f"could not get timm's pretrained weights for {backbone!r} ({type(err).__name__}: "
            f"{err}). Downloading them needs a network connection to the Hugging Face Hub. "
            "Without one, pass a local weights file for this architecture, weights=FILE "
            "(--weights FILE: a .pt/.pth state dict or .safetensors), or a lejepa-viz "
            "checkpoint, checkpoint=FILE (--checkpoint FILE). HF_HUB_OFFLINE=1 makes an "
            "offline attempt fail at once instead of retrying."
        ) from err
    return encoder.eval()


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
