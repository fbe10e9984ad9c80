"""The patch-map commands: ``pca``, ``attention``, ``maps``, ``evolve`` and ``video``; each
loads its images and its encoder once and calls one library function."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..viz.pca import FITS
from ..viz.video import METHODS
from .options import (
    images_options,
    keep_option,
    load_encoder,
    load_images,
    model_options,
    out_option,
    score,
    score_option,
    wrote,
)


def add_pca(sub) -> None:
    p = sub.add_parser("pca", help="PCA maps of ViT patch features, image | map pairs")
    images_options(p)
    model_options(p)
    p.add_argument(
        "--fit",
        choices=FITS,
        default="joint",
        help="one PCA for all images, or one per image (the paper's Fig. 14)",
    )
    p.add_argument("--foreground", action="store_true", help="mask the background by PC1")
    p.add_argument("--threshold", type=float, default=0.0, help="PC1 threshold of the mask")
    out_option(p, "output folder")
    p.set_defaults(run=pca)


def pca(args: argparse.Namespace):
    from ..viz.pca import pca_maps

    names, images, _ = load_images(args)
    encoder = load_encoder(args)
    options = dict(fit=args.fit, foreground=args.foreground, threshold=args.threshold)
    drawn = pca_maps(encoder, images, names, args.out, **options)
    return wrote(drawn, score(args, encoder))


def add_attention(sub) -> None:
    p = sub.add_parser("attention", help="[CLS] attention masks of a ViT, image | mask pairs")
    images_options(p)
    model_options(p)
    keep_option(p)
    out_option(p, "output folder")
    p.set_defaults(run=attention)


def attention(args: argparse.Namespace):
    from ..viz.attention import attention_pairs

    names, images, _ = load_images(args)
    encoder = load_encoder(args)
    drawn = attention_pairs(encoder, images, names, args.out, keep=args.keep)
    return wrote(drawn, score(args, encoder))


def add_maps(sub) -> None:
    p = sub.add_parser("maps", help="PCA maps and attention masks, trained beside random init")
    images_options(p)
    model_options(p)
    keep_option(p)
    p.add_argument("--label", default="trained", help="the name of the encoder's rows")
    out_option(p, "FILE.png")
    p.set_defaults(run=maps)


def maps(args: argparse.Namespace):
    from ..viz.maps import maps_figure
    from ..viz.scenes import iou_sentence

    names, images, masks = load_images(args)
    encoder = load_encoder(args)
    iou = score(args, encoder)
    caption = iou_sentence(iou["world"]) if iou else None
    options = dict(names=names, masks=masks, keep=args.keep, label=args.label, caption=caption)
    return wrote(maps_figure(encoder, images, args.out, **options), iou)


def add_evolve(sub) -> None:
    p = sub.add_parser("evolve", help="the same images' maps across checkpoints, one GIF")
    images_options(p)
    p.add_argument(
        "--weights",
        nargs="+",
        required=True,
        help="checkpoints in training order: files, folders (a run's backbones/step*), hf: specs",
    )
    p.add_argument("--labels", nargs="+", help="one caption per checkpoint (default: its name)")
    p.add_argument("--backbone", help="their timm architecture, where the shapes do not say it")
    p.add_argument("--trust-weights", action="store_true", help="allow full unpickling")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, ...")
    keep_option(p)
    out_option(p, "FILE.gif or FILE.mp4")
    p.set_defaults(run=evolve)  # (--score N: each checkpoint's IoU on N held-out scenes, a curve)


def evolve(args: argparse.Namespace):
    from ..backbones import load_encoder
    from ..data.shapes import held_out_scenes
    from ..distributed import resolve_device
    from ..viz.export import animation_path
    from ..viz.maps import evolution_gif

    out = animation_path(args.out)
    labels = args.labels or [Path(s).name for s in args.weights]
    if len(labels) != len(args.weights):
        raise ValueError(f"{len(labels)} --labels for {len(args.weights)} --weights")
    names, images, masks = load_images(args)
    scenes = held_out_scenes(args.score)["world"] if args.score else None
    device = resolve_device(args.device)
    encoders = (  # one at a time: a long series of large checkpoints need not fit in memory
        load_encoder(s, backbone=args.backbone, trust=args.trust_weights).to(device)
        for s in args.weights
    )
    options = dict(names=names, masks=masks, scenes=scenes, keep=args.keep)
    return wrote(evolution_gif(encoders, labels, images, out, **options))


def add_video(sub) -> None:
    p = sub.add_parser("video", help="video frames beside their attention mask or map, a GIF")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--video", help="a video file (read through imageio-ffmpeg)")
    src.add_argument("--frames", help="a folder of frames (default: a camera path on a photo)")
    src.add_argument(
        "--crossing",
        type=int,
        metavar="I",
        help="scene I of the held-out world with an object crossing it (its masks known)",
    )
    p.add_argument("--num-frames", type=int, default=60, help="frames at most")
    p.add_argument("--size", type=int, default=224, help="side of the frames in pixels")
    model_options(p)
    p.add_argument(
        "--method",
        choices=METHODS,
        help="the [CLS] attention mask (default for ViTs with one) or PC1 heat",
    )
    keep_option(p)
    score_option(p)
    out_option(p, "FILE.gif or FILE.mp4")
    p.set_defaults(run=video)


def video(args: argparse.Namespace):
    from ..data import read_video
    from ..data.datasets import scene_world
    from ..viz.export import animation_path
    from ..viz.video import DEFAULT_PHOTO, camera_path, read_frames, video_gif

    out = animation_path(args.out)
    if args.video is not None:
        clip = read_video(args.video, max_frames=args.num_frames, size=args.size)
    elif args.frames is not None:
        clip = read_frames(args.frames, args.size, max_frames=args.num_frames)
    elif args.crossing is not None:
        clip = scene_world("test", args.size).crossing(args.crossing, args.num_frames).images
    else:
        clip = camera_path(DEFAULT_PHOTO, num_frames=args.num_frames, size=args.size)
    encoder = load_encoder(args)
    drawn = video_gif(encoder, clip, out, method=args.method, keep=args.keep)
    return wrote(drawn, score(args, encoder))
