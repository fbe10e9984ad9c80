"""Sweeps of training runs and the paper's "informative loss" check.

:func:`sweep` trains (or reloads, :func:`lejepa_viz.train.cached_train`) several configs;
:func:`spearman` and :func:`informative_loss` measure how well the final training loss ranks
the runs by probe accuracy — LeJEPA's claim that its loss is informative of downstream quality.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from ._checks import integer_at_least
from .runs import Run
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


def tail_mean(run: str | os.PathLike, key: str = "loss", last: int = 10) -> float:
    """The mean of the last ``last`` logged values of ``key`` in a run's ``metrics.jsonl``: a
    run's final training loss with less of one batch's noise than its last line.

    Example:
        >>> import tempfile
        >>> run = Run(tempfile.mkdtemp())
        >>> run.start_metrics()
        >>> for step, loss in enumerate([4.0, 3.0, 2.0, 1.0]):
        ...     run.log({"step": step, "loss": loss})
        >>> tail_mean(run.folder, last=2)
        1.5
    """
    values = [float(r[key]) for r in Run(run).metrics() if key in r]
    if not values:
        raise ValueError(f"no {key!r} logged in {Run(run).path(Run.METRICS)}")
    return float(np.mean(values[-integer_at_least(last, 1, "last") :]))


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
    results: Sequence[dict],
    *,
    alpha: float = 0.0,
    loss: str = "loss",
    accuracy: str = "linear_probe",
    lam: str = "lam",
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """How well the final training loss ranks runs by accuracy: the paper's C(α) (§6.2).

    ρ is Spearman's correlation between ``loss / λ^α`` and ``accuracy`` over the runs. Dividing
    by λ^α undoes part of the loss's scale that comes from λ itself (the loss is
    (1 − λ)·pred + λ·SIGReg, so runs at larger λ read larger losses whatever their quality);
    α = 0 is the raw loss. The interval is a percentile bootstrap over runs (resamples whose
    ranks are all tied are skipped).

    Sign: ρ near −1 means a lower loss goes with a higher accuracy (an informative loss); the
    paper reports the same agreement as a positive number, so its C(α) is −ρ here.

    Args:
        results: one dict per run holding the ``loss``, ``accuracy`` and (for α ≠ 0) ``lam``
            keys, e.g. from :func:`sweep` with each run's probe accuracy added.
        alpha: the exponent α of λ.
        loss, accuracy, lam: the keys to read (``loss="sigreg"``: SIGReg alone).
        resamples: bootstrap resamples (0: no interval).
        level: the interval's coverage.
        seed: seed of the bootstrap.

    Returns:
        ``{"spearman": ρ, "interval": (low, high) or None, "alpha": α, "num_runs": n,
        "loss": [loss / λ^α ...], "accuracy": [...]}``.

    Example:
        >>> runs = [{"loss": 1.0, "linear_probe": 0.5, "lam": 0.1},
        ...         {"loss": 0.5, "linear_probe": 0.9, "lam": 0.1},
        ...         {"loss": 0.7, "linear_probe": 0.6, "lam": 0.1}]
        >>> informative_loss(runs, resamples=0)["spearman"]
        -1.0
    """
    losses = np.array([float(r[loss]) for r in results])
    accs = np.array([float(r[accuracy]) for r in results])
    if alpha != 0:
        lams = np.array([float(r[lam]) for r in results])
        if (lams <= 0).any():
            raise ValueError(f"alpha = {alpha} divides by λ^α: leave out the runs with λ <= 0")
        losses = losses / lams**alpha
    rho = spearman(losses, accs)
    interval = None
    if resamples:
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(resamples):
            i = rng.integers(0, len(losses), len(losses))
            if np.ptp(losses[i]) > 0 and np.ptp(accs[i]) > 0:
                draws.append(spearmanr(losses[i], accs[i]).statistic)
        tail = (1 - level) / 2
        if draws:  # else every resample tied: no interval
            interval = tuple(float(q) for q in np.quantile(draws, [tail, 1 - tail]))
    return {
        "spearman": rho,
        "interval": interval,
        "alpha": float(alpha),
        "num_runs": len(results),
        "loss": losses.tolist(),
        "accuracy": accs.tolist(),
    }
