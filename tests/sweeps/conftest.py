"""Sweeps tests: the tiny dataset and network of the training tests, a real scheduler with two CPU slots, real
worker processes and a real Optuna study in the test's home."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from deepyard.config import Settings
from deepyard.jobs import Scheduler
from deepyard.networks import NetworkSpec
from deepyard.sweeps import get_sweep
from tests.jobs.conftest import wait_for
from tests.train.conftest import tiny, tiny_net

__all__ = ["tiny", "tiny_net"]

# 108 training images, batch 8 to 32: 4 to 14 steps an epoch, a validation every half epoch
FIXED = {"epochs": 2, "val_interval": 0.5, "snapshot_interval": 0.5, "solver.type": "sgd", "precision": "fp32",
         "device": "cpu", "schedule.policy": "fixed"}  # fmt: skip
SPACE = {"solver.lr": {"type": "float", "low": 1e-4, "high": 0.5, "log": True},
         "batch_size": {"type": "choice", "values": [8, 16, 32]}}  # fmt: skip


def sweep_data(dataset: str, net: NetworkSpec, **extra: Any) -> dict[str, Any]:
    return {"dataset": dataset, "networks": [net.to_data()], "space": SPACE, "config": FIXED, "trials": 6,
            "sampler": "tpe", "prune": "median", "prune_startup": 1, "startup_trials": 2, "objective": "val_loss",
            **extra}  # fmt: skip


def wait_sweep(settings: Settings, sweep_id: str, *statuses: str) -> dict[str, Any]:
    return wait_for(lambda: (s := get_sweep(settings, sweep_id))["status"] in statuses and s,
                    f"sweep {sweep_id} {statuses}", poll=0.2)  # fmt: skip


@pytest.fixture
def two_slots(settings: Settings) -> Iterator[Scheduler]:
    sched = Scheduler(settings, cpu_slots=2, gpus=[], abort_timeout_s=60, poll_s=0.05)
    sched.start()
    yield sched
    sched.stop(timeout_s=60)
