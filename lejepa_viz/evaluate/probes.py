"""Probes of frozen features: linear probe, k-NN and few-shot linear probes.

Everything here works on feature arrays ``(N, F)`` and label arrays ``(N,)``:
:func:`extract_features` turns any ``images -> features`` function into such arrays
(:func:`encoder_features` does it for an encoder), and :func:`evaluate_features` runs the
three protocols of the LeJEPA paper's results table on them.

The probe is scikit-learn's ``StandardScaler`` + multinomial ``LogisticRegression`` (lbfgs).
Standardising makes lbfgs well conditioned (frozen features of a whole Fashion-MNIST split
converge within the default iterations; pure-noise features in a few), so the defaults need
neither saga nor a looser ``tol``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from .._checks import integer_at_least, positive
from ..model import probe_features

Shot = int | str  # a number of examples per class, or "all"


def extract_features(
    fn: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    batch_size: int = 512,
    progress: bool = True,
) -> np.ndarray:
    """Run ``fn`` over ``images`` in batches, without gradients, and collect the features.

    Args:
        fn: maps a float batch ``(B, C, H, W)`` with values in ``[0, 1]`` to features
            ``(B, F)``. Batches stay on ``images``' device; putting the model in eval mode
            (and moving batches to its device) is ``fn``'s job.
        images: uint8 images ``(N, C, H, W)``; each batch is converted to float and divided
            by 255.
        batch_size: images per call of ``fn``.
        progress: show a tqdm progress bar.

    Returns:
        float32 features ``(N, F)``.

    Example:
        >>> images = torch.full((5, 3, 4, 4), 255, dtype=torch.uint8)
        >>> feats = extract_features(lambda x: x.mean((2, 3)), images, batch_size=2, progress=False)
        >>> feats.shape, feats.dtype, float(feats.max())
        ((5, 3), dtype('float32'), 1.0)
    """
    if not hasattr(images, "dtype") or isinstance(images, np.ndarray):  # a tensor, PackedImages
        raise ValueError(f"images must be a uint8 torch.Tensor, got {type(images).__name__}")
    if images.dtype != torch.uint8 or images.ndim != 4 or len(images) == 0:
        raise ValueError(
            "images must be a non-empty uint8 tensor of shape (N, C, H, W), got "
            f"{images.dtype} of shape {tuple(images.shape)}"
        )
    batch_size = integer_at_least(batch_size, 1, "batch_size")
    out = None
    with torch.no_grad():
        for i in tqdm(range(0, len(images), batch_size), desc="features", disable=not progress):
            batch = images[i : i + batch_size].float().div_(255)  # (B, C, H, W)
            feats = fn(batch)
            if not isinstance(feats, torch.Tensor) or feats.ndim != 2 or len(feats) != len(batch):
                raise ValueError(
                    f"fn must return a tensor of shape (B, F) with B = {len(batch)}, got "
                    f"{tuple(getattr(feats, 'shape', ()))}"
                )
            feats = feats.float().cpu().numpy()  # (B, F)
            if out is None:
                out = np.empty((len(images), feats.shape[1]), dtype=np.float32)
            out[i : i + len(batch)] = feats
    return out


def _features(x: Any, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty array of shape (N, F), got {x.shape}")
    if x.dtype != np.float64:
        x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or Inf values")
    return x


def _splits(train_x, train_y, test_x, test_y) -> list[np.ndarray]:
    arrays = []
    for split, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
        x, y = _features(x, f"{split}_x"), np.asarray(y)
        if y.ndim != 1 or len(y) != len(x):
            raise ValueError(f"{split}_y must have shape ({len(x)},) like {split}_x, got {y.shape}")
        arrays += [x, y]
    train_x, train_y, test_x, test_y = arrays
    if test_x.shape[1] != train_x.shape[1]:
        raise ValueError(
            f"test_x must have F = {train_x.shape[1]} features like train_x, got {test_x.shape}"
        )
    if len(np.unique(train_y)) < 2:
        raise ValueError("train_y must contain at least 2 classes")
    return train_x, train_y, test_x, test_y


def linear_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    max_iter: int = 1000,
    C: float = 1.0,
    seed: int = 0,
    quiet: bool = False,
) -> float:
    """Test accuracy of a multinomial logistic regression on standardised frozen features.

    Args:
        train_x, train_y: training features ``(N, F)`` and labels ``(N,)``.
        test_x, test_y: test features ``(M, F)`` and labels ``(M,)``.
        max_iter: lbfgs iterations at most.
        C: inverse L2 regularisation strength.
        seed: ``random_state`` of the classifier (lbfgs itself is deterministic).
        quiet: hush the warning when lbfgs stops at ``max_iter`` (:func:`hush_convergence`).

    Returns:
        Accuracy in ``[0, 1]``.

    Example:
        >>> x = np.array([[0.0], [1.0], [10.0], [11.0]])
        >>> linear_probe(x, [0, 0, 1, 1], [[0.5], [10.5]], [0, 1])
        1.0
    """
    train_x, train_y, test_x, test_y = _splits(train_x, train_y, test_x, test_y)
    max_iter = integer_at_least(max_iter, 1, "max_iter")
    probe = make_pipeline(
        StandardScaler(),
        LogisticRegression(C=positive(C, "C"), max_iter=max_iter, random_state=seed),
    )
    with hush_convergence() if quiet else nullcontext():
        probe.fit(train_x, train_y)
    return float(np.mean(probe.predict(test_x) == test_y))


def knn(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    k: int = 20,
    metric: str = "cosine",
    standardize: bool = True,
) -> float:
    """Test accuracy of a k-nearest-neighbour majority vote on frozen features.

    Brute-force search with uniform weights: each of the ``k`` nearest training examples has
    one vote, ties go to the smallest label. (Distance weights ``1 / d`` blow up for
    near-duplicates under the cosine distance ``1 - cos``, and a plain vote is easy to check.)
    Features are first standardised with the training set's mean and standard deviation, as
    for the linear probe: pooled ReLU features are all positive, and without centring every
    cosine is close to 1.

    Args:
        train_x, train_y: training features ``(N, F)`` and labels ``(N,)``.
        test_x, test_y: test features ``(M, F)`` and labels ``(M,)``.
        k: number of neighbours, ``1 <= k <= N``.
        metric: any scikit-learn metric name; cosine ignores the features' scale.
        standardize: z-score every feature with the training set's statistics first.

    Returns:
        Accuracy in ``[0, 1]``.

    Example:
        >>> x = np.array([[1.0, 0.1], [1.0, -0.1], [0.1, 1.0], [-0.1, 1.0]])
        >>> knn(x, [0, 0, 1, 1], [[2.0, 0.0], [0.0, 3.0]], [0, 1], k=2)
        1.0
    """
    train_x, train_y, test_x, test_y = _splits(train_x, train_y, test_x, test_y)
    k = integer_at_least(k, 1, "k")
    if k > len(train_x):
        raise ValueError(f"k must be at most the {len(train_x)} training examples, got {k}")
    vote = KNeighborsClassifier(n_neighbors=k, metric=metric, algorithm="brute")
    if standardize:
        vote = make_pipeline(StandardScaler(), vote)
    vote.fit(train_x, train_y)
    return float(np.mean(vote.predict(test_x) == test_y))


def _check_shots(shots: Sequence[Shot], train_y: np.ndarray) -> list[Shot]:
    if isinstance(shots, (str, int)) or len(shots) == 0:
        raise ValueError(f"shots must be a non-empty sequence like (1, 10, 'all'), got {shots!r}")
    smallest = np.unique(train_y, return_counts=True)[1].min()
    for s in shots:
        if s != "all" and (isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1):
            raise ValueError(f"shots entries must be integers >= 1 or 'all', got {s!r}")
        if s != "all" and s > smallest:
            raise ValueError(f"shots entry {s} exceeds the smallest class's {smallest} examples")
    if len({str(s) for s in shots}) != len(shots):
        raise ValueError(f"shots must not repeat an entry, got {shots!r}")
    return list(shots)


def few_shot_indices(train_y: np.ndarray, shots: int, seed: int | Sequence[int]) -> np.ndarray:
    """Indices of ``shots`` training examples per class, drawn without replacement.

    Args:
        train_y: training labels ``(N,)``.
        shots: examples per class; at most the size of the smallest class.
        seed: seed (or seed sequence) of the draw; the same seed gives the same indices.

    Returns:
        Sorted indices ``(shots · num_classes,)``.

    Example:
        >>> few_shot_indices(np.array([0, 0, 0, 1, 1, 1]), 2, seed=0).shape
        (4,)
    """
    train_y = np.asarray(train_y)
    _check_shots([shots], train_y)
    rng = np.random.default_rng(seed)
    picks = [
        rng.choice(np.flatnonzero(train_y == c), shots, replace=False) for c in np.unique(train_y)
    ]
    return np.sort(np.concatenate(picks))


def _few_shot_entry(train_x, train_y, test_x, test_y, s: Shot, draws: int, seed: int):
    if s == "all":
        return linear_probe(train_x, train_y, test_x, test_y, seed=seed), 0.0
    accs = []
    for d in range(draws):
        idx = few_shot_indices(train_y, s, seed=(seed, s, d))
        accs.append(linear_probe(train_x[idx], train_y[idx], test_x, test_y, seed=seed))
    return float(np.mean(accs)), float(np.std(accs))


def few_shot(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    shots: Sequence[Shot] = (1, 10, "all"),
    draws: int = 5,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Linear-probe accuracy from ``s`` labelled training examples per class.

    For each shot count ``s``, ``draws`` seeded stratified draws (see
    :func:`few_shot_indices`) each train a :func:`linear_probe` evaluated on the whole test
    set; ``"all"`` trains once on the whole training set.

    Args:
        train_x, train_y: training features ``(N, F)`` and labels ``(N,)``.
        test_x, test_y: test features ``(M, F)`` and labels ``(M,)``.
        shots: examples per class, integers or ``"all"``.
        draws: draws per integer shot count.
        seed: base seed; draw ``d`` of ``s`` shots uses the seed sequence ``(seed, s, d)``.

    Returns:
        ``{str(s): (mean, std)}`` of the accuracy over draws (population std; 0 for ``"all"``).

    Example:
        >>> x = np.array([[0.0], [1.0], [10.0], [11.0]])
        >>> few_shot(x, [0, 0, 1, 1], [[0.5], [10.5]], [0, 1], shots=(1, "all"), draws=2)
        {'1': (1.0, 0.0), 'all': (1.0, 0.0)}
    """
    train_x, train_y, test_x, test_y = _splits(train_x, train_y, test_x, test_y)
    shots = _check_shots(shots, train_y)
    draws = integer_at_least(draws, 1, "draws")
    return {
        str(s): _few_shot_entry(train_x, train_y, test_x, test_y, s, draws, seed) for s in shots
    }


