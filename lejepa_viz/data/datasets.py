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
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .._checks import integer_at_least
from . import named
from . import packed as packing
from .base import STATS_IMAGES, ImageDataset, channel_stats, resize
from .bundled import PHOTO_NAMES, TEST_TEXTURES, TRAIN_TEXTURES, photo_original, textures
from .decode import IMAGE_EXTENSIONS, find_images, read_idx, square_rgb
from .named import DatasetNotFoundError
from .scenes import SceneWorld

KNOWN_DATASETS = ("fashion-mnist", "digits", "photos", "scenes", "scenes:N", "folder:PATH")
KNOWN_DATASETS += named.NAMES
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
IN_MEMORY_BYTES = 256 * 2**20  # a folder's split larger than this decoded is packed on disk


def load_dataset(
    name: str,
    split: str = "train",
    root: str | None = None,
    *,
    image_size: int | None = None,
    skip_bad_images: bool = False,
    pack: bool | None = None,
    download: bool = False,
) -> ImageDataset:
    """Load a dataset by name, its images decoded into memory (or packed on disk when large).

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
    with ``PATH/val/<class>/...`` (or ``PATH/test``); RGB, 64 x 64 by default. The standard
    datasets of :mod:`.named` (``"cifar10"``, ``"cifar100"``, ``"imagenette"``,
    ``"flowers102"``, ``"food101"``, ``"stl10"``) are read from their published files under
    ``root`` (or ``$LEJEPA_VIZ_DATA``, or ``~/.cache/lejepa_viz/datasets``), downloaded only with
    ``download=True``; CIFAR keeps its 32 px unless told, the others load at 64 px.

    Args:
        name: dataset name, see above.
        split: ``"train"`` or ``"test"`` (``"val"`` is an alias of ``"test"``).
        root: folder holding the Fashion-MNIST IDX files, a named dataset's files, or the image
            folder for ``"folder"``.
        image_size: side of the square images; folders and photos are resized (shorter side)
            and center-cropped, the built-in datasets keep their size unless it is given.
        skip_bad_images: leave unreadable image files out (counted in ``skipped``) instead of
            raising.
        pack: for a folder or a named dataset, decode the split once into a packed store on
            disk (:mod:`.packed`, under :func:`~.packed.store_folder`; reused while the files
            are unchanged) whose ``images`` are read by index, so memory does not grow with the
            number of images; None (default): when the decoded split would exceed
            :data:`IN_MEMORY_BYTES`.
        download: fetch a missing named dataset (needs a network); without it a missing one
            raises :class:`DatasetNotFoundError` saying where to put its files.

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
    elif name in named.NAMES:
        return _named(name, split, root, image_size, skip_bad_images, pack, download)
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
        ds.images = resize(ds.images, image_size)
    return ds


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
    images = resize(images, 16, mode="nearest")  # (N, 1, 16, 16), each pixel doubled
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
    pool = [(p, 0) for c in classes for p in train[c]]  # the training items, in order
    return _from_files(root, f"folder:{root}", split, items, pool, classes, size, skip_bad, pack)


def _from_files(root, name, split, items, pool, classes, size, skip_bad, pack) -> ImageDataset:
    """Image files ``[(path, label)]`` decoded into memory, or packed when large; the channel
    statistics of at most :data:`STATS_IMAGES` of the training files ``pool``, evenly spaced."""
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
            f"{name}: the {split} split has no readable images (a folder's 90/10 split holds "
            "out one image of each class with 2 or more)"
        )
    if skipped:
        warnings.warn(f"skipped {skipped} unreadable image file(s) in {root}", stacklevel=4)
    pick = np.unique(
        np.linspace(0, len(pool) - 1, min(STATS_IMAGES, len(pool))).round().astype(int)
    )
    if split == "train":  # the sample is among the images just decoded
        row = {item: r for r, item in enumerate(kept)}
        sample = images[[row[i] for i in pick.tolist() if i in row]]
    else:
        sample = packing.decode_all([pool[i] for i in pick], size, True, desc=None)[0]
    mean, std = channel_stats(sample if len(sample) else images[:STATS_IMAGES])
    return ImageDataset(images, labels, classes, name, mean, std, skipped=skipped)


def _named(name, split, root, size, skip_bad, pack, download) -> ImageDataset:
    """A standard dataset (:mod:`.named`) from its published files."""
    where = named.dataset_root(name, root, download)
    if name.startswith("cifar") and size in (None, 32) and not pack:  # as stored, in memory
        images, labels, classes = named.cifar(name, where, split)
        train = images if split == "train" else named.cifar(name, where, "train")[0]
        pick = np.unique(np.linspace(0, len(train) - 1, STATS_IMAGES).round().astype(int))
        mean, std = channel_stats(torch.from_numpy(train[pick]))
        return ImageDataset(
            torch.from_numpy(images), torch.from_numpy(labels), classes, name, mean, std
        )
    items, classes = named.image_files(name, where, split)  # resized one by one, packed if large
    pool = named.image_files(name, where, "train")[0]
    folder = where / named.SOURCES[name].files[0].split("/")[0]  # its own packed stores
    size = size or (32 if name.startswith("cifar") else 64)
    return _from_files(folder, name, split, items, pool, classes, size, skip_bad, pack)


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
