"""The commands that train, evaluate and animate: ``clouds``, ``train``, ``eval``, ``animate``,
``flow`` and ``lambda``; each a builder (its options) and a runner."""

from __future__ import annotations

import argparse
import os

from ..toys.clouds import CLOUD_SHAPES
from ..train import TrainConfig
from ..train.recipes import RECIPES
from .options import add_config_arguments, config_argv, from_args, out_option, wrote


def add_clouds(sub) -> None:
    p = sub.add_parser("clouds", help="SIGReg alone turns point clouds into N(0, I)")
    p.add_argument("--n", type=int, default=1024, help="points per cloud")
    p.add_argument("--dim", type=int, default=8, help="dimension of the clouds")
    p.add_argument("--steps", type=int, default=400, help="Adam steps")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=clouds)


def clouds(args: argparse.Namespace) -> dict:
    from ..toys.descent import clouds_table

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
    return table


def add_train(sub) -> None:
    p = sub.add_parser("train", help="pretrain an encoder with LeJEPA")
    add_config_arguments(p, TrainConfig)
    p.add_argument(
        "--reuse",
        action="store_true",
        help="reuse a finished run of this configuration in --out (resume a killed one)",
    )
    p.add_argument(
        "--recipe",
        choices=list(RECIPES),
        help="start from a published setting (README: Recipes); every option given still wins",
    )
    p.set_defaults(run=train, subparser=p)


def train(args: argparse.Namespace) -> dict:
    from ..train import cached_train

    cfg = from_args(TrainConfig, args)
    if args.recipe:
        r = RECIPES[args.recipe]
        print(f"recipe {args.recipe}: {r.source}\n  reported there: {r.reported}")
        print(f"  differs here: {r.differs}\n  runs as: {' '.join(config_argv(cfg))}")
        world = int(os.environ.get("WORLD_SIZE", 1))  # torchrun's processes
        if world > 1 and cfg.batch_size == r.fields.get("batch_size"):
            print(
                f"  note: --batch-size is per process: {world} processes make the recipe's batch "
                f"of {cfg.batch_size} one of {world * cfg.batch_size} (and an epoch {world} times "
                f"fewer steps); pass --batch-size {max(2, cfg.batch_size // world)} to keep it"
            )
    result = cached_train(cfg, reuse=args.reuse)
    if result.get("cached"):
        print(f"reusing the finished run in {result['out']}")
    if result.get("probe_acc") is not None:
        print(f"online probe accuracy (test split): {100 * result['probe_acc']:.2f}%")
    if result.get("linear_probe") is not None:
        probe = 100 * result["linear_probe"]
        print(f"linear probe accuracy (frozen features, test split): {probe:.2f}%")
    if "replica_max_diff" in result:
        diff = result["replica_max_diff"]
        print(f"DDP: replicas {'identical' if diff == 0 else 'DIFFER'} (max difference {diff:g})")
    print(f"checkpoint, metrics and snapshots in {result['out']}")
    return result


def add_eval(sub) -> None:
    p = sub.add_parser("eval", help="linear probe, k-NN and few-shot table of a checkpoint")
    p.add_argument("--checkpoint", required=True, help="a checkpoint.pt written by train")
    p.add_argument("--out", default=None, help="results JSON (default: beside the checkpoint)")
    p.add_argument("--draws", type=int, default=5, help="few-shot draws per shot count")
    p.add_argument("--num-train", type=int, help="a random subset of the training split")
    p.add_argument("--num-test", type=int, help="a random subset of the test split")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, ...")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reuse", action="store_true", help="reuse a saved evaluation of this run")
    p.set_defaults(run=evaluate)


def evaluate(args: argparse.Namespace) -> dict:
    from ..evaluate import evaluate_run

    report = evaluate_run(
        args.checkpoint,
        out=args.out,
        num_train=args.num_train,
        num_test=args.num_test,
        draws=args.draws,
        seed=args.seed,
        device=args.device,
        reuse=args.reuse,
    )
    print(report["table"])
    print(f"\nsaved {report['path']}")
    return report


def add_animate(sub) -> None:
    p = sub.add_parser("animate", help="embedding-convergence animation of a training run")
    p.add_argument("--snapshots", required=True, help="snapshots.pt written by lejepa-viz train")
    p.add_argument("--metrics", help="its metrics.jsonl (default: beside the snapshots)")
    out_option(p, "FILE.gif or FILE.mp4")
    p.add_argument("--seed", type=int, default=0, help="seed of the projection directions")
    p.add_argument("--max-frames", type=int, default=100, help="evenly thinned to this (0: all)")
    p.set_defaults(run=animate)


def animate(args: argparse.Namespace):
    from ..runs import load_recording
    from ..viz.animation import animate_snapshots
    from ..viz.export import animation_path

    out = animation_path(args.out)
    snapshots, curves = load_recording(args.snapshots, args.metrics)
    return wrote(
        animate_snapshots(
            snapshots, out, curves=curves, seed=args.seed, max_frames=args.max_frames or None
        )
    )


def add_flow(sub) -> None:
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
    out_option(p, "FILE.gif or FILE.mp4")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=flow)


def flow(args: argparse.Namespace):
    from ..pictures import flow_gif

    return wrote(
        flow_gif(
            args.out,
            args.shape,
            args.dim,
            n=args.n,
            steps=args.steps,
            seed=args.seed,
            past_null=args.past_null,
            optimizer=args.optimizer,
        )
    )


def add_lambda(sub) -> None:
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
    out_option(p, "FILE.gif or FILE.mp4")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=lambdas)


def lambdas(args: argparse.Namespace):
    from ..pictures import lambda_gif

    return wrote(
        lambda_gif(args.out, tuple(args.lambdas), steps=args.steps, seed=args.seed, task=args.task)
    )
