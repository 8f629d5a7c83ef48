"""Evaluate and export as jobs: checked at submit, run by the scheduler in a real worker process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from deepyard.config import Settings, load_settings
from deepyard.errors import InvalidValueError, NotFoundError
from deepyard.infer.jobs import check_evaluate, check_export, run_evaluate, run_export
from deepyard.jobs import Scheduler, submit
from deepyard.jobs.context import JobStopped
from deepyard.train.runs import run_dir
from tests.infer.conftest import Trained
from tests.jobs.conftest import wait_status
from tests.web.test_text_stream import quick_lm_run


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


class _Context:
    """What a runner uses of its JobContext, with the reports kept; `poll` says stop once `stop_after` reports
    have been made (an abort arriving then)."""

    def __init__(self, settings: Settings, target: str, stop_after: int) -> None:
        self.settings, self.target, self.job_id, self.stop_after = settings, target, "job1", stop_after
        self.reports: list[tuple[float | None, str | None]] = []

    def poll(self) -> bool:
        return len(self.reports) >= self.stop_after

    def report(self, progress: float | None = None, message: str | None = None, eta_s: float | None = None) -> None:
        self.reports.append((progress, message))


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread: the tiny model's greedy generation is many times slower on two threads of a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
def test_a_text_runs_jobs_report_progress_and_stop_on_abort(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    settings = load_settings(tmp_path / "home", data_roots=[tmp_path / "data"])
    run = quick_lm_run(settings, tmp_path)
    evaluate = check_evaluate(settings, {"model": run}).params
    whole = _Context(settings, run, 10**9)
    assert run_evaluate(whole, evaluate)["metrics"]["perplexity"] > 1  # type: ignore[arg-type]
    assert whole.reports[-1] == (1.0, "evaluating: 1 of 1 batches of tokens")
    with pytest.raises(JobStopped):
        run_evaluate(_Context(settings, run, 0), evaluate)  # type: ignore[arg-type]
    export = check_export(settings, {"model": run}).params
    assert export["formats"] == ["archive", "onnx"]  # the task's formats
    with pytest.raises(JobStopped):  # stopped after the first format: the archive is written, ONNX never
        run_export(_Context(settings, run, 1), export)  # type: ignore[arg-type]
    folder = run_dir(settings, run) / "exports" / "job1"
    assert (folder / "model.zip").is_file() and not (folder / "model.onnx").exists()
