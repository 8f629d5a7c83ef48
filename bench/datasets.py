"""Dataset benchmarks, measured side by side in one run (compare the ratios; absolute times are noisy).

1. Build rate: the 70,000 MNIST PNGs written as class folders, built by `create_dataset` (parallel decode,
   duplicate hashing, store, mean image, manifest), against a plain single-process Pillow loop that walks,
   decodes and resizes the same files into a numpy array. Target: at least 1.7x on 2 cores.
2. Random-batch read rate: batches of 256 at 28x28 from the built (memory-mapped) store, against fancy-indexing
   the same images held in an in-memory numpy array. Target: at least 0.8x.

Run with `make bench`. Prints markdown tables (pasted into the README).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from deepyard.config import load_settings
from deepyard.datasets import create_dataset, make_spec, open_split
from deepyard.datasets.mnist import export_class_folders, find_mnist_files

MNIST = Path(os.environ.get("MNIST_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))
REPEATS = 3


def pillow_loop(root: Path) -> np.ndarray:
    """What a person writes by hand: walk, open, convert, resize, stack."""
    paths = sorted(root.rglob("*.png"))
    out = np.empty((len(paths), 28, 28), np.uint8)
    for i, path in enumerate(paths):
        with Image.open(path) as img:
            out[i] = np.asarray(img.convert("L").resize((28, 28), Image.Resampling.BILINEAR))
    return out


def best_of(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_build(work: Path) -> tuple[list[str], Path]:
    pngs = work / "mnist-png"
    export_class_folders(find_mnist_files(MNIST), pngs)
    for path in pngs.rglob("*.png"):  # warm the page cache for both contenders
        path.read_bytes()
    home = load_settings(work / "home")
    spec = make_spec(
        name="mnist-png",
        source={"kind": "folder", "train": pngs / "train", "val": pngs / "test"},
        channels=1, width=28, height=28, encoding="raw",
    )  # fmt: skip
    n = sum(1 for _ in pngs.rglob("*.png"))
    base_times, our_times = [], []
    for _ in range(REPEATS):  # interleaved, so that drift in the machine's speed hits both alike
        base_times.append(best_of(lambda: pillow_loop(pngs), 1))
        our_times.append(best_of(lambda: create_dataset(home, spec), 1))
    base, ours = min(base_times), min(our_times)
    rows = [
        "| build of 70,000 MNIST PNGs | seconds | images/s | ratio |",
        "|---|---:|---:|---:|",
        f"| single-process Pillow loop (decode + resize) | {base:.2f} | {n / base:,.0f} | 1.00x |",
        f"| `deepyard dataset create` (full build) | {ours:.2f} | {n / ours:,.0f} | **{base / ours:.2f}x** |",
    ]
    return rows, home.home


def bench_read(home_dir: Path) -> list[str]:
    settings = load_settings(home_dir)
    from deepyard.datasets import list_datasets

    manifest = list_datasets(settings)[-1]
    store = open_split(settings, manifest, "train")  # memory-mapped
    array = store.to_array().copy()  # the same images in RAM
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, len(store), 256) for _ in range(2000)]

    def read(get: Callable[[np.ndarray], np.ndarray]) -> Callable[[], None]:
        def run() -> None:
            for idx in batches:
                get(idx)

        return run

    rate = {}
    for name, get in (("array", lambda i: array[i]), ("store", store.get_batch)):
        rate[name] = len(batches) * 256 / statistics.median(best_of(read(get), 1) for _ in range(5))
    return [
        "| random batches of 256 at 28x28 | images/s | ratio |",
        "|---|---:|---:|",
        f"| in-memory numpy array, fancy indexing | {rate['array']:,.0f} | 1.00x |",
        f"| deepyard store (memory-mapped `.npy`) | {rate['store']:,.0f} | **{rate['store'] / rate['array']:.2f}x** |",
    ]


def main() -> None:
    cpu = platform.processor() or platform.machine()
    print(f"machine: {os.cpu_count()} CPUs ({cpu}), Python {sys.version.split()[0]}, {platform.system()}\n")
    with tempfile.TemporaryDirectory(prefix="deepyard-bench-") as tmp:
        rows, home = bench_build(Path(tmp))
        print("\n".join(rows) + "\n")
        print("\n".join(bench_read(home)))


if __name__ == "__main__":
    main()
