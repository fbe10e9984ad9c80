"""The recorder: projector outputs of a fixed batch of test images, kept as training goes.

They are the frames of the convergence animation (``snapshots.pt``). At most ``max_snapshots``
are kept: when full, every other one is dropped and the interval doubles, so a run of any
length ends with snapshots evenly spread over it, the last step always among them.
"""

from __future__ import annotations

import torch

from ..model import Encoder


class Recorder:
    """Projector outputs of ``images`` every ``every`` steps, at most ``max_snapshots`` of them.

    Args:
        images: ``(n, C, H, W)`` floats in [0, 1] on the encoder's device.
        labels: ``(n,)`` their classes.
        every: steps between snapshots (doubles when the recorder is full).
        max_snapshots: how many are kept at most.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, every: int, max_snapshots: int):
        self.images, self.labels = images, labels
        self.every, self.max_snapshots = max(1, every), max_snapshots
        self.steps: list[int] = []
        self.z: list[torch.Tensor] = []  # each (n, D) float16 on the CPU

    def maybe_record(self, step: int, encoder: Encoder) -> None:
        if step % self.every == 0:
            self.record(step, encoder)

    @torch.no_grad()
    def record(self, step: int, encoder: Encoder) -> None:
        """Record ``encoder``'s projector outputs (in eval mode) at ``step`` (once per step)."""
        if self.steps and self.steps[-1] == step:
            return
        was_training = encoder.training
        encoder.eval()
        z = torch.cat([encoder(chunk)[1] for chunk in self.images.split(256)])  # (n, D)
        encoder.train(was_training)
        self.steps.append(step)
        self.z.append(z.float().cpu().half())
        if len(self.steps) >= self.max_snapshots:
            self.steps, self.z, self.every = self.steps[::2], self.z[::2], self.every * 2

    def state_dict(self) -> dict:
        return {"steps": self.steps, "z": self.z, "every": self.every}

    def load_state_dict(self, state: dict) -> None:
        self.steps, self.z, self.every = state["steps"], state["z"], state["every"]

    def snapshots(self, **info) -> dict:
        """What ``snapshots.pt`` holds: the steps, ``z`` ``(S, n, D)``, the labels and ``info``
        (classes, λ, dataset, run id)."""
        z = torch.stack(self.z) if self.z else None
        return {"steps": self.steps, "z": z, "labels": self.labels.cpu(), **info}
