"""A training run's folder: its files, written atomically, and read back.

    RUN/config.json      the resolved training config and the run's id
    RUN/metrics.jsonl    one JSON object per logged step, per epoch and at the end
    RUN/checkpoint.pt    all that resuming needs: weights, optimizer, RNG states, counters
    RUN/snapshots.pt     projector outputs of a fixed batch of test images over training
    RUN/result.json      written once ``train`` has returned: the config and the final metrics
    RUN/eval*.json       evaluations of the run (:mod:`lejepa_viz.evaluate.report`)

:class:`Run` owns these names. Every file but the metrics log is written through
:func:`atomic_path` (a temporary file beside it, renamed into place), so a reader never sees a
half-written file; the metrics log is appended line by line and :func:`read_metrics` leaves
out a last line still being written. Torch files are read with ``weights_only=True``: tensors
and plain containers, never arbitrary pickled objects.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

_SNAPSHOT_KEYS = ("steps", "z")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); rename it to ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left as it was; missing
    folders are created. The file gets a normal file's mode (not ``mkstemp``'s private one).

    Example:
        >>> d = Path(tempfile.mkdtemp())
        >>> with atomic_path(d / "a.txt") as tmp:
        ...     _ = tmp.write_text("done")
        >>> (d / "a.txt").read_text(), len(list(d.iterdir()))
        ('done', 1)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _to_json(value: Any) -> Any:
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def save_json(path: str | os.PathLike, payload: dict) -> Path:
    """Write ``payload`` as indented JSON, atomically; NumPy values become numbers and lists.

    Example:
        >>> p = save_json(Path(tempfile.mkdtemp()) / "r.json", {"knn": np.float32(0.5)})
        >>> json.loads(p.read_text())
        {'knn': 0.5}
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, default=_to_json) + "\n")
    return path


