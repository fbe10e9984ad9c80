"""lejepa_viz.runs: one owner of a run's files; writes are atomic, reads are safe."""

import json
import os

import numpy as np
import pytest
import torch

from lejepa_viz.backbones import load_encoder
from lejepa_viz.runs import Run, atomic_path, read_metrics, save_json, save_torch


class Pickled:
    """An arbitrary object: unpickling a file that holds one runs code the file chooses."""


def test_save_json_round_trips_atomically(tmp_path):
    path = tmp_path / "out" / "results.json"
    payload = {"knn": np.float32(0.25), "few_shot": {"1": (0.5, 0.1)}, "dims": np.arange(3)}
    assert save_json(path, payload) == path
    assert json.loads(path.read_text()) == {
        "knn": 0.25,
        "few_shot": {"1": [0.5, 0.1]},
        "dims": [0, 1, 2],
    }
    with pytest.raises(TypeError):
        save_json(path, {"bad": object()})
    assert json.loads(path.read_text())["knn"] == 0.25  # the failed write left the old file
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]


def test_atomic_path_leaves_nothing_half_written(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed while writing")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["a.bin"]
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_bytes(b"new")
    umask = os.umask(0)
    os.umask(umask)
    assert target.read_bytes() == b"new" and (target.stat().st_mode & 0o777) == 0o666 & ~umask


def test_read_metrics_leaves_out_a_line_being_written(tmp_path):
    path = tmp_path / "metrics.jsonl"
    assert read_metrics(path) == []
    path.write_text('{"step": 1}\n{"step": 2}\n{"st')
    assert read_metrics(path) == [{"step": 1}, {"step": 2}]
    path.write_text('{"step": 1}\nnot json\n')
    with pytest.raises(ValueError, match="line 2"):
        read_metrics(path)


def test_run_metrics_restart_and_trim_on_resume(tmp_path):
    run = Run(tmp_path / "r")
    run.start_metrics()
    for step in (5, 10, 15):
        run.log({"step": step, "loss": 1.0 / step})
    run.start_metrics(resumed_at=10)  # the killed run logged step 15 after its checkpoint
    assert [r["step"] for r in run.metrics()] == [5, 10]
    run.start_metrics()
    assert run.metrics() == []


def test_run_result_is_the_finished_run_cache(tmp_path):
    run = Run(tmp_path)
    assert run.result() is None and run.config() is None
    run.write_config({"lam": 0.05, "run_id": "abc"})
    run.save_result({"loss": 0.5})
    assert json.loads(run.path(Run.RESULT).read_text())["config"]["run_id"] == "abc"
    assert run.result() == {"loss": 0.5}
    assert run.result(matches=lambda saved: saved["lam"] == 0.05) == {"loss": 0.5}
    assert run.result(matches=lambda saved: saved["lam"] == 0.5) is None


def test_checkpoints_hold_tensors_and_plain_containers_only(tmp_path):
    run = Run(tmp_path)
    with pytest.raises(ValueError, match="no checkpoint"):
        run.load_checkpoint()
    run.save_checkpoint({"step": 3, "w": torch.ones(2), "config": {"mean": (0.5,)}})
    ckpt = run.load_checkpoint()
    assert ckpt["step"] == 3 and torch.equal(ckpt["w"], torch.ones(2))

    save_torch({"step": 3, "evil": Pickled()}, run.path(Run.CHECKPOINT))
    with pytest.raises(ValueError, match="not a checkpoint of tensors"):
        run.load_checkpoint()
    with pytest.raises(ValueError, match="arbitrary code"):  # the same for encoders
        load_encoder(run.path(Run.CHECKPOINT))
