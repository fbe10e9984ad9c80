"""Standard image datasets by name, read from their published files without unpickling them.

Each dataset is found under a root folder (``root``, else ``$LEJEPA_VIZ_DATA``, else
``~/.cache/lejepa_viz/datasets``) in the layout its archive unpacks to, and downloaded there
only when asked (``download=True``, ``--download``) through torchvision's downloader, which checks
the archive's MD5. Offline, a missing dataset raises :class:`DatasetNotFoundError` naming the
files and where to put them.

| name | files under the root | train / test | images |
|------|----------------------|--------------|--------|
| ``cifar10`` | ``cifar-10-batches-bin/data_batch_{1..5}.bin``, ``test_batch.bin`` | 50,000 / 10,000 | 32 px |
| ``cifar100`` | ``cifar-100-binary/train.bin``, ``test.bin`` (fine labels) | 50,000 / 10,000 | 32 px |
| ``imagenette`` | ``imagenette2-160/{train,val}/<wnid>/*.JPEG`` | 9,469 / 3,925 | 160 px |
| ``flowers102`` | ``flowers-102/jpg/``, ``imagelabels.mat``, ``setid.mat`` | 2,040 (train + val) / 6,149 | JPEGs |
| ``food101`` | ``food-101/images/<class>/``, ``food-101/meta/{train,test}.txt`` | 75,750 / 25,250 | JPEGs |
| ``stl10`` | ``stl10_binary/{train,test,unlabeled}_X.bin``, ``{train,test}_y.bin`` | 105,000 (100,000 unlabelled) / 8,000 | 96 px |

STL-10's training split is its 100,000 unlabelled images followed by its 5,000 labelled ones:
the unlabelled rows carry the label :data:`~.base.UNLABELLED`, which the probes skip.

CIFAR comes in its *binary* version (the one "suitable for C programs": one label byte, then
3,072 pixel bytes a row), not torchvision's pickled Python batches: a downloaded file is never
unpickled. Flowers-102's labels and splits are MATLAB files, read with ``scipy.io.loadmat``
(data, not code). The image-file datasets, STL-10's rows, and CIFAR's rows when they are resized
or packed are decoded one by one like an image folder, packed on disk when large
(:mod:`.packed`); they load at 64 px unless told otherwise, CIFAR at its 32 px.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.io import loadmat

from .base import UNLABELLED
from .decode import square_rgb
from .packed import locked

CACHE = Path.home() / ".cache" / "lejepa_viz" / "datasets"
IMAGENETTE_CLASSES = {  # wnid -> name, in the sorted order of the folders
    "n01440764": "tench",
    "n02102040": "English springer",
    "n02979186": "cassette player",
    "n03000684": "chain saw",
    "n03028079": "church",
    "n03394916": "French horn",
    "n03417042": "garbage truck",
    "n03425413": "gas pump",
    "n03445777": "golf ball",
    "n03888605": "parachute",
}


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are nowhere to be found; the message says how to get them."""


@dataclass(frozen=True)
class Source:
    """Where a named dataset's files are and where its archive comes from."""

    files: tuple[str, ...]  # what must exist under the root
    url: str
    md5: str


SOURCES = {
    "cifar10": Source(
        tuple(f"cifar-10-batches-bin/{b}.bin" for b in ("data_batch_1", "test_batch")),
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        "c32a1d4ab5d03f1284b67883e8d87530",
    ),
    "cifar100": Source(
        ("cifar-100-binary/train.bin", "cifar-100-binary/test.bin"),
        "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
        "03b5dce01913d631647c71ecec9e9cb8",
    ),
    "imagenette": Source(
        ("imagenette2-160/train", "imagenette2-160/val"),
        "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz",
        "e793b78cc4c9e9a4ccc0c1155377a412",
    ),
    "flowers102": Source(
        ("flowers-102/jpg", "flowers-102/imagelabels.mat", "flowers-102/setid.mat"),
        "https://thor.robots.ox.ac.uk/datasets/flowers-102/102flowers.tgz",
        "52808999861908f626f3c1f4e79d11fa",
    ),
    "stl10": Source(
        tuple(
            f"stl10_binary/{f}.bin"
            for f in ("train_X", "train_y", "test_X", "test_y", "unlabeled_X")
        ),
        "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
        "91f7769df0f17e558f3565bffb0c7dfb",
    ),
    "food101": Source(
        ("food-101/images", "food-101/meta/train.txt", "food-101/meta/test.txt"),
        "http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz",
        "85eeb15f3717b99a5da872d97d918f87",
    ),
}
NAMES = tuple(SOURCES)


