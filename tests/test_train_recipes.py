"""``lejepa-viz train --recipe NAME``: a published setting whose every field an option still
overrides, printed at the start; each recipe trains two steps on tiny data."""

import json

import pytest
from test_data_packed import write_folder

from lejepa_viz.cli import run
from lejepa_viz.train import TrainConfig
from lejepa_viz.train.recipes import RECIPES, recipe

SMALL = dict(backbone="test_vit", image_size=32, steps=2, batch_size=4, proj_hidden=32)


@pytest.mark.parametrize("name", list(RECIPES))
def test_each_recipe_trains_two_steps_on_tiny_data(name, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LEJEPA_VIZ_CACHE", str(tmp_path / "cache"))
    folder = write_folder(tmp_path / "images")
    out = tmp_path / "run"
    argv = ["train", "--recipe", name, "--dataset", f"folder:{folder}", "--out", str(out)]
    argv += ["--backbone", "test_vit", "--image-size", "32", "--steps", "2", "--batch-size", "4"]
    argv += ["--proj-hidden", "32", "--warmup-steps", "1", "--no-final-probe", "--no-progress"]
    result = run(argv)
    printed = capsys.readouterr().out
    assert result["step"] == 2
    assert f"recipe {name}: " in printed and RECIPES[name].reported in printed
    saved = json.loads((out / "config.json").read_text())
    expected = RECIPES[name].config(
        **SMALL, dataset=f"folder:{folder}", out=str(out), warmup_steps=1, final_probe=False
    )
    given = {"dataset", "out", "backbone", "image_size", "steps", "batch_size", "proj_hidden"}
    for field, value in RECIPES[name].fields.items():  # the recipe's, unless an option said
        want = getattr(expected, field)
        assert saved[field] == (list(want) if isinstance(want, tuple) else want), field
        if field not in given | {"warmup_steps"}:
            assert saved[field] == (list(value) if isinstance(value, tuple) else value), field


def test_an_option_equal_to_the_default_still_beats_the_recipe(tmp_path):
    from lejepa_viz.cli import parse, parser

    default = TrainConfig().lam
    args = parse(parser(), ["train", "--recipe", "minimal-imagenette", "--lam", str(default)])
    assert args.lam == default and args.num_global == 4  # given wins; the rest is the recipe's
    assert parse(parser(), ["train"]).num_global == TrainConfig().num_global
    with pytest.raises(ValueError, match="unknown recipe 'nope'; known: minimal-imagenette"):
        recipe("nope")


def test_under_torchrun_the_run_says_how_to_keep_the_recipes_batch(capsys, monkeypatch):
    import lejepa_viz.train as train_module

    monkeypatch.setattr(train_module, "cached_train", lambda cfg, reuse: {"out": "runs/x"})
    monkeypatch.setenv("WORLD_SIZE", "4")
    run(["train", "--recipe", "minimal-imagenette"])
    assert "pass --batch-size 64 to keep it" in capsys.readouterr().out
    run(["train", "--recipe", "minimal-imagenette", "--batch-size", "64"])
    assert "--batch-size is per process" not in capsys.readouterr().out
