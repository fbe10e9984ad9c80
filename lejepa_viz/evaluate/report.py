"""One evaluation of a training run, beside its baselines: the results table of the README.

Rows: the LeJEPA-trained encoder, the same backbone at a seeded random initialisation, and the
raw pixels; columns: few-shot linear probes (1, 10 shots per class; mean ± std over draws),
the linear probe on the whole training set, and k-NN (k = 20). :func:`evaluate_run` is what
``lejepa-viz eval``, the gallery and notebook 06 call; optional subsets of the data make a
quick version. The result is saved as JSON in the run's folder and reused while the run and
the settings are the same.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from ..backbones import encoder_from_checkpoint, load_backbone
from ..data import ImageDataset, load_dataset
from ..data.base import labelled
from ..distributed import resolve_device
from ..model import Encoder, random_twin
from ..runs import Run, load_checkpoint, save_json
from .probes import (
    encoder_features,
    evaluate_features,
    extract_features,
    hush_convergence,
    linear_probe,
)
from .table import results_table

MODELS = ("trained", "random", "pixels")


def _checkpoint_path(run: str | os.PathLike) -> Path:
    """A run folder's checkpoint, or ``run`` itself when it is a file."""
    path = Path(run)
    return Run(path).path(Run.CHECKPOINT) if path.is_dir() else path


def _subset(ds: ImageDataset, n: int | None, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """``n`` of ``ds``'s labelled images drawn at random (seeded), or all of them."""
    images, labels = labelled(ds)
    if n is None or n >= len(labels):
        return images, labels.numpy()
    pick = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:n]
    return images[pick], labels[pick].numpy()


class _Evaluation:
    """A run's checkpoint, read once, and its data, loaded once when first needed."""

    def __init__(self, run, num_train: int | None, num_test: int | None, seed: int, device):
        self.path = _checkpoint_path(run)
        ckpt = load_checkpoint(self.path)
        self.trained, self.config = encoder_from_checkpoint(ckpt), ckpt["config"]
        self.epochs, self.step, self.run_id = ckpt["epoch"], ckpt["step"], ckpt.get("run_id")
        self.sizes, self.seed, self.device = (num_train, num_test), seed, resolve_device(device)

    @cached_property
    def splits(self) -> list[tuple[torch.Tensor, np.ndarray]]:
        """``[(train images, labels), (test images, labels)]``, subsets when asked for."""
        cfg = self.config
        data = dict(image_size=cfg["image_size"], skip_bad_images=cfg["skip_bad_images"])
        return [
            _subset(load_dataset(cfg["dataset"], split, cfg["root"], **data), n, self.seed)
            for split, n in zip(("train", "test"), self.sizes, strict=True)
        ]

    def encoder(self, model: str) -> Encoder | None:
        if model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {model!r}")
        if model == "pixels":
            return None
        if model == "random":
            return random_twin(self.trained, self.seed)
        return self.trained

    def kept(self, step: int) -> Encoder:
        """The trained encoder with the backbone the run kept at ``step`` in place of its last
        one (``TrainConfig.keep_backbones``; the projector is not kept)."""
        folder = self.path.parent / "backbones" / f"step{step:06d}"
        if not folder.is_dir():
            steps = sorted(int(p.name[4:]) for p in folder.parent.glob("step*"))
            kept = steps or "none: train with keep_backbones=True"
            raise FileNotFoundError(f"no backbone kept at step {step} in {folder.parent} ({kept})")
        encoder = copy.deepcopy(self.trained)
        encoder.backbone.load_state_dict(load_backbone(folder).model.state_dict())
        return encoder.eval()

    def features(
        self, model: str, progress: bool = False, layer: str = "features", step: int | None = None
    ) -> tuple[np.ndarray, ...]:
        """``(train_x, train_y, test_x, test_y)`` of ``model``'s frozen features (``layer``:
        :func:`~lejepa_viz.evaluate.probes.encoder_features`; raw pixels have one), or of
        the backbone the run kept at ``step``."""
        if step is not None and (model != "trained" or layer == "projector"):
            raise ValueError("step reads a kept backbone: model='trained', and no projector")
        encoder = self.encoder(model) if step is None else self.kept(step)
        if encoder is not None:
            encoder = encoder.to(self.device)
        out = []
        for images, labels in self.splits:
            if encoder is None:  # raw pixels / 255, flattened
                x = extract_features(lambda b: b.flatten(1), images, progress=progress)
            else:
                x = encoder_features(encoder, images, self.device, progress, layer)
            out += [x, labels]
        return tuple(out)


