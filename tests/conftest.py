"""Shared fixtures: every test gets its own home under tmp_path; helpers write real image files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepyard.config import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path / "home", data_roots=[])


@pytest.fixture
def mnist_dir() -> Path:
    assert (SHARED_MNIST / "train-images-idx3-ubyte.gz").is_file(), f"MNIST files missing in {SHARED_MNIST}"
    return SHARED_MNIST


def save_image(path: Path, arr: np.ndarray, fmt: str | None = None, **kwargs: object) -> Path:
    """Write an (H, W) or (H, W, C) uint8 array as an image file, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format=fmt, **kwargs)
    return path


def random_image(rng: np.random.Generator, size: tuple[int, int] = (12, 10), channels: int = 3) -> np.ndarray:
    """Random pixels of (height, width) = size."""
    shape = (*size, channels) if channels == 3 else size
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def make_class_folders(
    root: Path, classes: dict[str, int], seed: int = 0, size: tuple[int, int] = (12, 10), channels: int = 3
) -> dict[str, list[np.ndarray]]:
    """`root/<class>/<i>.png` with random pixels; returns the arrays written per class."""
    rng = np.random.default_rng(seed)
    written: dict[str, list[np.ndarray]] = {}
    for name, count in classes.items():
        written[name] = []
        for i in range(count):
            arr = random_image(rng, size, channels)
            save_image(root / name / f"{i:03d}.png", arr)
            written[name].append(arr)
    return written
