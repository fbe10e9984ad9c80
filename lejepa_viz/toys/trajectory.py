"""``Trajectory``: what every toy experiment records, the one result type of its loops."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Trajectory:
    """Points (or a tiny encoder's outputs on fixed inputs) recorded along an experiment.

    Attributes:
        steps: the recorded steps, S of them (the first and the last included).
        snapshots: ``(N, D)`` float tensors, one per recorded step.
        values: named measurements, one entry per recorded step (``"sigreg"``: SIGReg on fixed
            directions; ``"std"``: the mean per-dimension standard deviation; ``"w1"``: the
            distance of each column to N(0, 1), a list per step).
        losses: named loss terms, one entry per optimisation step (``"loss"``, ``"pred"``).
        lam: λ of a tiny-encoder run (None for a descent of points).
        finite: every loss and gradient stayed finite (a descent stops at the first that is not).
        stopped: why the experiment ended before its last step (e.g. ``"null level"``), or None.
    """

    steps: list[int] = field(default_factory=list)
    snapshots: list[torch.Tensor] = field(default_factory=list)
    values: dict[str, list] = field(default_factory=dict)
    losses: dict[str, list[float]] = field(default_factory=dict)
    lam: float | None = None
    finite: bool = True
    stopped: str | None = None

    def record(self, step: int, points: torch.Tensor, **values) -> None:
        """Keep ``points`` (a detached copy) and ``values`` at ``step``."""
        self.steps.append(step)
        self.snapshots.append(points.detach().clone())
        for name, value in values.items():
            self.values.setdefault(name, []).append(value)

    def log(self, **losses: float) -> None:
        """Keep the loss terms of one optimisation step."""
        for name, value in losses.items():
            self.losses.setdefault(name, []).append(float(value))

    @property
    def final(self) -> torch.Tensor:
        """The last snapshot ``(N, D)``."""
        return self.snapshots[-1]

    def to_dict(self) -> dict:
        """Plain containers and tensors (``torch.load(..., weights_only=True)`` reads them)."""
        return {
            "steps": self.steps,
            "snapshots": self.snapshots,
            "values": self.values,
            "losses": self.losses,
            "lam": self.lam,
            "finite": self.finite,
            "stopped": self.stopped,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Trajectory:
        return cls(**data)
