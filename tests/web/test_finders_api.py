"""The LR range test and the batch-size finder as "find" jobs (POST /api/v1/runs/find): the real server over HTTP
with real worker processes; the request answers at once and the job's result holds the value (issue 13 item 9).
The LR range test's job is walked through the New run page's button (tests/web/test_finders_browser.py)."""

from __future__ import annotations

import json

from deepyard.config import Settings
from tests.web.conftest import TINY_NET, Server
from tests.web.test_failed_jobs import job_in

CPU = {"device": "cpu", "batch_size": 8, "solver": {"type": "sgd"}}


def test_the_batch_size_finder_runs_as_a_job(server: Server, web_settings: Settings, dataset_id: str) -> None:
    body = {"what": "batch_size", "dataset": dataset_id, "network": "lenet", "config": CPU}
    with server.client() as c:
        refused = c.post("/api/v1/runs/find", json=body)  # lenet's 28x28 layers on 12x12 images: checked at submit
        assert refused.status_code == 422, refused.text
        body = {**body, "network": None, "spec": json.dumps(TINY_NET)}
        job = job_in(c, c.post("/api/v1/runs/find", json=body).json()["job"]["id"], "done", "failed")
        assert job["status"] == "done", job["error"]
        found = job["result"]["batch_size"]
        assert found >= 1 and found & (found - 1) == 0 and found <= 36  # a power of two, at most the 36 train images
        assert job["kind"] == "find" and job["result"]["what"] == "batch_size"
        bad = c.post("/api/v1/runs/find", json={**body, "what": "epochs"})
        assert bad.status_code == 422 and "lr" in bad.text and "batch_size" in bad.text
