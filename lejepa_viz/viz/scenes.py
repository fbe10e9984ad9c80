"""A number for patch-feature maps: their IoU with the exact masks of synthetic scenes.

A map that only *looks* good is not evidence. The scenes (:mod:`lejepa_viz.data.scenes`, the
world a ViT can learn objects in, and :mod:`lejepa_viz.data.shapes`, shapes cut from photos)
come with their object masks, and :func:`scene_iou` scores an encoder's maps against them
beside two references, the same architecture at random initialisation and the raw pixels of
each patch:

- PCA maps (joint and per image): the first principal component, its sign set without the
  masks (:func:`~lejepa_viz.viz.pca.object_sign`), thresholded at 0;
- [CLS] attention masks: the patches holding ``keep`` (DINO's 60 %) of the attention.

Each score is the mean IoU over the scenes with a percentile bootstrap interval over scenes
(:func:`bootstrap`), so "better than random init" is a statement with its uncertainty.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from .._checks import integer_at_least
from ..model import Encoder, random_twin
from .attention import KEEP, attention_masks, check_keep
from .patches import MAP_KINDS, attention_maps, check_images, patch_tokens
from .pca import FITS, fit_pca_maps

MODELS = {"trained": "LeJEPA ViT", "random": "same ViT, random init", "pixels": "raw patch pixels"}


def mask_iou(pred: torch.Tensor, truth: torch.Tensor) -> float | torch.Tensor:
    """Intersection over union of bool masks ``(H, W)`` -> float, or ``(*, H, W)`` -> ``(*)``
    per mask. Two empty masks agree perfectly: IoU 1.

    Example:
        >>> a = torch.zeros(4, 4, dtype=torch.bool); a[:, :2] = True
        >>> b = torch.zeros(4, 4, dtype=torch.bool); b[:, 1:3] = True
        >>> mask_iou(a, b)
        0.3333333432674408
    """
    if pred.shape != truth.shape or pred.ndim < 2:
        raise ValueError(
            f"pred and truth must be masks of one shape (*, H, W), got "
            f"{tuple(pred.shape)} and {tuple(truth.shape)}"
        )
    pred, truth = pred.bool(), truth.bool()
    inter = (pred & truth).flatten(-2).sum(-1).float()
    union = (pred | truth).flatten(-2).sum(-1).float()
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))
    return iou.item() if pred.ndim == 2 else iou


def grid_iou(kept: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """IoU of patch-grid masks ``(N, h, w)`` upsampled (nearest) to the true ``masks``
    ``(N, H, W)``: ``(N,)``."""
    pred = F.interpolate(kept.float()[:, None], size=masks.shape[-2:], mode="nearest")[:, 0]
    return mask_iou(pred.bool(), masks.bool().cpu())


def bootstrap(
    values: torch.Tensor, resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean of ``values`` ``(N,)``: ``level`` of the
    means of ``resamples`` samples of N drawn with replacement (seeded).

    Example:
        >>> values = torch.arange(100.0)
        >>> low, high = bootstrap(values)
        >>> normal = 2 * 1.96 * values.std().item() / 10  # the normal theory's width
        >>> low < 49.5 < high, abs((high - low) - normal) < 1
        (True, True)
    """
    integer_at_least(resamples, 1, "resamples")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    values = torch.as_tensor(values, dtype=torch.float64).flatten()
    g = torch.Generator().manual_seed(seed)
    means = values[torch.randint(len(values), (resamples, len(values)), generator=g)].mean(1)
    tail = (1 - level) / 2
    low, high = torch.quantile(means, torch.tensor([tail, 1 - tail], dtype=torch.float64))
    return float(low), float(high)


class MapScore(NamedTuple):
    """One map kind of one model on N scenes: the mean IoU and its bootstrap interval
    ``[low, high]``, the IoU of each scene ``(N,)``, and for PCA maps ``oracle``, the mean IoU
    with the better sign (which reads the masks: the sign rule's ceiling), else None."""

    iou: float
    low: float
    high: float
    ious: torch.Tensor
    oracle: float | None = None


