"""``TrainConfig``: everything a training run depends on, saved as ``config.json`` beside it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

from ..model import default_backbone

DEFAULT_EPOCHS = 10  # when neither epochs, steps nor max_minutes is given
# Fields that change how a run is watched, not what it computes (left out of cache keys).
NOT_IN_KEY = ("progress", "resume", "check_values", "run_id", "keep_backbones")


@dataclass
class TrainConfig:
    """Everything a run depends on; saved as ``config.json`` beside its outputs.

    Every field is a ``lejepa-viz train`` option (``batch_size`` → ``--batch-size``).
    """

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
    global_scale: tuple[float, float] | None = None  # crop area of global views; None: the
    local_scale: tuple[float, float] | None = None  # dataset's (MultiViewAugment.for_dataset)
    clean_views: int = 0  # leading global views that are the whole image, only flipped
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
    snapshot_images: int = 256  # recorded test images; = batch_size: SIGReg reads as the loss
    max_snapshots: int = 200
    keep_backbones: bool = False  # backbones/stepNNNNNN/ at steps 0, 8, 16, 32, ... and the end
    final_probe: bool = True  # at the end: logistic regression on frozen features (full train set)
    progress: bool = True
    check_values: bool | None = None  # refuse NaN/Inf inputs to the loss; None: not on CUDA (syncs)

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
    return json.loads(json.dumps({k: v for k, v in config.items() if k not in NOT_IN_KEY}))
