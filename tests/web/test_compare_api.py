"""The comparison table over real HTTP: two tiny classification runs and a regression run, trained for real, given
uploaded images and images of a dataset split; JSON and CSV, and the refusals."""

from __future__ import annotations

import base64
import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec
from deepyard.networks import spec_from_data
from deepyard.train import make_config, train
from tests.web.conftest import TINY_NET, Server

URL = "/api/v1/compare/predictions"


@dataclass(frozen=True)
class Runs:
    first: str
    second: str
    values: str  # a regression run on the same images: their mean brightness
    dataset: str


def train_regression(settings: Settings, images: Path) -> str:
    """A regression dataset over the classification images (target: mean brightness) and a one-epoch run on it."""
    files = sorted(images.glob("*/*.png"))
    lines = [f"{f} {np.asarray(Image.open(f)).mean():.3f}" for f in files]
    (images.parent / "brightness.txt").write_text("\n".join(lines) + "\n")
    spec = make_spec(name="brightness", task="regression", width=12, height=12, val_pct=25, encoding="raw",
                     source={"kind": "list", "train": images.parent / "brightness.txt"})  # fmt: skip
    built = create_dataset(settings, spec)
    config = make_config(epochs=1, batch_size=12, device="cpu")
    return train(settings, built.id, spec_from_data(TINY_NET), config, name="brightness").run_id


@pytest.fixture
def runs(web_settings: Settings, dataset_id: str, run_id: str, tmp_path: Path) -> Runs:
    other: dict[str, Any] = {"solver.lr": 0.02}
    config = make_config(epochs=1, batch_size=6, device="cpu", seed=7, **other)
    second = train(web_settings, dataset_id, spec_from_data(TINY_NET), config, name="second").run_id
    return Runs(run_id, second, train_regression(web_settings, tmp_path / "data" / "bars"), dataset_id)


def png(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def test_table_of_uploads_and_split_images(server: Server, runs: Runs, tmp_path: Path) -> None:
    upload = tmp_path / "data" / "bars" / "class2" / "003.png"
    images = [{"name": "mine.png", "data": png(upload)}, {"name": "notes.png", "data": "bm9wZQ=="}]
    body = {
        "runs": [runs.first, runs.second, runs.values],
        "dataset": "bars",
        "split": "val",
        "count": 3,
        "images": images,
    }
    with server.client() as c:
        doc = c.post(URL, json=body).json()
        samples = c.get(f"/api/v1/datasets/{runs.dataset}/samples", params={"split": "val", "limit": 3}).json()
        alone = c.post(f"/api/v1/runs/{runs.second}/classify", content=upload.read_bytes(), params={"k": 1}).json()
        as_csv = c.post(URL, json=body, params={"format": "csv"})

    first, second, values = doc["columns"]
    assert [first["name"], second["name"], values["name"]] == [first["title"], "second", "brightness"]
    assert [col["task"] for col in doc["columns"]] == ["classification", "classification", "regression"]
    assert [row["image"] for row in doc["rows"]] == ["mine.png", "notes.png", "bars/val/0", "bars/val/1", "bars/val/2"]
    mine, bad, *stored = doc["rows"]
    # an upload gets what classify gives for the same file: the same prediction path
    cell = mine["cells"][1]
    assert cell["predicted"] == alone["predicted"] and cell["confidence"] == pytest.approx(
        alone["top"][0]["probability"]
    )
    assert cell["text"] == f"{alone['predicted']} {100 * cell['confidence']:.1f}%" and mine["label"] is None
    assert bad["error"].startswith("not an image") and all(c["error"] == bad["error"] for c in bad["cells"])
    # split images carry their true class (the dataset's caption) and say where they are stored
    assert [r["label"] for r in stored] == [item["class"] for item in samples["items"]]
    assert [r["origin"] for r in stored] == [{"dataset": runs.dataset, "split": "val", "index": i} for i in range(3)]
    for j, col in enumerate(doc["columns"][:2]):
        judged = [r["cells"][j]["correct"] for r in stored]
        assert all(isinstance(x, bool) for x in judged) and (col["right"], col["labelled"]) == (sum(judged), 3)
        assert all(0 < r["cells"][j]["confidence"] <= 1 for r in [mine, *stored])
    # a regression run: its values, no confidence, never right or wrong
    shown = stored[0]["cells"][2]
    assert shown["confidence"] is None and shown["correct"] is None and shown["text"].startswith("value = ")
    assert (values["right"], values["labelled"]) == (0, 0)

    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert "predictions.csv" in as_csv.headers["content-disposition"]
    lines = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [line["image"] for line in lines] == [row["image"] for row in doc["rows"]]
    assert lines[0]["second predicted"] == alone["predicted"] and lines[1]["error"] == bad["error"]
    assert float(lines[2]["second confidence"]) == pytest.approx(stored[0]["cells"][1]["confidence"], abs=1e-6)
    assert lines[2]["label"] == stored[0]["label"] and lines[2]["brightness confidence"] == ""


def test_indices_pick_images_and_the_same_run_twice_gets_two_titles(server: Server, runs: Runs) -> None:
    body = {"runs": [runs.first, f"{runs.first}@last"], "dataset": runs.dataset, "indices": [4, 1]}
    with server.client() as c:
        doc = c.post(URL, json=body).json()
    assert [r["origin"]["index"] for r in doc["rows"]] == [4, 1]
    first, again = doc["columns"]
    assert first["title"] != again["title"] and first["run"] == again["run"]
    assert [r["cells"][0]["predicted"] for r in doc["rows"]] == [r["cells"][1]["predicted"] for r in doc["rows"]]


def test_bad_requests_name_the_bad_value(server: Server, runs: Runs, tmp_path: Path) -> None:
    huge = io.BytesIO()
    Image.new("1", (8000, 6000)).save(huge, "PNG")  # 48,000,000 pixels in a few kB
    cases = [
        ({"runs": ["nope"], "dataset": "bars"}, 404, "no run 'nope'"),
        ({"runs": [runs.first]}, 422, "at least one image"),
        ({"runs": [runs.first], "dataset": "bars", "indices": [2, 99]}, 422, "index 99 is out of range"),
        ({"runs": [runs.first], "dataset": "bars", "indices": [1], "count": 2}, 422, "either a count or indices"),
        ({"runs": [runs.first], "dataset": "bars", "split": "test"}, 404, "no 'test' split; it has train, val"),
        ({"runs": [runs.first], "dataset": "nothing"}, 404, "nothing"),
        ({"runs": [runs.first], "images": [{"name": "x.png", "data": "***"}]}, 422, "'x.png': data is not base64"),
        ({"runs": [runs.first], "images": [{"name": "big.png", "data": base64.b64encode(huge.getvalue()).decode()}]},
         413, "48,000,000 pixels, over the limit of 40,000,000"),
        ({"runs": [runs.first] * 17, "dataset": "bars"}, 422, "runs"),
        ({"runs": [runs.first], "dataset": "bars", "count": 0}, 422, "count"),
        ({"runs": [runs.first], "dataset": "bars", "colour": "red"}, 422, "colour"),
    ]  # fmt: skip
    with server.client() as c:
        for body, status, words in cases:
            got = c.post(URL, json=body)
            assert got.status_code == status and words in got.json()["error"]["message"], (body, got.text[:300])
        wrong = c.post(URL, json={"runs": [runs.first], "dataset": "bars"}, params={"format": "xml"})
        assert wrong.status_code == 422 and "format" in wrong.json()["error"]["message"]
