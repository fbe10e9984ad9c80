"""DDP in 2 gloo processes on the CPU: SIGReg equals one process on the concatenated batch; the
helpers of lejepa_viz.distributed; the training loop's own collectives and where its ranks stop."""

import os
import traceback

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from lejepa_viz import SIGReg
from lejepa_viz.distributed import gather_objects, max_over_ranks, rank, world_size
from lejepa_viz.train import TrainConfig, loop, train

SIZES = (70, 130)  # ranks hold different batch sizes


def data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(sum(SIZES), 6, generator=g) ** 3
    model = nn.Linear(6, 12)
    with torch.no_grad():
        model.weight.copy_(torch.randn(12, 6, generator=g) * 0.5)
        model.bias.copy_(torch.randn(12, generator=g))
    return x, model


def run(x, model, sigreg, steps=2):
    """Two steps so the direction stream advances; returns the losses and final gradients."""
    losses = []
    for _ in range(steps):
        model.zero_grad()
        loss = sigreg(model(x).unsqueeze(0).expand(2, -1, -1))  # (V=2, N, D)
        loss.backward()
        losses.append(loss.detach())
    return torch.stack(losses), [p.grad.clone() for p in model.parameters()]


def worker(r: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=r, world_size=2)
    torch.set_num_threads(1)
    x, model = data()
    ddp = nn.parallel.DistributedDataParallel(model)
    start = sum(SIZES[:r])
    sigreg = SIGReg(num_slices=32)
    losses, grads = run(x[start : start + SIZES[r]], ddp, sigreg)
    A = sigreg.directions(12, 1)
    collected = {
        "gathered": gather_objects({"rank": r, "size": SIZES[r]}),
        "largest": max_over_ranks(SIZES[r] / 10, torch.device("cpu")),
    }
    torch.save(
        {"rank": rank(), "world": world_size(), "losses": losses, "grads": grads, "A": A}
        | collected,
        f"{out}.{r}",
    )
    dist.destroy_process_group()


def test_ddp_equals_single_process_on_concatenated_batch(tmp_path):
    out = str(tmp_path / "result")
    mp.start_processes(worker, args=(str(tmp_path / "store"), out), nprocs=2, start_method="spawn")
    results = [torch.load(f"{out}.{r}") for r in range(2)]
    x, model = data()
    losses, grads = run(x, model, SIGReg(num_slices=32))
    for r, res in enumerate(results):
        assert res["rank"] == r and res["world"] == 2
        torch.testing.assert_close(res["losses"], losses, rtol=1e-5, atol=1e-6)
        for g_ddp, g_one in zip(res["grads"], grads, strict=True):
            torch.testing.assert_close(g_ddp, g_one, rtol=1e-4, atol=1e-6)
    assert torch.equal(results[0]["A"], results[1]["A"])
    for res in results:  # every rank holds every rank's object, in rank order, and the largest
        assert res["gathered"] == [{"rank": 0, "size": 70}, {"rank": 1, "size": 130}]
        assert res["largest"] == 13.0


# DDP in two gloo processes: which collectives the loop makes, and where the ranks stop

DDP_RUN = dict(dataset="digits", batch_size=16, num_slices=16, proj_hidden=32, proj_dim=8)
DDP_RUN.update(log_every=2, snapshot_images=16, final_probe=False, progress=False, device="cpu")
COLLECTIVES = ("all_reduce", "all_gather", "all_gather_object", "broadcast", "barrier", "reduce")


AUTOGRAD_COLLECTIVES = os.path.join("torch", "distributed", "nn", "functional.py")


def count_plain_collectives() -> dict:
    """Count this process's torch.distributed collectives, those of the autograd all-reduce
    (SIGReg's, torch.distributed.nn) left out."""
    counts = {"plain": 0}

    def counted(real):
        def call(*args, **kwargs):
            stack = traceback.extract_stack()
            if not any(f.filename.endswith(AUTOGRAD_COLLECTIVES) for f in stack):
                counts["plain"] += 1
            return real(*args, **kwargs)

        return call

    for name in COLLECTIVES:
        setattr(dist, name, counted(getattr(dist, name)))
    return counts


def ddp_worker(rank: int, store: str, out: str, runs: list) -> None:
    """Train each of ``runs`` in turn; save (final step, plain collectives, replica gap)."""
    torch.set_num_threads(1)
    counts = count_plain_collectives()
    real_now = loop.Clock.now
    results = []
    for i, (overrides, clock_ahead) in enumerate(runs):
        dist.init_process_group("gloo", init_method=f"file://{store}.{i}", rank=rank, world_size=2)
        ahead = clock_ahead and rank == 1  # rank 1's clock runs an hour ahead; rank 0's is true
        loop.Clock.now = (lambda self: real_now(self) + 3600.0) if ahead else real_now
        before = counts["plain"]
        cfg = TrainConfig(**{**DDP_RUN, **overrides, "out": f"{out}-run{i}"})
        result = train(cfg)  # leaves the process group at its end
        results.append((result["step"], counts["plain"] - before, result["replica_max_diff"]))
    torch.save(results, f"{out}.{rank}")


def test_ddp_stop_check_collectives_only_with_a_time_budget_and_ranks_stop_together(tmp_path):
    runs = [
        (dict(steps=2), False),
        (dict(steps=8), False),
        (dict(steps=8, max_minutes=30), False),
        (dict(steps=12, max_minutes=30), True),
    ]
    out = str(tmp_path / "result")
    mp.start_processes(
        ddp_worker, args=(str(tmp_path / "store"), out, runs), nprocs=2, start_method="spawn"
    )
    ranks = [torch.load(f"{out}.{r}") for r in range(2)]
    for two, eight, budget, ahead in ranks:
        # no time budget: 6 more steps make no collective beyond SIGReg's (and DDP's own)
        assert two[1] == eight[1]
        # a time budget: the ranks agree on the clock every log_every = 2 steps: at steps
        # 2, 4 and 6 (at step 8 the step count ends the run first; the 2-step run: at once)
        assert budget[1] - two[1] == 3 and budget[0] == 8
        # rank 1 is over its budget from the start, rank 0 never: both stop at the first
        # agreement, step 2, with the same learning rates (identical replicas)
        assert ahead[0] == 2 and ahead[2] == 0.0
    assert [r[3][0] for r in ranks] == [2, 2]
