"""Data the task tests make: MNIST digit pairs with both digits as labels, and images whose mean brightness is
the value to predict. Written as real files (PNG images, CSV and list files), as a user's would be."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from deepyard.datasets.idx import read_idx_pair
from tests.conftest import SHARED_MNIST, save_image


def mnist_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x, y = read_idx_pair(SHARED_MNIST / "train-images-idx3-ubyte.gz", SHARED_MNIST / "train-labels-idx1-ubyte.gz")
    pick = np.random.default_rng(seed).choice(len(x), size=n, replace=False)
    return x[pick], y[pick]


def write_pairs(root: Path, n: int, seed: int = 0, names: tuple[str, ...] = ()) -> Path:
    """`n` 28x56 images of two different MNIST digits side by side, and `labels.csv` (`image,labels`: both digits,
    spelled `d3 d7`, in either order). Returns the CSV. Hard in the ways that matter: any digit may be on either
    side, and a pair's label says nothing about which is where."""
    digits, labels = mnist_digits(2 * n, seed)
    rows = ["image,labels"]
    for i in range(n):
        a, b = 2 * i, 2 * i + 1
        if labels[a] == labels[b]:
            b = (b + 2) % (2 * n) if labels[(b + 2) % (2 * n)] != labels[a] else b
        pair = np.concatenate([digits[a], digits[b]], axis=1)
        name = f"img/{i:05d}.png"
        save_image(root / name, pair)
        rows.append(f"{name},d{labels[a]} d{labels[b]}" if labels[a] != labels[b] else f"{name},d{labels[a]}")
    csv = root / "labels.csv"
    csv.write_text("\n".join(rows) + "\n")
    return csv


def write_brightness(root: Path, n: int, seed: int = 0) -> Path:
    """`n` 28x28 images: an MNIST digit at a random contrast over a random background with noise; `values.txt`
    lists `path mean_brightness` (0..255). The digit's shape and size vary, so the mean is not a fixed function
    of one pixel. Returns the list file."""
    rng = np.random.default_rng(seed)
    digits, _ = mnist_digits(n, seed)
    lines = []
    for i, digit in enumerate(digits):
        background, gain = rng.uniform(0, 90), rng.uniform(0.25, 0.65)
        img = background + gain * digit.astype(np.float64) + rng.normal(0, 6, digit.shape)
        img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        name = f"img/{i:05d}.png"
        save_image(root / name, img)
        lines.append(f"{name} {img.mean():.4f}")
    listing = root / "values.txt"
    listing.write_text("\n".join(lines) + "\n")
    return listing


RECIPE = ["--network", "lenet", "--solver", "adam", "--lr", "0.002", "--policy", "onecycle", "--batch-size", "32"]


def gate(home: Path, source: Path, task: str, size: str, epochs: int) -> dict[str, Any]:
    """Build, train (RECIPE) and evaluate through the console script; the evaluation document."""
    from tests.cli.test_datasets_cli import run

    made = run(home, "dataset", "create", str(source), "--task", task, "--channels", "1", "--size", size, "--name", "d")
    assert made.returncode == 0, made.stderr
    trained = run(home, "train", "--dataset", "d", *RECIPE, "--epochs", str(epochs), "--json")
    assert trained.returncode == 0, trained.stderr
    doc: dict[str, Any] = json.loads(run(home, "evaluate", json.loads(trained.stdout)["run"], "--json").stdout)
    return doc
