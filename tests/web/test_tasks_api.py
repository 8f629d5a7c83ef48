"""The JSON side of the task-aware pages: gallery samples caption and filter multi-label and regression targets
through their task; the dataset detail carries the task and, for regression, the targets' mean and std."""

from __future__ import annotations

from pathlib import Path

from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec
from tests.tasks.data import write_brightness, write_pairs
from tests.web.conftest import Server


def test_samples_caption_and_filter_multilabel_targets(server: Server, web_settings: Settings, tmp_path: Path) -> None:
    csv = write_pairs(tmp_path / "data" / "pairs", 40)
    spec = make_spec(name="pairs", task="multilabel", source={"kind": "csv", "train": csv}, channels=1, width=56,
                     height=28, val_pct=0, encoding="raw")  # fmt: skip
    m = create_dataset(web_settings, spec)
    with server.client() as c:
        shown = c.get(f"/api/v1/datasets/{m.id}").json()
        assert shown["task"] == "multilabel" and shown["targets"] == []
        everything = c.get(f"/api/v1/datasets/{m.id}/samples", params={"limit": 500}).json()
        assert everything["total"] == 40 and all(item["label"] is None for item in everything["items"])
        index = m.classes.index("d3")
        having = c.get(f"/api/v1/datasets/{m.id}/samples", params={"label": index, "limit": 500}).json()
        assert 0 < having["total"] < 40 and all("d3" in item["class"].split() for item in having["items"])
        wanted = sum("d3" in item["class"].split() for item in everything["items"])
        assert having["total"] == wanted
        beyond = c.get(f"/api/v1/datasets/{m.id}/samples", params={"label": len(m.classes)})
        assert beyond.status_code == 422 and "out of range" in beyond.json()["error"]["message"]


def test_regression_dataset_shows_its_targets(server: Server, web_settings: Settings, tmp_path: Path) -> None:
    listing = write_brightness(tmp_path / "data" / "bright", 24)
    spec = make_spec(name="bright", task="regression", source={"kind": "list", "train": listing}, channels=1,
                     width=28, height=28, val_pct=25, encoding="raw")  # fmt: skip
    m = create_dataset(web_settings, spec)
    with server.client() as c:
        shown = c.get(f"/api/v1/datasets/{m.id}").json()
        (target,) = shown["targets"]
        assert shown["task"] == "regression" and target["name"] == m.classes[0] and target["std"] > 0
        page = c.get(f"/api/v1/datasets/{m.id}/samples", params={"split": "val", "label": 0}).json()
        assert page["total"] == m.splits["val"].count  # values have no classes: the filter keeps every image
        assert all(item["class"].startswith(m.classes[0] + " ") for item in page["items"])
        html = c.get(f"/datasets/{m.id}").text
        assert 'id="target-stats"' in html and 'id="g-class"' not in html and 'id="distribution"' not in html
