"""lejepa_viz.viz.convergence (the numbers, against direct computations) and
viz.animation (the frames, for what they are)."""

import json
from dataclasses import replace

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from conftest import plain_sigreg
from lejepa_viz.multivariate.slicing import directions
from lejepa_viz.runs import Snapshots, load_curves, load_recording, load_snapshots
from lejepa_viz.sigreg import judge, null_level
from lejepa_viz.viz.animation import ConvergenceAnimation, animate_snapshots
from lejepa_viz.viz.convergence import convergence_data, plane, snapshots_data, thin
from lejepa_viz.viz.export import Drawn

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
def z(run):
    return load_snapshots(run).z.double().numpy()  # (S, N, D)


@pytest.fixture(scope="module")
def data(run):
    snaps, curves = load_recording(run)
    return snapshots_data(snaps, curves=curves)


@pytest.fixture(scope="module")
def anim(data):
    return ConvergenceAnimation(data)


@pytest.fixture(scope="module")
def frames(anim):
    return anim.frames(progress=False)


# The numbers.


def test_load_snapshots_reads_what_train_writes(run):
    snaps = load_snapshots(run)
    assert isinstance(snaps, Snapshots) and snaps.steps == STEPS
    assert snaps.z.dtype == torch.float32 and snaps.z.shape == (S, N, D)
    assert snaps.classes == CLASSES and snaps.lam == 0.1 and snaps.run_id == "run-1"
    assert torch.equal(snaps.labels, torch.arange(N) % 4)


def test_load_recording_finds_the_metrics_beside_the_snapshots(run, tmp_path):
    snaps, curves = load_recording(run)
    assert snaps.steps == STEPS and set(curves) == {"SIGReg", "prediction"}
    np.testing.assert_array_equal(curves["SIGReg"][0], np.arange(5, 81, 5))
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "snapshots.pt").write_bytes(run.read_bytes())
    assert load_recording(alone / "snapshots.pt")[1] is None


def test_plane_is_the_gram_schmidt_of_two_drawn_directions():
    for dim, seed in ((2, 0), (8, 3), (64, 1)):
        drawn = directions(dim, 2, seed=seed, dtype=torch.float64).numpy()
        p = plane(dim, seed).numpy()
        assert p.shape == (dim, 2) and p.dtype == np.float64
        np.testing.assert_allclose(p.T @ p, np.eye(2), atol=1e-12)
        np.testing.assert_allclose(p[:, 0], drawn[:, 0] / np.linalg.norm(drawn[:, 0]), atol=1e-12)
        # the second column lies in the span of the two drawn directions, on drawn[:, 1]'s side
        coef, *_ = np.linalg.lstsq(drawn, p[:, 1], rcond=None)
        np.testing.assert_allclose(drawn @ coef, p[:, 1], atol=1e-12)
        assert p[:, 1] @ drawn[:, 1] > 0
    assert torch.equal(plane(8, 3), plane(8, 3)) and not torch.equal(plane(8, 3), plane(8, 4))
    with pytest.raises(ValueError, match="dim"):
        plane(1)


def test_projections_are_on_the_plane_and_fixed_unit_slices(data, z):
    slices = directions(D, 3, seed=0, step=1, dtype=torch.float64).numpy()
    slices /= np.linalg.norm(slices, axis=0)
    np.testing.assert_allclose(data.plane, plane(D, 0).numpy())
    np.testing.assert_allclose(data.slices, slices, atol=1e-12)
    np.testing.assert_allclose(data.points, z @ data.plane, atol=1e-12)
    np.testing.assert_allclose(data.projections, z @ slices, atol=1e-12)


