"""Experiments without a dataset (or with only the bundled digits), seconds on a CPU each.

- :mod:`.clouds`: non-Gaussian point clouds (``make_cloud``).
- :mod:`.descent`: gradient flows of a cloud down SIGReg or any statistic (one loop,
  ``descend``; ``sigreg_flow``, ``statistic_flow``, ``clouds_table``).
- :mod:`.tiny`: a tiny encoder trained with the LeJEPA loss for several λ (one loop,
  ``train_tiny``; ``lambda_runs``).
- :mod:`.knobs`: SIGReg's slicing noise and the loss's force field on a fixed cloud.
- :mod:`.simulate`: null distributions, power and cost of the univariate statistics.
- :mod:`.trajectory`: ``Trajectory``, what every loop returns.

Import from the modules (``from lejepa_viz.toys.tiny import lambda_runs``): this package file
imports nothing, so that ``viz``, which reads clouds and trajectories, never loads the loops.
"""
