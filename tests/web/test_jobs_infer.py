"""Jobs and inference over real HTTP: a dataset build and a training sweep run in real child processes started by
the server's scheduler; then classify, inspect, evaluate, classify many and export the trained run."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from tests.train.conftest import write_bars
from tests.web.conftest import TINY_NET, Server


def wait_jobs(c: httpx.Client, ids: list[str]) -> list[dict[str, object]]:
    """Follow the jobs until each has finished (the event stream would do; polling keeps the test simple)."""
    while True:
        found = [c.get(f"/api/v1/jobs/{i}").json() for i in ids]
        if all(j["status"] in ("done", "failed", "aborted", "interrupted") for j in found):
            return found
        time.sleep(0.2)


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def test_build_train_sweep_then_use_the_model(server: Server, tmp_path: Path) -> None:
    write_bars(tmp_path / "data" / "bars", per_class=16)
    spec = {"name": "bars", "source": {"kind": "folder", "train": str(tmp_path / "data" / "bars")}, "width": 12,
            "height": 12, "encoding": "raw"}  # fmt: skip
    with server.client() as c:
        outside = c.post("/api/v1/datasets", json={"spec": {**spec, "source": {"kind": "folder", "train": "/etc"}}})
        assert outside.status_code == 422 and "outside the data roots" in outside.json()["error"]["message"]
        job = c.post("/api/v1/datasets", json={"spec": spec}).json()["job"]
        (built,) = wait_jobs(c, [job["id"]])
        assert built["status"] == "done", built
        dataset = built["target"]
        assert c.get(f"/api/v1/datasets/{dataset}").json()["counts"] == {"train": 36, "val": 12}

        body = {"dataset": dataset, "spec": f"{TINY_NET}".replace("'", '"'), "name": "sweep",
                "config": {"epochs": 1, "device": "cpu", "solver": {"type": "sgd"}}, "lr": [0.05, 0.01],
                "batch_size": [12]}  # fmt: skip
        bad = c.post("/api/v1/runs", json={**body, "lr": [0.05, -1.0]})
        assert bad.status_code == 422 and c.get("/api/v1/jobs").json() == [built]  # nothing queued
        sweep = c.post("/api/v1/runs", json=body).json()["jobs"]
        assert [j["params"]["name"] for j in sweep] == ["sweep learning_rate:0.05 batch_size:12",
                                                        "sweep learning_rate:0.01 batch_size:12"]  # fmt: skip
        finished = wait_jobs(c, [j["id"] for j in sweep])
        assert [j["status"] for j in finished] == ["done", "done"]
        run = str(finished[0]["target"])
        shown = c.get(f"/api/v1/runs/{run}").json()
        assert shown["config"]["solver"]["lr"] == 0.05 and shown["status"] == "done"
        log = c.get(f"/api/v1/jobs/{sweep[0]['id']}/log").json()
        assert log["offset"] == len(log["text"].encode())

        img = np.zeros((12, 12, 3), np.uint8)
        img[:, 8:] = 240  # a bright bar at the right: class2
        top = c.post(f"/api/v1/runs/{run}/classify", content=_png(img), params={"name": "bar.png"}).json()
        assert len(top["top"]) == 3 and abs(sum(t["probability"] for t in top["top"]) - 1) < 1e-5
        junk = c.post(f"/api/v1/runs/{run}/classify", content=b"not an image")
        assert junk.status_code == 422 and "cannot be used" in junk.json()["error"]["message"]

        inspected = c.post(f"/api/v1/runs/{run}/inspect", content=_png(img), params={"name": "bar.png"}).json()
        assert [a["name"] for a in inspected["activations"]][:2] == ["conv", "relu"]
        assert c.get(inspected["base"] + inspected["gradcam"]["file"]).headers["content-type"] == "image/png"

        evaluating = c.post(f"/api/v1/runs/{run}/evaluate", params={"split": "val"})
        assert evaluating.status_code == 202 and evaluating.json()["job"]["kind"] == "evaluate"
        exporting = c.post(f"/api/v1/runs/{run}/export", params={"formats": ["onnx"]})
        assert exporting.status_code == 202 and exporting.json()["job"]["params"]["formats"] == ["onnx"]
        no_snapshot = c.post(f"/api/v1/runs/{run}/export", params={"snapshot": "12345"})
        assert no_snapshot.status_code == 404 and "no snapshot '12345'" in no_snapshot.json()["error"]["message"]
        bad_format = c.post(f"/api/v1/runs/{run}/export", params={"formats": ["tflite"]})
        assert bad_format.status_code == 422 and "'tflite' is not one of" in bad_format.json()["error"]["message"]
        evaluated, exported_job = wait_jobs(c, [evaluating.json()["job"]["id"], exporting.json()["job"]["id"]])
        assert evaluated["status"] == "done" and exported_job["status"] == "done", (evaluated, exported_job)
        assert evaluated["target"] == run and evaluated["result"]["count"] == 12

        evaluation = c.get(f"/api/v1/runs/{run}/results/{evaluated['id']}").json()
        assert evaluation["count"] == 12 and np.asarray(evaluation["confusion"]).sum() == 12
        assert len(evaluation["per_class"]) == 3 and evaluation["job"] == evaluated["id"]
        assert c.get(evaluation["base"] + "confusion.png").headers["content-type"] == "image/png"
        training = c.get(f"/api/v1/runs/{run}/results/{sweep[0]['id']}")
        assert training.status_code == 404 and "not an evaluation or export" in training.json()["error"]["message"]

        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for name in ("class0", "class2"):
                zf.writestr(f"{name}/a.png", _png(img))
        many = c.post(f"/api/v1/runs/{run}/classify-many", content=buf.getvalue()).json()
        assert many["count"] == 2 and len(many["per_class"]) == 3

        exported = c.get(f"/api/v1/runs/{run}/results/{exported_job['id']}").json()
        (report,) = exported["reports"]
        assert report["format"] == "onnx" and report["ok"]
        download = c.get(report["url"])
        assert download.status_code == 200 and len(download.content) == report["size_bytes"]
        sneaky = c.get(f"/api/v1/runs/{run}/files/checkpoints/best.pt")
        assert sneaky.status_code == 403
        escape = c.get(f"/api/v1/runs/{run}/files/exports/..%2F..%2F..%2Fdeepyard.db")
        assert escape.status_code in (403, 404)

        deleting = c.delete(f"/api/v1/runs/{run}")
        assert deleting.status_code == 200 and c.get(f"/api/v1/jobs/{sweep[0]['id']}").status_code == 404


def test_abort_a_running_training_then_resume_it(server: Server, dataset_id: str) -> None:
    with server.client() as c:
        body = {"dataset": dataset_id, "network": "lenet", "config": {"epochs": 200, "device": "cpu"}}
        assert c.post("/api/v1/runs", json=body).status_code == 422  # lenet does not fit 12x12 images: refused
        body = {"dataset": dataset_id, "spec": f"{TINY_NET}".replace("'", '"'),
                "config": {"epochs": 2000, "device": "cpu", "snapshot_interval": 1}}  # fmt: skip
        (job,) = c.post("/api/v1/runs", json=body).json()["jobs"]
        while (state := c.get(f"/api/v1/jobs/{job['id']}").json())["target"] is None or not (
            c.get(f"/api/v1/runs/{state['target']}").json()["snapshots"]
        ):
            time.sleep(0.1)  # until the run exists and has written its first checkpoint
        run = state["target"]

        # An evaluation of the run is a job on it too; it waits for the one CPU slot the training holds.
        evaluating = c.post(f"/api/v1/runs/{run}/evaluate").json()["job"]
        early = c.get(f"/api/v1/runs/{run}/results/{evaluating['id']}")
        assert early.status_code == 409 and f"job {evaluating['id']} is queued" in early.json()["error"]["message"]
        aborted = c.post(f"/api/v1/runs/{run}/abort")  # the run's training job, not the newer evaluation
        assert aborted.status_code == 200 and aborted.json()["id"] == job["id"]
        stopped, evaluated = wait_jobs(c, [job["id"], evaluating["id"]])
        assert stopped["status"] == "aborted" and evaluated["status"] == "done", (stopped, evaluated)
        assert c.get(f"/api/v1/runs/{run}/results/{evaluated['id']}").json()["count"] == 12

        assert c.post(f"/api/v1/runs/{run}/resume").json()["status"] == "queued"
        assert c.post(f"/api/v1/runs/{run}/abort").status_code == 200
        assert wait_jobs(c, [job["id"]])[0]["status"] == "aborted"
