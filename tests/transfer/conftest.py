"""The training tests' tiny dataset and network, and a pretrained run on them to fine-tune from."""

from __future__ import annotations

import pytest

from deepyard.config import Settings
from deepyard.networks import NetworkSpec
from deepyard.train import make_config, train
from tests.train.conftest import tiny, tiny_net  # noqa: F401  (fixtures)

# keep_last 0: every snapshot is kept (the tests look at early ones)
BASE = {"epochs": 2, "batch_size": 8, "solver.type": "momentum", "solver.lr": 0.05, "schedule.policy": "fixed",
        "solver.weight_decay": 0, "snapshot_interval": 0.5,
        "precision": "fp32", "augment.noise": 0.02, "keep_last": 0}  # fmt: skip


@pytest.fixture
def pretrained_run(settings: Settings, tiny: str, tiny_net: NetworkSpec) -> str:  # noqa: F811
    """A finished run of the tiny network on the tiny dataset (the weights to start from)."""
    return train(settings, tiny, tiny_net, make_config(**BASE)).run_id
