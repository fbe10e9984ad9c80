"""A tiny encoder trained with the LeJEPA loss for several λ: collapse at λ = 0, N(0, I) above.

λ = 0 is pure invariance: every view of an input agrees with the others, which a constant
output achieves, so the outputs collapse. Any λ > 0 adds SIGReg and the outputs spread into an
isotropic Gaussian instead. :func:`train_tiny` is the one loop; two tasks feed it:

- ``"digits"``: an MLP on the bundled 16 x 16 digits, 2 global and 2 local views per image
  (batched augmentation, local views upsampled), outputs in D = 16 (the λ GIF);
- ``"cloud"``: an MLP R² → R^D on two noisy views of a heavy-tailed 2-D cloud (notebook 05).

Every λ starts from the same initialisation and sees the same views; outputs start spread out
(std 1), so collapse is visible. :func:`lambda_runs` trains one run per λ, optionally cached.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .._checks import integer_at_least, positive
from ..data import MultiViewAugment, load_dataset
from ..distributed import one_thread, seeded
from ..runs import save_torch
from ..sigreg import JUDGE_SEED, JUDGE_SLICES, SIGReg, judge, lejepa_loss
from .clouds import make_cloud
from .trajectory import Trajectory

TASKS = ("digits", "cloud")
Views = Callable[[torch.Generator], torch.Tensor]  # generator -> views (V, B, ...) of a batch


def _mlp(widths: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers += [nn.Linear(a, b)] + ([nn.GELU()] if i < len(widths) - 2 else [])
    return nn.Sequential(*layers)


def digits_task(dim: int = 16, batch_size: int = 128, seed: int = 0):
    """The digits task: ``(net, fixed inputs (256, 1, 16, 16), views, settings)``."""
    data = load_dataset("digits", "train")
    augment = MultiViewAugment.for_dataset(data, num_global=2, num_local=2)
    side = data.image_size
    with seeded(seed):
        net = _mlp([side * side, 256, 256, dim])

    def views(generator: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(data), (batch_size,), generator=generator)
        g, loc = augment(
            data.images[idx], generator=generator
        )  # (2, B, 1, 16, 16), (2, B, 1, 8, 8)
        loc = F.interpolate(loc.flatten(0, 1), size=side).view(len(loc), batch_size, *g.shape[2:])
        return torch.cat([g, loc])  # (4, B, 1, 16, 16)

    return (
        net,
        data.images[:256].float() / 255,
        views,
        {"lr": 2e-3, "weight_decay": 0.01, "num_slices": 128},
    )


def cloud_task(n: int = 512, dim: int = 2, shape: str = "heavy", noise: float = 0.3, seed: int = 0):
    """The cloud task: ``(net, fixed inputs (n, 2), views, settings)``; the batch is the cloud."""
    inputs = make_cloud(shape, n, 2, seed)
    with seeded(seed):
        net = _mlp([2, 64, 64, dim])

    def views(generator: torch.Generator) -> torch.Tensor:
        return inputs + noise * torch.randn(2, *inputs.shape, generator=generator)  # (2, n, 2)

    return net, inputs, views, {"lr": 1e-2, "weight_decay": 0.0, "num_slices": 64}


def train_tiny(
    net: nn.Module,
    fixed: torch.Tensor,
    views: Views,
    lam: float,
    *,
    steps: int,
    every: int,
    lr: float,
    weight_decay: float = 0.0,
    num_slices: int = 128,
    num_global: int = 2,
    seed: int = 0,
) -> Trajectory:
    """AdamW on ``net`` with ``lejepa_loss`` of its outputs on ``views``; ``net(fixed)`` recorded.

    Before training, the last layer is scaled so that ``net(fixed)`` has std 1. Recorded every
    ``every`` steps: the outputs, ``values["sigreg"]`` (read by
    :func:`~lejepa_viz.sigreg.judge`, on fixed directions the loss never uses) and
    ``values["std"]``; per step ``losses["loss"]`` and ``losses["pred"]``.

    Args:
        net: maps inputs ``(B, ...)`` to outputs ``(B, D)``; trained in place.
        fixed: the inputs whose outputs are recorded.
        views: draws one batch's views ``(V, B, ...)`` from a generator.
        lam: λ in [0, 1].
        steps, every, lr, weight_decay: AdamW steps, record interval and settings.
        num_slices: SIGReg slices of the loss.
        num_global: leading views the prediction centre is taken over.
        seed: seed of the views and the slices.
    """
    if not isinstance(lam, (int, float)) or not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be a number in [0, 1], got {lam!r}")
    steps = integer_at_least(steps, 1, "steps")
    every = integer_at_least(every, 1, "every")
    with torch.no_grad():  # start spread out (std 1), so that collapse is visible
        net[-1].weight /= net(fixed).std()
    opt = torch.optim.AdamW(net.parameters(), lr=positive(lr, "lr"), weight_decay=weight_decay)
    sigreg = SIGReg(num_slices=num_slices, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    traj = Trajectory(lam=float(lam))
    for step in range(steps + 1):
        if step % every == 0 or step == steps:
            with torch.no_grad():
                z = net(fixed)  # (n, D)
                traj.record(step, z, sigreg=judge(z).value, std=z.std(0).mean().item())
        if step == steps:
            break
        v = views(generator)  # (V, B, ...)
        z = net(v.flatten(0, 1)).view(*v.shape[:2], -1)  # (V, B, D)
        parts = lejepa_loss(z, lam, sigreg, num_global_views=num_global)
        opt.zero_grad(set_to_none=True)
        parts.loss.backward()
        opt.step()
        traj.log(loss=parts.loss.item(), pred=parts.pred.item())
    return traj


def lambda_runs(
    lams: Sequence[float] = (0.0, 0.1),
    task: str = "digits",
    *,
    steps: int = 120,
    every: int = 4,
    seed: int = 0,
    cache: str | os.PathLike | None = None,
    progress: bool = False,
    **task_options,
) -> list[Trajectory]:
    """One tiny-encoder run per λ on ``task`` (see the module docstring), on one thread.

    Args:
        lams: the λ values, each in [0, 1].
        task: ``"digits"`` or ``"cloud"``.
        steps, every: training steps and record interval of each run.
        seed: the initialisation, the views and the slices (the same for every λ).
        cache: a ``.pt`` file: reused when it holds runs of these settings, else written.
        progress: a progress bar over the runs.
        **task_options: of :func:`digits_task` (``dim``, ``batch_size``) or :func:`cloud_task`
            (``n``, ``dim``, ``shape``, ``noise``).

    Example:
        >>> zero, some = lambda_runs((0.0, 0.5), "cloud", steps=60, every=60, n=256)
        >>> zero.values["std"][-1] < 0.2, 0.7 < some.values["std"][-1] < 1.3
        (True, True)
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    key = {
        "lams": [float(lam) for lam in lams],
        "task": task,
        "steps": steps,
        "every": every,
        "seed": seed,
        "judge": [JUDGE_SLICES, JUDGE_SEED],  # runs cached with another judge are redone
        **task_options,
    }
    path = None if cache is None else Path(cache)
    if path is not None and path.is_file():
        saved = torch.load(path, weights_only=True)
        if saved.get("key") == key:
            return [Trajectory.from_dict(run) for run in saved["runs"]]
    make = digits_task if task == "digits" else cloud_task
    runs = []
    with one_thread():  # tiny tensors: thread wake-ups cost more than they save
        for lam in tqdm(lams, desc="λ runs", disable=not progress, leave=False):
            net, fixed, views, settings = make(seed=seed, **task_options)
            runs.append(
                train_tiny(net, fixed, views, lam, steps=steps, every=every, seed=seed, **settings)
            )
    if path is not None:
        save_torch({"key": key, "runs": [run.to_dict() for run in runs]}, path)
    return runs
