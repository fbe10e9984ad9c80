"""Image collections of any size in bounded memory: decoded once into one file of uint8 rows.

A training step wants a batch of images as one uint8 tensor, cut into views on the device
(:mod:`.views`); decoding JPEGs per step is too slow for that, and a large collection does not fit
in memory (ImageNet-1k is 16 GB at 64 px, 63 GB at 128 px). :func:`pack` decodes a list of image
files once, in parallel, at one size, into ``images.u8``: the ``(N, 3, S, S)`` uint8 images back
to back, beside ``labels.npy`` and ``index.json``. :class:`PackedImages` reads rows of it by index
and indexes like the tensor it stands for, so the training loop, the probes and the views do not
know the difference; :func:`prefetch` reads the next batch while the current one trains.

Rows are read with ``os.preadv`` into one buffer, not through a memory map: the pages a memory
map touches count towards the process's resident memory, so a long run would grow to the size
of the file, while ``preadv`` copies only the batch out of the page cache, which the kernel
shrinks when it needs to. Peak memory is then independent of the number of images.

Why a raw file of our own rather than a library: the store is fixed-size rows read by index,
which a file and ``preadv`` do exactly. FFCV does the same with a JIT-compiled pipeline but
needs a compiler toolchain, libjpeg-turbo and OpenCV and has not had a release since 2023;
WebDataset streams tar shards sequentially (a shuffle buffer, not the sampler's random
access by index that makes a run the same for any number of ranks); LitData and MosaicML
streaming add sharded formats and cloud caches we do not need; DALI runs on NVIDIA GPUs only.

Packing is resumable (killed, it goes on from its last finished chunk), atomic (it writes into
``OUT.partial/`` and renames it to ``OUT`` when done), done once when several processes ask at
the same time (a file lock: the others wait and reuse it), refused up front when the disk is
too small, and names an unreadable file (or skips it with ``skip_bad=True``) before any
training.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .decode import read_image

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

IMAGES, LABELS, INDEX, PROGRESS = "images.u8", "labels.npy", "index.json", "progress.json"
CHUNK = 1024  # images decoded and written between two saved states of a packing
FORMAT = 1
CACHE = Path.home() / ".cache" / "lejepa_viz"  # $LEJEPA_VIZ_CACHE overrides it


def workers() -> int:
    """Decoding threads: one per core, at most 8 (PIL releases the GIL while decoding)."""
    return min(8, os.cpu_count() or 1)


def decoded(
    paths: Sequence[Path], size: int, threads: int | None = None
) -> Iterator[np.ndarray | ValueError]:
    """Each file of ``paths`` as ``(size, size, 3)`` uint8 (:func:`~.decode.read_image`), in
    order, decoded on ``threads`` threads; an unreadable file yields its ``ValueError`` (which
    names it) instead. A callable in ``paths`` is called with ``size`` instead (a row of a
    binary file: :class:`~.named.Row`)."""

    def decode(source) -> np.ndarray | ValueError:
        try:
            return source(size) if callable(source) else read_image(source, size)
        except ValueError as err:
            return err

    pool = ThreadPoolExecutor(max_workers=threads or workers())
    try:
        yield from pool.map(decode, paths)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def decode_all(
    items: list[tuple[Path, int]], size: int, skip_bad: bool, desc: str | None
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Decode ``(path, label)`` items (:func:`decoded`, on threads): the images
    ``(M, 3, S, S)``, their labels and the indices of the M items decoded."""

    arrays, labels, kept = [], [], []
    results = decoded([p for p, _ in items], size)
    bar = tqdm(results, total=len(items), desc=desc, unit="img", disable=desc is None)
    for i, ((_, label), result) in enumerate(zip(items, bar, strict=True)):
        if isinstance(result, ValueError):
            if not skip_bad:
                raise ValueError(
                    f"{result}; pass skip_bad_images=True (--skip-bad-images) to leave "
                    "unreadable files out"
                ) from result
            continue
        arrays.append(result)
        labels.append(label)
        kept.append(i)
    images = np.stack(arrays) if arrays else np.zeros((0, size, size, 3), np.uint8)
    images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()  # (N, 3, S, S)
    return images, torch.tensor(labels, dtype=torch.int64), kept


def store_folder(root: Path, split: str, size: int) -> Path:
    """Where a folder's split is packed: ``$LEJEPA_VIZ_CACHE/packed/`` (default
    ``~/.cache/lejepa_viz/packed/``), one store per folder, split and size."""
    tag = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:10]
    cache = Path(os.environ.get("LEJEPA_VIZ_CACHE", CACHE)).expanduser()
    return cache / "packed" / f"{root.name}-{tag}-{split}-{size}px"


def fingerprint(items: Sequence[tuple[Path, int]], size: int) -> str:
    """A key of what a packing holds: the files (path, byte size, modification time), their
    labels and the size; a packing of other files or another size is never resumed or reused."""
    h, stats = hashlib.sha256(f"{FORMAT} {size}".encode()), {}
    for path, label in items:
        # a row of a file (a callable) is named by its repr and stamped by the file it reads
        file = getattr(path, "file", None) if callable(path) else path
        if file not in stats:
            st = Path(file).stat() if file is not None else None
            stats[file] = f"{st.st_size}\t{st.st_mtime_ns}" if st else ""
        h.update(f"\n{path!r}\t{stats[file]}\t{label}".encode())
    return h.hexdigest()[:16]


