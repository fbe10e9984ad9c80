"""``TrainConfig``: everything a training run depends on, saved as ``config.json`` beside it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

from ..model import default_backbone
from ..sigreg import SIGREG_VIEWS, WEIGHTINGS

DEFAULT_EPOCHS = 10  # when neither epochs, steps nor max_minutes is given
# Fields that change how a run is watched, not what it computes (left out of cache keys).
NOT_IN_KEY = ("progress", "resume", "check_values", "run_id", "keep_backbones", "download")
# fields added after runs were saved, at the default that does what those runs did: left out
# of the key at that value, so the saved runs stay reusable
ADDED = {
    "weighting": "convex",
    "sigreg_views": "each",
    "sigreg_on": "projector",
    "objective": "lejepa",
}


def option(default, help: str):
    """A field of a config with its default and its one-line ``--help`` text.

    Example:
        >>> from dataclasses import fields
        >>> fields(TrainConfig)[0].metadata["help"]
        'fashion-mnist, digits, photos, scenes, cifar10, ... or folder:PATH'
    """
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Everything a run depends on; saved as ``config.json`` beside its outputs.

    Every field is a ``lejepa-viz train`` option (``batch_size`` → ``--batch-size``), its
    ``metadata["help"]`` the option's help.
    """

    # what it learns from, and on what
    dataset: str = option(
        "fashion-mnist", "fashion-mnist, digits, photos, scenes, cifar10, ... or folder:PATH"
    )
    root: str | None = option(None, "data folder, when not in the dataset's default place")
    backbone: str | None = option(None, "a timm name; default: the dataset's (default_backbone)")
    image_size: int | None = option(None, "resize images to this side; default: their own")
    # how long: the first of these reached ends the run
    epochs: int | None = option(None, "epochs; 10 when none of epochs, steps, max_minutes is set")
    steps: int | None = option(None, "optimiser steps")
    max_minutes: float | None = option(
        None,
        "training minutes (the cosine follows the clock; under DDP read every log_every steps)",
    )
    # the batch and its views
    batch_size: int = option(256, "images per process and step (each gives G + L views)")
    num_global: int = option(2, "global views G per image")
    num_local: int = option(2, "local views L per image (28x28: two beat four at equal time)")
    global_scale: tuple[float, float] | None = option(
        None, "crop area range of global views; default: the dataset's"
    )
    local_scale: tuple[float, float] | None = option(
        None, "crop area range of local views; default: the dataset's"
    )
    clean_views: int = option(0, "leading global views that are the whole image, only flipped")
    # the loss and the optimiser
    lam: float = option(0.05, "λ: loss = (1 - λ)·pred + λ·SIGReg")
    weighting: str = option(
        "convex", "convex: (1 - λ)·pred + λ·SIGReg (the paper's); additive: pred + λ·SIGReg"
    )
    sigreg_views: str = option(
        "each", "each: SIGReg per view, averaged (the paper's); flattened: of all views pooled"
    )
    sigreg_on: str = option(
        "projector", "projector: SIGReg on z (the paper's); backbone: on the backbone embedding"
    )
    objective: str = option(
        "lejepa",
        "lejepa: the loss above; supervised: the probe's cross-entropy trains the encoder "
        "(a reference with labels)",
    )
    lr: float = option(5e-3, "AdamW learning rate of the encoder (warm-up, then cosine)")
    weight_decay: float = option(0.05, "AdamW weight decay of the encoder")
    warmup_steps: int = option(200, "linear warm-up steps (at most a tenth of a counted run)")
    probe_lr: float = option(1e-2, "learning rate of the online probe (no weight decay)")
    num_slices: int = option(256, "SIGReg's random directions per step")
    proj_hidden: int = option(512, "width of the projector's hidden layers")
    proj_dim: int = option(128, "dimension D of the projector's output z")
    seed: int = option(0, "seed of the weights, data order, views and directions")
    device: str = option("auto", "cpu, cuda, cuda:N or auto (CUDA when present)")
    # what it writes, and how it is watched
    out: str = option("runs/fashion-mnist", "the run's folder")
    log_every: int = option(20, "steps between metrics lines")
    checkpoint_every: int | None = option(None, "steps between checkpoints (also every epoch)")
    resume: bool = option(False, "continue the run in out from its checkpoint")
    skip_bad_images: bool = option(False, "skip unreadable images instead of stopping")
    download: bool = option(False, "download a named dataset (cifar10, ...) when missing")
    snapshot_images: int = option(
        256, "test images recorded for the animations (= batch_size: SIGReg reads as the loss)"
    )
    max_snapshots: int = option(200, "snapshots kept at most (evenly spread over the run)")
    keep_backbones: bool = option(
        False, "keep backbones/stepNNNNNN/ at steps 0, 8, 16, 32, ... and the end"
    )
    final_probe: bool = option(
        True, "at the end: logistic regression on frozen features (full train set)"
    )
    progress: bool = option(True, "show a progress bar")
    check_values: bool | None = option(
        None, "refuse NaN/Inf inputs to the loss; default: not on CUDA (it syncs)"
    )

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field out of its range."""
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
        for name, known in (
            ("weighting", WEIGHTINGS),
            ("sigreg_views", SIGREG_VIEWS),
            ("sigreg_on", ("projector", "backbone")),
            ("objective", ("lejepa", "supervised")),
        ):
            if getattr(self, name) not in known:
                raise ValueError(f"{name} must be one of {known}, got {getattr(self, name)!r}")

    def resolved(self) -> TrainConfig:
        """A validated copy with the defaults that depend on other fields filled in (the
        backbone of the dataset, 10 epochs when no length is given); ``self`` is unchanged.

        Example:
            >>> cfg = TrainConfig(dataset="digits")
            >>> cfg.resolved().backbone, cfg.resolved().epochs, cfg.backbone
            ('test_byobnet', 10, None)
        """
        self.validate()
        no_length = self.epochs is None and self.steps is None and self.max_minutes is None
        return replace(
            self,
            backbone=self.backbone or default_backbone(self.dataset),
            epochs=DEFAULT_EPOCHS if no_length else self.epochs,
        )

    def key(self) -> dict:
        """What decides the run's results: the resolved fields, without :data:`NOT_IN_KEY`."""
        return config_key(asdict(self.resolved()))


def config_key(config: dict) -> dict:
    """The fields of a saved (resolved) config that decide its results, as JSON has them
    (tuples are lists), so that a config and its ``config.json`` compare equal."""
    kept = {
        k: v
        for k, v in config.items()
        if k not in NOT_IN_KEY and not (k in ADDED and ADDED[k] == v)
    }
    return json.loads(json.dumps(kept))
