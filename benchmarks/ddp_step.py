"""What the training loop costs under DDP beyond the step: steps per second and collectives.

Trains the real loop, ``lejepa_viz.train.train``, in 2 gloo processes on this machine (no
torchrun: each process gets ``RANK`` / ``WORLD_SIZE`` / ``MASTER_PORT`` of a free local port
and joins the group the way ``train`` does under torchrun), on the bundled digits with
test_byobnet, once without and once with ``max_minutes`` (a budget it never reaches). Prints,
per run, the steps per second between the first and the last metrics line (rank 0's wall
clock) and the Python-level ``torch.distributed`` collectives each rank calls per step over
the same steps: SIGReg's (the autograd all-reduce of ``torch.distributed.nn``) and the rest
(the loop's). DDP's own communication (gradient buckets, buffer broadcasts) runs in C++ and
is not counted.

    python benchmarks/ddp_step.py [--steps 40] [--batch-size 16] [--log-every 5]

It imports only ``lejepa_viz.train.TrainConfig`` / ``train`` and counts by wrapping
``torch.distributed``'s functions, so it runs on older versions of the package too: it uses
the ``lejepa_viz`` of the tree it sits in. About half a minute on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this tree's lejepa_viz

import torch  # noqa: E402
import torch.distributed as tdist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

COLLECTIVES = (
    "all_reduce",
    "all_gather",
    "all_gather_object",
    "all_gather_into_tensor",
    "broadcast",
    "broadcast_object_list",
    "barrier",
    "reduce",
    "reduce_scatter",
    "gather",
    "gather_object",
    "scatter",
    "all_to_all",
)


def count_collectives() -> dict[str, int]:
    """Wrap torch.distributed's collectives in this process; the counts they keep, by caller."""
    counts = {"sigreg": 0, "other": 0}

    def counted(real):
        def call(*args, **kwargs):
            frame, autograd = sys._getframe(1), False
            while frame is not None and not autograd:
                autograd = f"distributed{os.sep}nn{os.sep}" in frame.f_code.co_filename
                frame = frame.f_back
            counts["sigreg" if autograd else "other"] += 1
            return real(*args, **kwargs)

        return call

    for name in COLLECTIVES:
        if hasattr(tdist, name):
            setattr(tdist, name, counted(getattr(tdist, name)))
    return counts


def worker(rank: int, port: int, config: dict, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1")
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=FutureWarning)  # torch's, not ours to time
    from lejepa_viz.train import TrainConfig, train

    counts = count_collectives()
    marks = []  # (seconds, step, counts) at each metrics line of rank 0

    def on_log(record: dict) -> None:
        if "loss" in record:
            marks.append((time.perf_counter(), record["step"], dict(counts)))

    result = train(TrainConfig(**config), on_log=on_log)
    if rank == 0:
        (t0, s0, c0), (t1, s1, c1) = marks[0], marks[-1]
        steps = s1 - s0
        per_step = {k: (c1[k] - c0[k]) / steps for k in counts}
        summary = dict(steps_per_s=steps / (t1 - t0), first=s0, last=s1, per_step=per_step)
        summary["replica_max_diff"] = result.get("replica_max_diff")
        Path(out).write_text(json.dumps(summary))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16, help="images per process")
    parser.add_argument("--log-every", type=int, default=5)
    args = parser.parse_args()
    import lejepa_viz

    folder = tempfile.mkdtemp(prefix="ddp_step_")
    base = dict(
        dataset="digits",
        steps=args.steps,
        batch_size=args.batch_size,
        num_slices=64,
        proj_hidden=64,
        proj_dim=16,
        log_every=args.log_every,
        snapshot_images=64,
        final_probe=False,
        progress=False,
        device="cpu",
    )
    print(
        f"# 2 gloo processes, digits, test_byobnet, batch {args.batch_size} per process, "
        f"{args.steps} steps, log_every {args.log_every}; torch {torch.__version__}; "
        f"lejepa_viz from {Path(lejepa_viz.__file__).parent}\n"
    )
    print("| max_minutes | steps/s | steps timed | collectives/step: SIGReg | other (loop) |")
    print("|---|---|---|---|---|")
    for max_minutes in (None, 60.0):
        config = dict(base, max_minutes=max_minutes, out=f"{folder}/run-{max_minutes}")
        out = f"{folder}/summary-{max_minutes}.json"
        mp.start_processes(worker, args=(free_port(), config, out), nprocs=2, start_method="spawn")
        r = json.loads(Path(out).read_text())
        print(
            f"| {max_minutes or 'none'} | {r['steps_per_s']:.2f} | {r['first']}–{r['last']} | "
            f"{r['per_step']['sigreg']:.2f} | {r['per_step']['other']:.2f} |"
        )


if __name__ == "__main__":
    main()
