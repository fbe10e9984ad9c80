"""Sweeps of training runs and the paper's "informative loss" check.

:func:`sweep` trains (or reloads, :func:`lejepa_viz.train.cached_train`) several configs;
:func:`spearman` and :func:`informative_loss` measure how well the final training loss ranks
the runs by probe accuracy — LeJEPA's claim that its loss is informative of downstream quality.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from .train import TrainConfig, cached_train


def sweep(
    configs: Sequence[TrainConfig], *, on_run: Callable[[TrainConfig, dict], None] | None = None
) -> list[dict]:
    """:func:`cached_train` on each config in turn (give each its own ``out``).

    Args:
        configs: the runs.
        on_run: called with each config and its result as soon as it is done.

    Returns:
        The results, in the order of ``configs``.
    """
    outs = [str(Path(c.out).resolve()) for c in configs]
    if len(set(outs)) != len(outs):
        raise ValueError("every config of a sweep needs its own out folder")
    results = []
    for cfg in configs:
        result = cached_train(cfg)
        if on_run is not None:
            on_run(cfg, result)
        results.append(result)
    return results


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (``scipy.stats.spearmanr``), with the input checked.

    Args:
        x, y: paired values, at least 2, finite; neither constant.

    Returns:
        The correlation in ``[-1, 1]``.

    Example:
        >>> spearman([1, 2, 3, 4], [10, 9, 7, 1])
        -1.0
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.ndim != 1 or x.shape != y.shape or len(x) < 2:
        raise ValueError(
            f"x and y must be two 1-D sequences of one length >= 2, got {x.shape}, {y.shape}"
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        raise ValueError("x and y must not be constant (the correlation is undefined)")
    return float(spearmanr(x, y).statistic)


def informative_loss(
    results: Sequence[dict], *, loss: str = "loss", accuracy: str = "linear_probe"
) -> dict:
    """How well the final training loss ranks runs by accuracy.

    Args:
        results: one dict per run holding ``loss`` and ``accuracy`` keys (e.g. from :func:`sweep`).
        loss, accuracy: the keys to read.

    Returns:
        ``{"spearman": ρ, "num_runs": n, "loss": [...], "accuracy": [...]}``; ρ near −1 means a
        lower loss goes with a higher accuracy (an informative loss).

    Example:
        >>> informative_loss([{"loss": 1.0, "linear_probe": 0.5}, {"loss": 0.5, "linear_probe": 0.9},
        ...                   {"loss": 0.7, "linear_probe": 0.6}])["spearman"]
        -1.0
    """
    losses = [float(r[loss]) for r in results]
    accs = [float(r[accuracy]) for r in results]
    return {
        "spearman": spearman(losses, accs),
        "num_runs": len(results),
        "loss": losses,
        "accuracy": accs,
    }