def save_torch(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path``, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """A ``checkpoint.pt`` as a dict on the CPU: tensors and plain containers only
    (``weights_only=True``: loading it runs no code stored in the file).

    Raises:
        ValueError: naming the file when it does not exist or is not such a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # not a torch file, or pickled objects other than tensors
        raise ValueError(f"{path} is not a checkpoint of tensors ({err})") from err
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path} holds a {type(ckpt).__name__}, not a checkpoint dict")
    return ckpt


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """The JSON lines of a ``metrics.jsonl`` ([] when the file does not exist yet).

    A last line still being written (no newline yet) is left out.

    Raises:
        ValueError: naming the file and line when a complete line is not JSON.
    """
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text().split("\n")[:-1], 1):  # complete lines
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}, line {number}: not a JSON metrics line") from err
    return records


@dataclass
class Snapshots:
    """The embeddings a training run recorded on a fixed batch (``snapshots.pt``)."""

    steps: list[int]  # (S,) training step of each snapshot
    z: torch.Tensor  # (S, n, D) float32 projector outputs of fixed clean test images
    labels: torch.Tensor | None = None  # (n,) class of each image
    z_views: torch.Tensor | None = None  # (S, B, D) float32: the training views SIGReg acted on
    classes: list[str] | None = None  # class names
    lam: float | None = None  # λ of the run
    dataset: str | None = None
    run_id: str | None = None  # the run's id, also in its config.json


def load_snapshots(path: str | os.PathLike) -> Snapshots:
    """Read the ``snapshots.pt`` that :func:`lejepa_viz.train.train` writes.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: when ``path`` is not a lejepa-viz snapshots file or holds no snapshot.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no snapshots file at {path}: snapshots.pt is written by `lejepa-viz train` "
            "in the run's --out folder"
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # not a torch file, or one holding other objects
        raise ValueError(
            f"{path} is not a lejepa-viz snapshots file (torch.load failed: {err})"
        ) from err
    problem = _snapshots_problem(data)
    if problem:
        raise ValueError(
            f"{path} is not a lejepa-viz snapshots file: {problem}; "
            "it is written by `lejepa-viz train` as snapshots.pt"
        )
    labels, views = data.get("labels"), data.get("z_views")
    return Snapshots(
        steps=[int(s) for s in data["steps"]],
        z=data["z"].float(),
        z_views=None if views is None else views.float(),
        labels=None if labels is None else torch.as_tensor(labels),
        classes=data.get("classes"),
        lam=data.get("lam"),
        dataset=data.get("dataset"),
        run_id=data.get("run_id"),
    )


def _snapshots_problem(data) -> str | None:
    """What makes ``data`` unlike the dict that ``train`` saves, or None."""
    if not isinstance(data, dict):
        return f"it holds a {type(data).__name__}, not a dict"
    missing = [key for key in _SNAPSHOT_KEYS if key not in data]
    if missing:
        return f"keys {missing} are missing"
    z = data["z"]
    if z is None or len(data["steps"]) == 0:
        return "it holds no snapshots (the run stopped before recording one)"
    if not isinstance(z, torch.Tensor) or z.ndim != 3:
        return f"z must be a (S, n, D) tensor, got {getattr(z, 'shape', type(z).__name__)}"
    if len(data["steps"]) != len(z):
        return f"{len(data['steps'])} steps for {len(z)} snapshots"
    return None


def load_curves(
    metrics_path: str | os.PathLike, run_id: str | None = None, *, source=None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The SIGReg and prediction loss curves of a run's ``metrics.jsonl``.

    Args:
        metrics_path: the ``metrics.jsonl`` that :func:`lejepa_viz.train.train` writes.
        run_id: when given, the ``run_id`` of the ``config.json`` beside ``metrics_path``
            (when it has one) must be the same.
        source: where ``run_id`` comes from (e.g. the snapshots file), for the error message.

    Returns:
        ``{"SIGReg": (steps, values), "prediction": (steps, values)}``, arrays of shape (L,)
        over the L logged steps.

    Raises:
        FileNotFoundError: when ``metrics_path`` does not exist.
        ValueError: when it holds no loss line, a line is not a metrics line, or the run ids
            differ.
    """
    path = Path(metrics_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no metrics file at {path}: metrics.jsonl is written by `lejepa-viz train` "
            "in the run's --out folder"
        )
    config = path.with_name(Run.CONFIG)
    if run_id is not None and config.is_file():
        other = json.loads(config.read_text()).get("run_id")
        if other is not None and other != run_id:
            snapshots = f"the snapshots {source}" if source else "the snapshots"
            raise ValueError(
                f"{snapshots} (run {run_id}) and the metrics {path} (run {other}, says "
                f"{config}) come from different runs; pass the metrics.jsonl of the same run "
                "(the one beside its snapshots.pt)"
            )
    try:
        lines = [r for r in read_metrics(path) if "loss" in r]
        steps = np.array([float(r["step"]) for r in lines])
        sigreg = np.array([float(r["sigreg"]) for r in lines])
        pred = np.array([float(r["pred"]) for r in lines])
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a lejepa-viz metrics file ({err!r} missing)") from err
    if not len(steps):
        raise ValueError(
            f"{path} has no loss lines (step, loss, pred, sigreg): a run writes one every "
            "--log-every steps"
        )
    return {"SIGReg": (steps, sigreg), "prediction": (steps, pred)}


def load_recording(
    snapshots_path: str | os.PathLike, metrics_path: str | os.PathLike | None = None
) -> tuple[Snapshots, dict[str, tuple[np.ndarray, np.ndarray]] | None]:
    """A run's snapshots and its loss curves, as the convergence animation takes them.

    Args:
        snapshots_path: the ``snapshots.pt`` (see :func:`load_snapshots`).
        metrics_path: the ``metrics.jsonl`` of the same run (see :func:`load_curves`, whose
            run-id check applies); default: the one beside the snapshots, when there is one.

    Returns:
        ``(snapshots, curves)``, ``curves`` None without a metrics file.
    """
    snapshots_path = Path(snapshots_path)
    snapshots = load_snapshots(snapshots_path)
    if metrics_path is None:
        beside = snapshots_path.with_name(Run.METRICS)
        metrics_path = beside if beside.is_file() else None
    if metrics_path is None:
        return snapshots, None
    return snapshots, load_curves(metrics_path, snapshots.run_id, source=snapshots_path)


class Run:
    """The folder of one training run and the files in it (see the module docstring).

    Args:
        folder: the run's folder (``TrainConfig.out``); created on the first write.

    Example:
        >>> run = Run(tempfile.mkdtemp())
        >>> run.log({"step": 1, "loss": 0.5}); run.metrics()
        [{'step': 1, 'loss': 0.5}]
        >>> run.result() is None
        True
    """

    CONFIG, METRICS, CHECKPOINT = "config.json", "metrics.jsonl", "checkpoint.pt"
    SNAPSHOTS, RESULT = "snapshots.pt", "result.json"

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def path(self, name: str) -> Path:
        """``folder / name``."""
        return self.folder / name

    def __repr__(self) -> str:
        return f"Run({str(self.folder)!r})"

    # config.json

    def config(self) -> dict | None:
        """The saved config (with its ``run_id``), or None before the run started."""
        path = self.path(self.CONFIG)
        return json.loads(path.read_text()) if path.is_file() else None

    def write_config(self, config: dict) -> None:
        save_json(self.path(self.CONFIG), config)

    # metrics.jsonl

    def metrics(self) -> list[dict]:
        """Every complete line of ``metrics.jsonl`` (see :func:`read_metrics`)."""
        return read_metrics(self.path(self.METRICS))

    def start_metrics(self, resumed_at: int | None = None) -> None:
        """Begin the log: empty it, or, resuming at step ``resumed_at``, drop the lines the
        killed run logged after its checkpoint."""
        self.folder.mkdir(parents=True, exist_ok=True)
        kept = [] if resumed_at is None else [r for r in self.metrics() if r["step"] <= resumed_at]
        with atomic_path(self.path(self.METRICS)) as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))

    def log(self, record: dict) -> None:
        """Append one metrics line."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.path(self.METRICS).open("a") as f:
            f.write(json.dumps(record) + "\n")

    def curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The SIGReg and prediction curves of the log (see :func:`load_curves`)."""
        return load_curves(self.path(self.METRICS))

    # checkpoint.pt and snapshots.pt

    def has_checkpoint(self) -> bool:
        return self.path(self.CHECKPOINT).is_file()

    def save_checkpoint(self, state: dict) -> None:
        save_torch(state, self.path(self.CHECKPOINT))

    def load_checkpoint(self) -> dict:
        """The checkpoint dict, on the CPU (see :func:`load_checkpoint`)."""
        return load_checkpoint(self.path(self.CHECKPOINT))

    def save_snapshots(self, snapshots: dict) -> None:
        save_torch(snapshots, self.path(self.SNAPSHOTS))

    def snapshots(self) -> Snapshots:
        return load_snapshots(self.path(self.SNAPSHOTS))

    @staticmethod
    def evaluation(num_train: int | None = None, num_test: int | None = None) -> str:
        """The file name of an evaluation: ``eval.json``, ``eval_<train>_<test>.json`` on subsets."""
        subsets = num_train is not None or num_test is not None
        return f"eval_{num_train}_{num_test}.json" if subsets else "eval.json"

    # result.json: the finished-run cache

    def save_result(self, result: dict) -> None:
        """Mark the run finished: its saved config and ``result`` in ``result.json``."""
        save_json(self.path(self.RESULT), {"config": self.config(), "result": result})

    def result(self, matches=None) -> dict | None:
        """The final metrics of the finished run here, or None (not finished, or, with
        ``matches``, a callable on the saved config, when it returns False)."""
        path = self.path(self.RESULT)
        if not path.is_file():
            return None
        saved = json.loads(path.read_text())
        if matches is not None and not matches(saved["config"]):
            return None
        return saved["result"]
