"""A run trained by `deepyard train` (the CLI, no job) whose process is killed hard keeps "running" in run.json: it
never got to say otherwise. The server tells it from a live one by the process recorded in run.json: while the
process lives the run is running (no delete, no second training); once it is gone the run is "interrupted",
deletable, and resumable from its last checkpoint as a train job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from deepyard.files import read_json
from tests.cli.test_datasets_cli import run as run_cli
from tests.jobs.conftest import freeze, wait_for
from tests.web.conftest import TINY_NET, Server
from tests.web.test_jobs_infer import wait_jobs

EPOCHS = 2000  # 3 steps per epoch (36 images, batch 12), a checkpoint every 5 epochs (15 steps): the runs never end
# on their own during the test (thousands of steps after the point where the test stops them)


def cli_train(server: Server, dataset: str, name: str, spec: Path, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "deepyard", "--home", str(server.settings.home), "train", "--dataset", dataset,
           "--network", str(spec), "--epochs", str(EPOCHS), "--batch-size", "12", "--device", "cpu", "--name", name,
           "--set", "snapshot_interval=5", "--set", "log_interval=1"]  # fmt: skip
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})


def run_named(server: Server, name: str) -> dict[str, Any] | None:
    """run.json of the run called `name`, once the CLI has created it."""
    runs = server.settings.home / "runs"
    for path in runs.glob("*/run.json") if runs.is_dir() else []:
        info: dict[str, Any] = read_json(path)
        if info["name"] == name:
            return info
    return None


def newest_checkpoint(folder: Path) -> int:
    return max(int(p.stem.split("-")[1]) for p in (folder / "checkpoints").glob("step-*.pt"))


def past(folder: Path, step: int) -> bool:
    """True when the run's metrics.jsonl has a point after `step`."""
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    return any(json.loads(line)["step"] > step for line in lines if line.endswith("}"))


def kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL  # reaped: no zombie left to look alive


def test_a_killed_cli_training_shows_interrupted_then_deletes_or_resumes(
    server: Server, dataset_id: str, tmp_path: Path
) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(json.dumps(TINY_NET))  # JSON is YAML
    doomed = cli_train(server, dataset_id, "doomed", spec, tmp_path / "doomed.log")
    resumed = cli_train(server, dataset_id, "resumed", spec, tmp_path / "resumed.log")
    try:
        first = wait_for(lambda: run_named(server, "doomed"), "the first CLI run to exist", poll=0.005)
        freeze(doomed.pid)  # queued or running, as the process left it
        folder = server.settings.home / "runs" / wait_for(lambda: run_named(server, "resumed"), "the second run")["id"]
        wait_for(lambda: any((folder / "checkpoints").glob("step-*.pt")), "its first checkpoint", poll=0.005)
        wait_for(lambda: past(folder, newest_checkpoint(folder)), "a metrics point past it", poll=0.005)
        freeze(resumed.pid)  # mid-training, with a checkpoint (and, unless one more was written, points after it)
        second = run_named(server, "resumed")
        assert second is not None and second["status"] == "running"
        assert second["process"]["pid"] == resumed.pid

        with server.client() as c:
            for info, proc in ((first, doomed), (second, resumed)):
                shown = c.get(f"/api/v1/runs/{info['id']}").json()
                assert shown["status"] in ("queued", "running") and shown["summary"]["status"] == shown["status"]
                refused = c.delete(f"/api/v1/runs/{info['id']}")
                assert refused.status_code == 409 and f"process {proc.pid} on" in refused.json()["error"]["message"]
            twice = c.post(f"/api/v1/runs/{second['id']}/resume")  # a second training of a run in training
            assert twice.status_code == 409 and "outside the job system" in twice.json()["error"]["message"]
            assert c.get("/api/v1/jobs").json() == []

            kill(doomed)
            kill(resumed)
            listed = {r["id"]: r["status"] for r in c.get("/api/v1/runs").json()}
            assert listed == {first["id"]: "interrupted", second["id"]: "interrupted"}
            cli = json.loads(run_cli(server.settings.home, "run", "list", "--json").stdout)  # the CLI tells it too
            assert {r["id"]: r["status"] for r in cli} == listed
            assert read_json(folder / "run.json")["status"] == "running"  # run.json itself is as the process left it
            with server.client() as browser:  # the page sets a CSRF cookie, which this API client does without
                assert 'id="run-status">interrupted<' in browser.get(f"/runs/{second['id']}").text

            assert c.delete(f"/api/v1/runs/{first['id']}").status_code == 200
            job = c.post(f"/api/v1/runs/{second['id']}/resume")
            assert job.status_code == 202 and job.json()["params"] == {"run": second["id"]}
            restored = newest_checkpoint(folder)

            def training_again() -> dict[str, Any] | None:
                job_now = c.get(f"/api/v1/jobs/{job.json()['id']}").json()
                assert job_now["status"] in ("queued", "running"), job_now
                info = c.get(f"/api/v1/runs/{second['id']}").json()
                # "running" with the worker's pid: it has truncated the metrics to its checkpoint (MetricsWriter
                # comes first), so points past the checkpoint are its own
                moved = info["status"] == "running" and info["process"]["pid"] == job_now["pid"]
                return info if moved and past(folder, restored + 3) else None

            again = wait_for(training_again, "the resumed run to train past its checkpoint")
            assert again["summary"]["status"] == "running"
            assert c.post(f"/api/v1/runs/{second['id']}/abort").status_code == 200
            (stopped,) = wait_jobs(c, [job.json()["id"]])
            assert stopped["status"] == "aborted", stopped
            # Killed hard, it had written points past its last checkpoint; resumed, it dropped those and wrote them
            # again (MetricsWriter truncates to the checkpoint), so every step is there once, in order:
            points = c.get(f"/api/v1/runs/{second['id']}/metrics").json()["points"]
            last = c.get(f"/api/v1/runs/{second['id']}").json()["result"]["steps"]  # where the abort stopped it
            assert last > restored + 3
            assert [p["step"] for p in points if "train_loss" in p] == list(range(1, last + 1))
    finally:
        for proc in (doomed, resumed):
            if proc.poll() is None:
                kill(proc)
