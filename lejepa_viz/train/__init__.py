"""Training: ``TrainConfig`` (:mod:`.config`), one step (:mod:`.step`), the recorder of
snapshots (:mod:`.recorder`), what a run is made of and its checkpoint (:mod:`.parts`) and the
loop, ``train`` and ``cached_train`` (:mod:`.loop`).
"""

from .config import TrainConfig
from .loop import cached_train, train
from .recorder import Recorder
from .step import LeJEPAModel, StepOutput, lr_scale, train_step

__all__ = [
    "LeJEPAModel",
    "Recorder",
    "StepOutput",
    "TrainConfig",
    "cached_train",
    "lr_scale",
    "train",
    "train_step",
]
