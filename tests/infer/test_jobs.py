"""Evaluate and export as jobs: checked at submit, run by the scheduler in a real worker process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepyard.errors import InvalidValueError, NotFoundError
from deepyard.jobs import Scheduler, submit
from tests.infer.conftest import Trained
from tests.jobs.conftest import wait_status


def test_evaluate_and_export_jobs_run_to_done(trained: Trained) -> None:
    settings = trained.settings
    evaluation = submit(settings, "evaluate", {"model": trained.run_id, "top_n": 3})
    again = submit(settings, "evaluate", {"model": trained.run_id, "top_n": 4})  # the same split and snapshot
    export = submit(settings, "export", {"model": f"run:{trained.run_id}@best", "formats": ["archive", "onnx"],
                                         "samples": 8})  # fmt: skip
    assert evaluation.target == export.target == trained.run_id
    with Scheduler(settings, cpu_slots=1):
        done_eval = wait_status(settings, evaluation.id, "done", "failed")
        done_again = wait_status(settings, again.id, "done", "failed")
        done_export = wait_status(settings, export.id, "done", "failed")
    assert done_again.result is not None and done_eval.result is not None
    first, second = (Path(j.result["files"]["json"]) for j in (done_eval, done_again))  # type: ignore[index]
    assert first.parent != second.parent and first.parent.name.endswith(evaluation.id)  # each job keeps its own
    assert [len(json.loads(p.read_text())["top_per_class"]["class0"]) for p in (first, second)] == [3, 4]
    assert done_eval.status == "done", done_eval.error
    assert done_eval.result is not None and done_eval.result["count"] == 30 and done_eval.progress == 1.0
    assert Path(done_eval.result["files"]["confusion"]).is_file()
    assert done_export.status == "done", done_export.error
    assert done_export.result is not None and done_export.result["ok"]
    assert [r["format"] for r in done_export.result["reports"]] == ["archive", "onnx"]
    assert all(Path(r["path"]).is_file() for r in done_export.result["reports"])


def test_bad_parameters_are_refused_before_queueing(trained: Trained, tmp_path: Path) -> None:
    settings = trained.settings
    with pytest.raises(InvalidValueError, match=r"'tflite' is not one of 'archive', 'onnx' or 'torchscript'"):
        submit(settings, "export", {"model": trained.run_id, "formats": ["tflite"]})
    with pytest.raises(InvalidValueError, match=r"split 'dev' is not one of 'train', 'val' or 'test'"):
        submit(settings, "evaluate", {"model": trained.run_id, "split": "dev"})
    with pytest.raises(InvalidValueError, match="outside the data roots"):
        submit(settings, "evaluate", {"model": trained.run_id, "images": str(tmp_path)})
    with pytest.raises(InvalidValueError, match="images 123 must be text"):
        submit(settings, "evaluate", {"model": trained.run_id, "images": 123})
    with pytest.raises(NotFoundError, match="nope"):
        submit(settings, "evaluate", {"model": trained.run_id, "dataset": "nope"})
    with pytest.raises(NotFoundError, match="no run 'missing'"):
        submit(settings, "evaluate", {"model": "missing"})
    with pytest.raises(InvalidValueError, match="unknown export job parameter 'colour'"):
        submit(settings, "export", {"model": trained.run_id, "colour": "red"})
