"""Where a LeJEPA training step spends its time, and how many images per second it trains.

Runs the real step (views → backbone → projector → lejepa_loss + probe → AdamW) on
Fashion-MNIST with the default backbone, and times its parts side by side on the same batches:
data preparation (the batched multi-view augmentation), SIGReg forward+backward on the step's
``z``, and the whole step.

    python benchmarks/train_step.py [--dataset fashion-mnist] [--steps 30] [--batch-size 256]
                                    [--device auto|cpu|cuda]

On CUDA the step runs under bf16 autocast, as in training, and every timer synchronises.
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from lejepa_viz.data import MultiViewAugment, load_dataset
from lejepa_viz.model import Encoder, default_backbone
from lejepa_viz.sigreg import SIGReg, lejepa_loss
from lejepa_viz.train import LeJEPAModel, TrainConfig, resolve_device


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

    cfg = TrainConfig(dataset=args.dataset, batch_size=args.batch_size)
    data = load_dataset(cfg.dataset, "train")
    backbone = args.backbone or default_backbone(cfg.dataset)
    encoder = Encoder(backbone, data.num_channels, data.image_size, data.mean, data.std,
                      cfg.proj_hidden, cfg.proj_dim)  # fmt: skip
    model = LeJEPAModel(encoder, len(data.classes)).to(device)
    augment = MultiViewAugment.for_dataset(data, cfg.num_global, cfg.num_local)
    sigreg = SIGReg(num_slices=cfg.num_slices).to(device)
    images, labels = data.images.to(device), data.labels.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    timers = {"data": 0.0, "sigreg": 0.0, "step": 0.0}

    for i in range(args.steps + 3):  # 3 warm-up steps
        idx = torch.randint(len(data), (cfg.batch_size,), generator=gen)
        idx = idx.to(device)
        t0 = clock()
        g, loc = augment(images[idx], generator=gen)
        t1 = clock()
        with autocast:
            z, logits = model(g, loc)
            parts = lejepa_loss(z, cfg.lam, sigreg, num_global_views=cfg.num_global)
            probe = F.cross_entropy(logits.float(), labels[idx].repeat(cfg.num_global))
        opt.zero_grad()
        (parts.loss + probe).backward()
        opt.step()
        t2 = clock()
        zz = z.detach().requires_grad_()  # SIGReg alone on the same z, forward + backward
        t3 = clock()
        with autocast:
            loss = sigreg(zz)
        loss.backward()
        t4 = clock()
        if i >= 3:
            timers["data"] += t1 - t0
            timers["step"] += t2 - t0
            timers["sigreg"] += t4 - t3

    n, step = args.steps, timers["step"] / args.steps
    views = f"{cfg.num_global}×{tuple(g.shape[-2:])} + {cfg.num_local}×{tuple(loc.shape[-2:])}"
    print(f"# {backbone} on {cfg.dataset}, batch {cfg.batch_size}, views {views}, "
          f"SIGReg K = {cfg.num_slices}, "
          f"{torch.cuda.get_device_name() if cuda else f'{torch.get_num_threads()} threads'}\n")  # fmt: skip
    print(f"- step: {1e3 * step:.1f} ms → {cfg.batch_size / step:.0f} images/s")
    for part in ("data", "sigreg"):
        share = timers[part] / timers["step"]
        print(
            f"- {part:6s}: {1e3 * timers[part] / n:6.1f} ms per step ({100 * share:4.1f}% of the step)"
        )
    both = (timers["data"] + timers["sigreg"]) / timers["step"]
    print(f"- data + SIGReg together: {100 * both:.1f}% of the step")


if __name__ == "__main__":
    main()
