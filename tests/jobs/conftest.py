"""Jobs tests: a real home with a SQLite file, real worker processes, the tiny dataset and network of the training
tests, and helpers to wait for a state (with a generous safeguard, never a timing assertion)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import psutil
import pytest

from deepyard.config import Settings
from deepyard.jobs import Job, Scheduler, get_job
from tests.train.conftest import tiny, tiny_net, write_bars

__all__ = ["tiny", "tiny_net"]

T = TypeVar("T")
SAFEGUARD_S = 240.0  # only to turn a hang into a failure; nothing asserts on durations

# Small, deterministic training: 108 images / batch 8 = 13 steps per epoch.
TRAIN = {"epochs": 3, "batch_size": 8, "solver.type": "momentum", "solver.lr": 0.05, "snapshot_interval": 1,
         "precision": "fp32", "device": "cpu"}  # fmt: skip
LONG = {**TRAIN, "epochs": 400}  # long enough that nothing finishes before the test stops or aborts it


def wait_for(check: Callable[[], T | None], what: str, poll: float = 0.02) -> T:
    deadline = time.monotonic() + SAFEGUARD_S
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"gave up waiting for {what}")


def wait_status(settings: Settings, job_id: str, *statuses: str) -> Job:
    return wait_for(lambda: (j := get_job(settings, job_id)).status in statuses and j, f"job {job_id} {statuses}")


def wait_training(settings: Settings, job_id: str) -> Job:
    """Until the job runs, its run exists and its first checkpoint is written (the worker is mid-training)."""

    def ready() -> Job | None:
        job = get_job(settings, job_id)
        if job.status != "running" or not job.target or job.pid is None:
            return None
        return job if list((settings.home / "runs" / job.target / "checkpoints").glob("step-*.pt")) else None

    return wait_for(ready, f"job {job_id} training")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def freeze(pid: int) -> None:
    os.kill(pid, signal.SIGSTOP)


def thaw(pid: int) -> None:
    os.kill(pid, signal.SIGCONT)


def train_params(dataset: str, net: Any, **config: Any) -> dict[str, Any]:
    return {"dataset": dataset, "network": net.to_data(), "config": {**TRAIN, **config}}


def bars_spec(settings: Settings, name: str = "bars", per_class: int = 12) -> dict[str, Any]:
    """Dataset options for a tiny build from images inside the home (the only readable place here)."""
    folder = settings.home / "sources" / name
    if not folder.is_dir():
        write_bars(folder, per_class=per_class)
    return {"spec": {"name": name, "source": {"kind": "folder", "train": str(folder)}, "width": 12, "height": 12,
                     "encoding": "raw"}, "workers": 1}  # fmt: skip


@pytest.fixture
def scheduler(settings: Settings) -> Iterator[Scheduler]:
    sched = Scheduler(settings, cpu_slots=1, gpus=[], abort_timeout_s=60, poll_s=0.05)
    sched.start()
    yield sched
    sched.stop(timeout_s=60)


@pytest.fixture
def manual(settings: Settings) -> Iterator[Scheduler]:
    """A scheduler the test drives with `tick()` (one CPU slot, GPUs 0 and 1 as numbers only)."""
    sched = Scheduler(settings, cpu_slots=1, gpus=[0, 1], abort_timeout_s=60, poll_s=0.05)
    yield sched
    sched.stop(timeout_s=10)  # reaps whatever a failed test left behind
