"""The accuracy gate: LeNet on the full MNIST (60,000 training images) reaches 99.0% within 3 epochs."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepyard.config import Settings
from deepyard.datasets import import_mnist
from deepyard.train import make_config, train

# The README's "3-epoch recipe".
RECIPE = {"epochs": 3, "batch_size": 64, "solver.type": "nesterov", "solver.lr": 0.05, "solver.weight_decay": 5e-4,
          "schedule.policy": "onecycle", "schedule.pct_start": 15}  # fmt: skip


@pytest.mark.slow
def test_lenet_reaches_99_percent_on_mnist_in_3_epochs(settings: Settings, mnist_dir: Path) -> None:
    dataset = import_mnist(settings, mnist_dir)
    result = train(settings, dataset.id, "lenet", make_config(**RECIPE))
    print(f"LeNet, 3 epochs: {result.last_val} in {result.seconds:.0f} s")
    assert result.epochs == 3
    assert result.last_val["val_top1"] >= 99.0, result.last_val
