"""The gallery end to end on quick settings: every file, its README, reuse of finished runs."""

import imageio.v3 as iio
import pytest

import lejepa_viz.gallery as gallery
import lejepa_viz.train.loop as loop
from lejepa_viz.data.datasets import PHOTO_NAMES
from lejepa_viz.train import TrainConfig

QUICK = dict(
    steps=6,
    cnn=TrainConfig(dataset="digits", batch_size=64, num_slices=64, proj_hidden=64, log_every=2),
    vit=gallery.SCENE_VIT.__class__(
        **{**vars(gallery.SCENE_VIT), "image_size": 32, "batch_size": 16, "num_slices": 64}
    ),
    scenes=8,
    flow_steps=20,
    lambda_steps=8,
    video_frames=8,
    progress=False,
)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("gallery")
    readme = gallery.make_gallery(root / "eval", root / "runs", **QUICK)
    return root, readme


def test_gallery_writes_every_picture_and_lists_it(made):
    root, readme = made
    out = root / "eval"
    assert iio.improps(out / "convergence.gif").shape[0] == 7  # a snapshot at each of steps 0-6
    assert iio.improps(out / "flow.gif").shape[0] == 5  # every 5 of 20 steps
    assert iio.improps(out / "lambda.gif").shape[0] == 3  # steps 0, 5 and the last, 8
    assert sorted(p.stem for p in (out / "pca").glob("*.png")) == sorted(PHOTO_NAMES)
    assert iio.improps(out / "video.gif").shape[0] == 8  # an object crossing a scene
    assert iio.improps(out / "video-photo.gif").shape[0] == 8
    assert iio.improps(out / "evolution.gif").shape[0] == 2  # the kept steps 0 and 6
    text = readme.read_text()
    assert iio.imread(out / "maps.png").shape[1] > 8 * 64  # eight scenes side by side
    assert iio.imread(out / "maps-photos.png").shape[1] > 7 * 64  # seven photos
    names = ("convergence.gif", "flow.gif", "lambda.gif", "maps.png", "pca/", "video.gif")
    for name in (*names, "evolution.gif", "maps-photos.png", "video-photo.gif"):
        assert f"[`{name}`]({name})" in text
    assert "linear probe" in text and "random init" in text and "a true N(0, I) sample" in text
    # the maps scored on both kinds of held-out scenes, every map kind, with intervals
    assert "### 8 held-out scenes of the world" in text and "### 8 shapes cut from" in text
    assert text.count("| [CLS] attention |") == 2
    assert "IoU PCA, one fit per image" in text  # the evolution's curve, first and last checkpoint
    assert "out of distribution" in text
    # every command in the README is the one that ran, and runs again through the CLI
    assert "`lejepa-viz animate --snapshots " in text and "`lejepa-viz train " in text
    assert "lejepa-viz evolve --weights " in text and "'step 0 (random init)'" in text
    assert not [p for p in out.rglob(".*")]  # no temporary files left behind


def test_gallery_reuses_finished_runs(made, monkeypatch):
    root, _ = made

    def no_training(cfg, *args, **kwargs):
        raise AssertionError(f"trained {cfg.out} again")

    monkeypatch.setattr(loop, "train", no_training)  # where cached runs train
    written = f"{gallery.BY_HAND}\n\n## Recipes tried\n\n| recipe | IoU |\n"
    (root / "eval2").mkdir()
    (root / "eval2" / "README.md").write_text("# an old gallery\n\n" + written)
    gallery.make_gallery(root / "eval2", root / "runs", **QUICK)
    text = (root / "eval2" / "README.md").read_text()
    assert text.endswith(written) and "an old gallery" not in text  # the hand-written tail kept
    with pytest.raises(AssertionError, match="trained"):  # another configuration trains
        gallery.make_gallery(root / "eval3", root / "runs", **{**QUICK, "steps": 7})


def test_the_readme_commands_are_the_ones_that_ran(made):
    """Each picture's command in the README runs again through the CLI to the same file."""
    import re
    import shlex

    from lejepa_viz import cli

    root, readme = made
    commands = re.findall(r"`(lejepa-viz (?:flow|lambda) [^`]+)`", readme.read_text())
    assert len(commands) == 2
    for command in commands:
        argv = shlex.split(command)[1:]
        out = type(root)(argv[argv.index("--out") + 1])  # the gallery's own file
        assert out.parent == root / "eval"
        frames = iio.improps(out).shape
        out.unlink()
        drawn = cli.run(argv)
        assert drawn.path == out and iio.improps(out).shape == frames


def test_the_program_is_the_cli_and_the_gallery(capsys):
    from lejepa_viz.__main__ import main

    with pytest.raises(SystemExit, match="0"):
        main(["gallery", "--help"])
    assert "--minutes" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="0"):
        main(["flow", "--help"])
    assert "--past-null" in capsys.readouterr().out
