"""`deepyard jobs ...` as a real command: JSON documents, one-line errors, and Ctrl-C on `jobs work` interrupting
a running training job gracefully."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from deepyard.config import Settings
from deepyard.jobs import get_job, submit
from deepyard.networks import NetworkSpec
from deepyard.train import get_run
from tests.jobs.conftest import LONG, bars_spec, gone, train_params, wait_training

DEEPYARD = [sys.executable, "-m", "deepyard"]


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([*DEEPYARD, "--home", str(settings.home), "jobs", *args], capture_output=True, text=True,
                          env=env)  # fmt: skip


def test_jobs_verbs(settings: Settings) -> None:
    assert json.loads(cli(settings, "list", "--json").stdout) == []
    params = json.dumps(bars_spec(settings))
    queued = json.loads(cli(settings, "submit", "dataset", params, "--priority", "2", "--json").stdout)
    assert queued["status"] == "queued" and queued["priority"] == 2 and queued["slots"] == {"cpu": 1}
    job_id = queued["id"]
    assert [j["id"] for j in json.loads(cli(settings, "queue", "--json").stdout)] == [job_id]
    aborted = json.loads(cli(settings, "abort", job_id, "--json").stdout)
    assert aborted["status"] == "aborted"
    assert json.loads(cli(settings, "resume", job_id, "--json").stdout)["status"] == "queued"
    shown = json.loads(cli(settings, "show", job_id, "--json").stdout)
    assert [s for s, _ in shown["history"]] == ["queued", "aborted", "queued"]
    assert job_id in cli(settings, "list").stdout
    assert cli(settings, "delete", job_id).returncode == 0
    missing = cli(settings, "show", job_id)
    assert missing.returncode == 2 and f"no job '{job_id}'" in missing.stderr and "Traceback" not in missing.stderr


def test_bad_submissions_are_one_line_errors(settings: Settings) -> None:
    bad = cli(settings, "submit", "dataset", "{not json")
    assert bad.returncode == 2 and "params is not valid JSON" in bad.stderr
    kind = cli(settings, "submit", "bake", "{}")
    assert (
        kind.returncode == 2
        and "unknown job kind 'bake'; valid: 'dataset', 'train', 'evaluate', 'export' or 'find'" in kind.stderr
    )
    slots = cli(settings, "submit", "dataset", json.dumps(bars_spec(settings)), "--slots", '{"tpu": 1}')
    assert slots.returncode == 2 and "slot type 'tpu'" in slots.stderr
    assert json.loads(cli(settings, "list", "--json").stdout) == []


def test_ctrl_c_on_jobs_work_interrupts_training_with_a_checkpoint(
    settings: Settings, tiny: str, tiny_net: NetworkSpec, tmp_path: Path
) -> None:
    job = submit(settings, "train", train_params(tiny, tiny_net, **LONG))
    cmd = [*DEEPYARD, "--home", str(settings.home), "jobs", "work", "--poll", "0.05"]
    with (tmp_path / "work.log").open("wb") as log:
        server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        running = wait_training(settings, job.id)
        server.send_signal(signal.SIGINT)
        assert server.wait() == 0
    finally:
        server.kill()
    assert running.pid is not None and gone(running.pid)  # the scheduler waited for its worker
    stopped = get_job(settings, job.id)
    assert stopped.status == "interrupted"
    run = get_run(settings, running.target or "")
    steps = run["result"]["steps"]
    assert run["status"] == "interrupted" and 0 < steps < 400 * 13
    assert (settings.home / "runs" / (running.target or "") / "checkpoints" / f"step-{steps:07d}.pt").is_file()
    log = cli(settings, "log", job.id).stdout
    assert f"job {job.id}: interrupted" in log
