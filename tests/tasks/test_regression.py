"""Regression through the seam only: list and CSV sources with their bad rows reported, standardised targets,
the meter against torchmetrics, and the whole path through the console script and HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchmetrics.functional import mean_absolute_error, r2_score

from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec, open_split
from deepyard.tasks.regression import REGRESSION
from tests.cli.test_datasets_cli import run
from tests.conftest import save_image
from tests.tasks.data import RECIPE, gate, write_brightness
from tests.web.conftest import Server
from tests.web.test_jobs_infer import wait_jobs


def test_meter_matches_torchmetrics_in_the_targets_units() -> None:
    g = torch.Generator().manual_seed(0)
    true = torch.randn(300, 2, generator=g) * torch.tensor([10.0, 0.5]) + torch.tensor([100.0, -3.0])
    stats = {"mean": [100.0, -3.0], "std": [10.0, 0.5]}
    predicted = true + torch.randn(300, 2, generator=g) * torch.tensor([3.0, 0.2])
    outputs = (predicted - torch.tensor(stats["mean"])) / torch.tensor(stats["std"])  # what the network gives
    meter = REGRESSION.meter(["a", "b"], stats)
    meter.update(outputs[:100], true[:100], torch.tensor(0.1))
    meter.update(outputs[100:], true[100:], torch.tensor(0.1))
    got = meter.compute(meter.sums())
    assert got["val_r2"] == pytest.approx(float(r2_score(predicted, true, multioutput="variance_weighted")), abs=1e-5)
    assert got["val_mae"] == pytest.approx(float(mean_absolute_error(predicted, true)), rel=1e-6)
    terms = REGRESSION.criterion("mse", ["a", "b"], stats, None)(outputs, true)
    assert float(terms["mse"]) == pytest.approx(float((((predicted - true) / torch.tensor(stats["std"])) ** 2).mean()))
    (row,) = REGRESSION.predict(outputs[:1], ["a", "b"], stats, k=5)
    assert [v["value"] for v in row["values"]] == pytest.approx(predicted[0].tolist(), rel=1e-5)


def test_bad_values_are_skipped_and_reported(settings: Settings, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for name in "abcdef":
        save_image(tmp_path / f"{name}.png", rng.integers(0, 255, (8, 8), dtype=np.uint8))
    (tmp_path / "v.csv").write_text("file,x,y\na.png,1,2\nb.png,3,4\nc.png,five,6\nd.png,nan,1\ne.png,7,8\n"
                                    "f.png,9,10\nmissing.png,1,1\n")  # fmt: skip
    spec = make_spec(name="r", task="regression", channels=1, width=8, height=8, val_pct=0,
                     source={"kind": "csv", "train": tmp_path / "v.csv"})  # fmt: skip
    built = create_dataset(settings, spec)
    assert (built.classes, built.splits["train"].count, built.splits["train"].per_class) == (["x", "y"], 4, [])
    assert built.target_stats["mean"] == pytest.approx([5.0, 6.0])
    assert open_split(settings, built, "train").targets.tolist() == [[1, 2], [3, 4], [7, 8], [9, 10]]
    report = json.loads((settings.datasets_dir / built.id / "report.json").read_text())
    reasons = {Path(s["path"].split(" (")[0]).name: s["reason"] for s in report["skipped"]}
    assert reasons["c.png"] == "value 'five' is not a number" and "not a finite number" in reasons["d.png"]
    assert "missing.png" in reasons
    (tmp_path / "v.txt").write_text("a.png 1\nb.png 2 3\nc.png 4\n")  # b.png: 2 values, the first line has 1
    listed = create_dataset(settings, make_spec(name="q", task="regression", val_pct=0, width=8, height=8,
                                                source={"kind": "list", "train": tmp_path / "v.txt"}))  # fmt: skip
    report = json.loads((settings.datasets_dir / listed.id / "report.json").read_text())
    assert listed.splits["train"].count == 2 and "expected 1 value(s), got 2: 2 3" in report["skipped"][0]["reason"]


def test_console_script_builds_trains_evaluates_uses_and_exports(tmp_path: Path) -> None:
    home, listing = tmp_path / "home", write_brightness(tmp_path / "b", 500)
    made = run(home, "dataset", "create", str(listing), "--task", "regression", "--channels", "1", "--size",
               "28x28", "--name", "bright", "--json")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["manifest"]["classes"] == ["value"]
    trained = run(home, "train", "--dataset", "bright", *RECIPE, "--epochs", "3", "--json")
    assert trained.returncode == 0, trained.stderr
    run_id, last = json.loads(trained.stdout)["run"], json.loads(trained.stdout)["last_val"]
    assert set(last) == {"val_loss", "val_r2", "val_mae", "val_rmse"} and last["val_r2"] > 0.5
    doc = json.loads(run(home, "evaluate", run_id, "--snapshot", "last", "--json").stdout)
    assert doc["task"] == "regression" and doc["r2"] == pytest.approx(last["val_r2"], abs=1e-4)
    assert len(doc["largest_errors"]) == 9 and doc["largest_errors"][0]["error"] >= doc["largest_errors"][-1]["error"]
    folder = Path(doc["files"]["json"]).parent
    with Image.open(folder / "scatter_0.png") as img:  # predicted against true: a picture, not a blank square
        assert len(np.unique(np.asarray(img.convert("RGB")).reshape(-1, 3), axis=0)) > 8
    picked = json.loads(run(home, "classify", run_id, str(tmp_path / "b" / "img" / "00001.png"), "--json").stdout)
    value = picked["predictions"][0]["values"][0]["value"]
    true = float((tmp_path / "b" / "values.txt").read_text().splitlines()[1].split()[1])
    assert abs(value - true) < 15  # brightness 0..255; the mean is about 60 and spread about 25
    exported = run(home, "export", run_id, "--json")
    assert exported.returncode == 0 and json.loads(exported.stdout)["ok"], exported.stderr


def test_rest_api_builds_trains_and_evaluates(server: Server, tmp_path: Path) -> None:
    listing = write_brightness(tmp_path / "data" / "b", 300)
    spec = {"name": "b", "task": "regression", "source": {"kind": "list", "train": str(listing)}, "channels": 1,
            "width": 28, "height": 28}  # fmt: skip
    with server.client() as c:
        (built,) = wait_jobs(c, [c.post("/api/v1/datasets", json={"spec": spec}).json()["job"]["id"]])
        assert built["status"] == "done", built
        config = {"epochs": 2, "device": "cpu", "solver": {"type": "adam", "lr": 0.002}, "monitor": "val_r2"}
        job = c.post("/api/v1/runs", json={"dataset": built["target"], "network": "lenet", "config": config}).json()
        (done,) = wait_jobs(c, [job["jobs"][0]["id"]])
        assert done["status"] == "done", done
        run_id = done["target"]
        evaluation = c.post(f"/api/v1/runs/{run_id}/evaluate?split=val").json()["job"]
        (finished,) = wait_jobs(c, [evaluation["id"]])
        result = c.get(f"/api/v1/runs/{run_id}/results/{finished['id']}").json()
        assert result["task"] == "regression" and 'id="per-target"' in result["html"]
        assert c.get(result["base"] + "scatter_0.png").content.startswith(b"\x89PNG")


@pytest.mark.slow
def test_quality_gate_brightness_r2_at_least_0_9(tmp_path: Path) -> None:
    """The mean brightness of digits at random contrast over random backgrounds: R² >= 0.9 on held-out images."""
    doc = gate(tmp_path / "home", write_brightness(tmp_path / "b", 2000, seed=5), "regression", "28x28", epochs=4)
    assert doc["count"] == 500 and doc["r2"] >= 0.9, doc
