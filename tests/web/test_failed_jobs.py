"""A failed job says why and whether trying again can help, through the real server over HTTP with real job
processes: a failure on its input (here a source whose class folders hold no images, which only the build finds)
is recorded as permanent and its resume refused (409, with the reason); a worker killed mid-way stays resumable."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx

from tests.jobs.conftest import wait_for
from tests.web.conftest import TINY_NET, Server


def job_in(c: httpx.Client, job_id: str, *statuses: str) -> dict[str, Any]:
    return wait_for(lambda: (j := c.get(f"/api/v1/jobs/{job_id}").json())["status"] in statuses and j,
                    f"job {job_id} {statuses}")  # fmt: skip


def test_a_build_that_fails_on_its_source_is_not_resumable(server: Server, tmp_path: Path) -> None:
    empty = tmp_path / "data" / "empty"
    for name in ("cat", "dog"):
        (empty / name).mkdir(parents=True)  # class folders, so the submit check passes; no images in them
    with server.client() as c:
        res = c.post("/api/v1/datasets", json={"spec": {"name": "empty", "source": {"kind": "folder",
                                                                                   "train": str(empty)}}})  # fmt: skip
        assert res.status_code == 202, res.text
        job = job_in(c, res.json()["job"]["id"], "failed", "done")
        assert job["status"] == "failed" and "only 0 class(es) have at least 2 training images" in job["error"]
        assert job["permanent"] is True and job["resumable"] is False
        refused = c.post(f"/api/v1/jobs/{job['id']}/resume")
        assert refused.status_code == 409, refused.text
        message = refused.json()["error"]["message"]
        assert f"job {job['id']} failed on its input, and resuming would fail the same way" in message
        assert "only 0 class(es)" in message and "submit it again" in message
        assert c.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "failed"  # left as it was


def test_a_killed_worker_leaves_a_resumable_job(server: Server, dataset_id: str) -> None:
    body = {"dataset": dataset_id, "spec": json.dumps(TINY_NET), "config": {"epochs": 400, "batch_size": 8,
                                                                          "device": "cpu"}}  # fmt: skip
    with server.client() as c:
        res = c.post("/api/v1/runs", json=body)
        assert res.status_code == 202, res.text
        job_id = res.json()["jobs"][0]["id"]
        running = wait_for(lambda: (j := c.get(f"/api/v1/jobs/{job_id}").json())["status"] == "running"
                           and j["pid"] and j["target"] and j, "the job to train")  # fmt: skip
        os.kill(running["pid"], signal.SIGKILL)
        failed = job_in(c, job_id, "failed", "done")
        assert "SIGKILL" in failed["error"] and failed["permanent"] is False and failed["resumable"] is True
        again = c.post(f"/api/v1/jobs/{job_id}/resume")
        assert again.status_code == 200 and again.json()["status"] == "queued", again.text
        c.post(f"/api/v1/jobs/{job_id}/abort")
