"""The inference job kinds: "evaluate" and "export", run by the job system in a worker process, for every task.

Checks run when a job is submitted (the model must exist, paths must lie in the data roots or the home, formats
and splits must be valid: the run's task's export formats, the splits its dataset has); runners call the same
tasks as the CLI (deepyard.infer.tasks, which hands a text run to its task) and report progress to the job, and
stop at the next progress report after an abort.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepyard.config import Settings
from deepyard.errors import IntegrityError, InvalidValueError, choices
from deepyard.jobs.context import JobContext, JobStopped
from deepyard.jobs.kinds import Checked
from deepyard.tasks import Task
from deepyard.train.runs import get_run

EVALUATE_KEYS = ("model", "dataset", "split", "images", "top_n", "snapshot")
EXPORT_KEYS = ("model", "formats", "samples", "snapshot")
SPLITS = ("train", "val", "test")


def _only(params: dict[str, Any], allowed: tuple[str, ...], kind: str) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise InvalidValueError(f"unknown {kind} job parameter {unknown[0]!r}; valid: {choices(allowed)}")


def _model(settings: Settings, params: dict[str, Any]) -> tuple[str, str | None]:
    """The model reference, checked: (reference, run id or None for an archive)."""
    from deepyard.infer.model import parse_model_ref

    ref = params.get("model")
    if not isinstance(ref, str) or not ref:
        raise InvalidValueError("the job needs 'model': a run id (ID, run:ID, ID@SNAPSHOT) or an archive path")
    if ref.endswith(".zip"):
        settings.check_readable(ref, "model archive")
        return ref, None
    run_id, _ = parse_model_ref(ref)
    return ref, get_run(settings, run_id)["id"]


def _task(settings: Settings, run_id: str | None) -> Task | None:
    """The run's task (None for an archive)."""
    from deepyard.tasks import get_task

    return None if run_id is None else get_task(get_run(settings, run_id).get("task"))


def _check_split(settings: Settings, run_id: str | None, dataset: Any, split: str, own: bool) -> None:
    """The split must be one the dataset it is taken from has (a task with its own inference: its run's)."""
    if not own and split not in SPLITS:
        raise InvalidValueError(f"split {split!r} is not one of {choices(SPLITS)}")
    from deepyard.datasets import find_dataset

    ref = dataset if dataset is not None else (get_run(settings, run_id)["dataset"] if run_id else None)
    manifest = find_dataset(settings, str(ref)) if ref is not None else None
    if manifest is not None and split not in manifest.splits:
        raise InvalidValueError(f"split {split!r} is not one of {choices(manifest.splits)} (the splits of dataset "
                                f"{manifest.name!r})")  # fmt: skip


def check_evaluate(settings: Settings, params: dict[str, Any]) -> Checked:
    _only(params, EVALUATE_KEYS, "evaluate")
    ref, run_id = _model(settings, params)
    task = _task(settings, run_id)
    own = task is not None and task.own_inference
    if task is not None and own and (params.get("images") is not None or params.get("dataset") is not None):
        raise InvalidValueError(f"a {task.title.lower()} run is evaluated on a split of its own dataset: leave "
                                "'images' and 'dataset' out")  # fmt: skip
    split = params.get("split", "val")
    if not isinstance(split, str):
        raise InvalidValueError(f"split {split!r} must be text")
    images = params.get("images")
    for key in ("images", "dataset", "snapshot"):
        value = params.get(key)
        if value is not None and not isinstance(value, str) and not (key == "snapshot" and type(value) is int):
            raise InvalidValueError(f"{key} {value!r} must be text")
    if params.get("dataset") is not None:
        from deepyard.datasets import get_dataset

        get_dataset(settings, str(params["dataset"]))
    if images is not None:
        settings.check_readable(str(images), "images")
    else:
        _check_split(settings, run_id, params.get("dataset"), split, own)
    top_n = params.get("top_n", 9)
    if not isinstance(top_n, int) or top_n < 1:
        raise InvalidValueError(f"top_n {top_n!r} must be a whole number, at least 1")
    normal = {"model": ref, "dataset": params.get("dataset"), "split": split, "images": images, "top_n": top_n,
              "snapshot": params.get("snapshot")}  # fmt: skip
    return Checked(normal, target=run_id)


def run_evaluate(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    from deepyard.infer.tasks import evaluate_model
    from deepyard.tasks import get_input_kind

    def progress(done: int, total: int) -> None:
        if ctx.poll():
            raise JobStopped
        ctx.report(done / total, f"evaluating: {done:,} of {total:,} {what}")

    task = _task(ctx.settings, ctx.target)
    kind = get_input_kind(task.input_kind if task else "image")
    what = kind.batch_noun or kind.noun
    images = Path(params["images"]) if params.get("images") else None
    doc = evaluate_model(ctx.settings, params["model"], params.get("dataset"), params["split"], images,
                         params["top_n"], None, params.get("snapshot"), progress, tag=ctx.job_id)  # fmt: skip
    return {"description": doc["description"], "count": doc["count"], "task": doc["task"], "metrics": doc["metrics"],
            "files": doc["files"]}  # fmt: skip


def check_export(settings: Settings, params: dict[str, Any]) -> Checked:
    from deepyard.infer.export import FORMATS

    _only(params, EXPORT_KEYS, "export")
    ref, run_id = _model(settings, params)
    task = _task(settings, run_id)
    valid = task.export_formats if task is not None and task.own_inference else FORMATS
    formats = params.get("formats") or list(valid)
    if not isinstance(formats, list):
        raise InvalidValueError(f"formats {formats!r} must be a list of {choices(valid)}")
    bad = [f for f in formats if f not in valid]
    if bad:
        what = f" for a {task.title.lower()}" if task is not None and task.own_inference else ""
        raise InvalidValueError(f"export format {bad[0]!r} is not one of {choices(valid)}{what}")
    samples = params.get("samples", 64)
    if not isinstance(samples, int) or samples < 1:
        raise InvalidValueError(f"samples {samples!r} must be a whole number, at least 1")
    return Checked({"model": ref, "formats": formats, "samples": samples, "snapshot": params.get("snapshot")},
                   target=run_id)  # fmt: skip


def run_export(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    from deepyard.infer.tasks import export_model

    formats = params["formats"]

    def progress(done: int, total: int) -> None:
        if ctx.poll():
            raise JobStopped
        ctx.report(done / total, f"exported and checked {done} of {total}: {', '.join(formats)}")

    ctx.report(0.0, f"exporting: {', '.join(formats)}")
    doc = export_model(ctx.settings, params["model"], formats, None, params["samples"], params["snapshot"],
                       tag=ctx.job_id, on_progress=progress)  # fmt: skip
    if not doc["ok"]:
        failed = "; ".join(_summary(r) for r in doc["reports"] if not r["ok"])
        raise IntegrityError(f"PARITY CHECK FAILED: {failed}")
    return doc


def _summary(report: dict[str, Any]) -> str:
    """One failed parity report in a line: a text task's own `summary`, else the image export's."""
    if "summary" in report:
        return str(report["summary"])
    from deepyard.infer.export import ParityReport

    return ParityReport(**report).summary()
