"""The LeJEPA training loop: one ``TrainConfig``, one ``train(cfg)``, used by the CLI and notebooks.

Per step: a batch of images → G global and L local views (batched, on the device) → backbone
→ projector → ``z`` (V, B, D) → ``lejepa_loss`` → AdamW. Side roads only read: an online linear
probe (LayerNorm + Linear, its own parameter group) learns on detached embeddings of the global
views and is scored on the test split each epoch; a recorder keeps projector outputs of a fixed
batch of test images for the animations. Runs on a laptop CPU, on a GPU (bf16 autocast), and on
several processes through ``torchrun`` (DDP; rank 0 logs and writes). Checkpoints are atomic
and ``resume=True`` continues a killed run to the same final metrics (for ``steps``/``epochs``
runs; a ``max_minutes`` schedule follows the wall clock).
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning
from torch import nn
from torch.utils.data import DistributedSampler
from tqdm.auto import tqdm

from . import distributed as dist
from .data import MultiViewAugment, load_dataset
from .model import Encoder, default_backbone
from .sigreg import SIGReg, lejepa_loss


@dataclass
class TrainConfig:
    """Everything a run depends on; saved as ``config.json`` beside its outputs."""

    dataset: str = "fashion-mnist"
    root: str | None = None  # data folder (fashion-mnist IDX files) when not in the default place
    backbone: str | None = None  # any timm name; default per dataset (model.default_backbone)
    image_size: int | None = None  # resize to this side (default: the dataset's own size)
    epochs: int | None = None  # default 10 when neither epochs, steps nor max_minutes is given
    steps: int | None = None
    max_minutes: float | None = None
    batch_size: int = 256  # images per process and step (each gives G + L views)
    num_global: int = 2
    num_local: int = 2  # (28x28: two 14x14 local views beat four at equal wall time)
    lam: float = 0.05
    lr: float = 5e-3
    weight_decay: float = 0.05
    warmup_steps: int = 200
    probe_lr: float = 1e-2
    num_slices: int = 256
    proj_hidden: int = 512
    proj_dim: int = 128
    seed: int = 0
    device: str = "auto"
    out: str = "runs/fashion-mnist"
    log_every: int = 20
    checkpoint_every: int | None = None  # steps; a checkpoint is also written every epoch
    resume: bool = False
    skip_bad_images: bool = False
    snapshot_images: int = 512
    max_snapshots: int = 200
    final_probe: bool = True  # at the end: logistic regression on frozen features (full train set)
    progress: bool = True

    def validate(self) -> None:
        if not 0.0 <= self.lam <= 1.0:
            raise ValueError(f"lam must be in [0, 1], got {self.lam}")
        for name in ("epochs", "steps", "checkpoint_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ValueError(f"max_minutes must be > 0, got {self.max_minutes}")
        if self.batch_size < 2 or self.num_global < 1 or self.num_local < 0:
            raise ValueError("need batch_size >= 2, num_global >= 1 and num_local >= 0")


def resolve_device(device: str) -> torch.device:
    """``"auto"`` → CUDA when present, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class LeJEPAModel(nn.Module):
    """Encoder plus online probe, one module so that DDP synchronises both."""

    def __init__(self, encoder: Encoder, num_classes: int):
        super().__init__()
        self.encoder = encoder
        self.probe = nn.Sequential(
            nn.LayerNorm(encoder.embed_dim), nn.Linear(encoder.embed_dim, num_classes)
        )

    def forward(self, global_views: torch.Tensor, local_views: torch.Tensor):
        """(G, B, C, H, W) and (L, B, C, h, w) → z (G + L, B, D) and probe logits (G·B, classes)."""
        G, B = global_views.shape[:2]
        backbone = self.encoder.backbone
        emb = [backbone(self.encoder.normalize(global_views.flatten(0, 1)))]  # (G·B, F)
        if local_views.shape[0]:
            emb.append(backbone(self.encoder.normalize(local_views.flatten(0, 1))))
        z = self.encoder.projector(torch.cat(emb))  # one BatchNorm over all views
        return z.view(-1, B, z.shape[-1]), self.probe(emb[0].detach())