def scored(ious: torch.Tensor, oracle: float | None = None, **options) -> MapScore:
    """:class:`MapScore` of per-scene IoUs ``(N,)`` (``options``: of :func:`bootstrap`)."""
    return MapScore(float(ious.mean()), *bootstrap(ious, **options), ious, oracle)


def component_score(
    tokens: torch.Tensor, masks: torch.Tensor, per_image: bool = False, **options
) -> MapScore:
    """The first principal component of patch tokens ``(N, h, w, F)`` as an object mask
    against ``masks`` ``(N, H, W)``: PCA(1) fitted jointly over all scenes' patches (or per
    scene), its sign set by :func:`~lejepa_viz.viz.pca.object_sign`, kept above 0. The oracle
    flips the one joint sign, or each scene's, whichever scores higher."""
    if masks.ndim != 3 or tokens.ndim != 4 or len(masks) != len(tokens):
        raise ValueError(
            f"need tokens (N, h, w, F) and masks (N, H, W), got "
            f"{tuple(tokens.shape)} and {tuple(masks.shape)}"
        )
    fit = "per-image" if per_image else "joint"
    pc1 = torch.from_numpy(fit_pca_maps(tokens, n_components=1, fit=fit).pc1)  # (N, h, w)
    ious, flipped = grid_iou(pc1 > 0, masks), grid_iou(pc1 < 0, masks)
    oracle = torch.maximum(ious, flipped).mean() if per_image else max(ious.mean(), flipped.mean())
    return scored(ious, float(oracle), **options)


def pixel_tokens(images: torch.Tensor, patch: int) -> torch.Tensor:
    """The raw pixels of each ``patch x patch`` patch of ``images`` ``(N, C, S, S)`` as its
    token: ``(N, S/patch, S/patch, C·patch²)`` floats.

    Example:
        >>> pixel_tokens(torch.arange(16.0).view(1, 1, 4, 4), 2)[0, 0, 1].tolist()
        [2.0, 3.0, 6.0, 7.0]
    """
    N, C, S, _ = images.shape
    h = S // patch
    grid = (
        images[..., : h * patch, : h * patch]
        .float()
        .unfold(2, patch, patch)
        .unfold(3, patch, patch)
    )
    return grid.permute(0, 2, 3, 1, 4, 5).reshape(N, h, h, C * patch * patch)


def encoder_iou(
    encoder: Encoder, images: torch.Tensor, masks: torch.Tensor, keep: float = KEEP, **options
) -> dict[str, MapScore]:
    """One encoder's maps of ``images`` against ``masks``: ``{kind: MapScore}`` for the PCA
    fits and, with a [CLS] token, the attention masks (``options``: of :func:`bootstrap`)."""
    tokens = patch_tokens(encoder, images)
    out = {fit: component_score(tokens, masks, fit == "per-image", **options) for fit in FITS}
    if encoder.has_cls:
        kept = attention_masks(attention_maps(encoder, images), keep)
        out["attention"] = scored(grid_iou(kept, masks), **options)
    return out


def scene_iou(
    encoder: Encoder,
    images: torch.Tensor,
    masks: torch.Tensor,
    *,
    keep: float = KEEP,
    resamples: int = 1000,
    seed: int = 0,
) -> dict:
    """Score an encoder's maps of ``images`` ``(N, 3, S, S)`` uint8 against their object
    ``masks`` ``(N, S, S)``, beside the same ViT at random initialisation and raw patch pixels.

    Returns:
        ``{kind: {model: MapScore}}`` for the kinds of :data:`~.patches.MAP_KINDS` (attention
        for ViTs with a [CLS] token; no pixel row for it) and the models of :data:`MODELS`,
        plus ``"num_scenes"`` and ``"size"``.
    """
    keep = check_keep(keep)
    check_images(encoder, images)
    if masks.shape != (len(images), *images.shape[-2:]):
        raise ValueError(f"masks must be (N, S, S) like the images, got {tuple(masks.shape)}")
    options = dict(resamples=resamples, seed=seed)
    random = random_twin(encoder).to(encoder.mean.device)
    scores = {
        m: encoder_iou(e, images, masks, keep, **options)
        for m, e in (("trained", encoder), ("random", random))
    }
    patch = encoder.backbone.patch_embed.patch_size[0] * images.shape[-1] // encoder.image_size
    pixels = pixel_tokens(images, patch)  # on the grid the encoder sees the images on
    scores["pixels"] = {
        fit: component_score(pixels, masks, fit == "per-image", **options) for fit in FITS
    }
    out = {
        k: {m: s[k] for m, s in scores.items() if k in s}
        for k in MAP_KINDS
        if k in scores["trained"]
    }
    return {**out, "num_scenes": len(images), "size": images.shape[-1]}


