"""What a training run is made of, built once from its config, and its checkpoint.

:func:`build` makes a :class:`Setup` of named parts: :class:`Data` (the splits, this rank's
shard of the order, the views, the images of precise BN), :class:`Learner` (the model, its DDP
wrapper, SIGReg, AdamW with named parameter groups), :class:`Schedule` (how long the run is and
the rule of its learning rate) and the :class:`~.recorder.Recorder`. :class:`Progress` says
where the run stands; :func:`save_checkpoint` writes both, :func:`restore` reads them back.
The loop that uses them is :mod:`.loop`.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.utils.data import DistributedSampler

from .. import distributed as dist
from ..data import ImageDataset, MultiViewAugment, load_dataset
from ..distributed import seeded
from ..model import Encoder
from ..runs import Run
from ..sigreg import SIGReg
from .config import TrainConfig
from .recorder import Recorder
from .step import LeJEPAModel, lr_scale

PRECISE_BN_IMAGES = 4096  # clean training images BatchNorm statistics are re-estimated on


@dataclass
class Data:
    """The images a run reads and how it reads them."""

    train: ImageDataset
    test: ImageDataset
    sampler: DistributedSampler  # this rank's shard of one shuffled order per epoch
    augment: MultiViewAugment
    views_gen: torch.Generator  # this rank's stream of view randomness
    bn_images: torch.Tensor  # (n, C, H, W) uint8: the clean images of precise BN


def build_data(cfg: TrainConfig) -> Data:
    """The splits, this rank's sampler, the views and their generator, precise BN's images."""
    rank, world = dist.rank(), dist.world_size()
    options = dict(image_size=cfg.image_size, skip_bad_images=cfg.skip_bad_images)
    options |= dict(download=cfg.download)
    train_set = load_dataset(cfg.dataset, "train", cfg.root, **options)
    # A dataset smaller than one global batch (e.g. the 7 bundled photos) is repeated until it
    # fills one: an epoch then shows every image about equally often, each time as new views.
    repeats = math.ceil(cfg.batch_size * world / len(train_set))
    sampler = DistributedSampler(
        range(len(train_set) * repeats),
        num_replicas=world,
        rank=rank,
        shuffle=True,
        seed=cfg.seed,
        drop_last=True,
    )
    shuffled = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(cfg.seed))
    return Data(
        train=train_set,
        test=load_dataset(cfg.dataset, "test", cfg.root, **options),
        sampler=sampler,
        augment=MultiViewAugment.for_dataset(
            train_set,
            cfg.num_global,
            cfg.num_local,
            global_scale=cfg.global_scale,
            local_scale=cfg.local_scale,
            clean_views=cfg.clean_views,
        ),
        views_gen=torch.Generator().manual_seed(cfg.seed + 1 + rank),
        bn_images=train_set.images[shuffled[:PRECISE_BN_IMAGES]],
    )


@dataclass
class Learner:
    """What learns: the encoder and its online probe, DDP around them, SIGReg, AdamW.

    The optimiser's parameter groups are named (``"encoder"``, ``"probe"``, see
    :func:`param_groups`) and hold their own ``base_lr``: no learning rate depends on the
    order of the groups.
    """

    model: LeJEPAModel
    ddp: nn.Module  # the model, or its DDP wrapper when several processes train
    sigreg: SIGReg
    optimizer: torch.optim.Optimizer

    def scale_learning_rates(self, scale: float) -> None:
        """Set every group's learning rate to ``scale`` times its ``base_lr``."""
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * scale

    def learning_rate(self, name: str) -> float:
        """The current learning rate of the parameter group ``name``."""
        return next(g["lr"] for g in self.optimizer.param_groups if g["name"] == name)


def param_groups(model: LeJEPAModel, cfg: TrainConfig) -> list[dict]:
    """AdamW's parameter groups, each named and holding its base learning rate: the encoder
    (``cfg.lr``, ``cfg.weight_decay``) and the online probe (``cfg.probe_lr``, no decay)."""

    def group(name: str, module: nn.Module, lr: float, weight_decay: float) -> dict:
        params = list(module.parameters())
        return dict(name=name, params=params, lr=lr, base_lr=lr, weight_decay=weight_decay)

    return [
        group("encoder", model.encoder, cfg.lr, cfg.weight_decay),
        group("probe", model.probe, cfg.probe_lr, 0.0),
    ]


def build_learner(cfg: TrainConfig, data: Data, device: torch.device) -> Learner:
    """The model, seeded with ``cfg.seed`` (the global random state left as it was), on
    ``device``; its DDP wrapper under a process group; SIGReg; AdamW."""
    with seeded(cfg.seed):
        encoder = Encoder.build(
            cfg.backbone,
            data.train.num_channels,
            data.train.image_size,
            data.train.mean,
            data.train.std,
            cfg.proj_hidden,
            cfg.proj_dim,
        )
        supervised = cfg.objective == "supervised"
        model = LeJEPAModel(encoder, len(data.train.classes), supervised).to(device)
    return Learner(
        model=model,
        ddp=dist.data_parallel(model),
        sigreg=SIGReg(num_slices=cfg.num_slices, seed=cfg.seed).to(device),
        optimizer=torch.optim.AdamW(param_groups(model, cfg)),
    )


