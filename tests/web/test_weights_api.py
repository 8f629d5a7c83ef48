"""Starting weights offline, over HTTP against the real server: a weights file picked in the data roots (the folder
listing names it) or uploaded (safetensors, or a .pt read with weights_only: one carrying code is refused, a big
one is 413), a run started from it by a real job, and a model archive imported into the store (issue 13 item 9)."""

from __future__ import annotations

import collections
import json
import pickle
from pathlib import Path

import torch
from safetensors.torch import save_file

from deepyard.config import Settings
from deepyard.infer.archive import write_archive
from deepyard.infer.model import open_model
from deepyard.train.checkpoint import load_checkpoint
from deepyard.train.runs import get_run, run_dir
from deepyard.web.files import Limits
from tests.web.conftest import TINY_NET, Server
from tests.web.test_failed_jobs import job_in

CPU = {"epochs": 1, "batch_size": 8, "device": "cpu"}


def best_weights(settings: Settings, run_id: str) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run_dir(settings, run_id) / "checkpoints" / "best.pt")["model"]
    return {k: v.contiguous() for k, v in state.items()}  # channels-last tensors, packed for safetensors


def test_an_uploaded_weights_file_starts_a_run(server: Server, web_settings: Settings, run_id: str,
                                               dataset_id: str) -> None:  # fmt: skip
    data = Path(web_settings.data_roots[0])
    (data / "weights").mkdir()
    save_file(best_weights(web_settings, run_id), str(data / "weights" / "tiny.safetensors"))
    with server.client() as c:
        listed = c.get("/api/v1/folders", params={"path": str(data / "weights")}).json()
        assert [f["name"] for f in listed["files"]] == ["tiny.safetensors"]
        body = (data / "weights" / "tiny.safetensors").read_bytes()
        res = c.post("/api/v1/uploads/weights", params={"name": "tiny.safetensors"}, content=body)
        assert res.status_code == 201, res.text
        up = res.json()
        assert up["tensors"] == 4 and up["bytes"] == len(body)
        assert Path(up["path"]).parent.parent == web_settings.home / "uploads"
        made = c.post("/api/v1/runs", json={"dataset": dataset_id, "spec": json.dumps(TINY_NET), "source": up["path"],
                                            "config": CPU})  # fmt: skip
        assert made.status_code == 202, made.text
        job = job_in(c, made.json()["jobs"][0]["id"], "done", "failed")
        assert job["status"] == "done", job["error"]
        source = get_run(web_settings, job["target"])["source"]
        assert source["kind"] == "file" and source["report"]["loaded"] == 4


class Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("this ran",))


def test_a_weights_file_carrying_code_or_too_big_is_refused(server: Server, make_server: object,
                                                            web_settings: Settings) -> None:  # fmt: skip
    evil = pickle.dumps(collections.OrderedDict(w=Payload()))
    with server.client() as c:
        res = c.post("/api/v1/uploads/weights", params={"name": "evil.pt"}, content=evil)
        assert res.status_code == 422 and "not plain tensor data" in res.json()["error"]["message"], res.text
        assert not [p for p in (web_settings.home / "uploads").iterdir() if not p.name.startswith(".")]  # not kept
        bad = c.post("/api/v1/uploads/weights", params={"name": "../x.pt"}, content=b"x")
        assert bad.status_code == 422 and ".safetensors, .pt, .pth" in bad.text
    small = make_server(web_settings, limits=Limits(upload_bytes=1000))  # type: ignore[operator]
    with small.client() as c:
        big = c.post("/api/v1/uploads/weights", params={"name": "big.pt"}, content=b"\0" * 5000)
        assert big.status_code == 413 and "1,000" in big.text


def test_a_model_archive_is_imported_into_the_store(server: Server, web_settings: Settings, run_id: str,
                                                    dataset_id: str, tmp_path: Path) -> None:  # fmt: skip
    archive = write_archive(open_model(web_settings, run_id), tmp_path / "data" / "tiny.zip")
    with server.client() as c:
        res = c.post("/api/v1/models/import", params={"name": "tiny-bars"}, content=archive.read_bytes())
        assert res.status_code == 201, res.text
        assert res.json()["name"] == "tiny-bars" and res.json()["classes"] == 3
        assert [m["name"] for m in c.get("/api/v1/models").json()] == ["tiny-bars"]
        picked = c.post("/api/v1/models/import", params={"path": str(archive), "name": "from-roots"})
        assert picked.status_code == 201, picked.text
        again = c.post("/api/v1/models/import", params={"name": "tiny-bars"}, content=archive.read_bytes())
        assert again.status_code == 422 and "already exists" in again.text
        junk = c.post("/api/v1/models/import", params={"name": "junk"}, content=b"not a zip")
        assert junk.status_code == 422, junk.text
        sneaky = c.post("/api/v1/models/import", params={"name": "../../x"}, content=archive.read_bytes())
        assert sneaky.status_code == 422 and "letters, digits" in sneaky.text
        outside = c.post("/api/v1/models/import", params={"path": "/etc/passwd"})
        assert outside.status_code == 403, outside.text
        made = c.post("/api/v1/runs", json={"dataset": dataset_id, "source": "store:tiny-bars", "config": CPU})
        assert made.status_code == 202, made.text  # the stored entry starts a run (its network from the archive)
        c.post(f"/api/v1/jobs/{made.json()['jobs'][0]['id']}/abort")
