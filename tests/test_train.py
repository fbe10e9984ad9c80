"""The training loop on the bundled digits: it learns, resumes exactly, and runs under DDP."""

import json
import os
import subprocess
import sys

import pytest
import torch

import lejepa_viz.train.step as step_module
from conftest import tiny_config
from lejepa_viz import load_encoder
from lejepa_viz.cli import main
from lejepa_viz.data import MultiViewAugment
from lejepa_viz.model import patch_tokens, probe_features
from lejepa_viz.runs import Run
from lejepa_viz.train import TrainConfig, cached_train, lr_scale, train

SMALL = dict(
    dataset="digits",
    batch_size=64,
    num_local=2,
    num_slices=64,
    proj_hidden=128,
    proj_dim=32,
    log_every=5,
    progress=False,
    snapshot_images=64,
)


def read_metrics(out):
    return [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]


def test_loop_learns_on_digits(tmp_path):
    out = str(tmp_path / "run")
    logged = []
    result = train(TrainConfig(**SMALL, steps=110, lr=3e-3, out=out), on_log=logged.append)
    assert logged == read_metrics(out)  # on_log sees each line as it is written
    steps = [m for m in read_metrics(out) if "loss" in m]
    first, final = steps[0], steps[-1]
    assert final["loss"] < first["loss"] and final["sigreg"] < first["sigreg"]
    assert result["probe_acc"] > 0.25  # online probe; chance is 0.1
    assert result["linear_probe"] > 0.6  # frozen features, full train set
    for key in ("step", "loss", "pred", "sigreg", "lr", "images_per_s"):
        assert key in final
    assert any("probe_acc" in m for m in read_metrics(out))
    snapshots = torch.load(os.path.join(out, "snapshots.pt"))
    assert snapshots["z"].shape[1:] == (64, 32) and snapshots["steps"][-1] == 110
    assert json.load(open(os.path.join(out, "config.json")))["steps"] == 110
    encoder = load_encoder(os.path.join(out, "checkpoint.pt"))
    assert not encoder.training
    assert probe_features(encoder, torch.rand(3, 1, 16, 16)).shape[0] == 3
    # the last step's rate: set before it (step 109 of 110), warm-up of a tenth of the run
    assert final["lr"] == pytest.approx(3e-3 * lr_scale(109, 109 / 110, warmup=11))


def test_train_leaves_its_config_and_the_global_random_state_as_they_were(tmp_path):
    cfg = TrainConfig(**SMALL, steps=2, final_probe=False, out=str(tmp_path / "run"))
    before = dict(vars(cfg))
    torch.manual_seed(7)
    state = torch.get_rng_state()
    train(cfg)
    assert torch.equal(torch.get_rng_state(), state)  # no draw from the global generator
    assert vars(cfg) == before and cfg.backbone is None  # resolved into a copy
    saved = json.load(open(tmp_path / "run" / "config.json"))
    assert (
        saved["backbone"] == "test_byobnet" and saved["steps"] == 2 and len(saved["run_id"]) == 32
    )


def test_vit_trains_on_the_seven_photos_with_local_views(tmp_path, monkeypatch):
    """Fewer images than a batch: the photos repeat to fill it; local views are half-size."""
    seen = []
    real_augment = MultiViewAugment.forward

    def spy(self, images, generator=None):
        seen.append(images.shape[0])
        return real_augment(self, images, generator)

    monkeypatch.setattr(MultiViewAugment, "forward", spy)
    cfg = dict(SMALL, dataset="photos", backbone="vit_pico_patch8", image_size=32, batch_size=16)
    result = train(TrainConfig(**cfg, steps=3, final_probe=False, out=str(tmp_path / "vit")))
    assert seen == [16, 16, 16] and result["step"] == 3
    encoder = load_encoder(tmp_path / "vit" / "checkpoint.pt")
    assert patch_tokens(encoder, torch.rand(1, 3, 64, 64)).shape == (1, 64, 192)  # 8 x 8 patches


def strip_timing(metrics):
    return [{k: v for k, v in m.items() if k not in ("images_per_s", "elapsed_s")} for m in metrics]


class Killed(Exception):
    pass


