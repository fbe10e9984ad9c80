"""Image datasets held in memory as one uint8 tensor: Fashion-MNIST, scikit-learn's digits, the
photos bundled with scikit-image and scikit-learn, and any ImageNet-style image folder.

``load_dataset(name, split)`` decodes every image once, at one size, into an
:class:`ImageDataset` whose ``images`` are ``(N, C, H, W)`` uint8: a training step indexes a
tensor instead of running a per-image pipeline (augmentation is batched, see
:mod:`lejepa_viz.data.views`). Nothing here uses the network except torchvision's Fashion-MNIST
download, the last resort when the IDX files are nowhere on disk.
"""

from __future__ import annotations

import os
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .._checks import integer_at_least
from . import packed as packing
from .bundled import PHOTO_NAMES, TEST_TEXTURES, TRAIN_TEXTURES, photo_original, textures
from .decode import IMAGE_EXTENSIONS, find_images, read_idx, square_rgb
from .scenes import SceneWorld

KNOWN_DATASETS = ("fashion-mnist", "digits", "photos", "scenes", "scenes:N", "folder:PATH")
SCENES = {"train": 20_000, "test": 2_000}  # scenes of each split unless scenes:N says
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
FASHION_MNIST_DIRS = [Path("/usr/share/datasets/fashion-mnist")]  # after root and the env var
CACHE_DIR = Path.home() / ".cache" / "lejepa_viz"  # where torchvision's download goes
_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_FASHION_STATS = ((0.2860,), (0.3530,))  # mean and std of the 60k training images / 255
SCENE_SEEDS = {"train": 0, "test": 1}  # the two worlds' streams
STATS_IMAGES = 1000  # a folder's mean and std: of at most this many training images
IN_MEMORY_BYTES = 256 * 2**20  # a folder's split larger than this decoded is packed on disk


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are nowhere to be found; the message says how to get them."""


@dataclass
class ImageDataset:
    """A labelled image dataset, its images in memory or packed on disk.

    Attributes:
        images: ``(N, C, H, W)`` uint8, all of one size: a tensor, or for a large folder a
            :class:`~.packed.PackedImages` that indexes like one and reads from disk.
        labels: ``(N,)`` int64 class indices into ``classes``.
        classes: class names.
        name: the name it was loaded by.
        mean: per-channel mean of the *train* split's images / 255 (what the encoder subtracts;
            for a folder, of at most :data:`STATS_IMAGES` of them, evenly spaced, whichever
            split is loaded).
        std: per-channel standard deviation, likewise.
        skipped: unreadable image files left out (``skip_bad_images=True``).
        masks: ``(N, H, W)`` bool object masks, for evaluation only (the scenes), or None.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    skipped: int = 0
    masks: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            shape = f"{self.images.dtype} {tuple(self.images.shape)}"
            raise ValueError(f"images must be uint8 of shape (N, C, H, W), got {shape}")
        if self.labels.shape != (len(self.images),):
            shape = tuple(self.labels.shape)
            raise ValueError(f"labels must have shape ({len(self.images)},), got {shape}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_channels(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]


def load_dataset(
    name: str,
    split: str = "train",
    root: str | None = None,
    *,
    image_size: int | None = None,
    skip_bad_images: bool = False,
    pack: bool | None = None,
) -> ImageDataset:
    """Load a dataset by name, every image decoded into memory.

    Names: ``"fashion-mnist"`` (60k train / 10k test, 1 x 28 x 28; IDX files from ``root``, the
    ``LEJEPA_VIZ_FASHION_MNIST`` folder, ``/usr/share/datasets/fashion-mnist`` (Debian's
    ``dataset-fashion-mnist``), else torchvision's download), ``"digits"`` (scikit-learn's 1,797
    8 x 8 digits as 1 x 16 x 16, a fixed stratified 80/20 split), ``"photos"`` (the natural photos
    bundled with scikit-image and scikit-learn, 3 x 224 x 224, one class per photo; ``split`` is
    ignored: both splits are the same photos), ``"scenes"`` (:mod:`.scenes`: Fashion-MNIST items and
    digits on textures with their object masks, 3 x 64 x 64, 20,000 train and 2,000 held-out
    scenes, ``"scenes:N"`` for N of the split; the held-out world shares no object instance and
    no texture source with the training one; labels: the largest object's class) and
    ``"folder:PATH"`` (or ``"folder"`` with
    ``root=PATH``): ``PATH/<class>/<images>`` split 90/10 per class, or ``PATH/train/<class>/...``
    with ``PATH/val/<class>/...`` (or ``PATH/test``); RGB, 64 x 64 by default.

    Args:
        name: dataset name, see above.
        split: ``"train"`` or ``"test"`` (``"val"`` is an alias of ``"test"``).
        root: folder holding the Fashion-MNIST IDX files (or the image folder for ``"folder"``).
        image_size: side of the square images; folders and photos are resized (shorter side)
            and center-cropped, the built-in datasets keep their size unless it is given.
        skip_bad_images: leave unreadable image files out (counted in ``skipped``) instead of
            raising.
        pack: for a folder, decode the split once into a packed store on disk
            (:mod:`.packed`, under :func:`~.packed.store_folder`; reused while the files are unchanged)
            whose ``images`` are read by index, so memory does not grow with the number of
            images; None (default): when the decoded split would exceed
            :data:`IN_MEMORY_BYTES`.

    Example:
        >>> ds = load_dataset("digits", "test")
        >>> len(ds), tuple(ds.images.shape[1:]), ds.images.dtype, ds.classes[:3]
        (360, (1, 16, 16), torch.uint8, ['0', '1', '2'])
    """
    if split not in ("train", "test", "val"):
        raise ValueError(f"split must be 'train' or 'test' ('val' = 'test'), got {split!r}")
    split = "test" if split == "val" else split
    if image_size is not None:
        integer_at_least(image_size, 1, "image_size")
    if name == "fashion-mnist":
        ds = _fashion_mnist(split, root)
    elif name == "digits":
        ds = _digits(split)
    elif name == "scenes" or name.startswith("scenes:"):
        return _scenes(split, name, image_size or 64)
    elif name == "photos":
        return _photos(image_size or 224)
    elif name.startswith("folder:") or (name == "folder" and root):
        path = name[len("folder:") :] if name.startswith("folder:") else root
        root = Path(path).expanduser()
        return _folder(root, split, image_size or 64, skip_bad_images, pack)
    else:
        known = ", ".join(repr(k) for k in KNOWN_DATASETS)
        raise ValueError(
            f"unknown dataset name {name!r}; known: {known} (an image folder: "
            "PATH/<class>/<images>)"
        )
    if image_size is not None and image_size != ds.image_size:
        ds.images = _resize(ds.images, image_size)
    return ds


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 ``(N, C, H, W)`` images / 255.

    Example:
        >>> channel_stats(torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1))
        ((0.5,), (0.5,))
    """
    C = images.shape[1]
    total = torch.zeros(C, dtype=torch.float64)
    squares = torch.zeros(C, dtype=torch.float64)
    for part in images.split(4096):  # float64 copies of a chunk only
        x = part.to(torch.float64).div_(255).transpose(0, 1).reshape(C, -1)
        total += x.sum(1)
        squares += x.square().sum(1)
    n = images.numel() // C
    mean = total / n
    std = (squares / n - mean.square()).clamp_min(0).sqrt()
    return tuple(round(v, 6) for v in mean.tolist()), tuple(round(v, 6) for v in std.tolist())


def _resize(images: torch.Tensor, size: int, mode: str = "bilinear") -> torch.Tensor:
    x = F.interpolate(images.float(), size=(size, size), mode=mode, antialias=mode == "bilinear")
    return x.round_().clamp_(0, 255).to(torch.uint8)


def _fashion_mnist(split: str, root: str | None) -> ImageDataset:
    names = _FASHION_FILES[split]
    env = os.environ.get("LEJEPA_VIZ_FASHION_MNIST")
    folders = [Path(p).expanduser() for p in (root, env) if p] + list(FASHION_MNIST_DIRS)
    folders += [CACHE_DIR / "FashionMNIST" / "raw"]
    for folder in folders:
        for where in (folder, folder / "FashionMNIST" / "raw"):  # also torchvision's layout
            found = [
                next((p for p in (where / f"{n}.gz", where / n) if p.is_file()), None)
                for n in names
            ]
            if all(found):
                images, labels = read_idx(found[0]), read_idx(found[1])
                if images.ndim != 3 or labels.shape != images.shape[:1]:
                    raise ValueError(
                        f"corrupt Fashion-MNIST files in {where}: images {images.shape}, "
                        f"labels {labels.shape}"
                    )
                return _fashion_dataset(torch.from_numpy(images), torch.from_numpy(labels))
    try:  # the last resort, for users with a network
        from torchvision.datasets import FashionMNIST

        tv = FashionMNIST(str(CACHE_DIR), train=split == "train", download=True)
        return _fashion_dataset(tv.data, tv.targets)
    except Exception as err:
        looked = ", ".join(str(f) for f in folders)
        why = " ".join(f"{type(err).__name__}: {err}".split())  # torchvision's is multi-line
        raise DatasetNotFoundError(
            f"Fashion-MNIST ({split} split) not found: no {names[0]}.gz and {names[1]}.gz in {looked}, "
            f"and torchvision's download failed ({why}). Get it in one of these ways:\n"
            "  - Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist "
            "(installs /usr/share/datasets/fashion-mnist)\n"
            "  - put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz "
            "and t10k-labels-idx1-ubyte.gz in a folder DIR and pass --root DIR (root=DIR) or set "
            "LEJEPA_VIZ_FASHION_MNIST=DIR\n"
            f"  - with a network connection torchvision downloads them into {CACHE_DIR}"
        ) from err


def _fashion_dataset(images: torch.Tensor, labels: torch.Tensor) -> ImageDataset:
    images = images.to(torch.uint8).unsqueeze(1)  # (N, 1, 28, 28)
    classes, labels = list(FASHION_MNIST_CLASSES), labels.to(torch.int64)
    return ImageDataset(images, labels, classes, "fashion-mnist", *_FASHION_STATS)


def _digits(split: str) -> ImageDataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    index = np.arange(len(digits.target))
    train, test = train_test_split(index, test_size=0.2, stratify=digits.target, random_state=0)
    train, test = np.sort(train), np.sort(test)
    images = torch.from_numpy(np.rint(digits.images * (255 / 16))).to(torch.uint8).unsqueeze(1)
    images = _resize(images, 16, mode="nearest")  # (N, 1, 16, 16), each pixel doubled
    pick = train if split == "train" else test
    labels = torch.from_numpy(digits.target[pick]).to(torch.int64)
    classes = [str(d) for d in range(10)]
    return ImageDataset(images[pick], labels, classes, "digits", *channel_stats(images[train]))


def _photos(size: int) -> ImageDataset:
    photos, missing = {}, []
    for name in PHOTO_NAMES:
        try:  # a library version without the photo, or one that would download it
            photos[name] = square_rgb(Image.fromarray(photo_original(name)), size)
        except Exception:
            missing.append(name)
    if not photos:
        raise ValueError("photos: none of the bundled photos of scikit-image / scikit-learn loads")
    if missing:
        warnings.warn(f"photos: {', '.join(missing)} not available offline, left out", stacklevel=3)
    images = torch.from_numpy(np.stack(list(photos.values()))).permute(0, 3, 1, 2).contiguous()
    labels = torch.arange(len(photos))
    return ImageDataset(images, labels, list(photos), "photos", *channel_stats(images))


def _folder(root: Path, split: str, size: int, skip_bad: bool, pack: bool | None) -> ImageDataset:
    layout = (
        f"expected {root}/<class>/<image files>, or {root}/train/<class>/... with "
        f"{root}/val/<class>/..."
    )
    if not root.is_dir():
        raise ValueError(f"image folder {root} does not exist or is not a folder; {layout}")
    if (root / "train").is_dir():
        val = next((root / d for d in ("val", "test") if (root / d).is_dir()), None)
        if val is None:
            raise ValueError(f"image folder {root} has train/ but no val/ (or test/); {layout}")
        train = _image_files(root / "train", layout)
        classes = list(train)
        test = _image_files(val, layout)
        if unknown := sorted(set(test) - set(classes)):
            raise ValueError(f"classes {unknown} in {val} are not in {root / 'train'}")
        test = {c: test.get(c, []) for c in classes}
    else:
        files = _image_files(root, layout)
        classes, train, test = list(files), {}, {}
        for c, paths in files.items():  # a fixed 90/10 split of each class, the same every time
            n_test = max(1, round(len(paths) / 10)) if len(paths) > 1 else 0
            order = np.random.default_rng(zlib.crc32(c.encode())).permutation(len(paths))
            held_out = set(order[:n_test].tolist())
            train[c] = [p for i, p in enumerate(paths) if i not in held_out]
            test[c] = [p for i, p in enumerate(paths) if i in held_out]
    chosen = train if split == "train" else test
    items = [(p, label) for label, c in enumerate(classes) for p in chosen[c]]
    if pack is None:  # a split too large to hold decoded in memory goes to disk
        pack = len(items) * 3 * size * size > IN_MEMORY_BYTES
    if pack:
        store = packing.pack(
            items, classes, packing.store_folder(root, split, size), size, skip_bad=skip_bad
        )
        images = packing.PackedImages(store)
        labels, bad = images.labels(), set(images.skipped)
        kept = [i for i, (p, _) in enumerate(items) if str(p) not in bad]
    else:
        images, labels, kept = packing.decode_all(
            items, size, skip_bad, desc=f"{root.name} ({split})"
        )
    skipped = len(items) - len(kept)
    if not len(images):
        raise ValueError(
            f"image folder {root}: the {split} split has no readable images (the 90/10 "
            f"split holds out one image of each class with 2 or more); {layout}"
        )
    if skipped:
        warnings.warn(f"skipped {skipped} unreadable image file(s) in {root}", stacklevel=3)
    pool = [(p, 0) for c in classes for p in train[c]]  # the training items, in order
    pick = np.unique(
        np.linspace(0, len(pool) - 1, min(STATS_IMAGES, len(pool))).round().astype(int)
    )
    if split == "train":  # the sample is among the images just decoded
        row = {item: r for r, item in enumerate(kept)}
        sample = images[[row[i] for i in pick.tolist() if i in row]]
    else:
        sample = packing.decode_all([pool[i] for i in pick], size, True, desc=None)[0]
    mean, std = channel_stats(sample if len(sample) else images[:STATS_IMAGES])
    return ImageDataset(images, labels, classes, f"folder:{root}", mean, std, skipped=skipped)


def _image_files(folder: Path, layout: str) -> dict[str, list[Path]]:
    """``{class: sorted image paths}`` of ``folder/<class>/**``, classes with images only (in
    name order, not natural order: the fixed 90/10 split depends on the order)."""
    classes = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise ValueError(f"image folder {folder} has no class subfolders; {layout}")
    files = {d.name: sorted(paths) for d in classes if (paths := find_images(d))}
    if not files:
        exts = " ".join(sorted(IMAGE_EXTENSIONS))
        raise ValueError(
            f"image folder {folder} has no image files ({exts}) in its class subfolders; {layout}"
        )
    return files


def scene_world(split: str, size: int = 64) -> SceneWorld:
    """The scene world of ``split`` (:mod:`.scenes`): the split's Fashion-MNIST items and digits
    (classes 0–9 and 10–19) on its own texture pool, its own seeded stream."""
    fashion, digits = _fashion_mnist(split, None), _digits(split)
    digit_items = F.interpolate(digits.images.float(), size=28, mode="bilinear")
    items = torch.cat([fashion.images, digit_items.round().to(torch.uint8)])
    labels = torch.cat([fashion.labels, digits.labels + len(fashion.classes)])
    pool = TRAIN_TEXTURES if split == "train" else TEST_TEXTURES
    return SceneWorld(items, labels, textures(pool), size=size, seed=SCENE_SEEDS[split])


SCENE_CLASSES = FASHION_MNIST_CLASSES + [f"digit {d}" for d in range(10)]


def _scenes(split: str, name: str, size: int) -> ImageDataset:
    """The first N scenes of the split's world."""
    n = SCENES[split] if name == "scenes" else integer_at_least(int(name[7:]), 1, "scenes:N")
    scenes = scene_world(split, size).render(0, n)
    mean, std = channel_stats(scenes.images[:STATS_IMAGES])
    return ImageDataset(
        scenes.images, scenes.labels, list(SCENE_CLASSES), name, mean, std, masks=scenes.masks
    )
