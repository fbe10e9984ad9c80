"""The data path of image folders: images per second it delivers, and a run's peak memory.

    python benchmarks/data.py [--images 2000 50000] [--minutes 2] [--threads 1 2 4]
                              [--root /tmp/lejepa-viz-bench-data]

1. Generates each folder once under ``--root``: JPEGs of mixed sizes (100–400 px a side) in 10
   class folders, smooth pictures with a shape in them (what photos compress like).
2. Decoding: images/s packing the first 2,000 images of the largest folder at 64 px
   (:func:`lejepa_viz.data.packed.pack`) with 1, 2 and 4 threads.
3. Reading: images/s of random batches of 256 from that store, with :func:`~lejepa_viz.data.
   packed.prefetch` and without.
4. Runs: ``lejepa-viz train --dataset folder:PATH --max-minutes M --no-final-probe`` on each
   folder, each in its own process: its peak resident memory (``ru_maxrss``, packing included),
   whether its images were packed, and its training images/s (median over the logged
   intervals). The smallest folder is held in memory, the largest packed on disk
   (``IN_MEMORY_BYTES``), so the ratio of their step rates is the data path's cost.

Nothing here is a test: the numbers are printed side by side, with the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from lejepa_viz.data.packed import PackedImages, pack, prefetch

CLASSES = 10
RUN = """
import json, resource, sys
from lejepa_viz.cli import run
result = run(sys.argv[1:])
print("RESULT " + json.dumps({"maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                              "step": result["step"]}))
"""


def picture(seed: int) -> Image.Image:
    """A smooth picture of a random size with an ellipse in it."""
    rng = np.random.default_rng(seed)
    w, h = (int(v) for v in rng.integers(100, 401, size=2))
    ramp = np.linspace(0, 1, w)[None, :, None] * rng.uniform(0, 255, 3)
    fall = np.linspace(0, 1, h)[:, None, None] * rng.uniform(0, 255, 3)
    im = Image.fromarray(((ramp + fall) / 2).astype(np.uint8))
    x0, y0 = rng.uniform(0, 0.5, 2) * (w, h)
    x1, y1 = (x0, y0) + rng.uniform(0.3, 0.5, 2) * (w, h)
    ImageDraw.Draw(im).ellipse(
        (x0, y0, x1, y1), fill=tuple(int(v) for v in rng.integers(0, 256, 3))
    )
    return im


def write(args: tuple[Path, int]) -> None:
    folder, i = args
    path = folder / f"class{i % CLASSES}" / f"{i:06d}.jpg"
    if not path.exists():  # written aside and renamed: a killed run leaves no half a JPEG
        tmp = path.with_suffix(".tmp")
        picture(i).save(tmp, format="JPEG", quality=85)
        os.replace(tmp, path)


def make_folder(root: Path, n: int) -> Path:
    folder = root / f"jpegs-{n}"
    done = folder / ".complete"
    if not done.exists():
        for c in range(CLASSES):
            (folder / f"class{c}").mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        with Pool(os.cpu_count()) as pool:
            pool.map(write, [(folder, i) for i in range(n)], chunksize=256)
        done.touch()
        print(f"generated {n:,} JPEGs in {time.perf_counter() - start:.0f} s: {folder}")
    return folder


def items(folder: Path, n: int | None = None) -> list[tuple[Path, int]]:
    found = [(p, int(p.parent.name[5:])) for p in sorted(folder.glob("class*/*.jpg"))]
    return found[:n]


def decode_rates(folder: Path, root: Path, threads: list[int]) -> dict[int, float]:
    sample = items(folder, 2000)
    rates = {}
    for t in threads:
        out = root / f"store-{t}"
        if out.exists():
            shutil.rmtree(out)
        start = time.perf_counter()
        pack(sample, [str(c) for c in range(CLASSES)], out, 64, threads=t, progress=False)
        rates[t] = len(sample) / (time.perf_counter() - start)
    return rates


def read_rates(store: Path, batches: int = 200) -> dict[str, float]:
    images = PackedImages(store)
    g = torch.Generator().manual_seed(0)
    order = [torch.randint(len(images), (256,), generator=g) for _ in range(batches)]
    start = time.perf_counter()
    for index in order:
        images[index]
    plain = batches * 256 / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in prefetch(images, iter(order)):
        pass
    return {"plain": plain, "prefetch": batches * 256 / (time.perf_counter() - start)}


def train_run(folder: Path, root: Path, minutes: float) -> dict:
    out = root / "runs" / folder.name
    argv = ["train", "--dataset", f"folder:{folder}", "--max-minutes", str(minutes)]
    argv += ["--out", str(out), "--no-final-probe", "--no-progress", "--log-every", "5"]
    env = {**os.environ, "LEJEPA_VIZ_CACHE": str(root / "cache")}
    done = subprocess.run(
        [sys.executable, "-c", RUN, *argv], env=env, capture_output=True, text=True, check=True
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    logged = [json.loads(x) for x in (out / "metrics.jsonl").open()]
    rates = [r["images_per_s"] for r in logged if "images_per_s" in r]
    rates = rates[1:] or rates  # the first interval holds the warm-up
    packed = any((root / "cache" / "packed").glob(f"{folder.name}-*-train-64px"))
    return {**result, "images_per_s": statistics.median(rates), "packed": packed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[2000, 50_000])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--root", type=Path, default=Path("/tmp/lejepa-viz-bench-data"))
    args = parser.parse_args()
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line),
        platform.processor(),
    )
    print(f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}")
    folders = [make_folder(args.root, n) for n in sorted(args.images)]

    rates = decode_rates(folders[-1], args.root, args.threads)
    print("\ndecoding into a packed store at 64 px (2,000 JPEGs, 100-400 px):")
    for t, r in rates.items():
        print(f"  {t} thread(s): {r:,.0f} images/s")
    reads = read_rates(args.root / f"store-{args.threads[-1]}")
    print(f"reading random batches of 256: {reads['plain']:,.0f} images/s, "
          f"{reads['prefetch']:,.0f} with prefetch")  # fmt: skip

    print(f"\ntraining runs, {args.minutes:g} minutes each, each in its own process:")
    runs = {}
    for folder in folders:
        runs[folder] = r = train_run(folder, args.root, args.minutes)
        where = "packed on disk" if r["packed"] else "in memory"
        print(
            f"  {folder.name}: {where}, peak memory {r['maxrss_mb']:,.0f} MB, "
            f"{r['step']} steps, {r['images_per_s']:,.0f} images/s"
        )
    small, large = runs[folders[0]], runs[folders[-1]]
    print(
        f"\nlargest vs smallest folder: peak memory {large['maxrss_mb'] - small['maxrss_mb']:+,.0f}"
        f" MB (target within 300 MB); step time {small['images_per_s'] / large['images_per_s']:.2f}"
        "x (target at most 1.15x)"
    )


if __name__ == "__main__":
    main()
