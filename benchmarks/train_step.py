"""Where a LeJEPA training step spends its time, and how many images per second it trains.

Times the package's own step, :func:`lejepa_viz.train.train_step` (views → backbone →
projector → lejepa_loss + probe → AdamW), built exactly as ``train`` builds it
(:func:`lejepa_viz.train.parts.build`), on Fashion-MNIST with the default backbone; beside it,
on the same batches, its two parts that are ours: the batched multi-view augmentation and
SIGReg forward+backward on a ``z`` of the step's shape.

    python benchmarks/train_step.py [--dataset fashion-mnist] [--steps 30] [--batch-size 256]
                                    [--device auto|cpu|cuda]

On CUDA the step runs as in training (bf16 autocast, input value checks off) and every
timer synchronises.
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch

from lejepa_viz._checks import value_checks
from lejepa_viz.distributed import resolve_device
from lejepa_viz.train import TrainConfig, train_step
from lejepa_viz.train.parts import build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--backbone", default=None)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()

    def clock() -> float:
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    cfg = TrainConfig(
        dataset=args.dataset,
        backbone=args.backbone,
        batch_size=args.batch_size,
        device=str(device),
        progress=False,
    ).resolved()
    s = build(cfg, device)
    images, labels = s.data.train.images.to(device), s.data.train.labels.to(device)
    gen = torch.Generator().manual_seed(0)
    timers = {"data": 0.0, "sigreg": 0.0, "step": 0.0}
    s.learner.model.train()
    with value_checks(not cuda):  # as train: no NaN check (a GPU sync) on CUDA
        for i in range(args.steps + 3):  # 3 warm-up steps
            idx = torch.randint(len(images), (cfg.batch_size,), generator=gen).to(device)
            t0 = clock()
            train_step(
                s.learner.model,
                s.data.augment,
                s.learner.sigreg,
                s.learner.optimizer,
                images[idx],
                labels[idx],
                lam=cfg.lam,
                generator=s.data.views_gen,
                autocast=autocast,
            )
            t1 = clock()
            g, loc = s.data.augment(images[idx], generator=gen)  # the step's views, again, alone
            t2 = clock()
            with torch.no_grad(), autocast:
                z, _, _ = s.learner.model(g, loc)  # (V, B, D)
            z = z.detach().requires_grad_()
            t3 = clock()
            with autocast:
                loss = s.learner.sigreg(z)
            loss.backward()
            t4 = clock()
            if i >= 3:
                timers["step"] += t1 - t0
                timers["data"] += t2 - t1
                timers["sigreg"] += t4 - t3

    n, step = args.steps, timers["step"] / args.steps
    views = f"{cfg.num_global}×{tuple(g.shape[-2:])} + {cfg.num_local}×{tuple(loc.shape[-2:])}"
    where = torch.cuda.get_device_name() if cuda else f"{torch.get_num_threads()} threads"
    print(
        f"# {cfg.backbone} on {cfg.dataset}, batch {cfg.batch_size}, views {views}, "
        f"SIGReg K = {cfg.num_slices}, {where}, torch {torch.__version__}\n"
    )
    print(
        f"- step (lejepa_viz.train.train_step): {1e3 * step:.1f} ms → "
        f"{cfg.batch_size / step:.0f} images/s"
    )
    for part in ("data", "sigreg"):
        share = timers[part] / timers["step"]
        print(f"- {part:6s}: {1e3 * timers[part] / n:6.1f} ms per step ({100 * share:4.1f}% of it)")
    both = (timers["data"] + timers["sigreg"]) / timers["step"]
    print(f"- data + SIGReg together: {100 * both:.1f}% of the step")


if __name__ == "__main__":
    main()
