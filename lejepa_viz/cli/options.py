"""The command line's shared parts: the config ↔ flag rule (one owner, both directions), the
option groups the commands share, and the loaders that turn their names and paths into
objects once."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing

import timm
import torch
from timm.models.vision_transformer import VisionTransformer

from ..viz.attention import KEEP

ERRORS = (ValueError, FileNotFoundError, ConnectionError, FloatingPointError)


def flag(name: str) -> str:
    """The option of a config field: ``batch_size`` → ``--batch-size``."""
    return "--" + name.replace("_", "-")


def add_config_arguments(parser: argparse.ArgumentParser, config_cls) -> None:
    """One option per field of a config dataclass (:func:`flag`), its help from the field's
    ``metadata["help"]``; :func:`config_argv` is the inverse."""
    hints = typing.get_type_hints(config_cls)
    for field in dataclasses.fields(config_cls):
        kind, help_ = hints[field.name], field.metadata.get("help")
        if isinstance(kind, types.UnionType):  # "int | None" → int
            kind = next(t for t in typing.get_args(kind) if t is not type(None))
        options = dict(default=field.default, help=help_)
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is tuple:  # "tuple[float, float]" → two numbers
            args = typing.get_args(kind)
            options.update(type=args[0], nargs=len(args), metavar=("LOW", "HIGH")[: len(args)])
        else:
            options.update(type=kind, metavar=field.name.upper())
        parser.add_argument(flag(field.name), **options)


def config_argv(config) -> list[str]:
    """The options that set ``config``'s fields that differ from their defaults (``progress``
    aside): what :func:`add_config_arguments` reads back into the same config.

    Example:
        >>> from lejepa_viz.train import TrainConfig
        >>> config_argv(TrainConfig(lam=0.15, global_scale=(0.5, 1.0), final_probe=False))
        ['--global-scale', '0.5', '1.0', '--lam', '0.15', '--no-final-probe']
    """
    argv = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name == "progress" or value == field.default:
            continue
        if isinstance(value, bool):
            argv.append(flag(field.name) if value else "--no-" + flag(field.name)[2:])
        elif isinstance(value, (list, tuple)):
            argv += [flag(field.name), *map(str, value)]
        else:
            argv += [flag(field.name), str(value)]
    return argv


def from_args(config_cls, args: argparse.Namespace):
    """The config whose fields the parsed options set."""
    names = {f.name for f in dataclasses.fields(config_cls)}
    return config_cls(**{k: v for k, v in vars(args).items() if k in names})


# ----------------------------------------------------------------------------- shared options


def fraction(text: str) -> float:
    """An argparse type: a share in (0, 1], checked when the arguments are read."""
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in (0, 1], got {text}")
    return value


def images_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--images", nargs="*", help="image files or folders (default: bundled photos)")
    p.add_argument(
        "--scenes", type=int, metavar="N", help="draw N held-out scenes of the world instead"
    )
    p.add_argument("--size", type=int, default=224, help="side of the drawn images in pixels")
    score_option(p)


def score_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--score",
        type=int,
        default=0,
        metavar="N",
        help="score the maps on N held-out scenes of each kind (IoU with the true masks beside "
        "random init and raw pixels, 95%% bootstrap intervals; 500 for tight ones)",
    )


def model_options(p: argparse.ArgumentParser) -> None:
    """The encoder of the patch maps: one source (``lejepa_viz.load_encoder``)."""
    p.add_argument(
        "--weights",
        "--checkpoint",
        dest="weights",
        metavar="SOURCE",
        help="a lejepa-viz checkpoint.pt, a .safetensors/.pt/.pth/.bin/.ckpt file (Lightning "
        "prefixes found), a Hugging Face folder, hf:ORG/NAME[@REV][/SUB], or a timm name",
    )
    p.add_argument(
        "--backbone",
        help="the timm architecture of --weights where the shapes do not say it; alone, a "
        "timm ViT with timm's pretrained weights (needs a network)",
    )
    p.add_argument("--model-size", type=int, help="the ViT's input size (default: its own)")
    p.add_argument(
        "--trust-weights",
        action="store_true",
        help="allow full unpickling of the weights (it can run code: only for files you trust)",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, ...")


def keep_option(p: argparse.ArgumentParser) -> None:
    help_ = f"the share of the [CLS] attention a mask holds (DINO: {KEEP})"
    p.add_argument("--keep", type=fraction, default=KEEP, help=help_)


def out_option(p: argparse.ArgumentParser, what: str, **extra) -> None:
    p.add_argument("--out", required=True, help=what, **extra)


def load_images(args: argparse.Namespace):
    """``(names, (N, 3, S, S) uint8, masks (N, S, S) or None)`` of ``--images`` (or
    ``--scenes N`` held-out scenes with their masks) at ``--size``."""
    from ..data import load_dataset
    from ..viz.images import load_images as load

    if getattr(args, "scenes", None):
        world = load_dataset(f"scenes:{args.scenes}", "test", image_size=args.size)
        return [f"scene {i}" for i in range(args.scenes)], world.images, world.masks
    return (*load(args.images or None, args.size), None)


def score(args: argparse.Namespace, encoder) -> dict:
    """With ``--score N``: the encoder's maps scored on N held-out scenes of each kind, each
    table printed; ``{kind: scene_iou's dict}`` (empty without)."""
    from ..data.shapes import HELD_OUT, held_out_scenes
    from ..viz.scenes import iou_table, scene_iou

    if not getattr(args, "score", 0):
        return {}
    out = {}
    for kind, (images, masks) in held_out_scenes(args.score).items():
        out[kind] = iou = scene_iou(encoder, images, masks, keep=getattr(args, "keep", KEEP))
        print(f"\nIoU on {args.score} {HELD_OUT[kind]}:\n" + "\n".join(iou_table(iou)))
    return out


def load_encoder(args: argparse.Namespace):
    """The encoder of ``--weights`` / ``--backbone``, on ``--device``; a timm name is checked
    to be a ViT before its weights are downloaded."""
    from ..backbones import load_encoder as load
    from ..distributed import resolve_device

    source = args.weights or args.backbone
    if source is None:
        raise ValueError(
            "give --weights SOURCE (or --checkpoint FILE), or --backbone TIMM_NAME for timm's "
            "pretrained ViT"
        )
    if args.weights is None and timm.is_model(source):
        with torch.device("meta"):  # the architecture, without allocating or downloading
            model = timm.create_model(source)
        if not isinstance(model, VisionTransformer):
            raise ValueError(f"patch maps need a ViT; {source!r} is a {type(model).__name__}")
    backbone = args.backbone if args.weights else None
    encoder = load(source, backbone=backbone, image_size=args.model_size, trust=args.trust_weights)
    return encoder.to(resolve_device(args.device))


def wrote(drawn, iou: dict | None = None):
    """Print what a picture command wrote; its record, with the scores of ``--score``."""
    print(f"wrote {drawn.path}: {drawn.summary}")
    return drawn._replace(numbers={**drawn.numbers, "iou": iou}) if iou else drawn
