"""Datasets and multi-view augmentation, against independent reads and plain torch ops."""

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from lejepa_viz.data import (
    DatasetNotFoundError,
    MultiViewAugment,
    channel_stats,
    crop_theta,
    gaussian_blur,
    load_dataset,
    read_idx,
    to_float,
)
from lejepa_viz.data import datasets as datasets_module

FMNIST = Path("/usr/share/datasets/fashion-mnist")
needs_fmnist = pytest.mark.skipif(
    not (FMNIST / "train-images-idx3-ubyte.gz").exists(),
    reason="Fashion-MNIST IDX files not installed (apt-get install dataset-fashion-mnist)",
)


def write_idx(path: Path, array: np.ndarray) -> None:
    """A gzipped IDX file of uint8 data, written out by hand."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def fake_fmnist(folder: Path, n: int = 5) -> np.ndarray:
    folder.mkdir(parents=True, exist_ok=True)
    images = np.arange(n * 28 * 28).reshape(n, 28, 28) % 256
    for prefix in ("train", "t10k"):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return images


@pytest.fixture
def no_fmnist(monkeypatch, tmp_path):
    """No Fashion-MNIST anywhere: empty search paths, no env var, a private cache folder."""
    monkeypatch.setattr(datasets_module, "FASHION_MNIST_DIRS", [tmp_path / "nowhere"])
    monkeypatch.setattr(datasets_module, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.delenv("LEJEPA_VIZ_FASHION_MNIST", raising=False)


# --- Fashion-MNIST --------------------------------------------------------------------------


@needs_fmnist
def test_fashion_mnist_matches_an_independent_read():
    train, test = load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
    assert (len(train), len(test)) == (60000, 10000)
    assert train.images.shape[1:] == (1, 28, 28) and train.images.dtype == torch.uint8
    assert train.labels.dtype == torch.int64 and set(test.labels.tolist()) == set(range(10))
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot"
    assert (train.num_channels, train.image_size) == (1, 28)
    raw = gzip.open(FMNIST / "t10k-labels-idx1-ubyte.gz").read()
    assert test.labels[:20].tolist() == list(raw[8:28])
    raw = gzip.open(FMNIST / "train-images-idx3-ubyte.gz").read()
    first = np.frombuffer(raw, np.uint8, count=2 * 784, offset=16).reshape(2, 1, 28, 28)
    assert torch.equal(train.images[:2], torch.from_numpy(first.copy()))
    mean, std = channel_stats(train.images)
    assert train.mean == pytest.approx(mean, abs=1e-3) and train.std == pytest.approx(std, abs=1e-3)


def test_fashion_mnist_from_root_and_env(no_fmnist, tmp_path, monkeypatch):
    images = fake_fmnist(tmp_path / "fm")
    ds = load_dataset("fashion-mnist", "test", root=str(tmp_path / "fm"))
    assert torch.equal(ds.images[:, 0], torch.from_numpy(images).to(torch.uint8))
    assert ds.labels.tolist() == [0, 1, 2, 3, 4]
    monkeypatch.setenv("LEJEPA_VIZ_FASHION_MNIST", str(tmp_path / "fm"))
    assert len(load_dataset("fashion-mnist", image_size=32)) == 5
    assert load_dataset("fashion-mnist", image_size=32).image_size == 32


def test_fashion_mnist_download_branch(no_fmnist, monkeypatch):
    import torchvision.datasets

    class FakeFashionMNIST:  # what torchvision would give after a download
        def __init__(self, root, train, download):
            assert download and root == str(datasets_module.CACHE_DIR)
            n = 7 if train else 3
            self.data = torch.zeros(n, 28, 28, dtype=torch.uint8)
            self.targets = torch.arange(n)

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", FakeFashionMNIST)
    assert len(load_dataset("fashion-mnist", "train")) == 7
    assert len(load_dataset("fashion-mnist", "test")) == 3


def test_fashion_mnist_not_found_says_how_to_get_it(no_fmnist, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("fashion-mnist")
    message = str(err.value)
    assert isinstance(err.value, DatasetNotFoundError)
    for hint in (
        "apt-get install dataset-fashion-mnist",
        "--root DIR",
        "LEJEPA_VIZ_FASHION_MNIST",
        "t10k-labels-idx1-ubyte.gz",
        "network",
        "Error downloading",
    ):
        assert hint in message


def test_read_idx_refuses_corrupt_files(tmp_path):
    good = tmp_path / "good.gz"
    write_idx(good, np.arange(6).reshape(2, 3))
    assert read_idx(good).tolist() == [[0, 1, 2], [3, 4, 5]]
    bad_magic = tmp_path / "magic.idx"
    bad_magic.write_bytes(b"\x12\x34\x08\x01" + bytes(8))
    short = tmp_path / "short.idx"
    short.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 9]) + bytes(3))
    not_gzip = tmp_path / "broken.gz"
    not_gzip.write_bytes(b"not gzip at all")
    for path, words in ((bad_magic, "magic"), (short, "header"), (not_gzip, "cannot read")):
        with pytest.raises(ValueError, match=words) as err:
            read_idx(path)
        assert path.name in str(err.value)


# --- digits and photos ----------------------------------------------------------------------


def test_digits_split_is_stratified_deterministic_and_complete():
    from sklearn.datasets import load_digits

    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert (len(train), len(test)) == (1437, 360)
    assert train.images.shape[1:] == (1, 16, 16) and train.labels.dtype == torch.int64
    assert torch.equal(load_dataset("digits", "test").images, test.images)
    share = torch.bincount(test.labels, minlength=10) / torch.bincount(train.labels, minlength=10)
    assert torch.allclose(share, torch.full((10,), 0.25), atol=0.02)  # 20/80 in every class
    # every image is a pixel-doubled original, and together they are all the originals
    digits = load_digits()
    original = np.rint(digits.images * 255 / 16).astype(np.uint8).reshape(len(digits.target), -1)
    want = sorted(
        row.tobytes() + bytes([t]) for row, t in zip(original, digits.target, strict=True)
    )
    both = torch.cat([train.images, test.images])
    assert torch.equal(both, both[..., ::2, ::2].repeat_interleave(2, -1).repeat_interleave(2, -2))
    small = both[:, 0, ::2, ::2].reshape(len(both), -1).numpy()
    labels = torch.cat([train.labels, test.labels]).tolist()
    assert sorted(row.tobytes() + bytes([t]) for row, t in zip(small, labels, strict=True)) == want


def test_photos_are_rgb_at_the_requested_size():
    ds = load_dataset("photos", image_size=40)
    assert ds.images.shape[1:] == (3, 40, 40) and ds.images.dtype == torch.uint8
    assert {"china", "flower", "astronaut"} <= set(ds.classes)
    assert ds.labels.tolist() == list(range(len(ds.classes)))
    assert torch.equal(load_dataset("photos", "test", image_size=40).images, ds.images)
    assert len(ds.mean) == 3 and all(0.1 < m < 0.9 for m in ds.mean)


def test_unknown_name_and_bad_split():
    with pytest.raises(ValueError, match="fashion-mnist.*digits.*photos.*folder:PATH"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="split"):
        load_dataset("digits", "validation")
    with pytest.raises(ValueError, match="image_size"):
        load_dataset("digits", image_size=0)


# --- image folders --------------------------------------------------------------------------


def make_tree(root: Path) -> None:
    """ImageNet layout: train/{cat,dog} and val/{cat,dog}, in all the awkward modes."""
    for split in ("train", "val"):
        (root / split / "cat").mkdir(parents=True)
        (root / split / "dog").mkdir(parents=True)
    Image.new("RGB", (40, 30), (200, 30, 30)).save(root / "train/cat/a.jpg", quality=95)
    Image.new("L", (20, 20), 77).save(root / "train/cat/b.png")
    Image.new("RGBA", (20, 24), (0, 0, 255, 0)).save(root / "train/dog/c.png")  # transparent
    Image.fromarray(np.full((20, 20), 32896, np.uint16)).save(root / "train/dog/d.png")  # 16-bit
    (root / "train/dog/notes.txt").write_text("not an image")
    Image.new("RGB", (16, 16), (0, 200, 0)).save(root / "val/cat/e.png")
    Image.new("P", (16, 16), 3).save(root / "val/dog/f.gif")


def test_folder_modes_become_8_bit_rgb(tmp_path):
    make_tree(tmp_path)
    ds = load_dataset(f"folder:{tmp_path}", image_size=8)
    assert ds.classes == ["cat", "dog"] and ds.labels.tolist() == [0, 0, 1, 1]
    assert ds.images.shape == (4, 3, 8, 8) and ds.skipped == 0
    pixel = ds.images[:, :, 4, 4].tolist()  # (4, 3)
    assert all(abs(a - b) <= 3 for a, b in zip(pixel[0], (200, 30, 30), strict=True))  # JPEG
    assert pixel[1] == [77, 77, 77]  # greyscale
    assert pixel[2] == [255, 255, 255]  # fully transparent on white
    assert pixel[3] == [128, 128, 128]  # 32896 / 257 = 128
    assert ds.mean == pytest.approx(channel_stats(ds.images)[0])
    val = load_dataset(f"folder:{tmp_path}", "val", image_size=8)
    assert val.labels.tolist() == [0, 1] and val.images[0, :, 0, 0].tolist() == [0, 200, 0]
    assert val.mean == ds.mean and val.std == ds.std  # the train statistics


def test_folder_statistics_are_the_same_whichever_split_loads_first(tmp_path, monkeypatch):
    """A folder's mean and std come from an evenly spaced sample of its training images, decoded
    by the training split and again by the test split alone: no state between the two."""
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), np.uint8)).save(
                tmp_path / c / f"{i}.png"
            )
    monkeypatch.setattr(datasets_module, "STATS_IMAGES", 5)
    test = load_dataset(f"folder:{tmp_path}", "test", image_size=8)  # first, alone
    train = load_dataset(f"folder:{tmp_path}", "train", image_size=8)
    pick = np.unique(np.linspace(0, len(train) - 1, 5).round().astype(int))
    assert (train.mean, train.std) == channel_stats(train.images[pick])  # the sample's...
    assert (test.mean, test.std) == (train.mean, train.std)  # ...for both splits
    assert train.mean != channel_stats(train.images)[0]  # not all 18 training images'


def test_folder_corrupt_file_named_or_skipped(tmp_path):
    make_tree(tmp_path)
    (tmp_path / "train/dog/broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is no jpeg")
    with pytest.raises(ValueError, match="broken.jpg.*skip-bad-images"):
        load_dataset(f"folder:{tmp_path}", image_size=8)
    with pytest.warns(UserWarning, match="skipped 1"):
        ds = load_dataset(f"folder:{tmp_path}", image_size=8, skip_bad_images=True)
    assert ds.skipped == 1 and len(ds) == 4


def test_folder_without_train_val_splits_90_10(tmp_path):
    for c, n, first in (("a", 10, 0), ("b", 21, 100)):  # every image its own grey level
        (tmp_path / c).mkdir()
        for i in range(n):
            Image.new("L", (12, 12), first + 5 * i).save(tmp_path / c / f"{i:02d}.png")
    train = load_dataset("folder", root=str(tmp_path), image_size=4)
    test = load_dataset(f"folder:{tmp_path}", "test", image_size=4)
    assert (len(train), len(test)) == (28, 3) and test.labels.tolist() == [0, 1, 1]
    levels = [set(ds.images[:, 0, 0, 0].tolist()) for ds in (train, test)]
    assert not levels[0] & levels[1] and len(levels[0] | levels[1]) == 31  # disjoint, complete
    again = load_dataset(f"folder:{tmp_path}", "test", image_size=4)
    assert torch.equal(again.images, test.images)


def test_folder_layout_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist") as err:
        load_dataset(f"folder:{tmp_path / 'missing'}")
    assert "missing" in str(err.value) and "<class>" in str(err.value)
    with pytest.raises(ValueError, match="no class subfolders"):
        load_dataset(f"folder:{tmp_path}")
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "readme.txt").write_text("hi")
    with pytest.raises(ValueError, match="no image files"):
        load_dataset(f"folder:{tmp_path}")


# --- views ----------------------------------------------------------------------------------


@pytest.mark.parametrize("B, C, S", [(1, 1, 28), (5, 3, 32), (4, 1, 16)])
def test_views_shapes_range_and_determinism(B, C, S):
    images = torch.randint(0, 256, (B, C, S, S), dtype=torch.uint8)
    augment = MultiViewAugment.for_dataset((C, S), num_global=2, num_local=3)
    g, loc = augment(images, generator=torch.Generator().manual_seed(0))
    ls = augment.config.local_size
    assert g.shape == (2, B, C, S, S) and loc.shape == (3, B, C, ls, ls)
    assert g.dtype == loc.dtype == torch.float32
    assert 0 <= g.min() and g.max() <= 1 and 0 <= loc.min() and loc.max() <= 1
    g2, loc2 = augment(images, generator=torch.Generator().manual_seed(0))
    assert torch.equal(g, g2) and torch.equal(loc, loc2)
    g3, _ = augment(images, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(g, g3) and not torch.equal(g[0], g[1])
    g4, _ = augment(to_float(images), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(g4, g, atol=1e-6)  # float input in [0, 1] = uint8 input


@pytest.mark.parametrize("C", [1, 3])
def test_whole_image_crop_is_a_plain_resize(C):
    x = torch.rand(3, C, 24, 24)
    plain = dict(
        global_scale=(1.0, 1.0),
        local_scale=(1.0, 1.0),
        ratio=(1.0, 1.0),
        photometric=False,
        num_global=1,
        num_local=2,
    )
    for size in (24, 16, 40):
        aug = MultiViewAugment(global_size=24, local_size=size, flip=0.0, **plain)
        g, loc = aug(x)
        truth = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        assert torch.allclose(g[0], x, atol=1e-5) and torch.allclose(loc[1], truth, atol=1e-5)
        flipped = MultiViewAugment(global_size=24, local_size=size, flip=1.0, **plain)(x)[1]
        assert torch.allclose(flipped[0], truth.flip(-1), atol=1e-5)


def test_crop_theta_respects_scale_ratio_and_bounds():
    u = torch.rand(4000, 23, generator=torch.Generator().manual_seed(0))
    theta = crop_theta(u, 30, 30, (0.05, 0.3), (3 / 4, 4 / 3), 0.5)
    w, h, tx, ty = theta[:, 0, 0].abs(), theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2]
    assert ((w * h >= 0.05 - 1e-6) & (w * h <= 0.3 + 1e-6)).all()
    assert ((w / h >= 3 / 4 - 1e-5) & (w / h <= 4 / 3 + 1e-5)).all()
    assert (tx.abs() + w <= 1 + 1e-6).all() and (ty.abs() + h <= 1 + 1e-6).all()
    assert 0.45 < (theta[:, 0, 0] < 0).float().mean() < 0.55  # flips


def test_blur_matches_torchvision_per_sample():
    from torchvision.transforms.v2.functional import gaussian_blur as tv_blur

    x, sigma = torch.rand(3, 3, 11, 14), torch.tensor([0.3, 1.0, 2.5])
    ours = gaussian_blur(x, sigma, radius=4)
    for i, s in enumerate(sigma.tolist()):
        assert torch.allclose(ours[i : i + 1], tv_blur(x[i : i + 1], [9, 9], [s, s]), atol=1e-6)


def test_color_recipe_greyscale_and_arguments():
    images = torch.rand(2000, 3, 4, 4)
    g, _ = MultiViewAugment(global_size=4, local_size=4, num_local=0)(images)
    grey = (g[0, :, 0] == g[0, :, 1]).all((1, 2)) & (g[0, :, 1] == g[0, :, 2]).all((1, 2))
    assert 0.16 < grey.float().mean() < 0.24  # random greyscale, probability 0.2
    with pytest.raises(ValueError, match="local_scale"):
        MultiViewAugment(local_scale=(0.5, 0.2))
    with pytest.raises(ValueError, match="num_global"):
        MultiViewAugment(num_global=0)
    with pytest.raises(ValueError, match="images"):
        MultiViewAugment()(torch.rand(3, 8, 8))


def test_for_dataset_sizes():
    sizes = {
        (1, 28): (28, 14, False),
        (1, 16): (16, 8, False),
        (3, 224): (224, 96, True),
        (3, 64): (64, 32, True),
    }
    for key, want in sizes.items():
        cfg = MultiViewAugment.for_dataset(key).config
        assert (cfg.global_size, cfg.local_size, cfg.color) == want
    digits = load_dataset("digits", "test")
    assert MultiViewAugment.for_dataset(digits, 3, 0).config.num_global == 3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_views_on_cuda_equal_cpu():
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    augment = MultiViewAugment.for_dataset((3, 32))
    cpu = augment(images, generator=torch.Generator().manual_seed(0))
    gpu = augment(images.cuda(), generator=torch.Generator().manual_seed(0))
    for a, b in zip(cpu, gpu, strict=True):
        assert b.is_cuda and torch.allclose(a, b.cpu(), atol=1e-4)
