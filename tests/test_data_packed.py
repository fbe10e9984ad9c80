"""The packed store: the same images as decoding into memory, indexed like a tensor, packed
resumably and atomically, refused when the disk is small, unreadable files named or skipped."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import lejepa_viz.data.datasets as datasets
import lejepa_viz.data.packed as packed
from lejepa_viz.data import load_dataset
from lejepa_viz.data.packed import PackedImages, pack, prefetch


def write_folder(root: Path, per_class: int = 6, classes=("cat", "dog", "eel")) -> Path:
    """JPEGs and PNGs of mixed sizes in class folders, each image different."""
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            h, w = rng.integers(20, 60, size=2)
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            suffix = ".jpg" if i % 2 else ".png"
            Image.fromarray(pixels).save(root / c / f"{i}{suffix}")
    return root


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LEJEPA_VIZ_CACHE", str(tmp_path / "cache"))
    return write_folder(tmp_path / "images")


def items_of(root: Path):
    classes = sorted(d.name for d in root.iterdir())
    return [(p, i) for i, c in enumerate(classes) for p in sorted((root / c).iterdir())], classes


@pytest.mark.parametrize("split", ["train", "test"])
def test_a_packed_folder_is_the_folder_decoded_in_memory(folder, split):
    memory = load_dataset(f"folder:{folder}", split, image_size=16, pack=False)
    disk = load_dataset(f"folder:{folder}", split, image_size=16, pack=True)
    assert isinstance(disk.images, PackedImages) and isinstance(memory.images, torch.Tensor)
    assert disk.images.shape == memory.images.shape and disk.images.dtype == torch.uint8
    assert torch.equal(disk.images[:], memory.images)
    assert torch.equal(disk.labels, memory.labels) and disk.classes == memory.classes
    assert disk.mean == memory.mean and disk.std == memory.std
    again = load_dataset(f"folder:{folder}", split, image_size=16, pack=True)
    assert again.images.folder == disk.images.folder  # reused, not packed again


def test_packed_images_index_like_the_tensor(folder):
    items, classes = items_of(folder)
    images = PackedImages(pack(items, classes, folder.parent / "store", 8, progress=False))
    whole = images[:]
    assert whole.shape == (18, 3, 8, 8)
    for index in (3, -1, slice(2, 9, 3), [5, 5, 0], np.array([17, 1]), torch.tensor([4, 2, 9])):
        expected = whole[torch.as_tensor(index) if isinstance(index, np.ndarray) else index]
        assert torch.equal(images[index], expected)
    mask = torch.arange(18) % 4 == 1
    more = (torch.tensor(7), np.int64(-2), mask, mask.numpy(), [[1, 2], [3, 0]], (2, 0, 3),
            (slice(1, 4), 1, slice(None), 0), (torch.tensor([3, 1]), slice(None), 2))  # fmt: skip
    for index in more:
        as_tensor = index if isinstance(index, tuple) else torch.as_tensor(index)
        assert torch.equal(images[index], whole[as_tensor])
    assert images[torch.tensor([], dtype=torch.int64)].shape == (0, 3, 8, 8)
    assert images[[]].shape == (0, 3, 8, 8)
    with pytest.raises(IndexError, match="out of range"):
        images[[18]]
    with pytest.raises(IndexError, match="mask of shape"):
        images[mask[:5]]
    with pytest.raises(IndexError, match="integer or boolean"):
        images[np.array([1.0, 2.0])]
    row = np.asarray(Image.open(items[4][0]).convert("RGB").resize((8, 8)))  # a sanity look
    assert images[4].permute(1, 2, 0).shape == row.shape


def test_packing_resumes_after_a_kill_and_is_atomic(folder, monkeypatch):
    items, classes = items_of(folder)
    out = folder.parent / "store"
    reference = PackedImages(pack(items, classes, folder.parent / "ref", 8, progress=False))[:]
    monkeypatch.setattr(packed, "CHUNK", 5)
    calls = []
    real = packed.decoded

    def killed_after_two_chunks(paths, size, threads=None):
        calls.append(len(paths))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(paths, size, threads)

    monkeypatch.setattr(packed, "decoded", killed_after_two_chunks)
    with pytest.raises(KeyboardInterrupt):
        pack(items, classes, out, 8, progress=False)
    assert not out.exists()  # nothing half-done under the final name
    progress = json.loads((out.with_name("store.partial") / packed.PROGRESS).read_text())
    assert progress["next"] == 10
    calls.clear()
    monkeypatch.setattr(packed, "decoded", real)
    images = PackedImages(pack(items, classes, out, 8, progress=False))
    assert torch.equal(images[:], reference) and not out.with_name("store.partial").exists()


def test_a_changed_file_is_packed_again_and_a_damaged_store_is_refused(folder):
    items, classes = items_of(folder)
    out = pack(items, classes, folder.parent / "store", 8, progress=False)
    before = PackedImages(out)[0].clone()
    Image.new("RGB", (30, 30), (255, 0, 0)).save(items[0][0])  # the first file changes
    after = PackedImages(pack(items, classes, out, 8, progress=False))[0]
    assert not torch.equal(before, after) and after[0].float().mean() > 250
    with open(out / packed.IMAGES, "ab") as f:
        f.truncate(100)
    with pytest.raises(ValueError, match="damaged"):
        PackedImages(out)
    (out / packed.INDEX).write_text('{"key": "cut sh')  # a crash mid-write, on a disk without fsync
    with pytest.raises(ValueError, match="damaged"):
        PackedImages(out)
    again = PackedImages(pack(items, classes, out, 8, progress=False))  # packed again
    assert torch.equal(again[0], after)


def test_an_empty_list_packs_to_an_empty_store(tmp_path):
    images = PackedImages(pack([], ["a"], tmp_path / "store", 8, progress=False))
    assert images.shape == (0, 3, 8, 8) and images[:].shape == (0, 3, 8, 8)
    assert images.labels().tolist() == []


def test_rows_of_a_file_are_packed_again_when_the_file_changes(tmp_path):
    """A callable item (an STL-10 row) is stamped by the size and time of the file it reads."""
    from lejepa_viz.data.named import STL_ROW, Row

    file = tmp_path / "rows.bin"
    file.write_bytes(bytes(2 * STL_ROW))
    items = [(Row(file, i), 0) for i in range(2)]
    out = pack(items, ["a"], tmp_path / "store", 8, progress=False)
    assert PackedImages(out)[:].max() == 0
    file.write_bytes(bytes([255]) * 2 * STL_ROW)  # same rows, same size, new content
    os.utime(file, ns=(0, 10**18))
    assert PackedImages(pack(items, ["a"], out, 8, progress=False))[:].min() == 255


def test_a_disk_too_small_is_refused_before_decoding(folder, monkeypatch):
    items, classes = items_of(folder)
    usage = shutil.disk_usage(folder)
    monkeypatch.setattr(packed.shutil, "disk_usage", lambda _: usage._replace(free=1000))
    monkeypatch.setattr(packed, "decoded", lambda *a: pytest.fail("decoded before the check"))
    with pytest.raises(OSError, match=r"18 images at 8 x 8 px needs 0.00 GB more .* free"):
        pack(items, classes, folder.parent / "store", 8, progress=False)


def test_unreadable_files_are_named_or_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("LEJEPA_VIZ_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "split"
    write_folder(folder / "train"), write_folder(folder / "val", per_class=2)
    bad = folder / "train" / "dog" / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="broken.jpg.*--skip-bad-images"):
        load_dataset(f"folder:{folder}", "train", image_size=8, pack=True)
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        ds = load_dataset(
            f"folder:{folder}", "train", image_size=8, pack=True, skip_bad_images=True
        )
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        memory = load_dataset(f"folder:{folder}", "train", image_size=8, skip_bad_images=True)
    assert ds.skipped == 1 and ds.images.skipped == [str(bad)]
    assert torch.equal(ds.images[:], memory.images) and ds.mean == memory.mean
    with pytest.raises(ValueError, match="left out 1 unreadable files .*broken.jpg"):
        load_dataset(f"folder:{folder}", "train", image_size=8, pack=True)  # strict again


def test_a_large_folder_is_packed_automatically(folder, monkeypatch):
    assert isinstance(load_dataset(f"folder:{folder}", image_size=8).images, torch.Tensor)
    monkeypatch.setattr(datasets, "IN_MEMORY_BYTES", 3 * 8 * 8 * 10)  # 10 images' worth
    assert isinstance(load_dataset(f"folder:{folder}", image_size=8).images, PackedImages)


def test_prefetch_yields_every_batch_in_order():
    images = torch.arange(40).view(10, 1, 2, 2)
    batches = [torch.tensor([3, 1]), torch.tensor([0]), torch.tensor([9, 8, 7])]
    got = list(prefetch(images, iter(batches)))
    assert [i for i, _ in got] == batches
    assert all(torch.equal(x, images[i]) for i, x in got)
    assert list(prefetch(images, iter([]))) == []


def test_training_on_the_packed_folder_is_training_on_the_folder(folder, monkeypatch, tmp_path):
    """Same seed, same steps: the run reads the same images whether packed or in memory."""
    from lejepa_viz.train import TrainConfig, train

    def run(name):
        cfg = TrainConfig(
            dataset=f"folder:{folder}", image_size=32, batch_size=8, steps=3, log_every=1,
            num_local=0, num_slices=32, proj_hidden=32, final_probe=False, progress=False,
            out=str(tmp_path / name),
        )  # fmt: skip
        train(cfg)
        return [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").open()]

    memory = run("memory")
    monkeypatch.setattr(datasets, "IN_MEMORY_BYTES", 0)  # every folder split packed
    disk = run("disk")
    keys = ("loss", "pred", "sigreg")
    assert [[r.get(k) for k in keys] for r in memory] == [[r.get(k) for k in keys] for r in disk]


def packed_ddp_worker(rank: int, store: str, folder: str, out: str, cache: str) -> None:
    import torch.distributed as dist

    from lejepa_viz.train import TrainConfig, train

    os.environ["LEJEPA_VIZ_CACHE"] = cache
    datasets.IN_MEMORY_BYTES = 0  # every split packed, by whichever rank gets there first
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    cfg = TrainConfig(
        dataset=f"folder:{folder}", image_size=32, batch_size=4, num_local=0, steps=3,
        num_slices=16, proj_hidden=32, proj_dim=8, log_every=1, final_probe=False,
        progress=False, device="cpu", out=out,
    )  # fmt: skip
    torch.save(train(cfg), f"{out}.{rank}")


def test_torchrun_ranks_train_on_one_packed_store(folder, tmp_path):
    """Two gloo processes on a packed folder: packed once (the other rank waits on the lock),
    each rank reads its shard, and the replicas end identical."""
    import torch.multiprocessing as mp

    cache, out = tmp_path / "cache", str(tmp_path / "run")
    args = (str(tmp_path / "store"), str(folder), out, str(cache))
    mp.start_processes(packed_ddp_worker, args=args, nprocs=2, start_method="spawn")
    results = [torch.load(f"{out}.{rank}") for rank in range(2)]
    assert [r["step"] for r in results] == [3, 3]
    assert all(r["replica_max_diff"] == 0.0 for r in results)
    stores = sorted(p.name.rsplit("-", 2)[1] for p in (cache / "packed").iterdir() if p.is_dir())
    assert stores == ["test", "train"]  # one store a split, no partial left behind