def evaluate_features(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    shots: Sequence[Shot] = (1, 10, "all"),
    draws: int = 5,
    k: int = 20,
    seed: int = 0,
) -> dict[str, Any]:
    """Linear probe, k-NN and few-shot probes of frozen features, as a JSON-ready dict.

    The linear probe on the whole training set is computed once and also fills the
    ``"all"`` few-shot entry.

    Args:
        train_x, train_y: training features ``(N, F)`` and labels ``(N,)``.
        test_x, test_y: test features ``(M, F)`` and labels ``(M,)``.
        shots, draws, seed: as in :func:`few_shot`.
        k: neighbours of :func:`knn`.

    Returns:
        ``{"linear_probe", "knn", "k", "few_shot": {str(s): [mean, std]}, "num_train",
        "num_test", "dim", "num_classes"}``; accuracies in ``[0, 1]``.

    Example:
        >>> x = np.array([[1.0, 0.0], [1.0, 0.2], [0.0, 1.0], [0.2, 1.0]])
        >>> r = evaluate_features(x, [0, 0, 1, 1], x, [0, 0, 1, 1], shots=(1, "all"), k=1)
        >>> r["linear_probe"], r["knn"], r["few_shot"]
        (1.0, 1.0, {'1': [1.0, 0.0], 'all': [1.0, 0.0]})
    """
    train_x, train_y, test_x, test_y = _splits(train_x, train_y, test_x, test_y)
    shots = _check_shots(shots, train_y)
    draws = integer_at_least(draws, 1, "draws")
    probe = linear_probe(train_x, train_y, test_x, test_y, seed=seed)
    entries = {
        str(s): [probe, 0.0]
        if s == "all"
        else list(_few_shot_entry(train_x, train_y, test_x, test_y, s, draws, seed))
        for s in shots
    }
    return {
        "linear_probe": probe,
        "knn": knn(train_x, train_y, test_x, test_y, k=k),
        "k": k,
        "few_shot": entries,
        "num_train": len(train_x),
        "num_test": len(test_x),
        "dim": train_x.shape[1],
        "num_classes": len(np.unique(train_y)),
    }


