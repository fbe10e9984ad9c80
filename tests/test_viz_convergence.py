import json
from dataclasses import replace

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from lejepa_viz.multivariate.slicing import directions
from lejepa_viz.runs import Snapshots, load_curves, load_snapshots
from lejepa_viz.viz.convergence import ConvergenceAnimation, animate_snapshots, thin

S, N, D = 5, 200, 8
STEPS = [0, 10, 20, 40, 80]
CLASSES = ["a", "b", "c", "d"]


def write_run(folder, run_id="run-1"):
    """A tiny fake run: snapshots.pt, metrics.jsonl and config.json as `train` writes them."""
    g = torch.Generator().manual_seed(0)
    scales = torch.tensor([0.05, 0.5, 3.0, 1.5, 1.0])  # collapsed, narrow, wide (some beyond ±4)
    z = (torch.randn(S, N, D, generator=g) * scales[:, None, None] + 0.2).half()
    labels = torch.arange(N) % len(CLASSES)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "steps": STEPS,
            "z": z,
            "labels": labels,
            "classes": CLASSES,
            "lam": 0.1,
            "dataset": "synthetic",
            "run_id": run_id,
        },
        folder / "snapshots.pt",
    )
    lines = [
        {"step": s, "loss": 1.0, "pred": 0.5 / (1 + s), "sigreg": 9.0 / (1 + s)}
        for s in range(5, 81, 5)
    ]
    lines.insert(3, {"step": 15, "epoch": 0, "probe_acc": 0.3})  # a line without "loss"
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (folder / "config.json").write_text(json.dumps({"dataset": "synthetic", "run_id": run_id}))
    return folder / "snapshots.pt"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def anim(run):
    snaps = load_snapshots(run)
    return ConvergenceAnimation.from_snapshots(
        snaps, curves=load_curves(run.parent / "metrics.jsonl")
    )


@pytest.fixture(scope="module")
def frames(anim):
    return anim.frames(progress=False)


def test_load_snapshots_reads_what_train_writes(run):
    snaps = load_snapshots(run)
    assert isinstance(snaps, Snapshots) and snaps.steps == STEPS
    assert snaps.z.dtype == torch.float32 and snaps.z.shape == (S, N, D)
    assert snaps.classes == CLASSES and snaps.lam == 0.1 and snaps.run_id == "run-1"
    assert torch.equal(snaps.labels, torch.arange(N) % 4)


def test_one_frame_per_snapshot_same_size_all_different(anim, frames):
    assert len(anim) == len(frames) == S
    assert all(f.shape == (620, 1000, 3) and f.dtype == np.uint8 for f in frames)
    for before, after in zip(frames, frames[1:], strict=False):
        assert (before != after).any(axis=-1).sum() > 100


def test_frames_do_not_depend_on_the_order_they_are_drawn(anim, frames):
    assert np.array_equal(anim.frame(4), frames[4])
    assert np.array_equal(anim.frame(1), frames[1])  # nothing of frame 4 left over
    assert np.array_equal(anim.frame(-1), frames[4])


def test_projections_use_fixed_unit_directions(anim, run):
    z = load_snapshots(run).z.double().numpy()
    drawn = directions(D, 5, seed=0, dtype=torch.float64).numpy()
    plane, slices = anim.plane.numpy(), anim.slices.numpy()
    np.testing.assert_allclose(plane.T @ plane, np.eye(2), atol=1e-12)  # orthonormal pair
    np.testing.assert_allclose(plane[:, 0], drawn[:, 0])
    np.testing.assert_allclose(slices, drawn[:, 2:])
    np.testing.assert_allclose(np.linalg.norm(slices, axis=0), 1.0, atol=1e-12)
    np.testing.assert_allclose(anim.points, z @ plane, atol=1e-12)
    np.testing.assert_allclose(anim.projections, z @ slices, atol=1e-12)


