"""The LeJEPA training loop: ``train(cfg)``, and ``cached_train(cfg)`` that reuses a finished run.

Per step :func:`~lejepa_viz.train.step.train_step`; around it, read top to bottom in
:func:`train`: the learning-rate schedule, a metrics line every ``log_every`` steps, the
recorder's snapshots, a checkpoint every epoch (and every ``checkpoint_every`` steps), the
online probe scored on the test split each epoch, and at the end a logistic regression on
frozen features. :func:`should_stop` owns the rule that ends a run. Runs on a laptop CPU, on a
GPU (bf16 autocast) and on several processes through ``torchrun`` (DDP; rank 0 logs and
writes). ``resume=True`` continues a killed run to the same final metrics (for ``steps`` /
``epochs`` runs; a ``max_minutes`` schedule follows the wall clock). What the loop works on is
built once in :mod:`.parts`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, replace
from functools import partial

import torch
from tqdm.auto import tqdm

from .. import distributed as dist
from .._checks import value_checks
from ..backbones import save_backbone
from ..data import ImageDataset
from ..data.base import labelled
from ..data.packed import prefetch
from ..evaluate.probes import encoder_features, linear_probe
from ..model import precise_bn
from ..runs import Run
from .config import TrainConfig, config_key
from .parts import Progress, Setup, build, restore, save_checkpoint
from .step import LeJEPAModel, StepOutput, train_step


class Clock:
    """Training time: the wall clock since the run began, the epoch-end probes left out.

    ``p.elapsed`` holds the seconds up to the last :meth:`lap` (it is saved in checkpoints);
    :meth:`now` adds the seconds since, on this process's clock. :attr:`agreed` is the time
    every rank reads alike (:meth:`agree`): what the time budget and its learning rates use.
    """

    def __init__(self, p: Progress, device: torch.device, agree_every: int):
        self.p, self.tick, self.tick_step = p, time.perf_counter(), p.step
        self.device, self.agree_every = device, agree_every
        self.agreed, self.agreed_step = p.elapsed, p.step

    def now(self) -> float:
        return self.p.elapsed + time.perf_counter() - self.tick

    def agree(self) -> float:
        """The training seconds, the same on every rank, read at most once a step: in one
        process the clock itself; under DDP the ranks' largest, all-reduced every
        ``agree_every`` steps (steps whose metrics line waits for the device anyway) and held
        in between, so that ranks stop at the same step with the same learning rates."""
        if self.p.step != self.agreed_step:
            self.agreed_step = self.p.step
            if not dist.is_distributed():
                self.agreed = self.now()
            elif self.p.step % self.agree_every == 0:
                self.agreed = dist.max_over_ranks(self.now(), self.device)
        return self.agreed

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


def should_stop(s: Setup, p: Progress, clock: Clock) -> bool:
    """Whether the run is over, the same answer on every rank: its epochs or its steps are
    done, or its time budget (``max_minutes``) is spent by the time the ranks agree on
    (:meth:`Clock.agree`; no time budget, no clock read and no collective)."""
    schedule = s.schedule
    if p.epoch >= schedule.num_epochs:
        return True
    if schedule.total_steps is not None and p.step >= schedule.total_steps:
        return True
    return schedule.max_seconds is not None and clock.agree() > schedule.max_seconds


def epoch_batches(s: Setup, p: Progress) -> Iterator[torch.Tensor]:
    """The image indices ``(B,)`` of the batches of epoch ``p.epoch`` left to train (a resumed
    run starts mid-epoch); every process draws its own shard of one shuffled order."""
    steps, batch = s.schedule.steps_per_epoch, s.cfg.batch_size
    s.data.sampler.set_epoch(p.epoch)
    order = torch.tensor(list(s.data.sampler))[: steps * batch].view(steps, batch)
    yield from order[p.batch_in_epoch :] % len(s.data.train)


class Writer:
    """The run's folder as the loop writes it: every rank calls, rank 0 writes (a checkpoint
    first gathers every rank's view generator: a collective)."""

    def __init__(self, run: Run, on_log: Callable[[dict], None] | None, keep_backbones: bool):
        self.run, self.on_log, self.main = run, on_log, dist.rank() == 0
        self.keep_backbones = keep_backbones and self.main

    def start(self, cfg: TrainConfig, p: Progress) -> None:
        """``config.json`` with the run's id; the log, trimmed to ``p.step`` when resumed."""
        if self.main:
            self.run.write_config({**asdict(cfg), "run_id": p.run_id})
            self.run.start_metrics(p.step if cfg.resume else None)

    def log(self, record: dict) -> None:
        if self.main:
            self.run.log(record)
            if self.on_log is not None:
                self.on_log(dict(record))  # a copy: train goes on using its own

    def checkpoint(self, s: Setup, p: Progress) -> None:
        save_checkpoint(self.run, s, p)

    def backbone(self, s: Setup, p: Progress) -> None:
        """With ``keep_backbones``: the backbone as ``backbones/step{N:06d}/`` (float16
        safetensors and config.json, for ``lejepa-viz evolve``)."""
        if self.keep_backbones:
            folder = self.run.path("backbones") / f"step{p.step:06d}"
            save_backbone(s.learner.model.encoder, folder, step=p.step)


