"""The issue's key guarantee: kill the server (here `deepyard jobs work`, a real separate process) during a
training job; its worker stops by itself with a checkpoint (no orphan keeps training); a new scheduler shows the
job "interrupted"; resumed, it finishes with the same weights and metrics as a run that never stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from deepyard.config import Settings
from deepyard.jobs import Job, Scheduler, get_job, resume_job, submit
from deepyard.networks import NetworkSpec
from deepyard.train import get_run, make_config, train
from deepyard.train.checkpoint import load_checkpoint
from tests.jobs.conftest import TRAIN, freeze, gone, thaw, train_params, wait_for, wait_status, wait_training

EPOCHS = 20  # 260 steps: far more than run between the first checkpoint and the test freezing the worker


def start_server(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "deepyard", "--home", str(settings.home), "jobs", "work", "--poll", "0.05"]
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})


def kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL


def final_weights(settings: Settings, run_id: str) -> dict[str, torch.Tensor]:
    last = sorted((settings.home / "runs" / run_id / "checkpoints").glob("step-*.pt"))[-1]
    weights: dict[str, torch.Tensor] = load_checkpoint(last)["model"]
    return weights


def metric_lines(settings: Settings, run_id: str) -> list[dict[str, Any]]:
    drop = {"wall", "images_per_s", "data_wait"}
    lines = (settings.home / "runs" / run_id / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in drop} for line in lines]


def finish_with_new_scheduler(settings: Settings, job: Job) -> Job:
    with Scheduler(settings, cpu_slots=1, gpus=[], poll_s=0.05):
        assert get_job(settings, job.id).status == "interrupted"
        resume_job(settings, job.id)
        return wait_status(settings, job.id, "done", "failed", "aborted", "interrupted")


def test_killing_the_server_mid_training_loses_nothing(
    settings: Settings, tiny: str, tiny_net: NetworkSpec, tmp_path: Path
) -> None:
    job = submit(settings, "train", train_params(tiny, tiny_net, epochs=EPOCHS, log_interval=1))
    server = start_server(settings, tmp_path / "server.log")
    try:
        running = wait_training(settings, job.id)
        assert running.pid is not None and running.target is not None
        freeze(running.pid)  # mid-training, until the server is dead
        kill(server)
    finally:
        server.kill()
    thaw(running.pid)
    wait_for(lambda: gone(running.pid or 0), "the orphaned worker to stop by itself")
    stopped = get_job(settings, job.id)
    assert stopped.status == "interrupted", (stopped.status, stopped.error)
    run = get_run(settings, running.target)
    assert run["status"] == "interrupted"
    stopped_at = run["result"]["steps"]
    assert 13 <= stopped_at < EPOCHS * 13  # it stopped part-way, after the first checkpoint
    assert (settings.home / "runs" / running.target / "checkpoints" / f"step-{stopped_at:07d}.pt").is_file()

    done = finish_with_new_scheduler(settings, job)
    assert done.status == "done", done.error
    assert done.target == running.target and done.result is not None and done.result["steps"] == EPOCHS * 13
    assert [s for s, _ in done.history] == ["queued", "running", "interrupted", "queued", "running", "done"]
    assert get_run(settings, running.target)["status"] == "done"

    straight = train(settings, tiny, tiny_net, make_config(**{**TRAIN, "epochs": EPOCHS, "log_interval": 1}))
    a, b = final_weights(settings, straight.run_id), final_weights(settings, running.target)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert metric_lines(settings, running.target) == metric_lines(settings, straight.run_id)  # every step, once


def test_a_crash_of_server_and_worker_leaves_an_interrupted_job_that_resumes(
    settings: Settings, tiny: str, tiny_net: NetworkSpec, tmp_path: Path
) -> None:
    job = submit(settings, "train", train_params(tiny, tiny_net, epochs=EPOCHS))
    server = start_server(settings, tmp_path / "server.log")
    try:
        running = wait_training(settings, job.id)
        assert running.pid is not None and running.target is not None
        os.killpg(running.pid, signal.SIGKILL)  # power cut: nobody reports anything
        kill(server)
    finally:
        server.kill()
    wait_for(lambda: gone(running.pid or 0), "the worker to be gone")
    assert get_job(settings, job.id).status == "running"  # as the database was left
    assert get_run(settings, running.target)["status"] == "running"
    with Scheduler(settings, cpu_slots=1, gpus=[], poll_s=0.05) as sched:
        recovered = get_job(settings, job.id)
        assert recovered.status == "interrupted" and not sched.workers
        assert get_run(settings, running.target)["status"] == "interrupted"
    done = finish_with_new_scheduler(settings, job)
    assert done.status == "done", done.error
    assert done.result is not None and done.result["steps"] == EPOCHS * 13 and done.target == running.target