def test_drawn_histograms_are_numpy_densities(anim, run):
    z = load_snapshots(run).z.double().numpy()
    np.testing.assert_array_equal(anim.edges, np.linspace(-4, 4, 41))
    for i in range(S):
        anim.frame(i)
        np.testing.assert_allclose(anim.scatter.get_offsets(), anim.points[i])
        for k, stairs in enumerate(anim.stairs):
            u = z[i] @ anim.slices[:, k].numpy()  # (n,)
            expected, _ = np.histogram(u, bins=40, range=(-4, 4), density=True)
            np.testing.assert_allclose(stairs.get_data().values, expected, atol=1e-12)
    assert (np.abs(anim.projections[2]) > 4).any()  # the wide frame tests the out-of-range rule


def test_drawn_ecf_gaps_are_the_direct_formula(anim, run):
    z = load_snapshots(run).z.double().numpy()
    for i in (0, 3):
        anim.frame(i)
        for k, line in enumerate(anim.gap_lines):
            t = line.get_xdata()
            u = z[i] @ anim.slices[:, k].numpy()
            ecf = np.exp(1j * t[:, None] * u[None, :]).mean(axis=1)
            np.testing.assert_allclose(
                line.get_ydata(), np.abs(ecf - np.exp(-(t**2) / 2)), atol=1e-12
            )
    assert t[0] == 0 and t[-1] == 5


def test_cursors_and_dots_sit_at_the_current_step(anim):
    pred_steps, pred = anim.curves["prediction"]
    np.testing.assert_array_equal(pred_steps, np.arange(5, 81, 5))
    judged, curve = anim.dots[0], anim.dots[-1]  # (c): the points' judged SIGReg; (f): pred
    for i, step in enumerate(STEPS):
        anim.frame(i)
        assert all(list(c.get_xdata()) == [step, step] for c in anim.cursors)
        assert judged[0].get_data() == ([step], [pytest.approx(anim.sigreg[i])])
        x, y = curve[0].get_data()
        if step < 5:  # before the first logged step: no point on the curve
            assert len(x) == 0
        else:
            assert x == [step] and y[0] == pytest.approx(0.5 / (1 + step))


def test_judged_sigreg_is_the_plain_formula_on_fixed_directions(anim, run):
    from conftest import plain_sigreg

    z = load_snapshots(run).z
    for i in (0, 4):
        assert anim.sigreg[i] == pytest.approx(plain_sigreg(z[i], 1024, 12345), rel=1e-5)
    assert anim.null.n == N and anim.null.num_slices == 1024 and anim.null.sd > 0


def test_the_status_line_says_what_a_frame_shows(anim):
    anim.frame(0)
    text = anim.status_text.get_text()
    assert text.startswith("step 0, before training") and f"{anim.sigreg[0]:.2f}" in text
    assert f"a true N(0, I) sample: {anim.null.mean:.2f}" in text
    below = ConvergenceAnimation(torch.randn(2, 256, 32), [3, 4], sigreg=[0.4, 0.001])
    below.frame(1)
    assert "below a true Gaussian" in below.status_text.get_text()


def test_training_views_get_their_own_panel_and_sigreg(run):
    snaps = load_snapshots(run)
    views = snaps.z[:, :32] * 2
    views[0] = float("nan")  # a frame without views: drawn empty, its SIGReg NaN
    anim = ConvergenceAnimation.from_snapshots(replace(snaps, z_views=views))
    assert np.isnan(anim.view_sigreg[0]) and np.isfinite(anim.view_sigreg[1:]).all()
    anim.frame(0)
    assert len(anim.view_scatter.get_offsets()) == 0
    anim.frame(2)
    np.testing.assert_allclose(anim.view_scatter.get_offsets(), anim.view_points[2])
    assert anim.view_null.n == 32 and "training views" in anim.status_text.get_text()


def test_gif_has_one_frame_per_snapshot_and_loops(run, tmp_path):
    out = animate_snapshots(run, tmp_path / "a.gif", progress=False)
    assert iio.improps(out).shape[0] == S
    meta = iio.immeta(out)
    assert meta["duration"] == 100 and meta["loop"] == 0


