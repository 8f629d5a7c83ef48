"""What can be checked when a form is submitted is checked then, before a job is queued (a 422 naming it)."""

from __future__ import annotations

from pathlib import Path

from tests.web.conftest import Server


def test_a_dataset_source_that_cannot_be_listed_is_refused_at_submit(server: Server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "idx").mkdir()
    (data / "idx" / "train-images-idx3-ubyte").write_bytes(b"\0" * 16)  # raw MNIST files: no class folders
    cases = {
        str(data / "missing"): "does not exist or is not a folder",
        str(data / "idx"): "has no class sub-folders",
    }
    with server.client() as c:
        for folder, reason in cases.items():
            spec = {"name": "x", "source": {"kind": "folder", "train": folder}}
            res = c.post("/api/v1/datasets", json={"spec": spec})
            assert res.status_code == 422 and reason in res.json()["error"]["message"], res.text
        missing_list = {"kind": "list", "train": str(data / "train.txt"), "labels": str(data / "labels.txt")}
        res = c.post("/api/v1/datasets", json={"spec": {"name": "x", "source": missing_list}})
        assert res.status_code == 422 and "does not exist or is not a file" in res.json()["error"]["message"]
        assert c.get("/api/v1/jobs").json() == []  # nothing was queued
