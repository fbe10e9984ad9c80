"""Standard datasets by name, offline: tiny files built in each dataset's published layout are
read back exactly; a missing dataset says where its files go; ``download=True`` fetches the
published archive (its MD5 checked) into the root, once, whole or not at all."""

import hashlib
import tarfile
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat

import lejepa_viz.data.named as named
from lejepa_viz.data import DatasetNotFoundError, load_dataset


def cifar_rows(rng, n: int, label_bytes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` rows of a CIFAR binary file: labels (the last label byte is the class), images."""
    labels = rng.integers(0, 10, (n, label_bytes), dtype=np.uint8)
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    return np.concatenate([labels, images.reshape(n, -1)], axis=1), labels[:, -1], images


def test_cifar10_binary_batches(tmp_path, monkeypatch):
    monkeypatch.setenv("LEJEPA_VIZ_CACHE", str(tmp_path / "cache"))
    rng, folder = np.random.default_rng(0), tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    expected = {"train": ([], []), "test": ([], [])}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        rows, labels, images = cifar_rows(rng, 3, 1)
        rows.tofile(folder / f"{name}.bin")
        split = "test" if name == "test_batch" else "train"
        expected[split][0].append(images), expected[split][1].append(labels)
    (folder / "batches.meta.txt").write_text("airplane\nautomobile\n" + "x\n" * 8)
    for split, (images, labels) in expected.items():
        ds = load_dataset("cifar10", split, root=str(tmp_path))
        assert torch.equal(ds.images, torch.from_numpy(np.concatenate(images)))
        assert ds.labels.tolist() == np.concatenate(labels).tolist()
        assert ds.classes[:2] == ["airplane", "automobile"] and len(ds.classes) == 10
    train = torch.from_numpy(np.concatenate(expected["train"][0])).double() / 255
    assert ds.mean == pytest.approx(train.mean((0, 2, 3)).tolist(), abs=1e-6)  # train's stats
    test = np.concatenate(expected["test"][0])  # (3, 3, 32, 32)
    small = load_dataset("cifar10", "test", str(tmp_path), image_size=16)  # row by row
    pil = [Image.fromarray(im.transpose(1, 2, 0)).resize((16, 16), Image.BILINEAR) for im in test]
    assert torch.equal(small.images, torch.from_numpy(np.stack(pil).transpose(0, 3, 1, 2)))
    packed = load_dataset("cifar10", "test", str(tmp_path), pack=True)
    assert torch.equal(packed.images[:], torch.from_numpy(test))
    assert packed.labels.tolist() == np.concatenate(expected["test"][1]).tolist()


def test_cifar100_reads_the_fine_label(tmp_path, monkeypatch):
    monkeypatch.setenv("LEJEPA_VIZ_CACHE", str(tmp_path / "cache"))
    rng, folder = np.random.default_rng(1), tmp_path / "cifar-100-binary"
    folder.mkdir()
    for split in ("train", "test"):
        rows, fine, images = cifar_rows(rng, 4, 2)  # coarse byte, then fine byte
        rows.tofile(folder / f"{split}.bin")
    ds = load_dataset("cifar100", "test", root=str(tmp_path))
    assert ds.labels.tolist() == fine.tolist() and torch.equal(ds.images, torch.from_numpy(images))
    assert len(ds.classes) == 100
    rows = load_dataset("cifar100", "test", root=str(tmp_path), pack=True)  # read row by row
    assert rows.labels.tolist() == fine.tolist() and torch.equal(rows.images[:], ds.images)
    (folder / "test.bin").write_bytes(b"\0" * 100)
    with pytest.raises(ValueError, match="not a whole number of 3074-byte rows"):
        load_dataset("cifar100", "test", root=str(tmp_path))


def write_jpeg(path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def test_imagenette_folders_and_class_names(tmp_path):
    base = tmp_path / "imagenette2-160"
    for split, n in (("train", 3), ("val", 1)):
        for k, wnid in enumerate(("n01440764", "n03888605")):
            for i in range(n):
                write_jpeg(base / split / wnid / f"{wnid}_{i}.JPEG", 10 * k + i)
    ds = load_dataset("imagenette", "test", root=str(tmp_path), image_size=16)
    assert ds.classes == ["tench", "parachute"] and ds.labels.tolist() == [0, 1]
    assert ds.images.shape == (2, 3, 16, 16) and ds.name == "imagenette"
    assert len(load_dataset("imagenette", "train", root=str(tmp_path), image_size=16)) == 6


def test_flowers102_splits_from_the_matlab_files(tmp_path):
    base = tmp_path / "flowers-102"
    labels = np.array([[3, 1, 1, 2, 3, 2]])  # 1-based, one per image_00001 ... image_00006
    for i in range(1, 7):
        write_jpeg(base / "jpg" / f"image_{i:05d}.jpg", i)
    savemat(base / "imagelabels.mat", {"labels": labels})
    savemat(base / "setid.mat", {"trnid": [[1, 2]], "valid": [[3]], "tstid": [[4, 5, 6]]})
    train = load_dataset("flowers102", "train", root=str(tmp_path), image_size=8)
    test = load_dataset("flowers102", "test", root=str(tmp_path), image_size=8)
    assert train.labels.tolist() == [2, 0, 0] and test.labels.tolist() == [1, 2, 1]
    assert len(train.classes) == 102
    image5 = np.asarray(Image.open(base / "jpg" / "image_00005.jpg").convert("RGB").resize((8, 8)))
    assert test.images[1].shape == (3, 8, 8) and image5.shape == (8, 8, 3)


def test_food101_file_lists(tmp_path):
    base = tmp_path / "food-101"
    for c in ("apple_pie", "ramen"):
        for i in range(3):
            write_jpeg(base / "images" / c / f"{i}.jpg", i)
    (base / "meta").mkdir()
    (base / "meta" / "train.txt").write_text("apple_pie/0\napple_pie/1\nramen/0\nramen/2\n")
    (base / "meta" / "test.txt").write_text("ramen/1\napple_pie/2\n")
    test = load_dataset("food101", "test", root=str(tmp_path), image_size=8)
    assert test.classes == ["apple_pie", "ramen"] and test.labels.tolist() == [1, 0]
    assert len(load_dataset("food101", "train", root=str(tmp_path), image_size=8)) == 4


def test_a_missing_dataset_says_where_its_files_go(tmp_path, monkeypatch):
    monkeypatch.setattr(named, "CACHE", tmp_path / "cache")
    monkeypatch.delenv("LEJEPA_VIZ_DATA", raising=False)
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("cifar10", root=str(tmp_path / "data"))
    message = str(err.value)
    assert "cifar-10-batches-bin/data_batch_1.bin" in message and "--download" in message
    assert "cifar-10-binary.tar.gz" in message and str(tmp_path / "data") in message


def serve(monkeypatch, files: dict) -> list:
    """Make torchvision's downloader fetch ``{url: local file}`` instead of the network (its MD5
    check and unpacking run as they are); returns the list of URLs fetched."""
    import shutil

    import torchvision.datasets.utils as tv_utils

    fetched = []

    def urlretrieve(url, path, chunk_size=None):
        if url not in files:
            raise URLError("no network in the tests")
        fetched.append(url)
        shutil.copyfile(files[url], path)

    monkeypatch.setattr(tv_utils, "_urlretrieve", urlretrieve)
    monkeypatch.setattr(tv_utils, "_get_redirect_url", lambda url, max_hops=3: url)
    return fetched


def archive(path, folder, arcname=None) -> tuple[str, str]:
    """``folder`` as a .tar.gz at ``path``: ``(path, its MD5)``."""
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname=arcname or folder.name)
    return str(path), hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def cifar100_archive(tmp_path, monkeypatch):
    """A CIFAR-100 archive of 2 rows a split, registered under its published URL and MD5."""
    folder = tmp_path / "build" / "cifar-100-binary"
    folder.mkdir(parents=True)
    for split in ("train", "test"):
        cifar_rows(np.random.default_rng(0), 2, 2)[0].tofile(folder / f"{split}.bin")
    path, md5 = archive(tmp_path / "cifar-100-binary.tar.gz", folder)
    source = named.SOURCES["cifar100"]
    monkeypatch.setitem(named.SOURCES, "cifar100", named.Source(source.files, source.url, md5))
    monkeypatch.setattr(named, "CACHE", tmp_path / "cache")
    monkeypatch.delenv("LEJEPA_VIZ_DATA", raising=False)
    return source.url, path


def test_download_unpacks_the_published_archive_into_the_root(tmp_path, monkeypatch,
                                                             cifar100_archive):  # fmt: skip
    url, path = cifar100_archive
    fetched = serve(monkeypatch, {url: path})
    root = tmp_path / "data"
    ds = load_dataset("cifar100", "train", root=str(root), download=True)
    assert len(ds) == 2 and fetched == [url]
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["cifar-100-binary"]
    assert len(load_dataset("cifar100", "test", root=str(root), download=True)) == 2
    assert fetched == [url]  # found, not fetched again


def test_a_failed_download_leaves_nothing_that_passes_for_the_dataset(tmp_path, monkeypatch,
                                                                     cifar100_archive):  # fmt: skip
    import torchvision.datasets.utils as tv_utils

    url, path = cifar100_archive
    root = tmp_path / "data"
    serve(monkeypatch, {})  # offline
    with pytest.raises(DatasetNotFoundError, match="could not download cifar100"):
        load_dataset("cifar100", root=str(root), download=True)
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(Path(path).read_bytes()[:-100])  # cut short: its MD5 differs
    serve(monkeypatch, {url: bad})
    with pytest.raises(DatasetNotFoundError, match="could not download"):
        load_dataset("cifar100", root=str(root), download=True)

    def interrupted(archive, to, remove_finished=False):  # unpacks one file, then dies
        (Path(to) / "cifar-100-binary").mkdir()
        (Path(to) / "cifar-100-binary" / "train.bin").write_bytes(b"")
        raise KeyboardInterrupt

    serve(monkeypatch, {url: path})
    monkeypatch.setattr(tv_utils, "extract_archive", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_dataset("cifar100", root=str(root), download=True)
    assert [p.name for p in root.iterdir() if not p.name.endswith(".lock")] == []
    with pytest.raises(DatasetNotFoundError, match="not found"):
        load_dataset("cifar100", root=str(root))


def test_processes_downloading_at_once_fetch_the_archive_once(tmp_path, monkeypatch,
                                                              cifar100_archive):  # fmt: skip
    """torchrun's ranks asking for the same dataset: one downloads, the others wait for it."""
    import multiprocessing as mp
    import time

    import torchvision.datasets.utils as tv_utils

    url, path = cifar100_archive
    log = tmp_path / "fetched.txt"
    serve(monkeypatch, {url: path})
    retrieve = tv_utils._urlretrieve

    def slow(url, to, chunk_size=None):  # long enough for the others to arrive
        with open(log, "a") as f:
            f.write(url + "\n")
        time.sleep(0.5)
        retrieve(url, to)

    monkeypatch.setattr(tv_utils, "_urlretrieve", slow)
    root = str(tmp_path / "data")
    ctx = mp.get_context("fork")  # the children keep the patched downloader
    procs = [ctx.Process(target=named.dataset_root, args=("cifar100", root, True)) for _ in "abc"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert log.read_text().splitlines() == [url]
    assert len(load_dataset("cifar100", root=root)) == 2


def test_flowers102_download_puts_the_labels_beside_the_images(tmp_path, monkeypatch):
    build = tmp_path / "build"
    for i in range(1, 4):
        write_jpeg(build / "jpg" / f"image_{i:05d}.jpg", i)
    savemat(build / "imagelabels.mat", {"labels": np.array([[2, 1, 2]])})
    savemat(build / "setid.mat", {"trnid": [[1]], "valid": [[2]], "tstid": [[3]]})
    path, md5 = archive(tmp_path / "102flowers.tgz", build / "jpg")  # the archive holds jpg/ only
    source = named.SOURCES["flowers102"]
    monkeypatch.setitem(named.SOURCES, "flowers102", named.Source(source.files, source.url, md5))
    extras = {url: build / url.rsplit("/", 1)[1] for url, _ in named.FLOWERS_EXTRAS}
    monkeypatch.setattr(
        named, "FLOWERS_EXTRAS",
        tuple((url, hashlib.md5(f.read_bytes()).hexdigest()) for url, f in extras.items()),
    )  # fmt: skip
    serve(monkeypatch, {source.url: path, **extras})
    test = load_dataset("flowers102", "test", root=str(tmp_path / "data"), download=True,
                        image_size=8)  # fmt: skip
    assert test.labels.tolist() == [1]
    train = load_dataset("flowers102", "train", root=str(tmp_path / "data"), image_size=8)
    assert train.labels.tolist() == [1, 0]


def write_stl(root, counts=(("unlabeled", 4), ("train", 3), ("test", 2))):
    """STL-10's binary files: rows of 3 x 96 x 96 bytes, each channel stored column by column;
    returns ``{part: (images (N, 3, 96, 96) as shown, labels 0-based or None)}``."""
    rng, base = np.random.default_rng(2), root / "stl10_binary"
    base.mkdir()
    out = {}
    for part, n in counts:
        images = rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8)  # (N, C, row, column)
        images.transpose(0, 1, 3, 2).tofile(base / f"{part}_X.bin")  # column-major channels
        labels = None
        if part != "unlabeled":
            labels = np.array([1, 2, 1, 2, 1][:n])
            (labels + 1).astype(np.uint8).tofile(base / f"{part}_y.bin")  # stored 1-based
        out[part] = images, labels
    (base / "class_names.txt").write_text("\n".join(f"class{c}" for c in range(10)))
    return out


def test_stl10_unlabelled_rows_then_labelled_ones(tmp_path, monkeypatch):
    from lejepa_viz.data.base import UNLABELLED, labelled

    monkeypatch.setenv("LEJEPA_VIZ_CACHE", str(tmp_path / "cache"))
    parts = write_stl(tmp_path)
    train = load_dataset("stl10", "train", root=str(tmp_path), image_size=96)
    expected = np.concatenate([parts["unlabeled"][0], parts["train"][0]])
    assert torch.equal(train.images, torch.from_numpy(expected))
    assert train.labels.tolist() == [UNLABELLED] * 4 + parts["train"][1].tolist()
    images, labels = labelled(train)  # what the probes fit
    assert torch.equal(images, torch.from_numpy(parts["train"][0])) and labels.tolist() == [1, 2, 1]
    test = load_dataset("stl10", "test", root=str(tmp_path), image_size=96, pack=True)
    assert torch.equal(test.images[:], torch.from_numpy(parts["test"][0]))
    assert test.classes[0] == "class0" and test.labels.tolist() == [1, 2]


def test_training_on_stl10_skips_the_unlabelled_images_in_the_probes(tmp_path, monkeypatch):
    """A batch of unlabelled images only gives the online probe a zero loss, not a NaN; the
    final linear probe fits the labelled images."""
    from lejepa_viz.train import TrainConfig, train

    monkeypatch.setenv("LEJEPA_VIZ_CACHE", str(tmp_path / "cache"))
    write_stl(tmp_path, (("unlabeled", 8), ("train", 4), ("test", 4)))
    cfg = TrainConfig(
        dataset="stl10", root=str(tmp_path), backbone="test_vit", image_size=32, batch_size=4,
        num_local=0, steps=3, log_every=1, num_slices=16, proj_hidden=32, progress=False,
        out=str(tmp_path / "run"),
    )  # fmt: skip
    result = train(cfg)
    assert result["step"] == 3 and 0.0 <= result["linear_probe"] <= 1.0
    from lejepa_viz.data.base import UNLABELLED
    from lejepa_viz.train import train_step
    from lejepa_viz.train.parts import build

    s = build(cfg.resolved(), torch.device("cpu"))
    images = s.data.train.images[:4]
    parts = (s.learner.ddp, s.data.augment, s.learner.sigreg, s.learner.optimizer, images)
    none = train_step(*parts, torch.full((4,), UNLABELLED), lam=cfg.lam)
    assert none.probe_loss.item() == 0.0 and torch.isfinite(none.loss)
    labels = torch.tensor([1, UNLABELLED, 2, UNLABELLED])
    some = train_step(*parts, labels, lam=cfg.lam)  # the mean over the labelled rows only
    assert torch.isfinite(some.probe_loss) and some.probe_loss.item() > 0
