"""The sweep's restart guarantee with the real server: `deepyard serve --cpu-slots 2` (a real process) runs a sweep
created over its REST API, two trials at once; the server is killed with SIGKILL mid-trial; its trial workers stop
by themselves with a checkpoint; `deepyard serve` started again resumes the interrupted trials and the study goes
on, ending with exactly the planned number of trials, each with its run, and the best trial's run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deepyard.config import Settings
from deepyard.jobs import Job, get_job, list_jobs
from deepyard.networks import NetworkSpec
from deepyard.train import get_run
from tests.jobs.conftest import freeze, gone, thaw, wait_for
from tests.sweeps.conftest import FIXED, SPACE
from tests.web.test_restart import Serve

TRIALS = 4


@pytest.fixture
def serve(settings: Settings, tmp_path: Path) -> Iterator[Any]:
    started: list[Serve] = []

    def start() -> Serve:
        started.append(Serve(settings, tmp_path / f"serve-{len(started)}.log", ("--cpu-slots", "2")))
        return started[-1]

    yield start
    for srv in started:
        srv.stop()


def training_trials(settings: Settings) -> list[Job]:
    """Trial jobs running with their run's first checkpoint written (mid-trial)."""
    found = []
    for job in list_jobs(settings, ["running"], kind="train"):
        folder = settings.home / "runs" / str(job.target) / "checkpoints"
        if job.pid and job.target and any(folder.glob("step-*.pt")):
            found.append(job)
    return found


@pytest.mark.slow  # about 90 s here: two server starts and four trial workers on two busy cores
def test_a_sweep_killed_with_the_server_mid_trial_resumes_and_finishes_its_trials(
    settings: Settings, serve: Any, tiny: str, tiny_net: NetworkSpec
) -> None:
    server = serve()
    body = {"dataset": tiny, "networks": [tiny_net.to_data()], "space": SPACE, "trials": TRIALS, "sampler": "random",
            "objective": "val_top1", "config": {**FIXED, "epochs": 3}, "name": "restart"}  # fmt: skip
    bad = server.client.post("/api/v1/sweeps", json={**body, "space": {"solver.lrr": SPACE["solver.lr"]}})
    assert bad.status_code == 422 and "'solver.lrr' is not a training setting; valid: " in bad.text
    assert _get(server, "/api/v1/sweeps") == [] and _get(server, "/api/v1/jobs") == []  # nothing queued
    created = server.client.post("/api/v1/sweeps", json=body)
    assert created.status_code == 201, created.text
    sweep = created.json()["id"]
    try:
        running = wait_for(lambda: training_trials(settings), "a trial mid-training")
        for job in running:
            freeze(job.pid or 0)  # mid-trial, until the server is dead
        server.kill()
    finally:
        server.proc.kill()
    for job in running:
        thaw(job.pid or 0)
    for job in running:
        wait_for(lambda job=job: gone(job.pid or 0), "the orphaned trial worker to stop by itself")
        assert get_job(settings, job.id).status == "interrupted"
        assert get_run(settings, str(job.target))["status"] == "interrupted"

    server = serve()
    done = wait_for(lambda: (s := _get(server, f"/api/v1/sweeps/{sweep}"))["status"] == "done" and s, "the sweep")
    assert done["total"] == TRIALS and done["counts"]["complete"] == TRIALS, done["counts"]
    runs = {t["run"] for t in done["trials"]}
    assert len(runs) == TRIALS and None not in runs
    for job in running:  # resumed, not started again: the same job, the same run, to its last step
        again = get_job(settings, job.id)
        assert again.status == "done" and [s for s, _ in again.history].count("running") == 2, again.history
        run = get_run(settings, str(job.target))
        assert run["status"] == "done" and run["result"]["steps"] == again.result["steps"]  # type: ignore[index]
    for trial in done["trials"]:  # every validation point once, in order
        assert list(trial["values"]) == [str(i) for i in range(1, len(trial["values"]) + 1)], trial["values"]
        assert trial["milestones"] and trial["milestones"][-1]["value"] == trial["value"]
    best = _get(server, f"/api/v1/sweeps/{sweep}/best")
    assert best["run"] in runs and best["best"]["value"] == max(t["value"] for t in done["trials"])
    plots = _get(server, f"/api/v1/sweeps/{sweep}/plots")
    assert len(plots["history"]) == TRIALS and set(plots["parallel"]["keys"]) == {"batch_size", "solver.lr",
                                                                                   "val_top1"}  # fmt: skip


def _get(server: Serve, path: str) -> Any:
    response = server.client.get(path)
    assert response.status_code == 200, response.text
    return response.json()
