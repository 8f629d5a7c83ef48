"""A text classifier end to end: trained by the real trainer (with exact resume), then `deepyard predict` (a text,
through the console script in its own process; a folder and the exported archive), `evaluate`, `export` (archive
and ONNX, parity-checked) and `dataset show` through the console entry point (`deepyard.cli.main`) in this process,
to keep the fast tests' budget."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from deepyard.cli import main
from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec
from deepyard.text.classexport import _onnx, _parity
from deepyard.text.classifiers import TEXT_CLASSIFIERS, build_text_classifier
from deepyard.train import TrainConfig, resume_run, train
from tests.text.test_textclass_data import class_folders
from tests.text.test_training import StopAt


def tiny(settings: Settings, tmp_path: Path) -> str:
    spec = make_spec(name="films", task="text-classification",
                     source={"kind": "labelled-text", "train": class_folders(tmp_path / "src", 24)})  # fmt: skip
    return create_dataset(settings, spec).id


def config() -> TrainConfig:
    return TrainConfig.model_validate({"epochs": 4, "batch_size": 8, "val_interval": 1, "snapshot_interval": 2,
                                       "workers": 0, "precision": "fp32", "solver": {"lr": 0.1}})  # fmt: skip


def deepyard(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deepyard", "--home", str(settings.home), *args],
                          capture_output=True, text=True, timeout=180)  # fmt: skip


def inproc(settings: Settings, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The same verbs in this process (no interpreter start): exit code, stdout, stderr."""
    capsys.readouterr()
    try:
        main(["--home", str(settings.home), *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_train_resume_predict_evaluate_export(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = tiny(settings, tmp_path)
    whole = train(settings, dataset, "bag-ngrams", config())
    assert whole.last_val["val_top1"] == 100.0  # "not" separates the classes
    event = threading.Event()
    stopped = train(settings, dataset, "bag-ngrams", config(), callbacks=[StopAt(whole.steps // 2 + 1, event)],
                    stop=event)  # fmt: skip
    resumed = resume_run(settings, stopped.run_id)
    assert stopped.stop_reason == "aborted" and resumed.last_val == whole.last_val
    a = torch.load(whole.folder / "checkpoints" / "best.pt", weights_only=True)["model"]
    b = torch.load(resumed.folder / "checkpoints" / "best.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)

    run = whole.run_id
    one = deepyard(settings, "predict", run, "not a good film, number 99", "--json")
    assert one.returncode == 0, one.stderr
    row = json.loads(one.stdout)["predictions"][0]
    assert row["predicted"] == "neg" and row["top"][0]["probability"] > 0.5 and len(row["top"]) == 2
    code, out, _ = inproc(settings, capsys, "predict", run, str(tmp_path / "src"), "--json")
    doc = json.loads(out)
    assert code == 0 and len(doc["predictions"]) == 51 and {s["error"] for s in doc["skipped"]} >= {
        "binary file (a NUL byte in its first 8 KiB)", "empty file (0 bytes)"}  # fmt: skip
    assert sum(r["correct"] is not None for r in doc["predictions"]) == 50  # class folders give the labels
    assert sum(bool(r["correct"]) for r in doc["predictions"]) >= 48

    code, out, err = inproc(settings, capsys, "evaluate", run, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["metrics"]["top1"] == pytest.approx(whole.last_val["val_top1"])  # the trainer's own meter
    assert report["confusion"] and Path(report["files"]["confusion"]).is_file()
    assert all(isinstance(e["text"], str) for per in report["top_per_class"].values() for e in per)

    code, out, err = inproc(settings, capsys, "export", run, "--out", str(tmp_path / "out"), "--json")
    assert code == 0, err
    reports = {r["format"]: r for r in json.loads(out)["reports"]}
    assert set(reports) == {"archive", "onnx"} and all(r["ok"] for r in reports.values())
    assert reports["onnx"]["max_prob_diff"] < 1e-4 and reports["onnx"]["top1_agreement"] == 1.0
    code, out, err = inproc(
        settings, capsys, "predict", str(tmp_path / "out" / "model.zip"), "not a good film", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["predictions"][0]["predicted"] == "neg"
    code, out, err = inproc(settings, capsys, "classify", run, "a good film", "--top", "1", "--json")  # its twin
    assert code == 0, err
    assert [t["class"] for t in json.loads(out)["predictions"][0]["top"]] == ["pos"]
    code, _, err = inproc(settings, capsys, "export", run, "--format", "torchscript")
    assert code == 2 and "use 'archive' or 'onnx'" in err
    code, out, _ = inproc(settings, capsys, "dataset", "show", dataset)
    assert code == 0 and "binary file" in out and "texts" in out


@pytest.mark.parametrize("name", sorted(TEXT_CLASSIFIERS))
def test_every_text_classifier_exports_to_onnx_with_parity(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_text_classifier(name, (30, 12, 1), 3).eval()
    rows = torch.randint(2, 30, (6, 12))
    rows[1, 4:] = 0
    rows[2, 1:] = 0  # shorter than every window of the CNN
    clf = type("Clf", (), {"model": model})()
    report = _parity("onnx", tmp_path / "m.onnx", model, _onnx(clf, tmp_path / "m.onnx", rows), rows)  # type: ignore[arg-type]
    assert report["ok"], report


def test_image_verbs_refuse_a_text_classifier_naming_the_text_verb(settings: Settings, tmp_path: Path) -> None:
    from deepyard.errors import InvalidValueError
    from deepyard.infer import load_run_model

    dataset = tiny(settings, tmp_path)
    run = train(settings, dataset, "bag-ngrams", config().model_copy(update={"epochs": 1})).run_id
    with pytest.raises(InvalidValueError, match="takes text, not images; use deepyard predict RUN TEXT"):
        load_run_model(settings, run)
