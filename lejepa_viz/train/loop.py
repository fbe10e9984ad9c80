"""The LeJEPA training loop: ``train(cfg)``, and ``cached_train(cfg)`` that reuses a finished run.

Per step :func:`~lejepa_viz.train.step.train_step`; around it, read top to bottom in
:func:`train`: the learning-rate schedule, a metrics line every ``log_every`` steps, the
recorder's snapshots, a checkpoint every epoch (and every ``checkpoint_every`` steps), the
online probe scored on the test split each epoch, and at the end a logistic regression on
frozen features. Runs on a laptop CPU, on a GPU (bf16 autocast) and on several processes
through ``torchrun`` (DDP; rank 0 logs and writes). ``resume=True`` continues a killed run to
the same final metrics (for ``steps`` / ``epochs`` runs; a ``max_minutes`` schedule follows
the wall clock).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from functools import partial

import torch
from torch import nn
from torch.utils.data import DistributedSampler
from tqdm.auto import tqdm

from .. import distributed as dist
from .._checks import value_checks
from ..backbones import save_backbone
from ..data import ImageDataset, MultiViewAugment, load_dataset
from ..evaluate.probes import encoder_features, linear_probe
from ..model import Encoder
from ..runs import Run
from ..sigreg import SIGReg
from .config import TrainConfig, config_key
from .recorder import Recorder
from .step import LeJEPAModel, StepOutput, lr_scale, train_step

PRECISE_BN_IMAGES = 4096  # clean training images BatchNorm statistics are re-estimated on


@dataclass
class Setup:
    """What a run builds once from its config: data, model, optimiser, schedule lengths."""

    cfg: TrainConfig
    device: torch.device
    train_set: ImageDataset
    test_set: ImageDataset
    model: LeJEPAModel
    ddp: nn.Module  # the model, or its DDP wrapper when several processes train
    augment: MultiViewAugment
    sigreg: SIGReg
    optimizer: torch.optim.Optimizer
    sampler: DistributedSampler
    recorder: Recorder
    bn_images: torch.Tensor  # (n, C, H, W) uint8: the clean images of precise BN
    views_gen: torch.Generator
    steps_per_epoch: int
    total_steps: int | None  # None: a time budget decides
    num_epochs: int
    warmup: int


@dataclass
class Progress:
    """Where a run stands; saved in every checkpoint."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    elapsed: float = 0.0  # seconds of training (the epoch-end probes left out)
    probe_acc: float | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)  # ties the run's files