def gains(iou: dict) -> dict[str, float]:
    """What training adds, per map kind: the trained IoU minus the best reference's."""
    kinds = [k for k in MAP_KINDS if k in iou]
    return {
        k: iou[k]["trained"].iou - max(s.iou for m, s in iou[k].items() if m != "trained")
        for k in kinds
    }


REFERENCES = {"random": "random init", "pixels": "raw pixels"}


def verdict(iou: dict) -> str:
    """Honest sentences on the IoU table: where training beats its references beyond the
    intervals, and where it scores below one of them."""
    kinds = [k for k in MAP_KINDS if k in iou]
    clear = [
        k
        for k in kinds
        if iou[k]["trained"].low > max(s.high for m, s in iou[k].items() if m != "trained")
    ]
    if clear:
        named = ", ".join(f"{MAP_KINDS[k]} ({gains(iou)[k]:+.3f})" for k in clear)
        said = f"Training beats random initialisation and raw pixels beyond the intervals for: {named}."
    else:
        best = max(gains(iou).items(), key=lambda kv: kv[1])
        said = (
            f"Training does not beat its references beyond the intervals here (best gain "
            f"{best[1]:+.3f}, {MAP_KINDS[best[0]]}): these maps find the objects no better than "
            "random features or raw pixels do."
        )
    behind = []
    for k in kinds:
        trained = iou[k]["trained"]
        name, ref = max(
            ((m, s) for m, s in iou[k].items() if m != "trained"), key=lambda ms: ms[1].iou
        )
        if ref.iou > trained.iou:
            clearly = "beyond" if trained.high < ref.low else "within"
            behind.append(
                f"{MAP_KINDS[k]} ({trained.iou:.3f} against {REFERENCES[name]}'s {ref.iou:.3f}, "
                f"{clearly} the intervals)"
            )
    if behind:
        said += " The trained ViT scores below a reference on: " + "; ".join(behind) + "."
    return said


def iou_table(iou: dict) -> list[str]:
    """The IoU of every map kind for the trained ViT, its random twin and raw pixels: the mean
    and its 95 % interval, and for PCA maps the oracle sign's mean in brackets."""

    def cell(score: MapScore | None) -> str:
        if score is None:
            return "—"
        oracle = "" if score.oracle is None else f" ({score.oracle:.3f})"
        return f"{score.iou:.3f} [{score.low:.3f}, {score.high:.3f}]{oracle}"

    header = " | ".join(MODELS.values())
    lines = [f"| map | {header} |", "|-----|" + "---:|" * len(MODELS)]
    for k in (k for k in MAP_KINDS if k in iou):
        cells = " | ".join(cell(iou[k].get(m)) for m in MODELS)
        lines.append(f"| {MAP_KINDS[k]} | {cells} |")
    return lines


def iou_sentence(iou: dict, kinds=tuple(MAP_KINDS)) -> str:
    """The maps' IoU on the scenes in one sentence (trained / random init / pixels)."""
    parts = []
    for kind in (k for k in kinds if k in iou):
        cells = " / ".join(f"{iou[kind][m].iou:.3f}" for m in MODELS if m in iou[kind])
        parts.append(f"{MAP_KINDS[kind]} {cells}")
    return (
        f"IoU on {iou['num_scenes']} held-out scenes, LeJEPA / random init / pixels: "
        + "; ".join(parts)
    )
