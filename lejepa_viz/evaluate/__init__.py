"""Evaluation of frozen features: probes (:mod:`.probes`), the results table (:mod:`.table`)
and one evaluation of a training run beside its baselines (:mod:`.report`)."""

from .probes import (
    LAYERS,
    effective_rank,
    encoder_features,
    evaluate_features,
    extract_features,
    few_shot,
    few_shot_indices,
    hush_convergence,
    knn,
    linear_probe,
)
from .report import evaluate_run, frozen_probe, run_features
from .table import results_table

__all__ = [
    "LAYERS",
    "effective_rank",
    "encoder_features",
    "evaluate_features",
    "evaluate_run",
    "extract_features",
    "few_shot",
    "few_shot_indices",
    "frozen_probe",
    "hush_convergence",
    "knn",
    "linear_probe",
    "results_table",
    "run_features",
]