def backbone_due(step: int) -> bool:
    """The steps at which ``keep_backbones`` keeps the backbone: 0, 8, 16, 32, ... (the maps
    change most early); :func:`train` keeps the last step's as well.

    Example:
        >>> [step for step in range(40) if backbone_due(step)]
        [0, 8, 16, 32]
    """
    return step == 0 or (step >= 8 and step & (step - 1) == 0)


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
        "lr": s.learner.learning_rate("encoder"),
        "images_per_s": clock.lap() * s.cfg.batch_size * dist.world_size(),
        "elapsed_s": round(p.elapsed, 2),
    }


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


def end_epoch(s: Setup, p: Progress, clock: Clock, out: Writer) -> None:
    """After the epoch's last batch or the run's: off the clock, re-estimate BatchNorm
    statistics on clean training images (:func:`~lejepa_viz.model.precise_bn`) and score the
    online probe; log it; keep the last frame when the run ends; checkpoint."""
    clock.pause()
    precise_bn(s.learner.model.encoder, s.data.bn_images)  # eval mode: clean images' own stats
    p.probe_acc = probe_accuracy(s.learner.model, s.data.test, s.device)
    clock.resume()
    out.log(
        {
            "step": p.step,
            "epoch": p.epoch,
            "probe_acc": p.probe_acc,
            "elapsed_s": round(p.elapsed, 2),
        }
    )
    if p.batch_in_epoch == s.schedule.steps_per_epoch:
        p.epoch, p.batch_in_epoch = p.epoch + 1, 0
    if should_stop(s, p, clock):
        s.recorder.record(p.step, s.learner.model.encoder, views=s.recorder.latest)  # last frame
    out.checkpoint(s, p)


def autocast(device: torch.device) -> AbstractContextManager:
    """The precision of the forward pass: bf16 autocast on CUDA, none elsewhere."""
    return torch.autocast("cuda", torch.bfloat16) if device.type == "cuda" else nullcontext()


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
    run = Run(cfg.out)
    if cfg.resume and not run.has_checkpoint():
        raise ValueError(f"--resume: no checkpoint at {run.path(Run.CHECKPOINT)}")
    s = build(cfg, device)
    p = restore(run, s) if cfg.resume else Progress()
    out = Writer(run, on_log, cfg.keep_backbones)
    out.start(cfg, p)
    clock, last = Clock(p, device, agree_every=cfg.log_every), {}
    if should_stop(s, p, clock):  # resumed after its last step (killed before its result)
        last = next((r for r in reversed(run.metrics()) if "loss" in r), {})
    step = partial(
        train_step,
        s.learner.ddp,
        s.data.augment,
        s.learner.sigreg,
        s.learner.optimizer,
        lam=cfg.lam,
        generator=s.data.views_gen,
        autocast=autocast(device),
        weighting=cfg.weighting,
        sigreg_views=cfg.sigreg_views,
        sigreg_on=cfg.sigreg_on,
    )  # (images, labels) -> StepOutput
    show = cfg.progress and out.main
    bar = tqdm(total=s.schedule.total_steps, initial=p.step, desc="LeJEPA", disable=not show)
    if backbone_due(p.step):
        out.backbone(s, p)
    encoder = s.learner.model.encoder
    checks = cfg.check_values if cfg.check_values is not None else device.type != "cuda"
    s.learner.model.train()
    with value_checks(checks):
        while not should_stop(s, p, clock):
            for index, images in prefetch(s.data.train.images, epoch_batches(s, p)):
                s.recorder.maybe_record(p.step, encoder)
                s.learner.scale_learning_rates(s.schedule.lr_scale(p.step, clock.agreed))
                images = images.to(device, non_blocking=True)
                labels = s.data.train.labels[index].to(device, non_blocking=True)
                losses = step(images, labels)
                s.recorder.saw(losses.z)  # the views this step's SIGReg acted on
                p.step, p.batch_in_epoch = p.step + 1, p.batch_in_epoch + 1
                bar.update(1)
                if backbone_due(p.step):
                    out.backbone(s, p)
                if p.step % cfg.log_every == 0 or p.step == s.schedule.total_steps:
                    last = metrics_line(s, p, losses, clock)
                    out.log(last)
                    bar.set_postfix({k: f"{last[k]:.3f}" for k in ("loss", "sigreg")})
                if should_stop(s, p, clock):
                    break
                if cfg.checkpoint_every and p.step % cfg.checkpoint_every == 0:
                    if p.batch_in_epoch < s.schedule.steps_per_epoch:  # (the epoch end writes one)
                        out.checkpoint(s, p)
            end_epoch(s, p, clock, out)
    bar.close()
    if not backbone_due(p.step):  # the end, unless the schedule just kept it
        out.backbone(s, p)
    return finish(s, p, last, out)


