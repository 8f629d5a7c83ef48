"""A trained run shared by the inference tests: real files, a real dataset build and a real (short) training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from deepyard.config import Settings, load_settings
from deepyard.datasets import create_dataset, make_spec
from deepyard.networks import spec_from_data
from deepyard.train import make_config, train
from tests.conftest import save_image

NET = {
    "name": "small",
    "layers": [
        {"name": "conv1", "type": "conv", "out_channels": 8, "kernel": 3, "padding": 1},
        {"name": "relu1", "type": "relu"},
        {"name": "pool1", "type": "max_pool", "kernel": 2},
        {"name": "conv2", "type": "conv", "out_channels": 8, "kernel": 3, "padding": 1},
        {"name": "relu2", "type": "relu"},
        {"name": "fc", "type": "linear", "out_features": "num_classes"},
    ],
}


def write_bars(root: Path, per_class: int = 40, size: tuple[int, int] = (20, 16), seed: int = 0) -> None:
    """Three classes of noisy RGB images (height, width = size): a bright vertical bar at the left, middle or
    right. Written larger than the dataset, so building resizes them."""
    rng = np.random.default_rng(seed)
    h, w = size
    for label, start in enumerate((0, w // 3, 2 * w // 3)):
        for i in range(per_class):
            img = rng.integers(0, 90, (h, w, 3), dtype=np.uint8)
            img[:, start : start + w // 3] += 150
            save_image(root / f"class{label}" / f"{i:03d}.png", img)


@dataclass(frozen=True)
class Trained:
    settings: Settings
    run_id: str
    dataset: str
    images: Path  # the class folders the dataset was built from


@pytest.fixture(scope="package")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    root = tmp_path_factory.mktemp("infer")
    settings = load_settings(root / "home", data_roots=[])
    write_bars(root / "bars")
    spec = make_spec(name="bars", source={"kind": "folder", "train": root / "bars"}, width=12, height=12,
                     val_pct=25, encoding="raw")  # fmt: skip
    dataset = create_dataset(settings, spec).id
    config = make_config(epochs=6, batch_size=8, **{"solver.type": "momentum", "solver.lr": 0.05},
                         snapshot_interval=2, precision="fp32", crop_size=10)  # fmt: skip
    result = train(settings, dataset, spec_from_data(NET), config)
    return Trained(settings, result.run_id, dataset, root / "bars")