def dataset_root(name: str, root: str | os.PathLike | None, download: bool = False) -> Path:
    """The folder holding ``name``'s files (see the module's table), downloading the archive
    into it when ``download`` and the files are missing.

    A download is done once when several processes ask at the same time (``torchrun``'s ranks:
    a file lock, the others wait and find it there) and lands whole or not at all (unpacked in a
    hidden folder beside, moved into place when complete), so an interrupted one is never taken
    for the dataset.
    """
    source = SOURCES[name]
    env = os.environ.get("LEJEPA_VIZ_DATA")
    candidates = [Path(p).expanduser() for p in (root, env) if p] + [CACHE]
    found = next((c for c in candidates if _present(source, c)), None)
    if found is not None:
        return found
    target = candidates[0]
    if download:
        target.mkdir(parents=True, exist_ok=True)
        with locked(target / f".{name}.lock"):
            if not _present(source, target):  # another process may have fetched it meanwhile
                _download(name, source, target)
        return target
    looked = ", ".join(str(c) for c in candidates)
    raise DatasetNotFoundError(
        f"{name} not found: no {', '.join(source.files)} under {looked}. Pass --download "
        f"(download=True) to fetch {source.url} into {target}, or unpack that archive in a "
        "folder DIR yourself and pass --root DIR (root=DIR) or set LEJEPA_VIZ_DATA=DIR"
    )


def _present(source: Source, folder: Path) -> bool:
    return all((folder / f).exists() for f in source.files)


def _download(name: str, source: Source, target: Path) -> None:
    """Fetch and unpack ``source``'s archive in a hidden folder of ``target``, then move the
    folders it unpacked to into ``target``."""
    from torchvision.datasets.utils import download_and_extract_archive, download_url

    partial = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target))
    try:
        # Flowers-102's archive holds jpg/ only; it goes in flowers-102/ beside two more files
        extract = partial / "flowers-102" if name == "flowers102" else partial
        try:
            download_and_extract_archive(
                source.url, str(partial), extract_root=str(extract), md5=source.md5
            )
            for url, md5 in FLOWERS_EXTRAS if name == "flowers102" else ():
                download_url(url, str(extract), md5=md5)
        except (OSError, RuntimeError) as err:  # no network (URLError), a bad MD5 (RuntimeError)
            raise DatasetNotFoundError(
                f"could not download {name} from {source.url}: {err}. Fetch the archive some "
                f"other way and unpack it in {target}"
            ) from err
        for folder in sorted(p for p in partial.iterdir() if p.is_dir()):
            if (target / folder.name).exists():
                raise DatasetNotFoundError(
                    f"{target / folder.name} exists but lacks some of {', '.join(source.files)}"
                    ": an incomplete copy? Delete it and download again"
                )
            os.replace(folder, target / folder.name)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


FLOWERS_EXTRAS = tuple(  # Flowers-102's labels and splits, beside its archive
    ("https://thor.robots.ox.ac.uk/datasets/flowers-102/" + f, md5)
    for f, md5 in (
        ("imagelabels.mat", "e0620be6f572b9609742df49c70aed4d"),
        ("setid.mat", "a5357ecc9cb78c4bef273ce3793fc85c"),
    )
)