@dataclass(frozen=True)
class Schedule:
    """How long a run is, and the rule of its learning rate.

    Example:
        >>> Schedule(steps_per_epoch=10, total_steps=100, num_epochs=10, warmup=10).lr_scale(50)
        0.5005
    """

    steps_per_epoch: int
    total_steps: int | None  # None: a time budget decides
    num_epochs: int
    warmup: int
    max_seconds: float | None = None  # the time budget (max_minutes), if any

    def lr_scale(self, step: int, seconds: float = 0.0) -> float:
        """The learning rate of ``step`` as a fraction of the base rates (warm-up, then cosine,
        :func:`~.step.lr_scale`), the run's progress counted in steps or in ``seconds`` of
        its time budget, whichever is further along."""
        done = step / self.total_steps if self.total_steps else 0.0
        if self.max_seconds:
            done = max(done, seconds / self.max_seconds)
        return lr_scale(step, done, self.warmup)


def build_schedule(cfg: TrainConfig, data: Data) -> Schedule:
    """The steps of an epoch (of this rank's shard), of the run, its epochs and warm-up."""
    steps_per_epoch = len(data.sampler) // cfg.batch_size
    total = cfg.steps or (cfg.epochs * steps_per_epoch if cfg.epochs else None)
    return Schedule(
        steps_per_epoch=steps_per_epoch,
        total_steps=total,
        num_epochs=math.ceil(total / steps_per_epoch) if total else 10**9,
        warmup=cfg.warmup_steps if total is None else min(cfg.warmup_steps, max(1, total // 10)),
        max_seconds=60 * cfg.max_minutes if cfg.max_minutes else None,
    )


def build_recorder(
    cfg: TrainConfig, data: Data, schedule: Schedule, device: torch.device
) -> Recorder:
    """The recorder of ``cfg.snapshot_images`` seeded test images, about ``max_snapshots``
    frames over the run (a time budget has no step count: dense from the start, it halves)."""
    pick = torch.randperm(len(data.test), generator=torch.Generator().manual_seed(cfg.seed))
    pick = pick[: cfg.snapshot_images]
    total = schedule.total_steps
    return Recorder(
        data.test.images[pick].to(device).float() / 255,
        data.test.labels[pick],
        max(1, total // cfg.max_snapshots) if total else 5,
        cfg.max_snapshots,
    )


@dataclass
class Setup:
    """What a run builds once from its config (:func:`build`)."""

    cfg: TrainConfig
    device: torch.device
    data: Data
    learner: Learner
    schedule: Schedule
    recorder: Recorder


def build(cfg: TrainConfig, device: torch.device) -> Setup:
    """Every part of a run of the (resolved) ``cfg`` on ``device``."""
    data = build_data(cfg)
    schedule = build_schedule(cfg, data)
    return Setup(
        cfg=cfg,
        device=device,
        data=data,
        learner=build_learner(cfg, data, device),
        schedule=schedule,
        recorder=build_recorder(cfg, data, schedule, device),
    )


@dataclass
class Progress:
    """Where a run stands; saved in every checkpoint."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of the epoch done
    elapsed: float = 0.0  # seconds of training (the epoch-end probes left out)
    probe_acc: float | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)  # ties the run's files


def save_checkpoint(run: Run, s: Setup, p: Progress) -> None:
    """Checkpoint and snapshots of the run as it stands (a collective under DDP: every rank's
    view generator state is gathered; rank 0 writes).

    No global random state is saved: training draws none (the model's initialisation is
    :func:`~lejepa_viz.distributed.seeded`, every other draw has its own generator).
    """
    views = dist.gather_objects(s.data.views_gen.get_state())
    if dist.rank() != 0:
        return
    run.save_checkpoint(
        {
            "encoder_config": s.learner.model.encoder.config,
            "model": s.learner.model.state_dict(),
            "optimizer": s.learner.optimizer.state_dict(),
            "sigreg": s.learner.sigreg.state_dict(),
            "recorder": s.recorder.state_dict(),
            "views_generator": views,
            "config": asdict(s.cfg),
            **asdict(p),
        }
    )
    run.save_snapshots(
        s.recorder.snapshots(
            classes=s.data.test.classes, lam=s.cfg.lam, dataset=s.cfg.dataset, run_id=p.run_id
        )
    )


def restore(run: Run, s: Setup) -> Progress:
    """Load the run's checkpoint into ``s``; the progress it saved. The parameter groups keep
    the names and base learning rates ``s`` was built with (also from checkpoints written
    before groups had names)."""
    ckpt = run.load_checkpoint()
    s.learner.model.load_state_dict(ckpt["model"])
    optimizer = s.learner.optimizer
    built = [{"name": g["name"], "base_lr": g["base_lr"]} for g in optimizer.param_groups]
    optimizer.load_state_dict(ckpt["optimizer"])
    for group, names in zip(optimizer.param_groups, built, strict=True):
        group.update(names)
    s.learner.sigreg.load_state_dict(ckpt["sigreg"])
    s.recorder.load_state_dict(ckpt["recorder"])
    s.data.views_gen.set_state(ckpt["views_generator"][dist.rank()])
    return Progress(**{k: ckpt[k] for k in Progress.__dataclass_fields__ if k in ckpt})