def test_histograms_are_numpy_densities(data, z):
    np.testing.assert_array_equal(data.edges, np.linspace(-4, 4, 41))
    assert data.densities.shape == (S, 3, 40)
    for i in range(S):
        for k in range(3):
            expected, _ = np.histogram(
                z[i] @ data.slices[:, k], bins=40, range=(-4, 4), density=True
            )
            np.testing.assert_allclose(data.densities[i, k], expected, atol=1e-12)
    assert (np.abs(data.projections[2]) > 4).any()  # the wide frame tests the out-of-range rule


def test_ecf_gaps_are_the_direct_formula(data, z):
    t = data.t
    assert t[0] == 0 and t[-1] == 5 and data.gaps.shape == (S, 3, len(t))
    for i in (0, 3):
        for k in range(3):
            u = z[i] @ data.slices[:, k]
            ecf = np.exp(1j * t[:, None] * u[None, :]).mean(axis=1)
            np.testing.assert_allclose(
                data.gaps[i, k], np.abs(ecf - np.exp(-(t**2) / 2)), atol=1e-12
            )
    # a single point at 0: ECF = 1, the gap is 1 - e^{-t²/2}
    one = convergence_data(torch.zeros(1, 2, 3), [0], sigreg=[1.0])
    np.testing.assert_allclose(one.gaps[0, 0], -np.expm1(-(t**2) / 2), atol=1e-12)


def test_sigreg_is_judged_on_fixed_unseen_directions(data, run):
    z = load_snapshots(run).z
    for i in (0, 4):
        assert data.sigreg[i] == pytest.approx(plain_sigreg(z[i], 1024, 12345), rel=1e-5)
        assert data.sigreg[i] == pytest.approx(judge(z[i]).value, rel=1e-6)
    assert data.null == null_level(N, D, num_slices=1024) and data.null.sd > 0
    given = convergence_data(z, STEPS, sigreg=[5, 4, 3, 2, 1])  # as a flow records it
    assert given.sigreg.tolist() == [5, 4, 3, 2, 1] and given.null == data.null


def test_marks_sit_on_the_curves_at_the_frame_step(data):
    for i, step in enumerate(STEPS):
        marks = data.marks(i)
        assert set(marks) == {"points", "prediction"}  # the loss's SIGReg gets no dot
        assert marks["points"] == pytest.approx((step, data.sigreg[i]))
        if step < 5:  # before the first logged step: no mark on the curve
            assert marks["prediction"] is None
        else:
            assert marks["prediction"] == pytest.approx((step, 0.5 / (1 + step)))
    curves = {
        "up": ([0, 10], [1.0, 100.0]),
        "signed": ([0, 10], [-1.0, 1.0]),
        "short": ([0], [7.0]),
    }
    between = convergence_data(torch.randn(2, 10, 2), [5, 20], curves=curves, sigreg=[1, 1])
    assert between.marks(0)["up"] == pytest.approx((5, 10.0))  # log-linear: all positive
    assert between.marks(0)["signed"] == pytest.approx((5, 0.0))  # linear
    assert between.marks(1)["up"] == pytest.approx((10, 100.0))  # past the end: the last value
    assert between.marks(1)["short"] == pytest.approx((0, 7.0))


def test_the_text_says_what_a_frame_shows(data):
    status = data.status(0)
    assert status.startswith("step 0, before training") and f"{data.sigreg[0]:.2f}" in status
    assert f"a true N(0, I) sample: {data.null}" in status
    assert str(data.null) == f"{data.null.mean:.2f} ± {2 * data.null.sd:.2f}"
    assert "below" not in data.status(4)
    below = convergence_data(torch.randn(2, 256, 32), [3, 4], sigreg=[1.2, 0.001])
    assert "below a true Gaussian" in below.status(1) and "below" not in below.status(0)
    assert data.heading(2) == "synthetic   ·   step 20   ·   λ = 0.1"
    assert below.heading(1) == "step 4"


