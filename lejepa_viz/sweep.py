"""Cached and live training runs, λ sweeps and the "informative loss" check, for notebooks.

:func:`cached_train` wraps :func:`lejepa_viz.train.train`: a run folder that already holds a
finished run of the same config (``result.json``, written here after ``train`` returns) is
loaded instead of trained again, a run killed half-way is resumed from its checkpoint, and
``on_update`` sees the ``metrics.jsonl`` lines as they are written (through ``train``'s
``on_log``, in the caller's thread, so plots drawn there land in the notebook cell). The result
never depends on whether the cache existed.

:func:`sweep` runs several configs that way, and :func:`spearman` / :func:`informative_loss`
measure how well the final training loss ranks the runs by probe accuracy (LeJEPA's claim that
its loss is informative of downstream quality).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from .evaluate import save_results
from .model import default_backbone
from .train import TrainConfig, train

# Fields that do not change what a run computes (or that train() itself fills in).
_IGNORED = ("progress", "resume", "run_id")


def _key(config: dict) -> dict:
    key = {k: v for k, v in config.items() if k not in _IGNORED}
    key["backbone"] = key.get("backbone") or default_backbone(key["dataset"])
    if key.get("epochs") is None and key.get("steps") is None and key.get("max_minutes") is None:
        key["epochs"] = 10  # train()'s default
    return key


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """The JSON lines of a ``metrics.jsonl`` ([] when the file does not exist yet).

    A last line still being written (no newline yet) is left out.
    """
    path = Path(path)
    if not path.is_file():
        return []
    text = path.read_text()
    lines = text.split("\n")[:-1]  # complete lines only
    return [json.loads(line) for line in lines if line.strip()]


def load_result(out: str | os.PathLike, cfg: TrainConfig | None = None) -> dict | None:
    """The result of the finished run in ``out`` (``result.json``), or None.

    With ``cfg``, None also when the run's config differs from ``cfg`` (fields ``progress`` and
    ``resume`` aside).
    """
    path = Path(out) / "result.json"
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    if cfg is not None and _key(saved["config"]) != _key(asdict(cfg)):
        return None
    return saved["result"]


def cached_train(
    cfg: TrainConfig,
    *,
    on_update: Callable[[list[dict]], None] | None = None,
) -> dict:
    """``train(cfg)``, unless ``cfg.out`` already holds this run finished.

    Args:
        cfg: the run; ``cfg.out`` is its folder (a finished run of another config there is
            trained over).
        on_update: called with all metrics lines so far (see :func:`read_metrics`) each time
            training logs one, and once at the end with all of them (also when the run was
            loaded from the cache).

    Returns:
        ``train``'s final metrics, plus ``"cached"``: whether the run was loaded, not trained.
        Also saved as ``result.json`` with the config.
    """
    out = Path(cfg.out)
    metrics_path = out / "metrics.jsonl"
    result = load_result(out, cfg)
    cached = result is not None
    if not cached:
        run = replace(cfg, resume=False)
        config_path = out / "config.json"
        if (out / "checkpoint.pt").is_file() and config_path.is_file():
            # a killed run of the same config continues where it stopped (same final metrics)
            run.resume = _key(json.loads(config_path.read_text())) == _key(asdict(cfg))
        records = read_metrics(metrics_path) if run.resume else []

        def logged(record: dict) -> None:
            records.append(record)
            on_update(records)

        result = train(run, on_log=logged if on_update is not None else None)
        config = json.loads(config_path.read_text())
        save_results(out / "result.json", {"config": config, "result": result})
    if on_update is not None:
        on_update(read_metrics(metrics_path))
    return {**result, "cached": cached}


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
    return {"spearman": spearman(losses, accs), "num_runs": len(results), "loss": losses,
            "accuracy": accs}  # fmt: skip


# --- notebook helpers: a live metrics plot, a small animation, probes on a subset -------------


def plot_metrics(records: Sequence[dict], *, size=(8.0, 2.8), dpi: int = 70):
    """Figure of a run's metrics lines: the loss parts (left, log scale) and the online probe's
    test accuracy (right, one point per epoch or end of run). A ``matplotlib.figure.Figure``
    not attached to pyplot (so a notebook shows it only when displayed)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=dpi, layout="constrained")
    left, right = fig.subplots(1, 2)
    losses = [r for r in records if "loss" in r]
    for key, color in (("loss", "#222222"), ("pred", "#1b6ca8"), ("sigreg", "#d1495b")):
        if losses:
            left.plot([r["step"] for r in losses], [r[key] for r in losses], color=color,
                      label={"loss": "loss", "pred": "prediction", "sigreg": "SIGReg"}[key])  # fmt: skip
    left.set(xlabel="step", yscale="log", title="training loss and its parts")
    if losses:
        left.legend(fontsize=7, frameon=False)
    probes = [r for r in records if "probe_acc" in r]
    right.plot([r["step"] for r in probes], [r["probe_acc"] for r in probes], "o-", color="#2a9d8f")
    right.set(xlabel="step", ylabel="accuracy", ylim=(0, 1), title="online probe (test set)")
    right.axhline(0.1, color="#999999", lw=0.8, ls=":")
    last = max((r["step"] for r in records), default=1)
    right.set_xlim(0, max(last, 1) * 1.05)  # the same steps as the loss panel
    for ax in (left, right):
        ax.spines[["top", "right"]].set_visible(False)
    return fig


class LivePlot:
    """``on_update`` for :func:`cached_train` that redraws :func:`plot_metrics` in one notebook
    output (an IPython display handle), so the cell shows the run's curves as it trains."""

    def __init__(self, **plot_kwargs):
        from IPython.display import display

        self.plot_kwargs = plot_kwargs
        self.handle = display(display_id=True)

    def __call__(self, records: list[dict]) -> None:
        self.handle.update(plot_metrics(records, **self.plot_kwargs))