def run_features(
    run: str | os.PathLike,
    *,
    model: str = "trained",
    num_train: int | None = None,
    num_test: int | None = None,
    seed: int = 0,
    device: str = "auto",
    layer: str = "features",
    step: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Frozen features ``(train_x, train_y, test_x, test_y)`` of a run.

    Args:
        run: a training run's folder, or its ``checkpoint.pt``.
        model: ``"trained"`` (the run's encoder), ``"random"`` (the same backbone at a seeded
            random initialisation) or ``"pixels"`` (the raw pixels / 255).
        num_train, num_test: a seeded random subset of that many images (None: the split).
        seed: seed of the subsets and of the random-init encoder.
        device: where the encoder runs.
        layer: ``"features"`` (the probes' features), ``"embedding"`` (the backbone's pooled
            output) or ``"projector"`` (z) (:func:`~lejepa_viz.evaluate.probes.encoder_features`).
        step: read the backbone the run kept at this training step (a run trained with
            ``keep_backbones``: steps 0, 8, 16, 32, ... and the end) instead of its last one;
            ``model="trained"`` and the backbone's layers only (its projector is not kept).

    Raises:
        FileNotFoundError: no backbone kept at ``step`` (the message lists the kept steps).
    """
    evaluation = _Evaluation(run, num_train, num_test, seed, device)
    return evaluation.features(model, layer=layer, step=step)


def frozen_probe(run: str | os.PathLike, **kwargs) -> float:
    """Linear-probe test accuracy on the frozen features of a run (:func:`run_features`'s
    arguments; at most 300 lbfgs iterations, convergence warnings hushed)."""
    return linear_probe(*run_features(run, **kwargs), max_iter=300, quiet=True)


def evaluate_run(
    run: str | os.PathLike,
    *,
    num_train: int | None = None,
    num_test: int | None = None,
    shots: Sequence = (1, 10, "all"),
    draws: int = 5,
    seed: int = 0,
    device: str = "auto",
    out: str | os.PathLike | None = None,
    reuse: bool = True,
    progress: bool = True,
) -> dict:
    """The results table of a run with its two baselines, saved as JSON.

    Args:
        run: a ``lejepa-viz train`` run folder, or its ``checkpoint.pt``.
        num_train, num_test: evaluate on seeded random subsets of that many images (quick);
            None: the whole splits.
        shots: few-shot sizes (images per class) and ``"all"``.
        draws: few-shot draws per size.
        seed: seed of the subsets, the draws and the random-init encoder.
        device: where the encoders run.
        out: the JSON file; default ``eval.json`` beside the checkpoint
            (``eval_<num_train>_<num_test>.json`` for subsets).
        reuse: load ``out`` instead when it holds this evaluation (same settings) of this run
            at this step.
        progress: progress bars while extracting features.

    Returns:
        ``{"rows": [...], "table": markdown, "path": str, "cached": bool}``; each row has
        ``model``, ``params``, ``pretrain``, ``epochs`` and ``results``
        (:func:`~lejepa_viz.evaluate.probes.evaluate_features`).
    """
    ev = _Evaluation(run, num_train, num_test, seed, device)
    path = Path(out) if out is not None else ev.path.with_name(Run.evaluation(num_train, num_test))
    key = {
        "run_id": ev.run_id,
        "step": ev.step,
        "shots": [str(s) for s in shots],
        "draws": draws,
        "seed": seed,
        "num_train": num_train,
        "num_test": num_test,
    }
    if reuse and path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("key") == key:
            return {
                "rows": saved["rows"],
                "table": saved["table"],
                "path": str(path),
                "cached": True,
            }
    name, dataset = ev.trained.config["backbone"], ev.config["dataset"]
    params = f"{sum(p.numel() for p in ev.trained.backbone.parameters()) / 1e6:.2f}M"
    labels = {
        "trained": (f"LeJEPA {name}", params, f"LeJEPA, {dataset}", ev.epochs),
        "random": (f"random init {name}", params, "none", 0),
        "pixels": ("raw pixels", "0", "none", 0),
    }
    rows = []
    for model in MODELS:
        with hush_convergence():
            results = evaluate_features(
                *ev.features(model, progress), shots=shots, draws=draws, seed=seed
            )
        label, n_params, pretrain, epochs = labels[model]
        rows.append(
            {
                "model": label,
                "params": n_params,
                "pretrain": pretrain,
                "epochs": epochs,
                "results": results,
            }
        )
    table = results_table(rows, dataset)
    save_json(path, {"checkpoint": str(ev.path), "key": key, "rows": rows, "table": table})
    return {"rows": rows, "table": table, "path": str(path), "cached": False}
