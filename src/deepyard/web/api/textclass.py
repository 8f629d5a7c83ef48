"""Text classification over HTTP: classify texts with a run, and a dataset's texts (a few per class) with its
length histogram; evaluating and exporting a text classifier are the generic evaluate and export jobs.

`POST /api/v1/runs/{id}/classify-text` (`{"text"}` or `{"texts"}`, `"k"`, `"snapshot"`: the run page's Classify
text box; `deepyard predict RUN TEXT` is its twin), `GET /api/v1/datasets/{id}/texts?split=&per_class=` (the
dataset page). `POST /api/v1/runs/{id}/text-evaluation` (`{"split", "snapshot", "top_n"}`) and
`POST /api/v1/runs/{id}/text-export` (`{"formats", "snapshot"}`) are aliases of `POST /runs/{id}/evaluate` and
`/export` (web/api/infer.py): they queue the same job (202, `{"job"}`), with its checks and the owner rule; the
result is `GET /runs/{id}/results/{job_id}`. Each answer of a run carries `html`, the task's partial, as the image
routes' do. Work runs in the thread pool; a run or dataset of another task is a 400.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from deepyard.datasets import get_dataset, open_split
from deepyard.datasets.catalog import dataset_dir, read_report
from deepyard.errors import InvalidValueError
from deepyard.files import read_json
from deepyard.tasks import get_task
from deepyard.train.runs import get_run
from deepyard.web.api.infer import submit_infer
from deepyard.web.deps import IdPath, RequestModel, SettingsDep, UserDep
from deepyard.web.templating import task_partial

router = APIRouter(tags=["text classification"])
TASK = "text-classification"
MAX_CHARS = 100_000  # characters of one text over HTTP


class ClassifyTextRequest(RequestModel):
    text: str | None = Field(None, max_length=MAX_CHARS, description="One text to classify.")
    texts: list[str] | None = Field(None, max_length=1000, description="Or several (each at most 100,000 chars).")
    k: int = Field(5, ge=1, le=1000, description="Classes per text, most likely first.")
    snapshot: str | None = Field(None, max_length=40, description="best (default), last or a step.")


class TextEvaluationRequest(RequestModel):
    split: str = Field("val", max_length=10)
    snapshot: str | None = Field(None, max_length=40)
    top_n: int = Field(9, ge=1, le=100, description="Top losses and top texts per class to keep.")


def _ref(run_id: str, snapshot: str | None) -> str:
    return f"{run_id}@{snapshot}" if snapshot else run_id


def _check_run(settings: Any, run_id: str) -> None:
    info = get_run(settings, run_id)
    task = get_dataset(settings, info["dataset"]).task
    if task != TASK:
        raise InvalidValueError(f"run {info['id']!r} is a {task} model, not a text classifier")


@router.post("/runs/{run_id}/classify-text")
async def classify_text(run_id: IdPath, body: ClassifyTextRequest, settings: SettingsDep) -> dict[str, Any]:
    texts = ([body.text] if body.text is not None else []) + (body.texts or [])
    if not texts or not any(t.strip() for t in texts):
        raise InvalidValueError("give a text to classify: 'text' (a string) or 'texts' (a list of strings)")
    if any(len(t) > MAX_CHARS for t in texts):
        raise InvalidValueError(f"a text is longer than {MAX_CHARS:,} characters")

    def work() -> dict[str, Any]:
        from deepyard.text.classify import classify_texts, open_text_classifier

        _check_run(settings, run_id)
        clf = open_text_classifier(settings, _ref(run_id, body.snapshot))
        rows = classify_texts(clf, [("text", t, None) for t in texts], body.k)
        task = get_task(TASK)
        for row in rows:
            row["html"] = task_partial(task, "predict.html", p=row, names=clf.classes)
        return {"model": clf.info, "predictions": rows}

    return await run_in_threadpool(work)


@router.post("/runs/{run_id}/text-evaluation", status_code=202)
def text_evaluation(run_id: IdPath, body: TextEvaluationRequest, settings: SettingsDep, user: UserDep) -> Any:
    """An alias of `POST /runs/{id}/evaluate` with a JSON body (kept for clients of the first text release): queues
    the same evaluate job, with the same checks and the owner rule; follow it and read `/results/{job_id}`."""
    _check_run(settings, run_id)
    params = {"split": body.split, "top_n": body.top_n, "snapshot": body.snapshot or None}
    return submit_infer(settings, run_id, "evaluate", params, user)


class TextExportRequest(RequestModel):
    formats: list[str] = Field(["archive", "onnx"], max_length=4, description="archive and/or onnx.")
    snapshot: str | None = Field(None, max_length=40)


@router.post("/runs/{run_id}/text-export", status_code=202)
def text_export(run_id: IdPath, body: TextExportRequest, settings: SettingsDep, user: UserDep) -> Any:
    """An alias of `POST /runs/{id}/export` with a JSON body: queues the same export job (archive and ONNX, each
    parity-checked); its reports, each with a download `url`, come from `/results/{job_id}`."""
    _check_run(settings, run_id)
    return submit_infer(settings, run_id, "export", {"formats": body.formats, "snapshot": body.snapshot or None}, user)


@router.get("/datasets/{dataset_id}/texts")
def dataset_texts(
    dataset_id: IdPath, settings: SettingsDep, split: str = Query("train", max_length=10),
    per_class: int = Query(3, ge=1, le=50),
) -> dict[str, Any]:  # fmt: skip
    """The first `per_class` texts of each class of a split, and the build's length histogram per class."""
    manifest = get_dataset(settings, dataset_id)
    if manifest.task != TASK:
        raise InvalidValueError(f"dataset {manifest.name!r} is a {manifest.task} dataset, not text classification")
    store: Any = open_split(settings, manifest, split)
    sources_file = dataset_dir(settings, manifest.id) / split / "sources.json"
    sources = read_json(sources_file) if sources_file.is_file() else []
    classes = []
    for k, name in enumerate(manifest.classes):
        picked = [int(i) for i in (store.targets == k).nonzero()[0][:per_class]]
        classes.append({"name": name, "count": int((store.targets == k).sum()), "examples": [
            {"index": i, "text": store.text(i)[:1000], "tokens": int(store.lengths[i]),
             "source": str(sources[i]) if i < len(sources) else f"{split}#{i}"} for i in picked]})  # fmt: skip
    report = read_report(dataset_dir(settings, manifest.id))
    return {"dataset": manifest.id, "split": split, "classes": classes, "stats": manifest.target_stats,
            "lengths": report.get("text", {}).get("lengths", {})}  # fmt: skip