def finish(s: Setup, p: Progress, last: dict, out: Writer) -> dict:
    """The end of a run: the frozen linear probe (rank 0), the DDP replica check, the result."""
    result = {**last, "probe_acc": p.probe_acc, "step": p.step, "out": s.cfg.out}
    if s.cfg.final_probe and out.main:
        (train_x, train_y), (test_x, test_y) = (labelled(d) for d in (s.data.train, s.data.test))
        feats = [
            encoder_features(s.learner.model.encoder, x, s.device, s.cfg.progress)
            for x in (train_x, test_x)
        ]
        result["linear_probe"] = linear_probe(
            feats[0],
            train_y.numpy(),
            feats[1],
            test_y.numpy(),
            max_iter=300,
            quiet=True,
        )
        out.log({"step": p.step, "linear_probe": result["linear_probe"]})
    if dist.world_size() > 1:  # DDP keeps replicas identical; say so, with a number
        result["replica_max_diff"] = dist.divergence(s.learner.model.parameters())
    dist.cleanup()
    return result


def reusable(run: Run, cfg: TrainConfig) -> bool:
    """Whether the run in ``run``'s folder is ``cfg``'s: the same :meth:`~TrainConfig.key`,
    holding what ``cfg`` asks to keep beyond it (``backbones/`` for ``keep_backbones``)."""
    saved = run.config()
    if saved is None or config_key(saved) != cfg.key():
        return False
    return not cfg.keep_backbones or run.path("backbones").is_dir()


def cached_train(
    cfg: TrainConfig,
    *,
    reuse: bool = True,
    on_update: Callable[[list[dict]], None] | None = None,
) -> dict:
    """``train(cfg)``, unless ``cfg.out`` already holds this run finished.

    With ``reuse``, a run in ``cfg.out`` that is ``cfg``'s (:func:`reusable`: the same
    :meth:`~TrainConfig.key` and what ``cfg`` asks to keep) is loaded when finished (its
    ``result.json``, written here once ``train`` returns) and resumed from its checkpoint when
    killed half-way (the same final metrics); any other run there is trained over. The result
    never depends on whether the cache existed.

    Args:
        cfg: the run; ``cfg.out`` is its folder.
        reuse: False: train from scratch whatever ``cfg.out`` holds (neither loaded nor
            resumed); ``result.json`` is written all the same.
        on_update: called with all metrics lines so far each time training logs one (through
            ``train``'s ``on_log``, in the caller's thread, so plots drawn there land in a
            notebook cell), and once at the end with all of them (also when loaded).

    Returns:
        ``train``'s final metrics, plus ``"cached"``: whether the run was loaded, not trained.
    """
    run = Run(cfg.out)
    ours = reuse and reusable(run, cfg)
    # result.json counts only when it is the finished state of the run the folder holds
    result = run.result(matches=lambda finished: finished == run.config()) if ours else None
    cached = result is not None
    if not cached:
        records: list[dict] | None = None

        def logged(record: dict) -> None:
            nonlocal records
            if records is None:  # the log as train left it: a resumed run's trimmed lines
                records = run.metrics()
            else:
                records.append(record)
            on_update(records)

        resume = cfg.resume or (ours and run.has_checkpoint())  # --resume, or a killed run
        result = train(replace(cfg, resume=resume), logged if on_update is not None else None)
        if dist.launch_rank() == 0:  # (the group is gone by now: torchrun's rank decides)
            run.save_result(result)
    if on_update is not None:
        on_update(run.metrics())
    return {**result, "cached": cached}
