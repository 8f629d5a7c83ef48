"""A fine-tune whose source cannot start on the dataset is refused at submit (422 naming the mismatch), and a train
job that fails once started leaves its run failed with the reason, as its job says: the real server over HTTP with
real job processes (issue 13 item 6)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec
from deepyard.train import make_config, train
from tests.train.conftest import write_bars
from tests.web.conftest import TINY_NET, Server
from tests.web.test_failed_jobs import job_in

CPU = {"epochs": 1, "batch_size": 8, "device": "cpu"}


def bars_dataset(settings: Settings, root: Path, name: str, size: int, channels: int) -> str:
    write_bars(root / name, per_class=4, size=size)
    spec = make_spec(name=name, source={"kind": "folder", "train": root / name}, width=size, height=size,
                     channels=channels, val_pct=25, encoding="raw")  # fmt: skip
    return create_dataset(settings, spec).id


def test_a_lenet_run_as_the_start_of_a_64x64_rgb_dataset_is_refused_at_submit(
    server: Server, web_settings: Settings, tmp_path: Path
) -> None:
    grey = bars_dataset(web_settings, tmp_path / "data", "grey", 28, 1)
    rgb = bars_dataset(web_settings, tmp_path / "data", "rgb", 64, 3)
    lenet = train(web_settings, grey, "lenet", make_config(**CPU)).run_id
    with server.client() as c:
        res = c.post("/api/v1/runs", json={"dataset": rgb, "source": f"run:{lenet}", "config": CPU})
        assert res.status_code == 422, res.text
        message = res.json()["error"]["message"]
        assert "trained on 1x28x28 inputs and this dataset gives 3x64x64" in message, message
        assert "layers.ip1.1.weight" in message and "(500, 800)" in message and "Build the dataset at 28x28" in message
        assert c.get("/api/v1/jobs").json() == []  # nothing was queued
        ok = c.post("/api/v1/runs", json={"dataset": grey, "source": f"run:{lenet}", "config": CPU})
        assert ok.status_code == 202, ok.text  # the same source on a dataset it fits is accepted
        c.post(f"/api/v1/jobs/{ok.json()['jobs'][0]['id']}/abort")


def test_a_train_job_that_fails_after_it_starts_leaves_its_run_failed_with_the_reason(
    server: Server, web_settings: Settings, dataset_id: str, tmp_path: Path
) -> None:
    weights = tmp_path / "data" / "other.safetensors"  # weights of some other network: nothing matches by name
    save_file({"encoder.weight": torch.zeros(4, 4)}, str(weights))
    body = {"dataset": dataset_id, "spec": json.dumps(TINY_NET), "source": str(weights), "config": CPU}
    with server.client() as c:
        res = c.post("/api/v1/runs", json=body)
        assert res.status_code == 202, res.text  # a bare weights file records no shapes: only loading tells
        job = job_in(c, res.json()["jobs"][0]["id"], "failed", "done")
        assert job["status"] == "failed" and "none of the pretrained weights fit this network" in job["error"]
        run = c.get(f"/api/v1/runs/{job['target']}").json()
        assert run["status"] == "failed", run["status"]
        assert "none of the pretrained weights fit this network" in run["error"]
        listed = next(r for r in c.get("/api/v1/runs").json() if r["id"] == job["target"])
        assert listed["status"] == "failed"
