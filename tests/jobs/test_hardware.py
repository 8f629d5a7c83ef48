"""Hardware figures for the live panel: a real busy process tree measured with psutil; NVML when present. A CPU
job's threads: its share of the cores, through a real scheduler and worker."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from deepyard.config import Settings
from deepyard.jobs import ProcessSampler, Scheduler, gpu_figures, hardware_figures, submit
from deepyard.jobs.hardware import (
    THREAD_VARIABLES,
    _nvml,
    cpu_threads,
    cuda_visible,
    thread_env,
    usable_cores,
    visible_gpus,
)
from deepyard.networks import NetworkSpec
from deepyard.train import get_run
from tests.jobs.conftest import train_params, wait_status

BUSY = (
    "import subprocess, sys\n"
    "subprocess.Popen([sys.executable, '-c', 'while True: pass'])\n"
    "x = bytearray(64 << 20)\n"
    "while True: pass\n"
)


def test_cpu_and_memory_of_a_busy_process_tree() -> None:
    proc = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        sampler = ProcessSampler(proc.pid)
        while (first := sampler.sample()) is not None and first.processes < 2:
            time.sleep(0.05)  # until the grandchild exists
        time.sleep(0.5)  # an interval for the CPU figure (not asserted on)
        figures = sampler.sample()
        assert figures is not None and figures.processes == 2
        assert figures.cpu_percent > 0 and figures.memory_bytes > 64 << 20
        panel = hardware_figures(proc.pid, sampler)
        assert panel["process"]["pid"] == proc.pid and isinstance(panel["gpus"], list)
    finally:
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
        proc.wait()
    assert sampler.sample() is None  # gone
    assert hardware_figures(None)["process"] is None


def test_gpu_figures_come_from_nvml_or_are_empty() -> None:
    found = gpu_figures()
    if _nvml() is None:
        assert found == []
    else:
        assert found and all(g.memory_total_bytes > 0 and 0 <= g.utilization_percent <= 100 for g in found)


def test_child_gpu_numbers_map_through_our_own_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,6")
    assert cuda_visible([1, 2]) == "5,6" and visible_gpus() == [0, 1, 2]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert cuda_visible([0, 1]) == "0,1"


def test_a_cpu_job_gets_its_share_of_the_cores() -> None:
    assert cpu_threads(1, 1, cores=8) == 8  # one slot: every core, as PyTorch's default
    assert cpu_threads(1, 2, cores=8) == 4 and cpu_threads(2, 4, cores=8) == 4 and cpu_threads(1, 3, cores=2) == 1
    assert thread_env(1, 2, environ={}, cores=8) == {"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4"}
    assert thread_env(1, 4, environ={}, cores=2) == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    assert thread_env(1, 2, environ={"OMP_NUM_THREADS": "3"}) == {}  # the user's choice wins
    assert thread_env(0, 2, environ={}) == {}  # a GPU job holds no CPU slot


def test_a_training_job_trains_with_its_share_of_the_cores(
    settings: Settings, tiny: str, tiny_net: NetworkSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with Scheduler(settings, cpu_slots=2, poll_s=0.05):
        job = submit(settings, "train", train_params(tiny, tiny_net, epochs=1))
        done = wait_status(settings, job.id, "done", "failed")
    assert done.status == "done", done.error
    assert get_run(settings, done.target or "")["placement"]["threads"] == max(1, usable_cores() // 2)