def pack(
    items: Sequence[tuple[Path, int]],
    classes: Sequence[str],
    out: str | os.PathLike,
    size: int,
    *,
    skip_bad: bool = False,
    threads: int | None = None,
    progress: bool = True,
) -> Path:
    """Decode ``(path, label)`` items once into a packed store at ``out`` (a folder).

    Args:
        items: the image files and their class indices into ``classes``, in the order of the
            rows.
        classes: class names (kept in ``index.json``).
        out: the store's folder; an existing finished store of the same items and size is
            reused as it is.
        size: side of the square images (shorter side resized, center crop).
        skip_bad: leave unreadable files out (listed in ``index.json``) instead of raising.
        threads: decoding threads (default :func:`workers`).
        progress: a progress bar over the images.

    Returns:
        ``out``, ready for :class:`PackedImages`.

    Raises:
        ValueError: an unreadable file, named, unless ``skip_bad``.
        OSError: the disk cannot hold the store (checked before decoding anything).
    """
    out, key = Path(out), fingerprint(items, size)
    out.parent.mkdir(parents=True, exist_ok=True)
    with locked(out.with_name(out.name + ".lock")):  # torchrun's ranks: one packs, others wait
        return _pack(items, classes, out, key, size, skip_bad, threads, progress)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created if missing): processes that ask for
    the same lock, on this machine or over a shared POSIX file system, wait their turn. Where
    ``fcntl`` does not exist (Windows), there is no lock and nothing waits."""
    if fcntl is None:  # Windows: one process at a time is the caller's business
        yield
        return
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _pack(items, classes, out: Path, key: str, size: int, skip_bad, threads, progress) -> Path:
    if (out / INDEX).is_file():
        index = _read_json(out / INDEX)
        if index.get("key") == key:
            if index["skipped"] and not skip_bad:
                raise ValueError(
                    f"packed store {out} left out {len(index['skipped'])} unreadable files "
                    f"(the first: {index['skipped'][0]}); pass skip_bad_images=True "
                    "(--skip-bad-images) to train without them, or delete the store"
                )
            return out
        shutil.rmtree(out)  # a store of other files, or a damaged one: packed again
    partial = out.with_name(out.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    state = _resumed(partial, key)
    row = 3 * size * size
    _check_space(partial, (len(items) - state["next"]) * row, len(items), size)
    labels = list(state["labels"])
    bar = tqdm(
        total=len(items), initial=state["next"], desc=f"packing {out.name}", unit="img",
        disable=not progress,
    )  # fmt: skip
    with open(partial / IMAGES, "ab") as f:
        f.truncate(len(labels) * row)  # a chunk half-written when the packing was killed
        for start in range(state["next"], len(items), CHUNK):
            chunk = items[start : start + CHUNK]
            for (path, label), image in zip(
                chunk, decoded([p for p, _ in chunk], size, threads), strict=True
            ):
                if isinstance(image, ValueError):
                    if not skip_bad:
                        raise ValueError(
                            f"{image}; pass skip_bad_images=True (--skip-bad-images) to leave "
                            "unreadable files out"
                        ) from image
                    state["skipped"].append(str(path))
                    continue
                f.write(np.ascontiguousarray(image.transpose(2, 0, 1)).tobytes())
                labels.append(int(label))
            f.flush()
            os.fsync(f.fileno())
            state.update(next=start + len(chunk), labels=labels)
            _write_json(partial / PROGRESS, state)
            bar.update(len(chunk))
    bar.close()
    np.save(partial / LABELS, np.asarray(labels, dtype=np.int64))
    index = dict(key=key, format=FORMAT, count=len(labels), size=size, channels=3)
    _write_json(partial / INDEX, {**index, "classes": list(classes), "skipped": state["skipped"]})
    (partial / PROGRESS).unlink(missing_ok=True)  # no images: nothing was saved
    os.replace(partial, out)
    return out


def _resumed(partial: Path, key: str) -> dict:
    """The saved state of an unfinished packing of the same items, or a fresh one."""
    fresh = dict(key=key, next=0, labels=[], skipped=[])
    if _read_json(partial / PROGRESS).get("key") == key:
        return _read_json(partial / PROGRESS)
    (partial / IMAGES).unlink(missing_ok=True)
    return fresh


def _check_space(folder: Path, needed: int, count: int, size: int) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise OSError(
            f"packing {count:,} images at {size} x {size} px needs {needed / 1e9:.2f} GB more in "
            f"{folder.parent}, which has {free / 1e9:.2f} GB free: free some space, pick a "
            "smaller image size, or point LEJEPA_VIZ_CACHE at a larger disk"
        )


def _write_json(path: Path, value: dict) -> None:
    """Write ``value`` so that ``path`` holds the old or the new JSON, whole, even after a
    crash or a power cut (written aside, flushed to disk, renamed over)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(value))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_json(path: Path) -> dict:
    """The JSON object in ``path``; ``{}`` if the file is missing or not whole JSON."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        return {}
    return value if isinstance(value, dict) else {}


class PackedImages:
    """The images of a packed store, ``(N, 3, S, S)`` uint8, read from disk by index.

    Indexes like the tensor it stands for: ``images[i]`` is ``(3, S, S)``; a slice, a list, a
    numpy array or a tensor of indices gives ``(B, 3, S, S)``, a new tensor. It holds an open
    file, reopened after a fork (DataLoader workers, ``torchrun``'s processes each open their
    own).

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> from PIL import Image
        >>> for i in range(3):
        ...     Image.new("RGB", (40, 30), (80 * i, 0, 0)).save(d / f"{i}.png")
        >>> store = pack([(d / f"{i}.png", i) for i in range(3)], ["a", "b", "c"], d / "s", 8,
        ...              progress=False)
        >>> images = PackedImages(store)
        >>> images.shape, images[torch.tensor([2, 0])][:, 0, 0, 0].tolist()
        (torch.Size([3, 3, 8, 8]), [160, 0])
    """

    dtype = torch.uint8
    ndim = 4

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        index = _read_json(self.folder / INDEX)
        if not {"size", "count", "channels", "classes", "skipped"} <= index.keys():
            raise ValueError(
                f"{self.folder} is not a packed store, or a damaged one: {INDEX} is missing or "
                "unreadable; delete the folder to pack again"
            )
        size, count = index["size"], index["count"]
        self.shape = torch.Size((count, index["channels"], size, size))
        self.row = index["channels"] * size * size
        self.classes, self.skipped = index["classes"], index["skipped"]
        actual = (self.folder / IMAGES).stat().st_size
        if actual != count * self.row:
            raise ValueError(
                f"packed store {self.folder} is damaged: {IMAGES} holds {actual} bytes, "
                f"{count} images need {count * self.row}; delete the folder to pack again"
            )
        self._fd, self._pid = None, None

    def labels(self) -> torch.Tensor:
        """``(N,)`` int64 class indices (``labels.npy``, read without pickle)."""
        return torch.from_numpy(np.load(self.folder / LABELS, allow_pickle=False))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> torch.Tensor:
        if isinstance(index, tuple):  # rows first, then the rest on the tensor they give
            head = self[index[0]]
            one = head.ndim == self.ndim - 1
            return head[index[1:]] if one else head[(slice(None), *index[1:])]
        if isinstance(index, slice):
            index = range(*index.indices(len(self)))
        if isinstance(index, int | np.integer) or getattr(index, "ndim", None) == 0:
            return self[[int(index)]][0]
        rows = np.asarray(index.cpu() if isinstance(index, torch.Tensor) else index)
        if rows.dtype == bool:  # a mask over the images
            if rows.shape != (len(self),):
                raise IndexError(f"a mask of shape {rows.shape} for {len(self)} packed images")
            rows = rows.nonzero()[0]
        if rows.size and not np.issubdtype(rows.dtype, np.integer):
            raise IndexError(f"packed images take integer or boolean indices, not {rows.dtype}")
        shape, rows = rows.shape, rows.astype(np.int64).reshape(-1)
        if rows.size and (rows.min() < -len(self) or rows.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} packed images")
        rows = rows % max(len(self), 1)
        out = np.empty((len(rows), self.row), np.uint8)
        fd = self._file()
        for j in np.argsort(rows, kind="stable"):  # in file order: sequential where it can be
            if os.preadv(fd, [memoryview(out[j])], int(rows[j]) * self.row) != self.row:
                raise OSError(f"short read from {self.folder / IMAGES}: was it truncated?")
        return torch.from_numpy(out).view(*shape, *self.shape[1:])

    def split(self, size: int) -> Iterator[torch.Tensor]:
        """Consecutive batches of ``size`` images, read one at a time (``Tensor.split``)."""
        return (self[i : i + size] for i in range(0, len(self), size))

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = os.open(self.folder / IMAGES, os.O_RDONLY), os.getpid()
        return self._fd

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None and self._pid == os.getpid():
            os.close(self._fd)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fd": None, "_pid": None}

    def __repr__(self) -> str:
        return f"PackedImages({str(self.folder)!r}, shape={tuple(self.shape)})"


def prefetch(images, batches: Iterable) -> Iterator[tuple[object, torch.Tensor]]:
    """``(index, images[index])`` for each index of ``batches``, the next batch read on a
    thread while the caller works on the current one (disk reads of a :class:`PackedImages`
    overlap the training step; for a tensor it changes nothing but where the copy runs)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        batches = iter(batches)
        index = next(batches, None)
        pending = None if index is None else pool.submit(images.__getitem__, index)
        while pending is not None:
            current, read = index, pending.result()
            index = next(batches, None)
            pending = None if index is None else pool.submit(images.__getitem__, index)
            yield current, read