def test_long_runs_are_thinned_evenly_keeping_the_first_and_last_snapshot(run, tmp_path):
    snaps = replace(load_snapshots(run), z_views=load_snapshots(run).z[:, :16])
    kept = thin(snaps, 3)
    assert kept.steps == [STEPS[0], STEPS[(S - 1) // 2], STEPS[-1]]
    torch.testing.assert_close(kept.z, snaps.z[[0, (S - 1) // 2, S - 1]])
    torch.testing.assert_close(kept.z_views, snaps.z_views[[0, (S - 1) // 2, S - 1]])
    assert thin(snaps, S) is snaps and thin(snaps, None) is snaps
    fewer = animate_snapshots(run, tmp_path / "b.gif", max_frames=3, progress=False)
    assert iio.improps(fewer).shape[0] == 3


def test_point_cloud_without_labels_views_or_curves():
    scale = torch.tensor([2.0, 1.5, 1.0])[:, None, None]
    z = torch.randn(3, 100, 2, generator=torch.Generator().manual_seed(1)) * scale
    steps = [0, 50, 100]
    one = ConvergenceAnimation(z, steps, curves={"SIGReg": ([0, 50], [3.0, 0.5])}, title="flow")
    frames = one.frames(progress=False)
    assert one.view_scatter is None and len(one.figure.axes) == 4  # no views, no other curve
    assert all(f.shape == (620, 1000, 3) for f in frames)
    assert one.title_text.get_text() == "flow   ·   step 100"
    none = ConvergenceAnimation(z, steps, size=(400, 300))
    assert none.frame(2).shape == (300, 400, 3)


def test_load_snapshots_refuses_missing_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothere\.pt.*lejepa-viz train"):
        load_snapshots(tmp_path / "nothere.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(ValueError, match=r"text\.pt is not a lejepa-viz snapshots file"):
        load_snapshots(tmp_path / "text.pt")
    for name, obj, why in [
        ("list.pt", [1, 2], "not a dict"),
        ("keys.pt", {"steps": [0]}, r"\['z'\] are missing"),
        ("empty.pt", {"steps": [], "z": None}, "no snapshots"),
        ("rank.pt", {"steps": [0], "z": torch.zeros(3, 4)}, r"\(S, n, D\)"),
    ]:
        torch.save(obj, tmp_path / name)
        with pytest.raises(ValueError, match=rf"{name}.*{why}"):
            load_snapshots(tmp_path / name)


def test_metrics_of_another_run_are_refused(run, tmp_path):
    other = write_run(tmp_path / "other", run_id="run-2").parent / "metrics.jsonl"
    with pytest.raises(ValueError, match="different runs") as info:
        animate_snapshots(run, tmp_path / "a.gif", metrics=other, progress=False)
    message = str(info.value)
    assert str(run) in message and str(other) in message and "same run" in message
    assert not (tmp_path / "a.gif").exists()
    assert load_curves(other, run_id="run-2")["SIGReg"][1][0] == 9.0 / 6


def test_load_curves_refuses_missing_and_empty_metrics(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"metrics\.jsonl"):
        load_curves(tmp_path / "metrics.jsonl")
    (tmp_path / "metrics.jsonl").write_text('{"step": 10, "probe_acc": 0.5}\n')
    with pytest.raises(ValueError, match=r"metrics\.jsonl has no loss lines"):
        load_curves(tmp_path / "metrics.jsonl")


def test_bad_arguments_name_themselves():
    z = torch.randn(2, 10, 3)
    with pytest.raises(ValueError, match="z must have shape"):
        ConvergenceAnimation(torch.randn(10, 3), [0])
    with pytest.raises(ValueError, match="D >= 2"):
        ConvergenceAnimation(torch.randn(2, 10, 1), [0, 1])
    with pytest.raises(ValueError, match="steps"):
        ConvergenceAnimation(z, [0])
    with pytest.raises(ValueError, match="labels"):
        ConvergenceAnimation(z, [0, 1], labels=[0, 1])
    with pytest.raises(ValueError, match="animation file must end in"):
        animate_snapshots("missing.pt", "a.png")
