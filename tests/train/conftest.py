"""A tiny, learnable dataset and a tiny network, built for real under each test's home."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec
from deepyard.networks import NetworkSpec, spec_from_data
from tests.conftest import save_image


def write_bars(root: Path, per_class: int = 48, size: int = 12, seed: int = 0) -> None:
    """Three classes of noisy RGB images: a bright bar at the left, in the middle, or at the right."""
    rng = np.random.default_rng(seed)
    for label, start in enumerate((0, size // 3, 2 * size // 3)):
        for i in range(per_class):
            img = rng.integers(0, 90, (size, size, 3), dtype=np.uint8)
            img[:, start : start + size // 3] += 150
            save_image(root / f"class{label}" / f"{i:03d}.png", img)


@pytest.fixture
def tiny(settings: Settings, tmp_path: Path) -> str:
    write_bars(tmp_path / "bars")
    spec = make_spec(name="bars", source={"kind": "folder", "train": tmp_path / "bars"}, width=12, height=12,
                     val_pct=25, encoding="raw")  # fmt: skip
    return create_dataset(settings, spec).id


@pytest.fixture
def tiny_net() -> NetworkSpec:
    return spec_from_data({
        "name": "tiny",
        "layers": [
            {"name": "conv", "type": "conv", "out_channels": 6, "kernel": 3},
            {"name": "relu", "type": "relu"},
            {"name": "pool", "type": "max_pool", "kernel": 2},
            {"name": "drop", "type": "dropout", "p": 0.2},
            {"name": "fc", "type": "linear", "out_features": "num_classes"},
        ],
    })  # fmt: skip
