"""lejepa_viz.viz.attention: DINO's mask rule against brute force, the pictures, the command."""

import itertools

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from lejepa_viz.cli import main
from lejepa_viz.model import Encoder, cls_attention
from lejepa_viz.viz.attention import attention_masks, attention_pairs, heat_blocks
from lejepa_viz.viz.patches import attention_maps


def smallest_set(weights: np.ndarray, keep: float) -> np.ndarray:
    """The smallest set of patches holding at least ``keep`` of the mass, by brute force (the
    heaviest such set when several sizes tie; weights here are distinct)."""
    p = weights / weights.sum()
    for size in range(1, len(p) + 1):
        best = max(itertools.combinations(range(len(p)), size), key=lambda c: p[list(c)].sum())
        if p[list(best)].sum() >= keep - 1e-12:
            mask = np.zeros(len(p), bool)
            mask[list(best)] = True
            return mask
    return np.ones(len(p), bool)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9, 1.0])
def test_masks_are_the_smallest_sets_holding_the_mass(keep):
    maps = torch.rand(5, 3, 3, 3, generator=torch.Generator().manual_seed(0))  # (N, heads, h, w)
    masks = attention_masks(maps, keep)
    mean = maps.mean(1).flatten(1).double().numpy()
    for got, w in zip(masks.flatten(1).numpy(), mean, strict=True):
        np.testing.assert_array_equal(got, smallest_set(w, keep))
    for bad in (0.0, 1.5, True):
        with pytest.raises(ValueError, match="keep must be a fraction"):
            attention_masks(maps, bad)


def test_attention_maps_and_pictures():
    torch.manual_seed(0)
    enc = Encoder.build("test_vit", 3, 64, (0.5,) * 3, (0.25,) * 3).eval()
    images = torch.randint(0, 256, (2, 3, 128, 128), dtype=torch.uint8)  # resized to 64
    maps = attention_maps(enc, images)
    small = torch.nn.functional.interpolate(
        images.float() / 255, size=64, mode="bilinear", antialias=True, align_corners=False
    )
    torch.testing.assert_close(maps.flatten(2), cls_attention(enc, small), rtol=1e-5, atol=1e-6)
    heat = np.array([[[0.0, 1.0], [2.0, 3.0]]])
    shown = np.array([[[False, True], [True, True]]])
    blocks = heat_blocks(heat, shown, (4, 4))
    assert blocks.shape == (1, 4, 4, 3) and (blocks[0, :2, :2] == 0).all()  # hidden: black
    assert blocks[0, 2:, 2:].sum() > blocks[0, :2, 2:].sum()  # hotter: brighter (inferno)
    with pytest.raises(ValueError, match="CLS"):
        attention_maps(Encoder.build("test_byobnet", 3, 32, (0.5,) * 3, (0.5,) * 3), images)


def test_attention_command_writes_pairs(tmp_path):
    torch.manual_seed(0)
    enc = Encoder.build("test_vit", 3, 64, mean=(0.5,) * 3, std=(0.25,) * 3)
    torch.save(enc.backbone.state_dict(), tmp_path / "vit.pt")
    argv = [
        "attention",
        "--backbone",
        "test_vit",
        "--weights",
        str(tmp_path / "vit.pt"),
        "--keep",
        "0.5",
        "--out",
        str(tmp_path / "att"),
    ]
    assert main(argv) == 0
    pairs = sorted((tmp_path / "att").glob("*.png"))
    assert len(pairs) == 7 and iio.imread(pairs[0]).shape == (224, 448, 3)


def test_attention_pairs_refuse_a_bad_keep_before_any_work(tmp_path, monkeypatch):
    import lejepa_viz.viz.attention as attention

    enc = Encoder.build("test_vit", 3, 64, (0.5,) * 3, (0.25,) * 3).eval()
    images = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    monkeypatch.setattr(attention, "attention_maps", lambda *a, **k: pytest.fail("forward ran"))
    with pytest.raises(ValueError, match="keep must be a fraction"):
        attention_pairs(enc, images, ["a", "b"], tmp_path / "att", keep=1.2)
    with pytest.raises(SystemExit, match="2"):  # argparse: a usage message, before any loading
        main(["attention", "--keep", "1.2", "--out", str(tmp_path / "att")])
    monkeypatch.undo()
    drawn = attention_pairs(enc, images, ["a", "b"], tmp_path / "att", keep=0.6)
    share = attention_masks(attention_maps(enc, images), 0.6).float().mean().item()
    assert drawn.numbers["patch_share"] == pytest.approx(share)
    assert sorted(p.name for p in (tmp_path / "att").iterdir()) == ["a.png", "b.png"]
