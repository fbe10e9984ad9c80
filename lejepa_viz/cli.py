"""``lejepa-viz`` command line: one sub-command per job, each a thin call of a library function.

Bad arguments end with a one-line message and exit status 2, never a traceback. Renamed
commands keep working and say their new name on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing

from .toys.clouds import CLOUD_SHAPES
from .train import TrainConfig


def renamed(old: str, new: str) -> None:
    print(f"lejepa-viz {old} is now `lejepa-viz {new}`; the old name will go", file=sys.stderr)


def clouds_command(args: argparse.Namespace) -> int:
    """SIGReg gradient flow of each non-Gaussian cloud, printed as a table."""
    from .toys.descent import clouds_table

    if args.command == "sigreg-demo":
        renamed("sigreg-demo", "clouds")
    table = clouds_table(args.n, args.dim, args.steps, args.seed)
    print(f"SIGReg gradient flow: N = {args.n} points in D = {args.dim}, {args.steps} Adam steps\n")
    print(f"{'cloud':>6} | {'SIGReg before':>13} | {'after':>7}")
    print(f"{'-' * 6}-+-{'-' * 13}-+-{'-' * 7}")
    for row in table["rows"]:
        print(f"{row['cloud']:>6} | {row['before']:13.2f} | {row['after']:7.3f}")
    print(
        f"\nA true N(0, I) sample of the same size scores {table['gaussian']:.3f}: the flow makes "
        "the cloud\nmore regular than a random Gaussian sample, in every direction (these are "
        "new ones)."
    )
    return 0


def add_config_arguments(parser: argparse.ArgumentParser, config_cls) -> None:
    """One ``--option`` per field of a config dataclass (``foo_bar`` → ``--foo-bar``)."""
    hints = typing.get_type_hints(config_cls)
    for field in dataclasses.fields(config_cls):
        flag = "--" + field.name.replace("_", "-")
        kind = hints[field.name]
        if isinstance(kind, types.UnionType):  # "int | None" → int
            kind = next(t for t in typing.get_args(kind) if t is not type(None))
        if kind is bool:
            action = argparse.BooleanOptionalAction
            parser.add_argument(flag, action=action, default=field.default)
        elif typing.get_origin(kind) is tuple:  # "tuple[float, float]" → two numbers
            types_ = typing.get_args(kind)
            parser.add_argument(
                flag,
                type=types_[0],
                nargs=len(types_),
                default=field.default,
                metavar=("LOW", "HIGH") if len(types_) == 2 else None,
            )
        else:
            parser.add_argument(flag, type=kind, default=field.default, metavar=field.name.upper())


def train_command(args: argparse.Namespace) -> int:
    from .train import train

    names = {f.name for f in dataclasses.fields(TrainConfig)}
    result = train(TrainConfig(**{k: v for k, v in vars(args).items() if k in names}))
    if result.get("probe_acc") is not None:
        print(f"online probe accuracy (test split): {100 * result['probe_acc']:.2f}%")
    if result.get("linear_probe") is not None:
        probe = 100 * result["linear_probe"]
        print(f"linear probe accuracy (frozen features, test split): {probe:.2f}%")
    if "replica_max_diff" in result:
        diff = result["replica_max_diff"]
        print(f"DDP: replicas {'identical' if diff == 0 else 'DIFFER'} (max difference {diff:g})")
    print(f"checkpoint, metrics and snapshots in {result['out']}")
    return 0


def eval_command(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_run

    report = evaluate_run(
        args.checkpoint,
        out=args.out,
        num_train=args.num_train,
        num_test=args.num_test,
        draws=args.draws,
        seed=args.seed,
        device=args.device,
        reuse=False,
    )
    print(report["table"])
    print(f"\nsaved {report['path']}")
    return 0


def animate_command(args: argparse.Namespace) -> int:
    from .runs import load_snapshots
    from .viz.convergence import animate_snapshots, final_sigreg

    out = animate_snapshots(
        args.snapshots,
        args.out,
        metrics=args.metrics,
        seed=args.seed,
        max_frames=args.max_frames or None,
    )
    last = final_sigreg(load_snapshots(args.snapshots))
    views = "" if last["views"] is None else f", training views {last['views']:.2f}"
    print(
        f"wrote {out}; last frame (step {last['step']}): SIGReg of the recorded images "
        f"{last['points']:.2f}{views}; a true N(0, I) sample: {last['null_mean']:.2f} ± "
        f"{2 * last['null_sd']:.2f}"
    )
    return 0


def flow_command(args: argparse.Namespace) -> int:
    from .pictures import flow_gif

    if args.lambdas:  # the old spelling of `lejepa-viz lambda`
        renamed("flow --lambdas", "lambda --lambdas")
        return lambda_command(args)
    drawn = flow_gif(
        args.out,
        args.shape,
        args.dim,
        n=args.n,
        steps=args.steps,
        seed=args.seed,
        past_null=args.past_null,
        optimizer=args.optimizer,
    )
    print(f"wrote {drawn.path}: {drawn.summary}")
    return 0


def lambda_command(args: argparse.Namespace) -> int:
    from .pictures import lambda_gif

    drawn = lambda_gif(
        args.out,
        tuple(args.lambdas),
        steps=args.steps,
        seed=args.seed,
        task=getattr(args, "task", "cloud"),
    )
    print(f"wrote {drawn.path}: {drawn.summary}")
    return 0


def model_arguments(p: argparse.ArgumentParser) -> None:
    """``--checkpoint FILE | --weights SOURCE [--backbone NAME] | --backbone TIMM_NAME`` for the
    patch-feature maps, and ``--trust-weights``."""
    p.add_argument("--checkpoint", help="a checkpoint.pt written by lejepa-viz train (ViT)")
    p.add_argument(
        "--weights",
        help="weights from anywhere: a .safetensors/.pt/.pth/.bin/.ckpt file (Lightning "
        "prefixes found), a Hugging Face folder, hf:ORG/NAME[@REV][/SUB], or a timm name",
    )
    p.add_argument(
        "--backbone",
        help="a timm ViT name: alone, timm's pretrained weights (needs a network); with "
        "--weights, their architecture where the shapes do not say it",
    )
    p.add_argument(
        "--trust-weights",
        action="store_true",
        help="allow full unpickling of --weights (it can run code: only for files you trust)",
    )


def model_source(args: argparse.Namespace) -> dict:
    if args.checkpoint and (args.weights or args.backbone):
        raise ValueError("give --checkpoint FILE alone, or --weights SOURCE [--backbone NAME]")
    if not (args.checkpoint or args.backbone or args.weights):
        raise ValueError(
            "give --checkpoint FILE, --weights SOURCE [--backbone NAME] or --backbone TIMM_NAME"
        )
    weights = args.weights
    if weights is not None and args.trust_weights:
        from .backbones import load_backbone

        weights = load_backbone(weights, backbone=args.backbone, trust=True)
    return dict(checkpoint=args.checkpoint, backbone=args.backbone, weights=weights)


def pca_command(args: argparse.Namespace) -> int:
    from .viz.pca import pca_maps

    paths = pca_maps(
        args.images or None,
        **model_source(args),
        out_dir=args.out,
        fit=args.fit,
        foreground=args.foreground,
        threshold=args.threshold,
    )
    print(f"wrote {len(paths)} image | map pairs to {args.out}")
    return 0


def attention_command(args: argparse.Namespace) -> int:
    from .viz.attention import attention_pairs

    paths = attention_pairs(
        args.images or None, **model_source(args), out_dir=args.out, keep=args.keep
    )
    print(f"wrote {len(paths)} image | attention-mask pairs to {args.out}")
    return 0


def evolve_command(args: argparse.Namespace) -> int:
    from .viz.maps import evolution_gif

    out = evolution_gif(
        args.weights,
        args.out,
        images=args.images or None,
        backbone=args.backbone,
        keep=args.keep,
        trust=args.trust_weights,
    )
    print(f"wrote {out}: {len(args.weights)} checkpoints")
    return 0


def maps_command(args: argparse.Namespace) -> int:
    from .viz.maps import maps_figure

    out = maps_figure(args.images or None, **model_source(args), out=args.out, keep=args.keep)
    print(f"wrote {out}")
    return 0


def video_command(args: argparse.Namespace) -> int:
    from .viz.video import video_gif

    out = video_gif(
        video=args.video,
        frames=args.frames,
        **model_source(args),
        out=args.out,
        method=args.method,
        keep=args.keep,
    )
    print(f"wrote {out}")
    return 0


def gallery_command(args: argparse.Namespace) -> int:
    from .gallery import make_gallery

    make_gallery(args.out, runs=args.runs, minutes=args.minutes, reuse=args.reuse)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lejepa-viz", description="LeJEPA and SIGReg, seen.")
    sub = parser.add_subparsers(dest="command", required=True)

    for name, extra in (("clouds", {}), ("sigreg-demo", {"help": "old name of clouds"})):
        p = sub.add_parser(
            name, **{"help": "SIGReg alone turns point clouds into N(0, I)", **extra}
        )
        p.add_argument("--n", type=int, default=1024, help="points per cloud")
        p.add_argument("--dim", type=int, default=8, help="dimension of the clouds")
        p.add_argument("--steps", type=int, default=400, help="Adam steps")
        p.add_argument("--seed", type=int, default=0)
        p.set_defaults(func=clouds_command)

    p = sub.add_parser("train", help="pretrain an encoder with LeJEPA")
    add_config_arguments(p, TrainConfig)
    p.set_defaults(func=train_command)

    p = sub.add_parser("eval", help="linear probe, k-NN and few-shot table of a checkpoint")
    p.add_argument("--checkpoint", required=True, help="a checkpoint.pt written by train")
    p.add_argument("--out", default=None, help="results JSON (default: beside the checkpoint)")
    p.add_argument("--draws", type=int, default=5, help="few-shot draws per shot count")
    p.add_argument("--num-train", type=int, help="a random subset of the training split")
    p.add_argument("--num-test", type=int, help="a random subset of the test split")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, ...")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=eval_command)

    p = sub.add_parser("animate", help="embedding-convergence animation of a training run")
    p.add_argument("--snapshots", required=True, help="snapshots.pt written by lejepa-viz train")
    p.add_argument("--metrics", help="its metrics.jsonl (default: beside the snapshots)")
    p.add_argument("--out", required=True, help="FILE.gif or FILE.mp4")
    p.add_argument("--seed", type=int, default=0, help="seed of the projection directions")
    p.add_argument("--max-frames", type=int, default=100, help="evenly thinned to this (0: all)")
    p.set_defaults(func=animate_command)

    p = sub.add_parser("flow", help="SIGReg gradient flow of a point cloud, as an animation")
    p.add_argument("--shape", choices=CLOUD_SHAPES, default="ring")
    p.add_argument("--dim", type=int, default=2, help="dimension D of the cloud")
    p.add_argument("--n", type=int, default=1024, help="points in the cloud")
    p.add_argument("--steps", type=int, default=300, help="optimisation steps")
    p.add_argument(
        "--past-null",
        action="store_true",
        help="go on below the null level (the points then fit the knots)",
    )
    p.add_argument(
        "--optimizer",
        choices=("sgd", "adam"),
        default="sgd",
        help="plain gradient descent (default) or Adam (faster, but it streaks along the axes)",
    )
    p.add_argument("--lambdas", type=float, nargs="+", help=argparse.SUPPRESS)  # old `lambda`
    p.add_argument("--out", required=True, help="FILE.gif or FILE.mp4")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=flow_command)

    p = sub.add_parser("lambda", help="a tiny encoder trained with λ = 0 beside λ > 0")
    p.add_argument(
        "--lambdas",
        type=float,
        nargs="+",
        metavar="λ",
        default=[0.0, 0.5],
        help="the λ values side by side (default: 0 0.5)",
    )
    p.add_argument(
        "--task",
        choices=("cloud", "digits"),
        default="cloud",
        help="a 2-D cloud with two noisy views (default) or the digits",
    )
    p.add_argument("--steps", type=int, default=200, help="training steps of each run")
    p.add_argument("--out", required=True, help="FILE.gif or FILE.mp4")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=lambda_command)

    images_help = "image files or one folder (default: the bundled photos)"
    p = sub.add_parser("pca", help="PCA maps of ViT patch features, image | map pairs")
    p.add_argument("--images", nargs="*", help=images_help)
    model_arguments(p)
    p.add_argument(
        "--fit",
        choices=("joint", "per-image"),
        default="joint",
        help="one PCA for all images, or one per image (the paper's Fig. 14)",
    )
    p.add_argument("--foreground", action="store_true", help="mask the background by PC1")
    p.add_argument("--threshold", type=float, default=0.0, help="PC1 threshold of the mask")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=pca_command)

    keep_help = "the share of the [CLS] attention the mask holds (DINO: 0.6)"
    p = sub.add_parser("attention", help="[CLS] attention masks of a ViT, image | mask pairs")
    p.add_argument("--images", nargs="*", help=images_help)
    model_arguments(p)
    p.add_argument("--keep", type=float, default=0.6, help=keep_help)
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=attention_command)

    p = sub.add_parser("maps", help="PCA maps and attention masks, trained beside random init")
    p.add_argument("--images", nargs="*", help=images_help)
    model_arguments(p)
    p.add_argument("--keep", type=float, default=0.6, help=keep_help)
    p.add_argument("--out", required=True, help="FILE.png")
    p.set_defaults(func=maps_command)

    p = sub.add_parser("evolve", help="the same images' maps across checkpoints, one GIF")
    p.add_argument(
        "--weights",
        nargs="+",
        required=True,
        help="checkpoints in training order: files, folders (a run's backbones/step*), hf: specs",
    )
    p.add_argument("--backbone", help="their timm architecture, where the shapes do not say it")
    p.add_argument("--images", nargs="*", help=images_help)
    p.add_argument("--keep", type=float, default=0.6, help=keep_help)
    p.add_argument("--trust-weights", action="store_true", help="allow full unpickling")
    p.add_argument("--out", required=True, help="FILE.gif or FILE.mp4")
    p.set_defaults(func=evolve_command)

    p = sub.add_parser("video", help="video frames beside their attention mask or map, a GIF")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--video", help="a video file (read through imageio-ffmpeg)")
    src.add_argument("--frames", help="a folder of frames (default: a camera path on a photo)")
    model_arguments(p)
    p.add_argument(
        "--method",
        choices=("attention", "pca"),
        help="the [CLS] attention mask (default for ViTs with one) or PC1 heat",
    )
    p.add_argument("--keep", type=float, default=0.6, help=keep_help)
    p.add_argument("--out", required=True, help="FILE.gif or FILE.mp4")
    p.set_defaults(func=video_command)

    p = sub.add_parser("gallery", help="train or reuse small models, then draw every picture")
    p.add_argument("--out", default="eval", help="gallery folder")
    p.add_argument("--runs", default="runs/gallery", help="where the gallery's models train")
    p.add_argument("--minutes", type=float, default=3.0, help="training budget of each model")
    p.add_argument(
        "--reuse",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="reuse finished runs in --runs (default) instead of training again",
    )
    p.set_defaults(func=gallery_command)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, ConnectionError, FloatingPointError) as err:
        print(f"lejepa-viz {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
