"""SIGReg under DDP: 2 gloo processes on the CPU equal one process on the concatenated batch."""

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from lejepa_viz import SIGReg
from lejepa_viz.distributed import rank, world_size

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
    torch.save(
        {"rank": rank(), "world": world_size(), "losses": losses, "grads": grads, "A": A},
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