class Recorder:
    """Projector outputs of a fixed batch of test images every ``every`` steps, at most
    ``max_snapshots`` of them (when full, every other one is dropped and ``every`` doubles)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, every: int, max_snapshots: int):
        self.images, self.labels = images, labels
        self.every, self.max_snapshots = max(1, every), max_snapshots
        self.steps: list[int] = []
        self.z: list[torch.Tensor] = []

    def maybe_record(self, step: int, encoder: Encoder) -> None:
        if step % self.every == 0:
            self.record(step, encoder)

    @torch.no_grad()
    def record(self, step: int, encoder: Encoder) -> None:
        if self.steps and self.steps[-1] == step:
            return
        was_training = encoder.training
        encoder.eval()
        z = torch.cat([encoder(chunk)[1] for chunk in self.images.split(256)])
        encoder.train(was_training)
        self.steps.append(step)
        self.z.append(z.float().cpu().half())
        if len(self.steps) >= self.max_snapshots:
            self.steps, self.z, self.every = self.steps[::2], self.z[::2], self.every * 2

    def state_dict(self) -> dict:
        return {"steps": self.steps, "z": self.z, "every": self.every}

    def load_state_dict(self, state: dict) -> None:
        self.steps, self.z, self.every = state["steps"], state["z"], state["every"]


def _save_atomic(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


@torch.no_grad()
def probe_accuracy(model: LeJEPAModel, images: torch.Tensor, labels: torch.Tensor, device) -> float:
    """Accuracy of the online probe on ``images`` (uint8, N×C×H×W), in eval mode."""
    model.eval()
    correct = 0
    for x, y in zip(images.split(512), labels.split(512), strict=True):
        emb, _ = model.encoder(x.to(device).float() / 255)
        correct += (model.probe(emb).argmax(-1).cpu() == y).sum().item()
    model.train()
    return correct / len(labels)


def frozen_linear_probe(
    encoder: Encoder, train_set, test_set, device, progress: bool = True
) -> float:
    """Test accuracy of a logistic regression on the frozen ``encoder.features`` (full train set)."""
    from .evaluate import encoder_features, linear_probe

    train_x, test_x = (
        encoder_features(encoder, d.images, device, progress) for d in (train_set, test_set)
    )
    with warnings.catch_warnings():  # lbfgs stopped at max_iter: fine for a progress number
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        return linear_probe(
            train_x, train_set.labels.numpy(), test_x, test_set.labels.numpy(), max_iter=300
        )


def train(cfg: TrainConfig, on_log: Callable[[dict], None] | None = None) -> dict:
    """Train LeJEPA as ``cfg`` says; returns the final metrics.

    Writes ``config.json``, ``metrics.jsonl`` (one JSON object per logged step: ``step``,
    ``loss``, ``pred``, ``sigreg``, ``lr``, ``images_per_s``...; per-epoch lines add
    ``probe_acc``), ``checkpoint.pt`` and ``snapshots.pt`` to ``cfg.out`` (rank 0 only).
    ``on_log``, when given, is called on rank 0 with each metrics line as it is written (e.g.
    a live plot in a notebook).
    """
    cfg.validate()
    if cfg.epochs is None and cfg.steps is None and cfg.max_minutes is None:
        cfg.epochs = 10
    device = dist.setup(resolve_device(cfg.device))
    rank, world = dist.rank(), dist.world_size()
    main_process = rank == 0
    out = Path(cfg.out)
    ckpt_path = out / "checkpoint.pt"
    if cfg.resume and not ckpt_path.exists():
        raise ValueError(f"--resume: no checkpoint at {ckpt_path}")

    train_set = load_dataset(cfg.dataset, "train", cfg.root, image_size=cfg.image_size,
                             skip_bad_images=cfg.skip_bad_images)  # fmt: skip
    test_set = load_dataset(cfg.dataset, "test", cfg.root, image_size=cfg.image_size,
                            skip_bad_images=cfg.skip_bad_images)  # fmt: skip
    cfg.backbone = cfg.backbone or default_backbone(cfg.dataset)
    torch.manual_seed(cfg.seed)
    encoder = Encoder(cfg.backbone, train_set.num_channels, train_set.image_size, train_set.mean,
                      train_set.std, cfg.proj_hidden, cfg.proj_dim)  # fmt: skip
    model = LeJEPAModel(encoder, len(train_set.classes)).to(device)
    augment = MultiViewAugment.for_dataset(train_set, cfg.num_global, cfg.num_local)
    sigreg = SIGReg(num_slices=cfg.num_slices, seed=cfg.seed).to(device)
    optimizer = torch.optim.AdamW(
        [{"params": model.encoder.parameters(), "lr": cfg.lr, "weight_decay": cfg.weight_decay},
         {"params": model.probe.parameters(), "lr": cfg.probe_lr, "weight_decay": 0.0}]
    )  # fmt: skip
    base_lrs = [cfg.lr, cfg.probe_lr]
    ddp = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    )

    # A dataset smaller than one global batch (e.g. the 7 bundled photos) is repeated until it
    # fills one: an epoch then shows every image about equally often, each time as new views.
    repeats = math.ceil(cfg.batch_size * world / len(train_set))
    sampler = DistributedSampler(range(len(train_set) * repeats), num_replicas=world, rank=rank,
                                 shuffle=True, seed=cfg.seed, drop_last=True)  # fmt: skip
    steps_per_epoch = len(sampler) // cfg.batch_size
    total_steps = cfg.steps or (cfg.epochs * steps_per_epoch if cfg.epochs else None)
    num_epochs = math.ceil(total_steps / steps_per_epoch) if total_steps else 10**9
    budget = cfg.max_minutes * 60 if cfg.max_minutes else None

    pick = torch.randperm(len(test_set), generator=torch.Generator().manual_seed(cfg.seed))
    pick = pick[: cfg.snapshot_images]
    recorder = Recorder(test_set.images[pick].to(device).float() / 255, test_set.labels[pick],
                        every=max(1, total_steps // cfg.max_snapshots) if total_steps else 5,
                        max_snapshots=cfg.max_snapshots)  # fmt: skip
    # (a time budget has no step count: record densely from the start; the recorder halves)
    views_gen = torch.Generator().manual_seed(cfg.seed + 1 + rank)

    step, epoch, start_batch, elapsed, probe_acc = 0, 0, 0, 0.0, None
    run_id = uuid.uuid4().hex  # ties config.json, checkpoint.pt and snapshots.pt of one run
    if cfg.resume:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        sigreg.load_state_dict(ckpt["sigreg"])
        recorder.load_state_dict(ckpt["recorder"])
        views_gen.set_state(ckpt["views_generator"][rank])
        torch.set_rng_state(ckpt["torch_rng"])
        step, epoch, start_batch = ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]
        elapsed, probe_acc = ckpt["elapsed"], ckpt["probe_acc"]
        run_id = ckpt.get("run_id", run_id)

    metrics_path = out / "metrics.jsonl"
    if main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(
            json.dumps({**asdict(cfg), "run_id": run_id}, indent=2) + "\n"
        )
        if (
            cfg.resume and metrics_path.exists()
        ):  # drop what the killed run logged after its checkpoint
            lines = [
                ln for ln in metrics_path.read_text().splitlines() if json.loads(ln)["step"] <= step
            ]
            metrics_path.write_text("".join(ln + "\n" for ln in lines))
        elif not cfg.resume:
            metrics_path.write_text("")

    def log(record: dict) -> None:
        if main_process:
            with metrics_path.open("a") as f:
                f.write(json.dumps(record) + "\n")
            if on_log is not None:
                on_log(dict(record))  # a copy: train goes on using its own

    def checkpoint(epoch: int, batch_in_epoch: int) -> None:
        states = [views_gen.get_state()]
        if world > 1:  # every rank's augmentation stream, gathered on rank 0
            states = [None] * world
            torch.distributed.all_gather_object(states, views_gen.get_state())
        if main_process:
            _save_atomic({
                "encoder_config": model.encoder.config,
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "sigreg": sigreg.state_dict(), "recorder": recorder.state_dict(),
                "views_generator": states, "torch_rng": torch.get_rng_state(), "step": step,
                "epoch": epoch, "batch_in_epoch": batch_in_epoch, "elapsed": elapsed,
                "probe_acc": probe_acc, "config": asdict(cfg), "run_id": run_id,
            }, ckpt_path)  # fmt: skip
            _save_atomic({"steps": recorder.steps, "z": torch.stack(recorder.z) if recorder.z else None,
                          "labels": recorder.labels, "classes": test_set.classes, "lam": cfg.lam,
                          "dataset": cfg.dataset, "run_id": run_id},
                         out / "snapshots.pt")  # fmt: skip

    warmup = (
        cfg.warmup_steps
        if total_steps is None
        else min(cfg.warmup_steps, max(1, total_steps // 10))
    )
    bar = tqdm(total=total_steps, initial=step, desc="LeJEPA", disable=not (cfg.progress and main_process),
               dynamic_ncols=True)  # fmt: skip
    model.train()
    tick, tick_step, stop, last = time.perf_counter(), step, False, {}
    while epoch < num_epochs and not stop:
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler))[: steps_per_epoch * cfg.batch_size]
        batches = order.view(steps_per_epoch, cfg.batch_size)
        b = start_batch - 1
        for b in range(start_batch, steps_per_epoch):
            recorder.maybe_record(step, model.encoder)
            progress = step / total_steps if total_steps else 0.0
            if budget:
                progress = max(progress, (elapsed + time.perf_counter() - tick) / budget)
            cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
            scale = min(1.0, (step + 1) / warmup) * (1e-3 + (1 - 1e-3) * cosine)  # → lr / 1000
            for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
                group["lr"] = base * scale

            index = batches[b] % len(train_set)
            images = train_set.images[index].to(device, non_blocking=True)
            labels = train_set.labels[index].to(device, non_blocking=True)
            global_views, local_views = augment(images, generator=views_gen)
            with autocast:
                z, logits = ddp(global_views, local_views)  # (V, B, D), (G·B, classes)
                parts = lejepa_loss(z, cfg.lam, sigreg, num_global_views=cfg.num_global)
                probe_loss = F.cross_entropy(logits.float(), labels.repeat(cfg.num_global))
            optimizer.zero_grad(set_to_none=True)
            (parts.loss + probe_loss).backward()
            optimizer.step()
            step += 1
            bar.update(1)

            if step % cfg.log_every == 0 or step == total_steps:
                now = time.perf_counter()
                elapsed += now - tick
                last = {"step": step, "epoch": epoch, "loss": parts.loss.item(), "pred": parts.pred.item(),
                        "sigreg": parts.sigreg.item(), "probe_loss": probe_loss.item(),
                        "lr": optimizer.param_groups[0]["lr"],
                        "images_per_s": (step - tick_step) * cfg.batch_size * world / (now - tick),
                        "elapsed_s": round(elapsed, 2)}  # fmt: skip
                log(last)
                bar.set_postfix(loss=f"{last['loss']:.3f}", sigreg=f"{last['sigreg']:.3f}",
                                probe=f"{probe_acc or 0:.3f}", img_s=f"{last['images_per_s']:.0f}")  # fmt: skip
                tick, tick_step = now, step
            over_time = budget is not None and elapsed + time.perf_counter() - tick > budget
            stop = (total_steps is not None and step >= total_steps) or dist.any_rank(
                over_time, device
            )
            if stop:
                break
            if (
                cfg.checkpoint_every
                and step % cfg.checkpoint_every == 0
                and b + 1 < steps_per_epoch
            ):
                checkpoint(epoch, b + 1)  # (the epoch's end writes one anyway)
        finished_epoch = b + 1 == steps_per_epoch
        start_batch = 0
        elapsed += time.perf_counter() - tick
        probe_acc = probe_accuracy(model, test_set.images, test_set.labels, device)
        tick, tick_step = time.perf_counter(), step
        log({"step": step, "epoch": epoch, "probe_acc": probe_acc, "elapsed_s": round(elapsed, 2)})
        bar.set_postfix(loss=f"{last.get('loss', 0):.3f}", probe=f"{probe_acc:.3f}")
        epoch += finished_epoch
        if stop or epoch == num_epochs:
            recorder.record(step, model.encoder)  # the final state is always the last frame
        checkpoint(epoch, 0 if finished_epoch else b + 1)
    bar.close()
    if cfg.final_probe and main_process:
        last["linear_probe"] = frozen_linear_probe(
            model.encoder, train_set, test_set, device, cfg.progress
        )
        log({"step": step, "linear_probe": last["linear_probe"]})
    if world > 1:  # DDP keeps replicas identical; say so, with a number
        last["replica_max_diff"] = dist.divergence(
            model.parameters()
        )  # (buffers: rank 0's at each forward)
    dist.cleanup()
    return {**last, "probe_acc": probe_acc, "step": step, "out": str(out)}