def test_training_views_get_their_own_numbers(run):
    snaps = load_snapshots(run)
    views = snaps.z[:, :32] * 2
    views[0] = float("nan")  # a frame without views: its SIGReg NaN
    data = snapshots_data(replace(snaps, z_views=views))
    assert np.isnan(data.view_sigreg[0]) and np.isfinite(data.view_sigreg[1:]).all()
    assert data.view_sigreg[2] == pytest.approx(judge(views[2]).value, rel=1e-6)
    np.testing.assert_allclose(data.view_points[2], views[2].double().numpy() @ data.plane)
    assert data.view_null == null_level(32, D, num_slices=1024)
    assert "training views" in data.status(2) and "training views" not in data.status(0)
    assert data.numbers()["views"] == pytest.approx(judge(views[-1]).value, rel=1e-6)
    assert set(data.marks(1)) == {"points", "views"}


def test_numbers_and_summary_are_the_last_frame(data, run):
    last = judge(load_snapshots(run).z[-1])
    numbers = data.numbers()
    assert numbers == {
        "step": 80,
        "points": pytest.approx(last.value, rel=1e-6),
        "views": None,
        "null_mean": last.null.mean,
        "null_sd": last.null.sd,
    }
    summary = data.summary()
    assert "step 80" in summary and f"clean test images {last.value:.2f}" in summary
    assert f"a true N(0, I) sample of {N} points: {last.null}" in summary


