"""The JSON API over real HTTP against a real home: datasets, networks, runs, metrics, schedule preview."""

from __future__ import annotations

import io
import json

from PIL import Image

from deepyard.train.runs import run_dir
from tests.web.conftest import TINY_NET, Server


def test_datasets_list_show_and_images(server: Server, dataset_id: str) -> None:
    with server.client() as c:
        listed = c.get("/api/v1/datasets").json()
        assert [d["id"] for d in listed] == [dataset_id]
        assert listed[0]["counts"] == {"train": 36, "val": 12}
        shown = c.get(f"/api/v1/datasets/{dataset_id}").json()
        assert shown["manifest"]["classes"] == ["class0", "class1", "class2"]
        mean = c.get(f"/api/v1/datasets/{dataset_id}/mean.png")
        assert mean.headers["content-type"] == "image/png"
        page = c.get(f"/api/v1/datasets/{dataset_id}/samples", params={"split": "val", "label": 2, "limit": 3}).json()
        assert page["total"] == 4 and len(page["items"]) == 3
        assert {item["class"] for item in page["items"]} == {"class2"}
        png = c.get(f"/api/v1/datasets/{dataset_id}/images/val/{page['items'][0]['index']}.png")
        img = Image.open(io.BytesIO(png.content))
        assert img.size == (12, 12)
        report = c.get(f"/api/v1/datasets/{dataset_id}/report").json()
        assert report["skipped"] == [] and report["skipped_total"] == 0


def test_dataset_image_out_of_range_and_bad_split(server: Server, dataset_id: str) -> None:
    with server.client() as c:
        out = c.get(f"/api/v1/datasets/{dataset_id}/images/val/999.png")
        assert out.status_code == 404 and "out of range" in out.json()["error"]["message"]
        bad = c.get(f"/api/v1/datasets/{dataset_id}/samples", params={"split": "holdout"})
        assert bad.status_code == 422 and "'train', 'val' or 'test'" in bad.json()["error"]["message"]


def test_dataset_delete_refused_while_runs_use_it(server: Server, dataset_id: str, run_id: str) -> None:
    with server.client() as c:
        refused = c.delete(f"/api/v1/datasets/{dataset_id}")
        assert refused.status_code == 409 and refused.json()["error"]["type"] == "Conflict"
        assert refused.json()["error"]["message"] == f"dataset 'bars' is used by run(s) {run_id}; delete them first"
        assert c.delete(f"/api/v1/runs/{run_id}").json()["deleted"] == run_id
        assert c.delete(f"/api/v1/datasets/{dataset_id}").json()["deleted"] == dataset_id
        assert c.get("/api/v1/datasets").json() == []


def test_networks_list_spec_check_and_view(server: Server) -> None:
    with server.client() as c:
        names = [n["name"] for n in c.get("/api/v1/networks").json()]
        assert names[:4] == ["lenet", "alexnet", "googlenet", "vgg16"]
        lenet = c.get("/api/v1/networks/lenet/spec").json()
        assert "conv1" in lenet["yaml"]
        ok = c.post("/api/v1/networks/check", json={"spec": lenet["yaml"], "classes": 10}).json()
        assert ok["ok"] and ok["output"] == [10] and ok["layers"][0]["name"] == "conv1"
        svg = c.post("/api/v1/networks/view", json={"network": "lenet"})
        assert svg.headers["content-type"].startswith("image/svg+xml") and b"conv1" in svg.content


def test_network_check_names_the_bad_layer(server: Server) -> None:
    bad = json.dumps({**TINY_NET, "layers": [{"name": "conv", "type": "convolution", "out_channels": 4}]})
    with server.client() as c:
        res = c.post("/api/v1/networks/check", json={"spec": bad, "input": [3, 12, 12]})
        assert res.status_code == 422
        assert "conv" in res.json()["error"]["message"] and "valid" in res.json()["error"]["message"]
        unknown = c.get("/api/v1/networks/lenet5/spec")
        assert unknown.status_code == 404 and "lenet" in unknown.json()["error"]["message"]


def test_runs_list_show_metrics_by_offset(server: Server, run_id: str) -> None:
    with server.client() as c:
        rows = c.get("/api/v1/runs").json()
        assert rows[0]["id"] == run_id and rows[0]["status"] == "done" and rows[0]["progress"] == 1.0
        assert rows[0]["val_top1"] is not None and len(rows[0]["spark"]) >= 2
        shown = c.get(f"/api/v1/runs/{run_id}").json()
        assert shown["dataset_name"] == "bars" and any(s["step"] == 3 for s in shown["snapshots"])
        first = c.get(f"/api/v1/runs/{run_id}/metrics").json()
        assert first["points"][-1]["epoch"] == 1.0 and not first["reset"]
        path = run_dir(server.settings, run_id) / "metrics.jsonl"
        with path.open("a") as fp:
            fp.write(json.dumps({"step": 99, "epoch": 9.0, "train_loss": 0.5}) + "\n" + '{"step": 100, "ep')
        more = c.get(f"/api/v1/runs/{run_id}/metrics", params={"offset": first["offset"]}).json()
        assert [p["step"] for p in more["points"]] == [99]  # the half-written line waits for the next read
        past = c.get(f"/api/v1/runs/{run_id}/metrics", params={"offset": 10**9}).json()
        assert past["reset"] and past["points"][0]["step"] == 1


