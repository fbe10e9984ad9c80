"""One LeJEPA training step and the learning-rate schedule.

    images (B, C, H, W) → G global + L local views → backbone → projector → z (V, B, D)
    → (1 − λ)·pred + λ·SIGReg  (+ the online probe's cross-entropy on detached embeddings)
    → backward → AdamW

:func:`train_step` is what the loop runs and what ``benchmarks/train_step.py`` times. It
returns detached tensors and reads none back, so on a GPU nothing waits for the host.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager, nullcontext
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..data import MultiViewAugment
from ..data.base import UNLABELLED
from ..model import Encoder
from ..sigreg import SIGReg, lejepa_loss

FINAL_LR_FRACTION = 1e-3  # the cosine schedule ends at lr / 1000


class LeJEPAModel(nn.Module):
    """The encoder and its online probe (LayerNorm + Linear on the backbone embedding), one
    module so that DDP synchronises both. The probe reads detached embeddings: it watches
    training and never changes the encoder, except with ``supervised``, the reference with
    labels, where its cross-entropy trains the encoder and the LeJEPA loss does not."""

    def __init__(self, encoder: Encoder, num_classes: int, supervised: bool = False):
        super().__init__()
        self.encoder, self.supervised = encoder, supervised
        self.probe = nn.Sequential(
            nn.LayerNorm(encoder.embed_dim), nn.Linear(encoder.embed_dim, num_classes)
        )

    def forward(
        self, global_views: torch.Tensor, local_views: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(G, B, C, H, W) and (L, B, C, h, w) → z (G + L, B, D), the backbone embeddings
        (G + L, B, F) and the probe's logits on the global views' (G·B, classes)."""
        z, emb = self.encoder.forward_views(global_views, local_views)
        seen = emb[: global_views.shape[0]].flatten(0, 1)
        return z, emb, self.probe(seen if self.supervised else seen.detach())


class StepOutput(NamedTuple):
    """One step's losses, detached scalars (reading them syncs a GPU: do it when logging), and
    its projector outputs ``z`` ``(V, B, D)``, detached: what SIGReg acted on."""

    loss: torch.Tensor  # (1 - λ)·pred + λ·SIGReg
    pred: torch.Tensor
    sigreg: torch.Tensor
    probe_loss: torch.Tensor
    z: torch.Tensor

    def losses(self) -> dict[str, torch.Tensor]:
        """The four losses by name (the metrics line's fields)."""
        return {
            "loss": self.loss,
            "pred": self.pred,
            "sigreg": self.sigreg,
            "probe_loss": self.probe_loss,
        }


def train_step(
    model: nn.Module,
    augment: MultiViewAugment,
    sigreg: SIGReg,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    lam: float,
    generator: torch.Generator | None = None,
    autocast: AbstractContextManager | None = None,
    weighting: str = "convex",
    sigreg_views: str = "each",
    sigreg_on: str = "projector",
) -> StepOutput:
    """One optimiser step of LeJEPA and the online probe on a batch (of the probe's
    cross-entropy alone, through the encoder, when ``model`` is ``supervised``).

    Args:
        model: a :class:`LeJEPAModel` (or its DDP wrapper).
        augment: makes the views; its ``num_global`` first views are the global ones.
        sigreg: the regulariser (advances its step).
        optimizer: steps the encoder and the probe.
        images: ``(B, C, H, W)`` uint8 on the model's device.
        labels: ``(B,)`` class indices, for the probe.
        lam: λ of the loss.
        generator: the views' random stream.
        autocast: the precision context of the forward pass (bf16 on CUDA); None: none.
        weighting, sigreg_views: the loss's form (:func:`~lejepa_viz.sigreg.lejepa_loss`).
        sigreg_on: ``"projector"`` (SIGReg on ``z``, the paper's) or ``"backbone"`` (on the
            backbone's embeddings of every view).

    Returns:
        :class:`StepOutput`.
    """
    num_global = augment.config.num_global
    global_views, local_views = augment(images, generator=generator)
    with autocast or nullcontext():
        z, emb, logits = model(global_views, local_views)  # (V, B, D), (V, B, F), (G·B, classes)
        parts = lejepa_loss(
            z, lam, sigreg, num_global_views=num_global, weighting=weighting,
            sigreg_views=sigreg_views, regularized=emb if sigreg_on == "backbone" else None,
        )  # fmt: skip
        targets = labels.repeat(num_global)  # unlabelled images (STL-10's) are skipped
        probe_loss = F.cross_entropy(
            logits.float(), targets, ignore_index=UNLABELLED, reduction="sum"
        ) / (targets != UNLABELLED).sum().clamp_min(1)
    optimizer.zero_grad(set_to_none=True)
    if getattr(model, "module", model).supervised:  # the reference: labels train the encoder
        (probe_loss + 0 * parts.loss).backward()  # 0·: every parameter in the graph, for DDP
    else:
        (parts.loss + probe_loss).backward()
    optimizer.step()
    return StepOutput(*(t.detach() for t in (parts.loss, parts.pred, parts.sigreg, probe_loss, z)))


def lr_scale(step: int, progress: float, warmup: int) -> float:
    """The learning rate of ``step`` as a fraction of the base rate: linear warm-up over
    ``warmup`` steps, then a cosine from 1 to :data:`FINAL_LR_FRACTION` as ``progress`` (the
    fraction of the run done, by steps or by the clock) goes from 0 to 1.

    Example:
        >>> lr_scale(0, 0.0, warmup=10), lr_scale(50, 0.5, warmup=10), lr_scale(99, 1.0, 10)
        (0.1, 0.5005, 0.001)
    """
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return min(1.0, (step + 1) / warmup) * (FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * cosine)
