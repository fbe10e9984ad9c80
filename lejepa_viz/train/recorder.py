"""The recorder: embeddings kept as training goes, the frames of the convergence animation.

Two sets at each recorded step, at the same parameters (but the final frame's, see below):

- ``z``: projector outputs of a fixed batch of clean test images, BatchNorm normalising them
  with their own batch statistics (running statistics untouched, see
  :func:`~lejepa_viz.model.batch_statistics`) — what the encoder makes of images;
- ``z_views``: the projector outputs of the first global view of the training batch that the
  next step's SIGReg acts on. The final frame has no next step: it shows the last step's
  views, computed one optimiser step before its ``z``.

At most ``max_snapshots`` are kept: when full, every other one is dropped and the interval
doubles, so a run of any length ends with snapshots evenly spread over it, its last step
always among them.
"""

from __future__ import annotations

import torch

from ..model import Encoder, batch_statistics


class Recorder:
    """Snapshots of ``images`` and of the training views every ``every`` steps.

    Args:
        images: ``(n, C, H, W)`` floats in [0, 1] on the encoder's device (one batch).
        labels: ``(n,)`` their classes.
        every: steps between snapshots (doubles when the recorder is full).
        max_snapshots: how many are kept at most.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, every: int, max_snapshots: int):
        self.images, self.labels = images, labels
        self.every, self.max_snapshots = max(1, every), max_snapshots
        self.steps: list[int] = []
        self.z: list[torch.Tensor] = []  # each (n, D) float16 on the CPU
        self.z_views: list[torch.Tensor | None] = []  # each (B, D) float16, or None until seen
        self.latest: torch.Tensor | None = None  # the last step's z (V, B, D), not copied

    def maybe_record(self, step: int, encoder: Encoder) -> None:
        if step % self.every == 0:
            self.record(step, encoder)

    @torch.no_grad()
    def record(self, step: int, encoder: Encoder, views: torch.Tensor | None = None) -> None:
        """Record the clean images' projector outputs at ``step`` (once per step); the training
        views are ``views`` ``(V, B, D)`` when given (the final frame: the last step's), else
        those of the next :meth:`saw`."""
        if self.steps and self.steps[-1] == step:
            return
        with batch_statistics(encoder):
            z = encoder(self.images)[1]  # (n, D): one batch, its own BatchNorm statistics
        self.steps.append(step)
        self.z.append(z.float().cpu().half())
        self.z_views.append(None)
        if views is not None:
            self.saw(views)
        if len(self.steps) >= self.max_snapshots:
            keep = slice(None, None, 2)
            self.steps, self.z, self.z_views = self.steps[keep], self.z[keep], self.z_views[keep]
            self.every *= 2

    def saw(self, z: torch.Tensor) -> None:
        """A training step's projector outputs ``(V, B, D)``: they complete the pending frame."""
        self.latest = z
        if self.z_views and self.z_views[-1] is None:
            self.z_views[-1] = z[0].detach().float().cpu().half()  # (B, D): first global view

    def state_dict(self) -> dict:
        return {"steps": self.steps, "z": self.z, "z_views": self.z_views, "every": self.every}

    def load_state_dict(self, state: dict) -> None:
        self.steps, self.z, self.every = state["steps"], state["z"], state["every"]
        self.z_views = state.get("z_views", [None] * len(self.steps))  # older checkpoints

    def snapshots(self, **info) -> dict:
        """What ``snapshots.pt`` holds: the steps, ``z`` ``(S, n, D)``, ``z_views`` ``(S, B, D)``
        (NaN where a frame had no step after it), the labels and ``info`` (classes, λ, ...)."""
        z = torch.stack(self.z) if self.z else None
        known = [v for v in self.z_views if v is not None]
        views = None
        if known:
            empty = torch.full_like(known[0], float("nan"))
            views = torch.stack([empty if v is None else v for v in self.z_views])
        return {"steps": self.steps, "z": z, "z_views": views, "labels": self.labels.cpu(), **info}