def test_run_clone_prefills_everything(server: Server, run_id: str) -> None:
    with server.client() as c:
        clone = c.post(f"/api/v1/runs/{run_id}/clone").json()
        assert clone["config"]["batch_size"] == 12 and clone["config"]["epochs"] == 1
        assert "name: tiny" in clone["spec"] and clone["from_run"] == run_id
        assert clone["config"]["augment"]["iou_crop"] == 0 and clone["config"]["augment"]["zoom_out"] == 1


def test_a_clone_of_a_run_older_than_a_setting_gets_its_default(server: Server, run_id: str) -> None:
    path = run_dir(server.settings, run_id) / "run.json"
    info = json.loads(path.read_text())
    del info["config"]["augment"]["zoom_out"], info["config"]["seed"]  # written before these settings existed
    path.write_text(json.dumps(info))
    with server.client() as c:
        config = c.post(f"/api/v1/runs/{run_id}/clone").json()["config"]
    assert config["augment"]["zoom_out"] == 1 and config["seed"] == 0 and config["batch_size"] == 12


def test_schedule_preview_one_curve_per_lr(server: Server) -> None:
    body = {
        "schedule": {"policy": "step", "step_size": 50, "gamma": 0.1},
        "lr": [0.1, 0.01],
        "epochs": 10,
        "points": 10,
    }
    with server.client() as c:
        series = c.post("/api/v1/schedule/preview", json=body).json()["series"]
        assert [s["lr"] for s in series] == [0.1, 0.01]
        assert series[0]["points"][0] == [0.0, 0.1]
        assert abs(series[0]["points"][-1][1] - 0.001) < 1e-12 and series[0]["points"][-1][0] == 10.0
        bad = c.post("/api/v1/schedule/preview", json={"schedule": {"policy": "zigzag"}})
        assert bad.status_code == 422 and "policy" in bad.json()["error"]["message"]


def test_resize_preview_uses_mode(server: Server) -> None:
    with server.client() as c:
        res = c.post(
            "/api/v1/datasets/resize-preview",
            json={"width": 64, "height": 32, "resize_mode": "fill", "fill": "constant", "fill_value": 7, "channels": 1},
        )
        img = Image.open(io.BytesIO(res.content))
        assert img.size == (64, 32) and img.mode == "L"
        assert img.getpixel((0, 16)) == 7 and img.getpixel((63, 16)) == 7  # the sides padded with the constant
        assert img.getpixel((32, 16)) > 200  # the test card's white disc in the middle


def test_groups_set_list_move_and_clear(server: Server, dataset_id: str, run_id: str) -> None:
    with server.client() as c:
        put = c.put("/api/v1/groups", json={"kind": "run", "ids": [run_id], "group": " first  tries "})
        assert put.json() == {"kind": "run", "ids": [run_id], "group": "first tries"}
        by_name = c.put("/api/v1/groups", json={"kind": "dataset", "ids": ["bars"], "group": "first tries"})
        assert by_name.json()["ids"] == [dataset_id]  # a dataset by name, stored by id
        assert c.get("/api/v1/groups").json() == {
            "groups": [{"name": "first tries", "datasets": [dataset_id], "runs": [run_id]}]
        }
        assert c.get("/api/v1/runs").json()[0]["group"] == "first tries"
        assert c.get(f"/api/v1/runs/{run_id}").json()["group"] == "first tries"
        assert c.get("/api/v1/datasets").json()[0]["group"] == "first tries"

        missing = c.put("/api/v1/groups", json={"kind": "run", "ids": [run_id, "nope"], "group": "other"})
        assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]
        assert c.get(f"/api/v1/runs/{run_id}").json()["group"] == "first tries"  # nothing changed: all or none
        bad = c.put("/api/v1/groups", json={"kind": "job", "ids": [run_id], "group": "x"})
        assert bad.status_code == 422 and "'dataset' or 'run'" in bad.json()["error"]["message"]
        long = c.put("/api/v1/groups", json={"kind": "run", "ids": [run_id], "group": "x" * 65})
        assert long.status_code == 422 and "at most 64" in long.json()["error"]["message"]

        assert c.put("/api/v1/groups", json={"kind": "run", "ids": [run_id], "group": None}).json()["group"] is None
        assert c.get(f"/api/v1/runs/{run_id}").json()["group"] is None
        assert c.get("/api/v1/groups").json()["groups"] == [
            {"name": "first tries", "datasets": [dataset_id], "runs": []}
        ]


def test_rename_and_notes_of_a_run(server: Server, run_id: str) -> None:
    with server.client() as c:
        edited = c.patch(f"/api/v1/runs/{run_id}", json={"name": "baseline", "notes": "plain LeNet, lr 0.01"})
        assert edited.status_code == 200 and (edited.json()["name"], edited.json()["notes"]) == (
            "baseline",
            "plain LeNet, lr 0.01",
        )
        assert c.get("/api/v1/runs").json()[0]["name"] == "baseline"
        assert c.patch(f"/api/v1/runs/{run_id}", json={"notes": ""}).json()["name"] == "baseline"
        bad = c.patch(f"/api/v1/runs/{run_id}", json={"name": " "})
        assert bad.status_code == 422 and "1 to 200 characters" in bad.json()["error"]["message"]
        assert c.patch("/api/v1/runs/nope", json={"name": "x"}).status_code == 404