LAYERS = ("features", "embedding", "projector")


def encoder_features(
    encoder, images: torch.Tensor, device, progress: bool = True, layer: str = "features"
) -> np.ndarray:
    """What ``encoder`` makes of uint8 ``images`` ``(N, C, H, W)``: float32 ``(N, F)``,
    computed on ``device`` with the encoder in eval mode.

    ``layer``: ``"features"`` (:func:`~lejepa_viz.model.probe_features`, what the probes read), ``"embedding"``
    (the backbone's pooled output, the projector's input) or ``"projector"`` (z, what SIGReg
    acts on)."""
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {LAYERS}, got {layer!r}")
    encoder.eval()
    pick = {
        "features": lambda x: probe_features(encoder, x),
        "embedding": lambda x: encoder(x)[0],
        "projector": lambda x: encoder(x)[1],
    }[layer]
    return extract_features(lambda x: pick(x.to(device)).float().cpu(), images, progress=progress)


def effective_rank(x: np.ndarray | torch.Tensor) -> tuple[float, np.ndarray]:
    """The effective rank of features ``x`` ``(N, F)`` and their covariance spectrum.

    The spectrum is the eigenvalues of the sample covariance, largest first; the effective rank
    is exp of the entropy of the eigenvalues normalised to sum 1 (Roy & Vetterli, 2007): F for
    an isotropic cloud, 1 when one direction holds all the variance — a number for collapse.

    Example:
        >>> cross = np.array([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]])  # 2 of 3 dims
        >>> rank, spectrum = effective_rank(cross)
        >>> round(rank, 6), spectrum.round(3).tolist()
        (2.0, [0.667, 0.667, 0.0])
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"x must be (N, F) with N >= 2, got shape {x.shape}")
    covariance = np.atleast_2d(np.cov(x, rowvar=False))
    spectrum = np.clip(np.linalg.eigvalsh(covariance), 0, None)[::-1]  # largest first
    total = spectrum.sum()
    if total <= 0:
        return 0.0, spectrum
    p = spectrum[spectrum > 0] / total
    return float(np.exp(-(p * np.log(p)).sum())), spectrum


@contextmanager
def hush_convergence() -> Iterator[None]:
    """Hush scikit-learn's ``ConvergenceWarning`` inside the block (lbfgs stopping at
    ``max_iter`` is fine for a number that watches training)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        yield