def test_long_runs_are_thinned_evenly_keeping_the_first_and_last_snapshot(run):
    snaps = replace(load_snapshots(run), z_views=load_snapshots(run).z[:, :16])
    kept = thin(snaps, 3)
    assert kept.steps == [STEPS[0], STEPS[(S - 1) // 2], STEPS[-1]]
    torch.testing.assert_close(kept.z, snaps.z[[0, (S - 1) // 2, S - 1]])
    torch.testing.assert_close(kept.z_views, snaps.z_views[[0, (S - 1) // 2, S - 1]])
    assert thin(snaps, S) is snaps and thin(snaps, None) is snaps


# The frames.


def test_one_frame_per_snapshot_same_size_all_different(anim, frames):
    assert len(anim) == len(frames) == S
    assert all(f.shape == (620, 1000, 3) and f.dtype == np.uint8 for f in frames)
    for before, after in zip(frames, frames[1:], strict=False):
        assert (before != after).any(axis=-1).sum() > 100


def test_frames_do_not_depend_on_the_order_they_are_drawn(anim, frames):
    assert np.array_equal(anim.frame(4), frames[4])
    assert np.array_equal(anim.frame(1), frames[1])  # nothing of frame 4 left over
    assert np.array_equal(anim.frame(-1), frames[4])
    with pytest.raises(IndexError):
        anim.frame(S)


def test_a_point_cloud_without_labels_views_or_curves():
    scale = torch.tensor([2.0, 1.5, 1.0])[:, None, None]
    z = torch.randn(3, 100, 2, generator=torch.Generator().manual_seed(1)) * scale
    data = convergence_data(z, [0, 50, 100], curves={"SIGReg": ([0, 50], [3.0, 0.5])}, title="f")
    one = ConvergenceAnimation(data)
    frames = one.frames(progress=False)
    assert len(one.figure.axes) == 4  # no views, no other curve
    assert all(f.shape == (620, 1000, 3) for f in frames)
    assert not np.array_equal(frames[0], frames[2])
    small = ConvergenceAnimation(convergence_data(z, [0, 50, 100]), size=(400, 300))
    assert small.frame(2).shape == (300, 400, 3)


def test_gif_has_one_frame_per_snapshot_loops_and_says_its_numbers(run, tmp_path):
    snaps, curves = load_recording(run)
    drawn = animate_snapshots(snaps, tmp_path / "a.gif", curves=curves, progress=False)
    assert isinstance(drawn, Drawn) and drawn.path == tmp_path / "a.gif"
    assert iio.improps(drawn.path).shape[0] == S
    meta = iio.immeta(drawn.path)
    assert meta["duration"] == 100 and meta["loop"] == 0
    expected = snapshots_data(snaps).numbers()
    assert drawn.numbers == pytest.approx(expected) and drawn.summary.startswith("last frame")
    fewer = animate_snapshots(snaps, tmp_path / "b.gif", max_frames=3, progress=False)
    assert iio.improps(fewer.path).shape[0] == 3 and fewer.numbers["step"] == STEPS[-1]


# Refusals.


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
        load_recording(run, other)
    message = str(info.value)
    assert str(run) in message and str(other) in message and "same run" in message
    assert load_curves(other, run_id="run-2")["SIGReg"][1][0] == 9.0 / 6


def test_load_curves_refuses_missing_and_empty_metrics(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"metrics\.jsonl"):
        load_curves(tmp_path / "metrics.jsonl")
    (tmp_path / "metrics.jsonl").write_text('{"step": 10, "probe_acc": 0.5}\n')
    with pytest.raises(ValueError, match=r"metrics\.jsonl has no loss lines"):
        load_curves(tmp_path / "metrics.jsonl")


def test_bad_arguments_name_themselves(run, tmp_path):
    z = torch.randn(2, 10, 3)
    for kwargs, message in [
        ({"z": torch.randn(10, 3), "steps": [0]}, "z must have shape"),
        ({"z": torch.randn(2, 10, 1), "steps": [0, 1]}, "D >= 2"),
        ({"z": z, "steps": [0]}, "steps"),
        ({"z": z, "steps": [0, 1], "labels": [0, 1]}, "labels"),
        ({"z": z, "steps": [0, 1], "labels": [0] * 10, "classes": []}, "classes"),
        ({"z": z, "steps": [0, 1], "views": torch.randn(2, 10, 4)}, "views"),
        ({"z": z, "steps": [0, 1], "curves": {"x": ([0, 1], [2])}}, r"curves\['x'\]"),
        ({"z": z, "steps": [0, 1], "sigreg": [1.0]}, "sigreg"),
        ({"z": z, "steps": [0, 1], "num_slices": 0}, "num_slices"),
    ]:
        with pytest.raises(ValueError, match=message):
            convergence_data(**kwargs)
    with pytest.raises(ValueError, match="animation file must end in"):
        animate_snapshots(load_snapshots(run), "a.png")
    with pytest.raises(ValueError, match="snapshots must be a lejepa_viz.runs.Snapshots"):
        animate_snapshots(run, tmp_path / "a.gif")
    with pytest.raises(ValueError, match="max_frames"):
        animate_snapshots(load_snapshots(run), tmp_path / "a.gif", max_frames=1)
    assert not (tmp_path / "a.gif").exists()


def test_a_frame_draws_the_curves_up_to_its_step_and_no_further():
    steps = [0, 10, 20, 30]
    curves = {"prediction": (np.arange(0, 31, 5), np.linspace(1, 0.1, 7))}
    data = convergence_data(torch.randn(4, 64, 3), steps, curves=curves)
    anim = ConvergenceAnimation(data, size=(500, 320))
    before = anim.frame(0)
    for i, step in enumerate(steps):
        frame = anim.frame(i)
        drawn = [line.get_xdata() for line, *_ in anim._grown]
        assert len(drawn) == 2 and all(len(x) and max(x) == step for x in drawn), (step, drawn)
        over_steps = [ax for ax in anim.figure.axes if ax.get_xlabel() == "step"]
        shown = [  # in data coordinates: not the reference lines or the cursor
            ln.get_xdata()
            for ax in over_steps
            for ln in ax.lines
            if ln.get_visible() and ln.get_transform() == ax.transData and len(ln.get_xdata())
        ]
        assert len(over_steps) == 2 and max(x[-1] for x in shown) == step  # no future drawn
        assert i == 0 or not np.array_equal(frame, before)
    assert "(e) the prediction loss" in [ax.get_title(loc="left") for ax in anim.figure.axes]
