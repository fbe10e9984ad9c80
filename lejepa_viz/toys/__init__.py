"""Experiments without a dataset (or with only the bundled digits), seconds on a CPU each.

- :mod:`.clouds`: non-Gaussian point clouds.
- :mod:`.descent`: gradient flows of a cloud down SIGReg or any statistic (one loop).
- :mod:`.tiny`: a tiny encoder trained with the LeJEPA loss for several λ (one loop).
- :mod:`.knobs`: SIGReg's slicing noise and the loss's force field on a fixed cloud.
- :mod:`.simulate`: null distributions, power and cost of the univariate statistics.

Every loop returns a :class:`~.trajectory.Trajectory`.
"""

from .clouds import CLOUD_SHAPES, make_cloud
from .descent import descend, flow_table, sigreg_flow, statistic_flow
from .tiny import lambda_runs, train_tiny
from .trajectory import Trajectory

__all__ = [
    "CLOUD_SHAPES",
    "Trajectory",
    "descend",
    "flow_table",
    "lambda_runs",
    "make_cloud",
    "sigreg_flow",
    "statistic_flow",
    "train_tiny",
]