def test_resume_reaches_the_same_final_metrics(tmp_path, monkeypatch):
    cfg = dict(SMALL, steps=40, checkpoint_every=10)
    straight = train(TrainConfig(**cfg, out=str(tmp_path / "a")))

    calls = {"n": 0}
    real_loss = step_module.lejepa_loss

    def dies_at_step_34(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 34:
            raise Killed
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(step_module, "lejepa_loss", dies_at_step_34)
    with pytest.raises(Killed):
        train(TrainConfig(**cfg, out=str(tmp_path / "b")))
    monkeypatch.setattr(step_module, "lejepa_loss", real_loss)
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["step"] == 30
    run_id = json.load(open(tmp_path / "b" / "config.json"))["run_id"]
    resumed = train(TrainConfig(**cfg, out=str(tmp_path / "b"), resume=True))

    for key in ("loss", "pred", "sigreg", "probe_acc", "linear_probe", "step"):
        assert resumed[key] == straight[key], key
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert strip_timing(read_metrics(tmp_path / "a")) == strip_timing(read_metrics(tmp_path / "b"))
    # the resumed run is the same run: one id in its config and snapshots, another for run a
    assert json.load(open(tmp_path / "b" / "config.json"))["run_id"] == run_id
    assert torch.load(tmp_path / "b" / "snapshots.pt")["run_id"] == run_id
    assert torch.load(tmp_path / "a" / "snapshots.pt")["run_id"] != run_id


def test_ddp_two_gloo_processes_keep_replicas_identical(tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "lejepa_viz",
        "train",
        "--dataset",
        "digits",
        "--steps",
        "6",
        "--batch-size",
        "32",
        "--num-local",
        "2",
        "--num-slices",
        "32",
        "--proj-hidden",
        "64",
        "--log-every",
        "3",
        "--no-progress",
        "--out",
        str(out),
        "--device",
        "cpu",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "replicas identical" in done.stdout
    metrics = read_metrics(out)
    logged = [m for m in metrics if "loss" in m]
    assert logged[-1]["step"] == 6 and logged[-1]["images_per_s"] > 0
    assert "linear_probe" in metrics[-1]
    saved = json.loads((out / "result.json").read_text())  # written once, by rank 0's process
    assert saved["result"]["linear_probe"] == metrics[-1]["linear_probe"]


def test_cli_train_resume_continues_the_killed_run(tmp_path, capsys):
    """``lejepa-viz train --resume`` loads the run's checkpoint (its run id, its steps) and
    trains on from it; a run without one is refused."""
    argv = ["train", "--dataset", "digits", "--batch-size", "16", "--num-slices", "16"]
    argv += ["--proj-hidden", "32", "--log-every", "2", "--no-final-probe", "--no-progress"]
    out = ["--out", str(tmp_path / "r")]
    assert main([*argv, "--steps", "4", *out]) == 0
    first = json.loads((tmp_path / "r" / "config.json").read_text())["run_id"]
    assert main([*argv, "--steps", "8", "--resume", *out]) == 0
    assert json.loads((tmp_path / "r" / "config.json").read_text())["run_id"] == first
    steps = [m["step"] for m in read_metrics(tmp_path / "r") if "loss" in m]
    assert steps == [2, 4, 6, 8]  # 2 and 4 kept from the first run, 6 and 8 trained on
    assert main([*argv, "--steps", "8", "--resume", "--out", str(tmp_path / "none")]) == 2
    assert "--resume: no checkpoint" in capsys.readouterr().err


def test_every_train_option_says_what_it_does(capsys):
    import dataclasses

    from lejepa_viz.cli import flag

    fields = dataclasses.fields(TrainConfig)
    assert all(f.metadata.get("help") for f in fields), [
        f.name for f in fields if not f.metadata.get("help")
    ]
    with pytest.raises(SystemExit, match="0"):
        main(["train", "--help"])
    shown = capsys.readouterr().out
    for f in fields:
        assert flag(f.name) in shown and " ".join(f.metadata["help"].split()[:3]) in " ".join(
            shown.split()
        )


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--dataset", "imagenet-21k"], "digits"),  # the message lists the known datasets
        (["--dataset", "digits", "--lam", "1.5"], "lam"),
        (["--dataset", "folder:/nonexistent/photos"], "/nonexistent/photos"),
        (["--dataset", "digits", "--steps", "0"], "steps"),
    ],
)
def test_cli_train_refuses_bad_arguments(argv, message, capsys, tmp_path):
    assert main(["train", *argv, "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_eval_command_writes_the_table_with_baselines(tmp_path, capsys):
    from lejepa_viz.data import load_dataset
    from lejepa_viz.evaluate import linear_probe

    out = tmp_path / "run"
    train(TrainConfig(**SMALL, steps=20, out=str(out), final_probe=False))
    assert main(["eval", "--checkpoint", str(out / "checkpoint.pt"), "--draws", "1"]) == 0
    printed = capsys.readouterr().out
    assert "| shots | model" in printed and "raw pixels" in printed and "random init" in printed
    saved = json.load(open(out / "eval.json"))
    assert [r["model"] for r in saved["rows"]][2] == "raw pixels"
    # the raw-pixel row is an independent check of the pipeline: a direct probe on flat pixels
    tr, te = load_dataset("digits", "train"), load_dataset("digits", "test")
    direct = linear_probe(
        tr.images.flatten(1).float().numpy() / 255,
        tr.labels.numpy(),
        te.images.flatten(1).float().numpy() / 255,
        te.labels.numpy(),
    )
    assert saved["rows"][2]["results"]["linear_probe"] == pytest.approx(direct)
    assert main(["eval", "--checkpoint", str(tmp_path / "missing.pt")]) == 2


def test_cached_train_loads_equal_config_and_retrains_other(tmp_path):
    seen = []
    first = cached_train(tiny_config(tmp_path / "a"), on_update=lambda r: seen.append(len(r)))
    assert not first["cached"] and first["step"] == 3
    n = len(Run(tmp_path / "a").metrics())
    assert n > 1 and seen == [*range(1, n + 1), n]  # each line as it is logged, then all
    again = cached_train(tiny_config(tmp_path / "a", progress=True))  # progress does not matter
    assert again["cached"] and again["loss"] == first["loss"]
    saved = json.loads((tmp_path / "a" / "result.json").read_text())
    assert saved["config"]["steps"] == 3 and saved["result"]["loss"] == first["loss"]
    other = cached_train(tiny_config(tmp_path / "a", lam=0.5))  # another config: trained over
    assert not other["cached"] and other["loss"] != first["loss"]


def test_cached_train_passes_errors_through(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        cached_train(
            TrainConfig(dataset="nope", steps=1, out=str(tmp_path), progress=False),
            on_update=lambda r: None,
        )


def one_step_setup(supervised: bool = False):
    """A small model, a copy of its starting weights, views, a batch and AdamW (lr, wd)."""
    import copy

    from lejepa_viz.model import Encoder
    from lejepa_viz.train import LeJEPAModel

    torch.manual_seed(0)
    encoder = Encoder.build("test_byobnet", 1, 16, (0.5,), (0.25,), 32, 8)
    model = LeJEPAModel(encoder, num_classes=10, supervised=supervised)
    augment = MultiViewAugment.for_dataset((1, 16), num_global=2, num_local=2)
    images = torch.randint(0, 256, (8, 1, 16, 16), dtype=torch.uint8)
    lr, wd = 1e-2, 0.05
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    return model, copy.deepcopy(model), augment, images, torch.arange(8) % 10, lr, wd, opt


def test_train_step_is_one_adamw_step_of_the_lejepa_loss():
    from lejepa_viz import SIGReg, lejepa_loss
    from lejepa_viz.train import train_step

    model, start, augment, images, labels, lr, wd, opt = one_step_setup()
    views = torch.Generator().manual_seed(4)
    losses = train_step(model, augment, SIGReg(16), opt, images, labels, lam=0.3, generator=views)
    # the loss at the starting weights, from the same views and the same directions
    g, loc = augment(images, generator=torch.Generator().manual_seed(4))
    z, _, logits = start(g, loc)
    expected = lejepa_loss(z, 0.3, SIGReg(16), num_global_views=2)
    torch.testing.assert_close(losses.loss, expected.loss.detach())
    assert losses.loss == pytest.approx(0.7 * losses.pred + 0.3 * losses.sigreg)
    # one AdamW step from zero moments: p ← p (1 − lr·wd) − lr · g / (|g| + ε) ≈ −lr · sign(g)
    total = expected.loss + torch.nn.functional.cross_entropy(logits, labels.repeat(2))
    total.backward()
    for p0, p1 in zip(start.parameters(), model.parameters(), strict=True):
        big = p0.grad.abs() > 1e-4
        step = p0.detach() * (1 - lr * wd) - lr * torch.sign(p0.grad)
        torch.testing.assert_close(p1.detach()[big], step[big], rtol=0, atol=1e-5)


def test_a_nan_loss_stops_the_run_whether_inputs_are_checked_or_not(tmp_path, monkeypatch):
    def nan_views(self, images, generator=None):
        g, loc = real(self, images, generator)
        return g * float("nan"), loc

    real = MultiViewAugment.forward
    monkeypatch.setattr(MultiViewAugment, "forward", nan_views)
    cfg = dict(SMALL, steps=10, log_every=1, final_probe=False)
    with pytest.raises(ValueError, match="z contains NaN"):  # the CPU default: inputs checked
        train(TrainConfig(**cfg, out=str(tmp_path / "a")))
    with pytest.raises(FloatingPointError, match="not finite at step 1"):  # as on CUDA
        train(TrainConfig(**cfg, check_values=False, out=str(tmp_path / "b")))
    assert (
        main(
            [
                "train",
                "--dataset",
                "digits",
                "--steps",
                "3",
                "--no-check-values",
                "--no-final-probe",
                "--no-progress",
                "--out",
                str(tmp_path / "c"),
            ]
        )
        == 2
    )


def test_a_finished_run_resumed_trains_no_step_more(tmp_path):
    cfg = TrainConfig(**SMALL, steps=7, final_probe=False, out=str(tmp_path / "r"))
    first = train(cfg)  # 7 steps: the run ends mid-epoch (22 steps of 64 digits)
    again = train(TrainConfig(**{**vars(cfg), "resume": True}))
    assert again["step"] == first["step"] == 7 and again["loss"] == first["loss"]
    assert [r["step"] for r in Run(tmp_path / "r").metrics() if "loss" in r][-1] == 7


def test_learning_rates_follow_the_group_names_not_their_order():
    from lejepa_viz import SIGReg
    from lejepa_viz.model import Encoder
    from lejepa_viz.train import LeJEPAModel
    from lejepa_viz.train.parts import Learner, param_groups

    model = LeJEPAModel(Encoder.build("test_byobnet", 1, 16, (0.5,), (0.25,), 32, 8), 10)
    groups = param_groups(model, TrainConfig(lr=1e-3, probe_lr=4e-2))[::-1]  # the probe first
    learner = Learner(model, model, SIGReg(16), torch.optim.AdamW(groups))
    learner.scale_learning_rates(0.25)
    probe = {id(p) for p in model.probe.parameters()}
    for group in learner.optimizer.param_groups:
        holds_probe = {id(p) for p in group["params"]} == probe
        assert group["lr"] == pytest.approx(0.25 * (4e-2 if holds_probe else 1e-3))
    assert learner.learning_rate("encoder") == pytest.approx(0.25e-3)


def run_id(folder):
    return json.loads((folder / "config.json").read_text())["run_id"]


def test_cached_train_without_reuse_trains_from_scratch(tmp_path):
    first = cached_train(tiny_config(tmp_path / "a"))
    old_id = run_id(tmp_path / "a")
    again = cached_train(tiny_config(tmp_path / "a"), reuse=False)
    assert not again["cached"] and again["loss"] == first["loss"]
    assert run_id(tmp_path / "a") != old_id  # a new run, not the old one resumed
    saved = json.loads((tmp_path / "a" / "result.json").read_text())
    assert saved["config"]["run_id"] == run_id(tmp_path / "a")  # its result saved


def test_cached_train_reuses_a_run_only_when_it_kept_what_is_asked(tmp_path):
    folder = tmp_path / "a"
    cached_train(tiny_config(folder))  # finished, no backbones kept
    old_id = run_id(folder)
    kept = cached_train(tiny_config(folder, keep_backbones=True))
    assert not kept["cached"] and run_id(folder) != old_id  # trained again, from scratch
    assert sorted(p.name for p in (folder / "backbones").iterdir()) == ["step000000", "step000003"]
    assert cached_train(tiny_config(folder, keep_backbones=True))["cached"]
    assert cached_train(tiny_config(folder))["cached"]  # it holds more than asked: fine


def test_the_loss_variants_train_and_are_told_apart_by_the_cache(tmp_path):
    """A run saved before the variant options existed is still the default run; each variant
    is a run of its own."""
    first = cached_train(tiny_config(tmp_path / "a"))
    config, result = tmp_path / "a" / "config.json", tmp_path / "a" / "result.json"
    saved, finished = json.loads(config.read_text()), json.loads(result.read_text())
    for name in ("weighting", "sigreg_views", "sigreg_on"):  # as an older version wrote them
        del saved[name], finished["config"][name]
    config.write_text(json.dumps(saved)), result.write_text(json.dumps(finished))
    assert cached_train(tiny_config(tmp_path / "a"))["cached"]
    for variant in ({"weighting": "additive"}, {"sigreg_views": "flattened"},
                    {"sigreg_on": "backbone"}):  # fmt: skip
        other = cached_train(tiny_config(tmp_path / "a", **variant))
        assert not other["cached"] and other["loss"] != first["loss"], variant
        assert torch.isfinite(torch.tensor(other["loss"]))
    with pytest.raises(ValueError, match="sigreg_on must be one of"):
        tiny_config(tmp_path / "b", sigreg_on="head").resolved()


def test_sigreg_on_the_backbone_regularises_every_views_embedding(tmp_path):
    import copy

    from lejepa_viz.sigreg import SIGReg
    from lejepa_viz.train import train_step
    from lejepa_viz.train.parts import build

    cfg = tiny_config(tmp_path / "a", num_local=2)
    s = build(cfg.resolved(), torch.device("cpu"))
    images, labels = s.data.train.images[:16], s.data.train.labels[:16]
    model = copy.deepcopy(s.learner.model)  # before the step changes it
    views = s.data.augment(images, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        z, emb, _ = model(*views)  # (V, B, D), (V, B, F)
    assert emb.shape == (4, 16, model.encoder.embed_dim)
    out = train_step(
        s.learner.ddp, s.data.augment, s.learner.sigreg, s.learner.optimizer, images, labels,
        lam=0.5, generator=torch.Generator().manual_seed(7), sigreg_on="backbone",
    )  # fmt: skip
    expected = SIGReg(num_slices=cfg.num_slices, seed=cfg.seed)(emb, step=0)
    torch.testing.assert_close(out.sigreg, expected, rtol=1e-4, atol=1e-6)
    pred = (z - z[:2].mean(0)).square().mean()  # still on the projector's output
    torch.testing.assert_close(out.pred, pred, rtol=1e-4, atol=1e-6)


def test_the_supervised_reference_trains_the_encoder_on_the_labels_alone():
    from lejepa_viz import SIGReg
    from lejepa_viz.train import train_step

    model, start, augment, images, labels, lr, wd, opt = one_step_setup(supervised=True)
    train_step(model, augment, SIGReg(16), opt, images, labels, lam=0.3,
               generator=torch.Generator().manual_seed(4))  # fmt: skip
    # the cross-entropy of the labels at the starting weights, by autograd, and nothing else
    g, loc = augment(images, generator=torch.Generator().manual_seed(4))
    torch.nn.functional.cross_entropy(start(g, loc)[2], labels.repeat(2)).backward()
    for (name, p0), p1 in zip(start.named_parameters(), model.parameters(), strict=True):
        decayed = p0.detach() * (1 - lr * wd)
        if name.startswith("encoder.projector"):  # no gradient reaches it: decay alone
            assert p0.grad is None
            torch.testing.assert_close(p1.detach(), decayed, rtol=0, atol=1e-7)
        else:
            big = p0.grad.abs() > 1e-4
            step = decayed - lr * torch.sign(p0.grad)
            torch.testing.assert_close(p1.detach()[big], step[big], rtol=0, atol=1e-5)
    backbone = [p.grad for n, p in start.named_parameters() if n.startswith("encoder.backbone")]
    assert sum(float((grad != 0).sum()) for grad in backbone) > 0  # the labels reach it
    with pytest.raises(ValueError, match="objective"):
        TrainConfig(objective="labels").validate()