def build(cfg: TrainConfig, device: torch.device) -> Setup:
    """Datasets, model, views, SIGReg, AdamW (encoder and probe groups), sampler, recorder."""
    rank, world = dist.rank(), dist.world_size()
    data = dict(image_size=cfg.image_size, skip_bad_images=cfg.skip_bad_images)
    train_set = load_dataset(cfg.dataset, "train", cfg.root, **data)
    test_set = load_dataset(cfg.dataset, "test", cfg.root, **data)
    torch.manual_seed(cfg.seed)
    encoder = Encoder(
        cfg.backbone,
        train_set.num_channels,
        train_set.image_size,
        train_set.mean,
        train_set.std,
        cfg.proj_hidden,
        cfg.proj_dim,
    )
    model = LeJEPAModel(encoder, len(train_set.classes)).to(device)
    groups = [
        {"params": model.encoder.parameters(), "lr": cfg.lr, "weight_decay": cfg.weight_decay},
        {"params": model.probe.parameters(), "lr": cfg.probe_lr, "weight_decay": 0.0},
    ]
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
    steps_per_epoch = len(sampler) // cfg.batch_size
    total = cfg.steps or (cfg.epochs * steps_per_epoch if cfg.epochs else None)
    pick = torch.randperm(len(test_set), generator=torch.Generator().manual_seed(cfg.seed))
    pick = pick[: cfg.snapshot_images]
    # (a time budget has no step count: record densely from the start; the recorder halves)
    every = max(1, total // cfg.max_snapshots) if total else 5
    recorder = Recorder(
        test_set.images[pick].to(device).float() / 255,
        test_set.labels[pick],
        every,
        cfg.max_snapshots,
    )
    return Setup(
        cfg=cfg,
        device=device,
        train_set=train_set,
        test_set=test_set,
        model=model,
        ddp=nn.parallel.DistributedDataParallel(model) if world > 1 else model,
        augment=MultiViewAugment.for_dataset(
            train_set,
            cfg.num_global,
            cfg.num_local,
            global_scale=cfg.global_scale,
            local_scale=cfg.local_scale,
            clean_views=cfg.clean_views,
        ),
        sigreg=SIGReg(num_slices=cfg.num_slices, seed=cfg.seed).to(device),
        optimizer=torch.optim.AdamW(groups),
        sampler=sampler,
        recorder=recorder,
        bn_images=train_set.images[
            torch.randperm(len(train_set), generator=torch.Generator().manual_seed(cfg.seed))[
                :PRECISE_BN_IMAGES
            ]
        ],
        views_gen=torch.Generator().manual_seed(cfg.seed + 1 + rank),
        steps_per_epoch=steps_per_epoch,
        total_steps=total,
        num_epochs=math.ceil(total / steps_per_epoch) if total else 10**9,
        warmup=cfg.warmup_steps if total is None else min(cfg.warmup_steps, max(1, total // 10)),
    )


def save_checkpoint(run: Run, s: Setup, p: Progress) -> None:
    """Checkpoint and snapshots of the run as it stands (a collective under DDP: every rank's
    view generator state is gathered; rank 0 writes)."""
    states = [s.views_gen.get_state()]
    if dist.world_size() > 1:
        states = [None] * dist.world_size()
        torch.distributed.all_gather_object(states, s.views_gen.get_state())
    if dist.rank() != 0:
        return
    run.save_checkpoint(
        {
            "encoder_config": s.model.encoder.config,
            "model": s.model.state_dict(),
            "optimizer": s.optimizer.state_dict(),
            "sigreg": s.sigreg.state_dict(),
            "recorder": s.recorder.state_dict(),
            "views_generator": states,
            "torch_rng": torch.get_rng_state(),
            "config": asdict(s.cfg),
            **asdict(p),
        }
    )
    run.save_snapshots(
        s.recorder.snapshots(
            classes=s.test_set.classes, lam=s.cfg.lam, dataset=s.cfg.dataset, run_id=p.run_id
        )
    )


def restore(run: Run, s: Setup) -> Progress:
    """Load the run's checkpoint into ``s``; the progress it saved."""
    ckpt = run.load_checkpoint()
    s.model.load_state_dict(ckpt["model"])
    s.optimizer.load_state_dict(ckpt["optimizer"])
    s.sigreg.load_state_dict(ckpt["sigreg"])
    s.recorder.load_state_dict(ckpt["recorder"])
    s.views_gen.set_state(ckpt["views_generator"][dist.rank()])
    torch.set_rng_state(ckpt["torch_rng"])
    return Progress(**{k: ckpt[k] for k in Progress.__dataclass_fields__ if k in ckpt})


@torch.no_grad()
def probe_accuracy(model: LeJEPAModel, data: ImageDataset, device: torch.device) -> float:
    """Accuracy of the online probe on ``data`` (clean images, eval mode)."""
    model.eval()
    correct = 0
    for x, y in zip(data.images.split(512), data.labels.split(512), strict=True):
        emb, _ = model.encoder(x.to(device).float() / 255)
        correct += (model.probe(emb).argmax(-1).cpu() == y).sum().item()
    model.train()
    return correct / len(data)


class Clock:
    """Training time: the wall clock since the run began, the epoch-end probes left out.

    ``p.elapsed`` holds the seconds up to the last :meth:`lap` (it is saved in checkpoints);
    :meth:`now` adds the seconds since.
    """

    def __init__(self, p: Progress):
        self.p, self.tick, self.tick_step = p, time.perf_counter(), p.step

    def now(self) -> float:
        return self.p.elapsed + time.perf_counter() - self.tick

    def lap(self) -> float:
        """Steps per second since the last lap (or :meth:`resume`); adds them to the time."""
        now = time.perf_counter()
        rate = (self.p.step - self.tick_step) / (now - self.tick)
        self.p.elapsed += now - self.tick
        self.tick, self.tick_step = now, self.p.step
        return rate

    def pause(self) -> None:
        self.p.elapsed += time.perf_counter() - self.tick

    def resume(self) -> None:
        self.tick, self.tick_step = time.perf_counter(), self.p.step


def epoch_batches(s: Setup, p: Progress):
    """``(b, indices (B,))`` of the batches of epoch ``p.epoch`` left to train (a resumed run
    starts mid-epoch); every process draws its own shard of one shuffled order."""
    s.sampler.set_epoch(p.epoch)
    order = torch.tensor(list(s.sampler))[: s.steps_per_epoch * s.cfg.batch_size]
    for b, index in enumerate(order.view(s.steps_per_epoch, -1)):
        if b >= p.batch_in_epoch:
            yield b, index % len(s.train_set)


def set_learning_rates(s: Setup, p: Progress, clock: Clock) -> None:
    """Warm-up then cosine (:func:`~.step.lr_scale`), by steps or by the clock's budget."""
    done = p.step / s.total_steps if s.total_steps else 0.0
    if s.cfg.max_minutes:
        done = max(done, clock.now() / (60 * s.cfg.max_minutes))
    for group, base in zip(s.optimizer.param_groups, (s.cfg.lr, s.cfg.probe_lr), strict=True):
        group["lr"] = base * lr_scale(p.step, done, s.warmup)


def metrics_line(s: Setup, p: Progress, out: StepOutput, clock: Clock) -> dict:
    """The metrics line of a logged step (reading the losses waits for a GPU: only here).

    Raises:
        FloatingPointError: a loss is NaN or Inf (checked here for free, also when the input
            checks are off on CUDA: a run never goes on silently with a NaN loss).
    """
    values = {name: value.item() for name, value in out.losses().items()}
    if not all(math.isfinite(v) for v in values.values()):
        raise FloatingPointError(
            f"the loss is not finite at step {p.step} ({values}); lower --lr, or look for "
            "NaN/Inf images with --check-values"
        )
    return {
        "step": p.step,
        "epoch": p.epoch,
        **values,
        "lr": s.optimizer.param_groups[0]["lr"],
        "images_per_s": clock.lap() * s.cfg.batch_size * dist.world_size(),
        "elapsed_s": round(p.elapsed, 2),
    }


def end_epoch(run: Run, s: Setup, p: Progress, clock: Clock, b: int, stop: bool, log) -> None:
    """After batch ``b``, off the clock: re-estimate BatchNorm statistics on clean training
    images (:meth:`~lejepa_viz.model.Encoder.precise_bn`), score the online probe, log it,
    keep the last frame when the run ends, checkpoint."""
    finished = b + 1 == s.steps_per_epoch
    clock.pause()
    s.model.encoder.precise_bn(s.bn_images)  # eval mode: clean images' own statistics
    p.probe_acc = probe_accuracy(s.model, s.test_set, s.device)
    clock.resume()
    elapsed = round(p.elapsed, 2)
    log({"step": p.step, "epoch": p.epoch, "probe_acc": p.probe_acc, "elapsed_s": elapsed})
    p.epoch, p.batch_in_epoch = p.epoch + finished, 0 if finished else b + 1
    if stop or p.epoch == s.num_epochs:
        s.recorder.record(p.step, s.model.encoder, views=s.recorder.latest)  # the last frame
    save_checkpoint(run, s, p)


def train(cfg: TrainConfig, on_log: Callable[[dict], None] | None = None) -> dict:
    """Train LeJEPA as ``cfg`` says (``cfg`` itself is not changed); returns the final metrics.

    Writes the run's files to ``cfg.out`` (rank 0 only, see :mod:`lejepa_viz.runs`):
    ``config.json``, ``metrics.jsonl`` (``step``, ``loss``, ``pred``, ``sigreg``, ``lr``,
    ``images_per_s``...; per-epoch lines add ``probe_acc``), ``checkpoint.pt`` and
    ``snapshots.pt``. ``on_log``, when given, is called on rank 0 with each metrics line as it
    is written (e.g. a live plot in a notebook).
    """
    cfg = cfg.resolved()
    device = dist.setup(dist.resolve_device(cfg.device))
    run, main = Run(cfg.out), dist.rank() == 0
    if cfg.resume and not run.has_checkpoint():
        raise ValueError(f"--resume: no checkpoint at {run.path(Run.CHECKPOINT)}")
    s = build(cfg, device)
    p = restore(run, s) if cfg.resume else Progress()
    if main:
        run.write_config({**asdict(cfg), "run_id": p.run_id})
        run.start_metrics(p.step if cfg.resume else None)

    def log(record: dict) -> None:
        if main:
            run.log(record)
            if on_log is not None:
                on_log(dict(record))  # a copy: train goes on using its own

    autocast = torch.autocast("cuda", torch.bfloat16) if device.type == "cuda" else nullcontext()
    checks = cfg.check_values if cfg.check_values is not None else device.type != "cuda"
    show = cfg.progress and main
    bar = tqdm(total=s.total_steps, initial=p.step, desc="LeJEPA", disable=not show)
    step = partial(
        train_step,
        s.ddp,
        s.augment,
        s.sigreg,
        s.optimizer,
        lam=cfg.lam,
        generator=s.views_gen,
        autocast=autocast,
    )  # (images, labels) -> losses
    clock, last = Clock(p), {}
    stop = p.epoch >= s.num_epochs or (s.total_steps is not None and p.step >= s.total_steps)
    if stop:  # resumed after its last step (killed before its result was saved): no step more
        last = next((r for r in reversed(run.metrics()) if "loss" in r), {})

    def keep_backbone(step: int) -> bool:  # 0, 8, 16, 32, ...: the maps change most early
        return main and cfg.keep_backbones and (step == 0 or (step >= 8 and step & (step - 1) == 0))

    if keep_backbone(p.step):
        backbone_snapshot(run, s, p)
    s.model.train()
    with value_checks(checks):
        while p.epoch < s.num_epochs and not stop:
            b = p.batch_in_epoch - 1
            for b, index in epoch_batches(s, p):
                s.recorder.maybe_record(p.step, s.model.encoder)
                set_learning_rates(s, p, clock)
                images = s.train_set.images[index].to(device, non_blocking=True)
                labels = s.train_set.labels[index].to(device, non_blocking=True)
                out = step(images, labels)
                s.recorder.saw(out.z)  # the views this step's SIGReg acted on
                p.step += 1
                bar.update(1)
                if keep_backbone(p.step):
                    backbone_snapshot(run, s, p)
                if p.step % cfg.log_every == 0 or p.step == s.total_steps:
                    last = metrics_line(s, p, out, clock)
                    log(last)
                    bar.set_postfix({k: f"{last[k]:.3f}" for k in ("loss", "sigreg")})
                over_time = bool(cfg.max_minutes) and clock.now() > 60 * cfg.max_minutes
                stop = s.total_steps is not None and p.step >= s.total_steps
                if stop or dist.any_rank(over_time, device):
                    stop = True
                    break
                if cfg.checkpoint_every and p.step % cfg.checkpoint_every == 0:
                    if b + 1 < s.steps_per_epoch:  # (the epoch's end writes one anyway)
                        save_checkpoint(run, s, replace(p, batch_in_epoch=b + 1))
            end_epoch(run, s, p, clock, b, stop, log)
    bar.close()
    if main and cfg.keep_backbones and not keep_backbone(p.step):
        backbone_snapshot(run, s, p)  # the end, unless the schedule just wrote it
    return finish(s, p, last, log)


def backbone_snapshot(run: Run, s: Setup, p: Progress) -> None:
    """The backbone at step ``p.step`` as ``backbones/step{N:06d}/`` (float16 safetensors and
    config.json; ``load_backbone`` reads it), for ``lejepa-viz evolve``."""
    save_backbone(s.model.encoder, run.path("backbones") / f"step{p.step:06d}", step=p.step)


def finish(s: Setup, p: Progress, last: dict, log: Callable[[dict], None]) -> dict:
    """The end of a run: the frozen linear probe (rank 0), the DDP replica check, the result."""
    result = {**last, "probe_acc": p.probe_acc, "step": p.step, "out": s.cfg.out}
    if s.cfg.final_probe and dist.rank() == 0:
        feats = [
            encoder_features(s.model.encoder, d.images, s.device, s.cfg.progress)
            for d in (s.train_set, s.test_set)
        ]
        result["linear_probe"] = linear_probe(
            feats[0],
            s.train_set.labels.numpy(),
            feats[1],
            s.test_set.labels.numpy(),
            max_iter=300,
            quiet=True,
        )
        log({"step": p.step, "linear_probe": result["linear_probe"]})
    if dist.world_size() > 1:  # DDP keeps replicas identical; say so, with a number
        result["replica_max_diff"] = dist.divergence(s.model.parameters())
    dist.cleanup()
    return result


def cached_train(
    cfg: TrainConfig, *, on_update: Callable[[list[dict]], None] | None = None
) -> dict:
    """``train(cfg)``, unless ``cfg.out`` already holds this run finished.

    A finished run (``result.json``, written here once ``train`` returns) of the same
    :meth:`~TrainConfig.key` is loaded instead of trained again; a run of the same key killed
    half-way is resumed from its checkpoint (the same final metrics); a run of another config
    in ``cfg.out`` is trained over. The result never depends on whether the cache existed.

    Args:
        cfg: the run; ``cfg.out`` is its folder.
        on_update: called with all metrics lines so far each time training logs one (through
            ``train``'s ``on_log``, in the caller's thread, so plots drawn there land in a
            notebook cell), and once at the end with all of them (also when loaded).

    Returns:
        ``train``'s final metrics, plus ``"cached"``: whether the run was loaded, not trained.
    """
    run, key = Run(cfg.out), cfg.key()
    result = run.result(matches=lambda saved: config_key(saved) == key)
    cached = result is not None
    if not cached:
        saved = run.config()
        resume = run.has_checkpoint() and saved is not None and config_key(saved) == key
        records: list[dict] | None = None

        def logged(record: dict) -> None:
            nonlocal records
            if records is None:  # the log as train left it: a resumed run's trimmed lines
                records = run.metrics()
            else:
                records.append(record)
            on_update(records)

        result = train(replace(cfg, resume=resume), logged if on_update is not None else None)
        run.save_result(result)
    if on_update is not None:
        on_update(run.metrics())
    return {**result, "cached": cached}