def animation_gif(
    run: str | os.PathLike,
    out: str | os.PathLike,
    *,
    max_frames: int = 16,
    size: tuple[int, int] = (560, 420),
    dpi: int = 70,
    duration_ms: float = 300,
) -> Path:
    """A small embedding-convergence GIF of the run in folder ``run`` (its ``snapshots.pt`` and
    ``metrics.jsonl``): at most ``max_frames`` snapshots, evenly spaced, the last one kept."""
    from .viz.convergence import animate_snapshots

    return animate_snapshots(Path(run) / "snapshots.pt", out, metrics=Path(run) / "metrics.jsonl",
                             duration_ms=duration_ms, max_frames=max_frames, size=size, dpi=dpi,
                             progress=False)  # fmt: skip


def _subset(ds, n: int | None, seed: int):
    if n is None or n >= len(ds):
        return ds.images, ds.labels.numpy()
    import torch

    pick = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:n]
    return ds.images[pick], ds.labels[pick].numpy()


def run_features(
    run: str | os.PathLike,
    *,
    num_train: int | None = None,
    num_test: int | None = None,
    seed: int = 0,
    model: str = "trained",
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Frozen features ``(train_x, train_y, test_x, test_y)`` of the run in folder ``run``.

    Args:
        run: a training run's folder (``checkpoint.pt``, ``config.json``).
        num_train, num_test: a seeded random subset of that many images (None: the whole split).
        seed: seed of the subsets (and of the random-init encoder).
        model: ``"trained"`` (the run's encoder), ``"random"`` (the same backbone at a seeded
            random initialisation) or ``"pixels"`` (the raw pixels / 255).
        device: where the encoder runs.
    """
    import torch

    from .data import load_dataset
    from .evaluate import encoder_features, extract_features
    from .model import Encoder, load_encoder

    cfg = json.loads((Path(run) / "config.json").read_text())
    sets = [load_dataset(cfg["dataset"], split, cfg["root"], image_size=cfg["image_size"])
            for split in ("train", "test")]  # fmt: skip
    (tr_x, tr_y), (te_x, te_y) = _subset(sets[0], num_train, seed), _subset(sets[1], num_test, seed)
    if model == "pixels":
        feats = [extract_features(lambda x: x.flatten(1), x, progress=False) for x in (tr_x, te_x)]
    elif model in ("trained", "random"):
        encoder = load_encoder(str(Path(run) / "checkpoint.pt"))
        if model == "random":
            torch.manual_seed(seed)
            encoder = Encoder(**encoder.config).eval()
        encoder = encoder.to(device)
        feats = [encoder_features(encoder, x, device, progress=False) for x in (tr_x, te_x)]
    else:
        raise ValueError(f"model must be 'trained', 'random' or 'pixels', got {model!r}")
    return feats[0], tr_y, feats[1], te_y


def frozen_probe(run: str | os.PathLike, **kwargs) -> float:
    """Linear-probe test accuracy on the frozen features of ``run`` (:func:`run_features`
    arguments; logistic regression, at most 300 lbfgs iterations, convergence warnings hushed)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from .evaluate import linear_probe

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        return linear_probe(*run_features(run, **kwargs), max_iter=300)


def evaluate_run(
    run: str | os.PathLike,
    *,
    num_train: int | None = None,
    num_test: int | None = None,
    shots: Sequence = (1, 10, "all"),
    draws: int = 3,
    seed: int = 0,
    device: str = "cpu",
) -> dict:
    """The README's results table for the run in folder ``run``, on (optional) subsets.

    Like :func:`lejepa_viz.evaluate.evaluate_checkpoint` (rows: the trained encoder, the same
    backbone at random init, raw pixels; linear probe, k-NN with k = 20, few-shot probes), with
    ``num_train`` / ``num_test`` images drawn at random (seeded) for a quick version. Cached as
    ``eval_<num_train>_<num_test>_<draws>_<seed>.json`` in the run folder (recomputed when the
    run's ``run_id`` changed).

    Returns:
        ``{"rows": [...], "table": markdown}`` (see :func:`lejepa_viz.evaluate.results_table`).
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from .evaluate import evaluate_features, results_table

    run = Path(run)
    cfg = json.loads((run / "config.json").read_text())
    cache = run / f"eval_{num_train}_{num_test}_{draws}_{seed}.json"
    key = {"run_id": cfg.get("run_id"), "shots": [str(s) for s in shots]}
    if cache.is_file():
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            return {"rows": saved["rows"], "table": saved["table"]}
    import torch

    ckpt = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
    from .model import encoder_from_checkpoint

    encoder = encoder_from_checkpoint(ckpt)
    params = f"{sum(p.numel() for p in encoder.backbone.parameters()) / 1e6:.2f}M"
    name = encoder.config["backbone"]
    models = [("trained", f"LeJEPA {name}", params, f"LeJEPA, {cfg['dataset']}", ckpt["epoch"]),
              ("random", f"random init {name}", params, "none", 0),
              ("pixels", "raw pixels", "0", "none", 0)]  # fmt: skip
    rows = []
    for model, label, n_params, pretrain, epochs in models:
        feats = run_features(run, num_train=num_train, num_test=num_test, seed=seed, model=model,
                             device=device)  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=ConvergenceWarning)
            results = evaluate_features(*feats, shots=shots, draws=draws, seed=seed)
        rows.append({"model": label, "params": n_params, "pretrain": pretrain, "epochs": epochs,
                     "results": results})  # fmt: skip
    table = results_table(rows, cfg["dataset"])
    save_results(cache, {"key": key, "rows": rows, "table": table})
    return {"rows": rows, "table": table}
