"""The issue's restart guarantee with the real server: `deepyard serve` (a real process on a free port) runs a training
job submitted over its REST API; the server is killed with SIGKILL mid-training; the job's worker stops by itself
with a checkpoint (no orphan keeps training); `deepyard serve` started again on the same home shows the job
"interrupted"; resumed through the API, it finishes, and nothing is lost beyond the last checkpoint: metrics.jsonl
has every step exactly once, in order, and the final weights equal those of a run that never stopped."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import torch

from deepyard.config import Settings
from deepyard.networks import NetworkSpec
from deepyard.train import make_config, train
from deepyard.train.checkpoint import load_checkpoint
from tests.jobs.conftest import freeze, gone, thaw, wait_for
from tests.train.conftest import tiny, tiny_net

__all__ = ["tiny", "tiny_net"]

EPOCHS = 12  # 13 steps per epoch (108 images, batch 8): 156 steps, 143 of them after the first checkpoint, far
# more than run between that checkpoint appearing and the test freezing the worker (checked below, not assumed)
STEPS_PER_EPOCH = 13
SOLVER = {"type": "momentum", "lr": 0.05}
CONFIG = {"epochs": EPOCHS, "batch_size": 8, "snapshot_interval": 1, "precision": "fp32", "device": "cpu",
          "log_interval": 1}  # fmt: skip
FINISHED = ("done", "failed", "aborted", "interrupted")


class Serve:
    """`deepyard --home HOME serve --port PORT` as a child process, and a client for it."""

    def __init__(self, settings: Settings, log: Path, options: tuple[str, ...] = ()) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "deepyard", "--home", str(settings.home), "serve", "--port", str(self.port),
               *options]  # fmt: skip
        with log.open("wb") as out:
            env = {**os.environ, "COLUMNS": "200"}
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.client = httpx.Client(base_url=self.url, timeout=30.0)
        wait_for(self._answers, f"deepyard serve on port {self.port} (log: {log})", poll=0.1)

    def _answers(self) -> bool:
        assert self.proc.poll() is None, f"deepyard serve exited with {self.proc.returncode}"
        try:
            return self.client.get("/api/v1/health").status_code == 200
        except httpx.TransportError:
            return False

    def job(self, job_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.client.get(f"/api/v1/jobs/{job_id}").json()
        return found

    def kill(self) -> None:
        self.client.close()
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait() == -signal.SIGKILL

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # graceful: its jobs stop with a checkpoint
            self.proc.wait()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def serve(settings: Settings, tmp_path: Path) -> Iterator[Any]:
    started: list[Serve] = []

    def start() -> Serve:
        srv = Serve(settings, tmp_path / f"serve-{len(started)}.log")
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


def metric_lines(settings: Settings, run_id: str) -> list[dict[str, Any]]:
    """metrics.jsonl without the fields that depend on the clock."""
    drop = {"wall", "images_per_s", "data_wait"}
    lines = (settings.home / "runs" / run_id / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in drop} for line in lines]


def final_weights(settings: Settings, run_id: str) -> dict[str, torch.Tensor]:
    last = sorted((settings.home / "runs" / run_id / "checkpoints").glob("step-*.pt"))[-1]
    weights: dict[str, torch.Tensor] = load_checkpoint(last)["model"]
    return weights


def test_killing_deepyard_serve_mid_training_then_resuming_over_http_loses_nothing(
    settings: Settings, serve: Any, tiny: str, tiny_net: NetworkSpec
) -> None:
    config = make_config(**CONFIG, **{f"solver.{k}": v for k, v in SOLVER.items()})
    with ThreadPoolExecutor(1) as pool:  # the run that never stops, trained meanwhile in this process
        straight = pool.submit(train, settings, tiny, tiny_net, config)
        run = kill_and_resume(settings, serve, tiny, tiny_net)
        straight_id = straight.result().run_id

    # MetricsWriter drops points after the checkpoint it resumes from, so every step is there exactly once, in order:
    lines = metric_lines(settings, run)
    assert [p["step"] for p in lines if "train_loss" in p] == list(range(1, EPOCHS * STEPS_PER_EPOCH + 1))
    validated = [p["step"] for p in lines if "val_loss" in p]
    assert validated == [STEPS_PER_EPOCH * e for e in range(1, EPOCHS + 1)]
    assert [p["step"] for p in lines] == sorted(p["step"] for p in lines)
    a, b = final_weights(settings, straight_id), final_weights(settings, run)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert lines == metric_lines(settings, straight_id)  # the same points, value for value


def kill_and_resume(settings: Settings, serve: Any, tiny: str, tiny_net: NetworkSpec) -> str:
    """Submit over HTTP, SIGKILL the server mid-training, serve again, resume over HTTP until done; the run id."""
    first: Serve = serve()
    body = {"dataset": tiny, "spec": json.dumps(tiny_net.to_data()), "config": {**CONFIG, "solver": SOLVER},
            "name": "restart"}  # fmt: skip
    submitted = first.client.post("/api/v1/runs", json=body)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["jobs"][0]["id"]

    def started() -> dict[str, Any] | None:
        job = first.job(job_id)
        assert job["status"] in ("queued", "running"), job
        return job if job["status"] == "running" and job["target"] and job["pid"] else None

    running = wait_for(started, "the job to be training")
    checkpoints = settings.home / "runs" / running["target"] / "checkpoints"
    wait_for(lambda: any(checkpoints.glob("step-*.pt")), "its first checkpoint", poll=0.005)
    run, pid = running["target"], running["pid"]
    assert psutil.Process(pid).ppid() == first.proc.pid  # the worker is the server's child
    freeze(pid)  # mid-training until the server is dead, whatever the machine's speed
    try:
        first.kill()
    finally:
        thaw(pid)
    wait_for(lambda: gone(pid), "the orphaned worker to stop by itself")

    second: Serve = serve()
    stopped = second.job(job_id)
    assert stopped["status"] == "interrupted", stopped
    shown = second.client.get(f"/api/v1/runs/{run}").json()
    assert shown["status"] == "interrupted"
    stopped_at = shown["result"]["steps"]
    assert STEPS_PER_EPOCH <= stopped_at < EPOCHS * STEPS_PER_EPOCH  # part-way, after the first checkpoint
    assert f"step-{stopped_at:07d}.pt" in [s["file"] for s in shown["snapshots"]]  # its stop wrote a checkpoint

    resumed = second.client.post(f"/api/v1/runs/{run}/resume")
    assert resumed.status_code == 202 and resumed.json()["id"] == job_id and resumed.json()["status"] == "queued"
    done = wait_for(lambda: (j := second.job(job_id))["status"] in FINISHED and j, "the resumed job to finish")
    assert done["status"] == "done", done
    assert [s for s, _ in done["history"]] == ["queued", "running", "interrupted", "queued", "running", "done"]
    assert done["result"]["steps"] == EPOCHS * STEPS_PER_EPOCH
    assert second.client.get(f"/api/v1/runs/{run}").json()["status"] == "done"
    return str(run)
