"""Multi-label classification through the seam only: sources with their bad rows reported, the validation
meter against torchmetrics' exact mAP, calibration, and the whole path through the console script and HTTP."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import multilabel_average_precision

from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec, open_split
from deepyard.tasks.multilabel import MULTILABEL
from tests.cli.test_datasets_cli import run
from tests.conftest import save_image
from tests.tasks.data import RECIPE, gate, write_pairs
from tests.web.conftest import Server
from tests.web.test_jobs_infer import wait_jobs


def test_meter_map_matches_torchmetrics_and_adds_up_across_batches() -> None:
    g = torch.Generator().manual_seed(0)
    targets = (torch.rand(400, 6, generator=g) < 0.3).long()
    outputs = 2.5 * (targets.float() - 0.5) + torch.randn(400, 6, generator=g) * 1.5  # informative, not perfect
    whole, halves = MULTILABEL.meter(list("abcdef"), {}), MULTILABEL.meter(list("abcdef"), {})
    whole.update(outputs, targets, torch.tensor(0.5))
    halves.update(outputs[:150], targets[:150], torch.tensor(0.5))
    halves.update(outputs[150:], targets[150:], torch.tensor(0.5))
    assert torch.equal(whole.sums(), halves.sums())  # sums: what DDP ranks all_reduce
    got = whole.compute(whole.sums())
    exact = 100 * float(multilabel_average_precision(torch.sigmoid(outputs), targets, num_labels=6))
    assert 50 < exact < 99 and got["val_map"] == pytest.approx(exact, abs=0.5)
    assert got["val_loss"] == pytest.approx(0.5)


def test_calibration_picks_the_threshold_with_the_best_f1() -> None:
    scores = np.array([0.9, 0.8, 0.35, 0.3, 0.2, 0.1])
    truth = np.array([[1], [1], [1], [0], [0], [0]])
    logits = np.log(scores / (1 - scores))[:, None]
    (cut,) = MULTILABEL.calibrate(logits, truth, ["a"])["thresholds"]
    assert 0.3 < cut < 0.35  # all three positives in, no negative
    (row,) = MULTILABEL.predict(torch.tensor([[0.0]]), ["a"], {"thresholds": [0.4]}, k=1)
    assert row["predicted"] == "a" and row["labels"][0]["above"]  # p = 0.5 is above 0.4


def test_sources_report_bad_rows_and_keep_negatives(settings: Settings, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c", "d", "e", "f"):
        save_image(tmp_path / f"{name}.png", rng.integers(0, 255, (8, 8), dtype=np.uint8))
    (tmp_path / "junk.png").write_bytes(b"not an image")
    (tmp_path / "names.txt").write_text("cat\ndog\n")
    (tmp_path / "list.txt").write_text("a.png cat dog\nb.png dog\nc.png\nd.png cat\ne.png cat\nf.png bird\n"
                                       "junk.png cat\nmissing.png dog\n")  # fmt: skip
    source = {"kind": "list", "train": tmp_path / "list.txt", "labels": tmp_path / "names.txt"}
    spec = make_spec(name="l", task="multilabel", channels=1, width=8, height=8, val_pct=0, source=source)
    built = create_dataset(settings, spec)
    assert (built.task, built.classes, built.splits["train"].count) == ("multilabel", ["cat", "dog"], 5)
    assert built.splits["train"].per_class == [3, 2]  # c.png, with no label, is kept as a negative
    report = json.loads((settings.datasets_dir / built.id / "report.json").read_text())
    reasons = {Path(s["path"].split(" (")[0]).name: s["reason"] for s in report["skipped"]}
    assert "'bird' is not in the label list" in reasons["f.png"]
    assert set(reasons) == {"f.png", "junk.png", "missing.png"}
    targets = open_split(settings, built, "train").targets
    assert targets.dtype == np.uint8 and targets.tolist() == [[1, 1], [0, 1], [0, 0], [1, 0], [1, 0]]


def test_a_folder_per_label_merges_files_of_the_same_name(settings: Settings, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for label, names in {"sky": ["1", "2", "3"], "tree": ["2", "3", "4"]}.items():
        for n in names:
            save_image(tmp_path / "src" / label / f"{n}.png", rng.integers(0, 255, (8, 8), dtype=np.uint8))
    spec = make_spec(name="f", task="multilabel", channels=1, width=8, height=8, val_pct=0,
                     source={"kind": "folder", "train": tmp_path / "src"})  # fmt: skip
    built = create_dataset(settings, spec)
    targets = open_split(settings, built, "train").targets
    assert built.classes == ["sky", "tree"] and targets.tolist() == [[1, 0], [1, 1], [1, 1], [0, 1]]


def test_console_script_builds_trains_evaluates_uses_and_exports(tmp_path: Path) -> None:
    home, csv = tmp_path / "home", write_pairs(tmp_path / "pairs", 600)
    made = run(home, "dataset", "create", str(csv), "--task", "multilabel", "--channels", "1", "--size", "56x28",
               "--name", "pairs", "--json")  # fmt: skip
    assert made.returncode == 0, made.stderr
    manifest = json.loads(made.stdout)["manifest"]
    assert manifest["task"] == "multilabel" and manifest["classes"] == [f"d{i}" for i in range(10)]
    trained = run(home, "train", "--dataset", "pairs", *RECIPE, "--epochs", "4", "--json")
    assert trained.returncode == 0, trained.stderr
    last = json.loads(trained.stdout)["last_val"]
    assert set(last) == {"val_loss", "val_map", "val_f1"} and last["val_map"] > 50  # chance is about 20%
    run_id = json.loads(trained.stdout)["run"]
    doc = json.loads(run(home, "evaluate", run_id, "--snapshot", "last", "--json").stdout)
    assert doc["task"] == "multilabel" and len(doc["per_label"]) == 10 and doc["map"] > 50
    # the same meter as training, on the same weights (batching and memory layout move near-tied scores: 0.1 point)
    assert doc["metrics"]["map"] == pytest.approx(last["val_map"], abs=0.1)
    assert all(0 < x["threshold"] < 1 for x in doc["per_label"])  # picked on validation
    picked = json.loads(run(home, "classify", run_id, str(tmp_path / "pairs" / "img" / "00000.png"), "--json").stdout)
    shown = picked["predictions"][0]
    assert all(x["above"] == (x["probability"] >= x["threshold"]) for x in shown["labels"])
    exported = run(home, "export", run_id, "--json")
    assert exported.returncode == 0, exported.stderr
    reports = json.loads(exported.stdout)["reports"]
    assert [(r["ok"], r["agreement_of"]) for r in reports] == [(True, "label decisions")] * 3
    listed = json.loads(run(home, "task", "list", "--json").stdout)
    assert {t["name"]: t["metrics"] for t in listed}["multilabel"] == ["val_loss", "val_map", "val_f1"]


def test_rest_api_builds_trains_and_uses_a_model(server: Server, tmp_path: Path) -> None:
    csv = write_pairs(tmp_path / "data" / "pairs", 300)
    spec = {"name": "pairs", "task": "multilabel", "source": {"kind": "csv", "train": str(csv)}, "channels": 1,
            "width": 56, "height": 28}  # fmt: skip
    with server.client() as c:
        (built,) = wait_jobs(c, [c.post("/api/v1/datasets", json={"spec": spec}).json()["job"]["id"]])
        assert built["status"] == "done", built
        bad = c.post("/api/v1/runs", json={"dataset": built["target"], "network": "lenet",
                                           "config": {"loss": "cross_entropy"}})  # fmt: skip
        assert bad.status_code == 422 and "does not apply to multilabel" in bad.json()["error"]["message"]
        config = {"epochs": 2, "device": "cpu", "solver": {"type": "adam", "lr": 0.002}}
        job = c.post("/api/v1/runs", json={"dataset": built["target"], "network": "lenet", "config": config}).json()
        (done,) = wait_jobs(c, [job["jobs"][0]["id"]])
        assert done["status"] == "done", done
        run_id = done["target"]
        with (tmp_path / "data" / "pairs" / "img" / "00003.png").open("rb") as fp:
            picked = c.post(f"/api/v1/runs/{run_id}/classify?name=x.png", content=fp.read()).json()
        assert "labels" in picked and 'id="c1-labels"' in picked["html"]
        evaluation = c.post(f"/api/v1/runs/{run_id}/evaluate?split=val").json()["job"]
        (finished,) = wait_jobs(c, [evaluation["id"]])
        result = c.get(f"/api/v1/runs/{run_id}/results/{finished['id']}").json()
        assert result["task"] == "multilabel" and 'id="per-label"' in result["html"]
        image = c.get(result["base"] + "top_losses.png")
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    assert io.BytesIO(image.content).getbuffer().nbytes > 1000


@pytest.mark.slow
def test_quality_gate_digit_pairs_map_at_least_90(tmp_path: Path) -> None:
    """Pairs of MNIST digits side by side, labelled with both digits: mAP >= 0.9 on held-out pairs."""
    doc = gate(tmp_path / "home", write_pairs(tmp_path / "pairs", 3000, seed=3), "multilabel", "56x28", epochs=8)
    assert doc["count"] == 750 and doc["map"] >= 90, doc["per_label"]