def cifar(name: str, root: Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """CIFAR's binary files: ``(images (N, 3, 32, 32) uint8, labels (N,) int64, classes)``."""
    files, skip, classes = _cifar_files(name, root, split)
    images, labels = [], []
    for f in files:
        data = np.fromfile(f, dtype=np.uint8).reshape(-1, skip + 1 + CIFAR_ROW)
        labels.append(data[:, skip].astype(np.int64))
        images.append(data[:, skip + 1 :].reshape(-1, 3, 32, 32))
    return np.concatenate(images), np.concatenate(labels), classes


def cifar_rows(name: str, root: Path, split: str) -> tuple[list[tuple[Row, int]], list[str]]:
    """CIFAR's rows as ``([(Row, label)], classes)``, read like image files: resized or packed
    one by one rather than all at once."""
    files, skip, classes = _cifar_files(name, root, split)
    stride, items = skip + 1 + CIFAR_ROW, []
    for f in files:
        labels = np.memmap(f, np.uint8, mode="r").reshape(-1, stride)[:, skip].astype(int)
        items += [(Row(f, i, stride, skip + 1, 32, False), int(y)) for i, y in enumerate(labels)]
    return items, classes


def _cifar_files(name: str, root: Path, split: str) -> tuple[list[Path], int, list[str]]:
    """CIFAR's files of ``split``, the label bytes before the (fine) label, and the classes."""
    if name == "cifar10":
        folder = root / "cifar-10-batches-bin"
        names = (
            [f"data_batch_{i}.bin" for i in range(1, 6)] if split == "train" else ["test_batch.bin"]
        )
        skip, meta = 0, folder / "batches.meta.txt"
    else:
        folder, names = (
            root / "cifar-100-binary",
            [f"{'train' if split == 'train' else 'test'}.bin"],
        )
        skip, meta = 1, folder / "fine_label_names.txt"  # coarse label byte, then the fine one
    row = skip + 1 + CIFAR_ROW
    for f in names:
        if (folder / f).stat().st_size % row:
            raise ValueError(f"{folder / f}: its size is not a whole number of {row}-byte rows")
    count = 10 if name == "cifar10" else 100
    classes = meta.read_text().split() if meta.is_file() else [str(i) for i in range(count)]
    return [folder / f for f in names], skip, classes


CIFAR_ROW, STL_ROW = 3 * 32 * 32, 3 * 96 * 96  # bytes of one image


@dataclass(frozen=True)
class Row:
    """Image ``index`` of a binary file of fixed-size rows (STL-10's unless told), read like an
    image file: called with a size, it returns ``(size, size, 3)`` uint8.

    A row is ``stride`` bytes: ``skip`` label bytes, then the ``(3, side, side)`` pixels, each
    channel stored row by row, or column by column (``column_major``, STL-10).
    """

    file: Path
    index: int
    stride: int = STL_ROW
    skip: int = 0
    side: int = 96
    column_major: bool = True

    def __call__(self, size: int) -> np.ndarray:
        with open(self.file, "rb") as f:
            f.seek(self.index * self.stride)
            raw = np.frombuffer(f.read(self.stride), np.uint8)
        if raw.size != self.stride:
            raise ValueError(f"{self.file}: row {self.index} is cut short")
        chw = raw[self.skip : self.skip + 3 * self.side**2].reshape(3, self.side, self.side)
        hwc = chw.transpose(2, 1, 0) if self.column_major else chw.transpose(1, 2, 0)
        return square_rgb(Image.fromarray(np.ascontiguousarray(hwc)), size)


def stl10(root: Path, split: str) -> tuple[list[tuple[Row, int]], list[str]]:
    """STL-10's rows as ``([(Row, label)], classes)``: train = the unlabelled rows
    (:data:`~.base.UNLABELLED`) then the labelled ones; test = the labelled test rows."""
    base = root / "stl10_binary"
    names = base / "class_names.txt"
    classes = names.read_text().split() if names.is_file() else [str(c) for c in range(10)]
    parts = (
        [("unlabeled", None), ("train", "train_y")] if split == "train" else [("test", "test_y")]
    )
    items = []
    for images, labels in parts:
        file = base / f"{images}_X.bin"
        count = file.stat().st_size // STL_ROW
        ys = np.fromfile(base / f"{labels}.bin", np.uint8).astype(int) - 1 if labels else None
        if ys is not None and len(ys) != count:
            raise ValueError(f"{base}: {count} images in {file.name} but {len(ys)} labels")
        items += [(Row(file, i), UNLABELLED if ys is None else int(ys[i])) for i in range(count)]
    return items, classes


def image_files(name: str, root: Path, split: str) -> tuple[list[tuple[Path, int]], list[str]]:
    """The datasets read image by image as ``([(path or Row, label)], classes)`` for
    ``split`` (CIFAR's rows when they are to be resized or packed)."""
    if name.startswith("cifar"):
        return cifar_rows(name, root, split)
    if name == "stl10":
        return stl10(root, split)
    if name == "imagenette":
        base = root / "imagenette2-160" / ("train" if split == "train" else "val")
        wnids = sorted(d.name for d in base.iterdir() if d.is_dir())
        items = [(p, i) for i, w in enumerate(wnids) for p in sorted((base / w).glob("*.JPEG"))]
        return items, [IMAGENETTE_CLASSES.get(w, w) for w in wnids]
    if name == "flowers102":
        base = root / "flowers-102"
        labels = loadmat(base / "imagelabels.mat")["labels"].reshape(-1).astype(int) - 1
        ids = loadmat(base / "setid.mat")
        chosen = (
            np.concatenate([ids["trnid"], ids["valid"]], axis=1)
            if split == "train"
            else ids["tstid"]
        )
        items = [
            (base / "jpg" / f"image_{i:05d}.jpg", int(labels[i - 1])) for i in chosen.reshape(-1)
        ]
        return items, [str(c) for c in range(102)]
    base = root / "food-101"  # food101
    classes = sorted(d.name for d in (base / "images").iterdir() if d.is_dir())
    index = {c: i for i, c in enumerate(classes)}
    lines = (base / "meta" / f"{'train' if split == 'train' else 'test'}.txt").read_text().split()
    return [(base / "images" / f"{line}.jpg", index[line.split("/")[0]]) for line in lines], classes
