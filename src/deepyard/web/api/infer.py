"""/api/v1/runs/{id}: classify one (an uploaded image), classify many (a zip of images), inspect (activations,
weights, Grad-CAM), evaluate and export (with its parity report) as jobs, their results, and the files all these
write. Classify and inspect answer within the request (interactive, small); evaluating a split and exporting take
longer, so they are jobs run by the scheduler in a worker process, with progress, abort and a status history.
Evaluate and export serve every task: the job goes through the run's task (deepyard.infer.tasks), so a language
model's or a text classifier's run is evaluated and exported by the same routes, checks and jobs as an image one.

Models are loaded only from runs (never from a path in a request) and kept in a small cache keyed by the
checkpoint file and its modification time, so repeated requests do not reload them. Files are served only from
the run's `evaluations/`, `inspections/`, `exports/` and `predictions/` folders, with `..` and symlinks resolved first.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
from collections import OrderedDict
from contextlib import closing
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from deepyard import db, jobs
from deepyard.config import Settings
from deepyard.datasets.images import ImageSkipped
from deepyard.errors import Conflict, Forbidden, InvalidValueError, NotFoundError
from deepyard.files import read_json
from deepyard.infer import FORMATS, TrainedModel, classify_many, classify_one, load_run_model, read_inputs
from deepyard.infer.model import checkpoint_path
from deepyard.infer.preprocess import header_size
from deepyard.infer.tasks import evaluate_model, inspect_model
from deepyard.limits import NAME_MAX
from deepyard.tasks import get_task
from deepyard.train import get_run
from deepyard.train.runs import run_dir
from deepyard.uploads import uploads_dir
from deepyard.web.api.jobs import job_json
from deepyard.web.deps import IdPath, SettingsDep, UserDep, require_owner
from deepyard.web.errors import TooLarge
from deepyard.web.files import Limits, extract_zip, save_stream
from deepyard.web.templating import task_partial

router = APIRouter(tags=["inference"])
IMAGE_LIMIT = 50 * 1024**2  # bytes of one uploaded image
MAX_PIXELS = 40_000_000  # pixels of one image to classify or inspect (120 MB decoded), checked before decoding
SERVED = ("evaluations", "inspections", "exports", "predictions")
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
EXPORT_FORMATS = "Formats to write (default: all the run's task exports; archive, onnx and torchscript for images)."
INFER_KINDS = ("evaluate", "export")  # job kinds of a run's model, shown on the run page as `tasks`

_cache: OrderedDict[tuple[str, str, float], TrainedModel] = OrderedDict()
_cache_lock = threading.Lock()
CACHE_SIZE = 4


def model_for(settings: Settings, run_id: str, snapshot: str | None) -> TrainedModel:
    """The run's model at `snapshot` (default: best, else last), loaded once while its checkpoint is unchanged."""
    get_run(settings, run_id)
    path = checkpoint_path(settings, run_id, snapshot)
    key = (str(path), snapshot or "", path.stat().st_mtime)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    clf = load_run_model(settings, run_id, snapshot)
    with _cache_lock:
        _cache[key] = clf
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return clf


async def read_body(request: Request, limit: int, what: str = "upload") -> bytes:
    """The request's body, refused (413) as soon as it is over `limit` bytes (declared or sent)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"{what} of {int(declared):,} bytes is over the limit of {limit:,}")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise TooLarge(f"{what} is larger than the limit of {limit:,} bytes")
    return bytes(data)


async def _body(request: Request, limit: int) -> bytes:
    data = await read_body(request, limit)
    if not data:
        raise InvalidValueError("the request body is empty; send the image file as the body")
    check_pixels(data, "the uploaded image")
    return data


def check_pixels(source: bytes | Path, what: str) -> None:
    """Refuse (413) an image over MAX_PIXELS from its header, before a single pixel is decoded."""
    size = header_size(source)
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        raise TooLarge(
            f"{what} is {size[0]:,}x{size[1]:,} = {size[0] * size[1]:,} pixels, over the limit of {MAX_PIXELS:,} "
            "(MAX_PIXELS) for classify and inspect; send a smaller image"
        )


def _classify(settings: Settings, run_id: str, data: bytes, k: int, snapshot: str | None, name: str) -> Any:
    clf = model_for(settings, run_id, snapshot)
    try:
        doc = classify_one(clf, data, k=k, name=name).to_json()
        return doc | {"model": clf.info, "html": task_partial(clf.task, "predict.html", p=doc, names=clf.classes)}
    except ImageSkipped as exc:
        raise InvalidValueError(f"the uploaded image cannot be used: {exc.reason}") from None


@router.post("/runs/{run_id}/classify")
async def classify(
    run_id: IdPath,
    request: Request,
    settings: SettingsDep,
    k: int = Query(5, ge=1, le=100),
    snapshot: str | None = Query(None, max_length=NAME_MAX, description="best (default), last, or a step number."),
    name: str = Query("upload", max_length=200),
) -> Any:
    """Classify one image sent as the request body: the top-k classes with their probabilities."""
    data = await _body(request, IMAGE_LIMIT)
    return await run_in_threadpool(_classify, settings, run_id, data, k, snapshot, name)


@router.post("/runs/{run_id}/inspect")
async def inspect(
    run_id: IdPath,
    request: Request,
    settings: SettingsDep,
    snapshot: str | None = Query(None, max_length=NAME_MAX),
    target: str | None = Query(None, max_length=NAME_MAX, description="Class for Grad-CAM (default: predicted)."),
    layer: str | None = Query(None, max_length=NAME_MAX, description="Layer for Grad-CAM (default: last conv)."),
    name: str = Query("upload", max_length=200),
) -> Any:
    """Activations and weights of every layer with statistics, and Grad-CAM, for one uploaded image."""
    data = await _body(request, IMAGE_LIMIT)
    label = SAFE_NAME.sub("_", Path(name).stem)[:60] or "upload"

    def work() -> Any:
        model_for(settings, run_id, snapshot)  # the same checks and errors as classify
        # inspect_model loads its own copy: its forward hooks on the shared cached model would also record the
        # outputs of classify requests running at the same time
        try:
            doc = inspect_model(settings, run_id, data, target, layer, snapshot=snapshot, name=label)
        except ImageSkipped as exc:
            raise InvalidValueError(f"the uploaded image cannot be used: {exc.reason}") from None
        return {**doc, "base": _file_url(settings, run_id, Path(doc["folder"]))}

    return await run_in_threadpool(work)


def _file_url(settings: Settings, run_id: str, folder: Path) -> str:
    rel = folder.resolve().relative_to(run_dir(settings, run_id).resolve())
    return f"/api/v1/runs/{run_id}/files/{rel.as_posix()}/"


def submit_infer(settings: Settings, run_id: str, kind: str, params: dict[str, Any], user: Any) -> dict[str, Any]:
    """Queue an evaluate or export job on the run's model; a missing run or snapshot, a split or format the run's
    task or dataset does not have, is refused before queueing. These jobs write into the run's folder, so only the
    run's creator (or an admin) may start them."""
    get_run(settings, run_id)
    with closing(db.connect(settings)) as conn:
        require_owner(conn, "run", run_id, user)
    checkpoint_path(settings, run_id, params.get("snapshot"))
    job = jobs.submit(settings, kind, {"model": run_id, **params}, owner=user.name if user else None)
    return {"job": job_json(job)}


@router.post("/runs/{run_id}/evaluate", status_code=202)
def evaluate(
    run_id: IdPath,
    settings: SettingsDep,
    user: UserDep,
    split: str = Query("val", max_length=NAME_MAX, description="Split of the run's dataset."),
    snapshot: str | None = Query(None, max_length=NAME_MAX),
    top_n: int = Query(9, ge=1, le=100),
) -> Any:
    """Evaluate on a split of the run's dataset as a job: the task's report (accuracy, confusion matrix, per class,
    top losses, top N; a language model's loss, perplexity and bits per character). Follow the job (`/jobs/{id}`,
    or `tasks` on the run's event stream); once it is done, `GET /runs/{run_id}/results/{job_id}` gives the
    evaluation with the URLs of its pictures."""
    params = {"split": split, "top_n": top_n, "snapshot": snapshot or None}
    return submit_infer(settings, run_id, "evaluate", params, user)


@router.post("/runs/{run_id}/classify-many")
async def classify_zip(
    run_id: IdPath,
    request: Request,
    settings: SettingsDep,
    user: UserDep,
    snapshot: str | None = Query(None, max_length=NAME_MAX),
    top_n: int = Query(9, ge=1, le=100),
) -> Any:
    """A zip of images (class sub-folders named after the model's classes give labels): with labels, a full
    evaluation (confusion matrix, per-class accuracy, top losses); without, the top-5 of each image."""
    limits: Limits = request.app.state.limits
    uploads_dir(settings).mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=uploads_dir(settings), prefix=".upload-", suffix=".zip") as tmp:
        await save_stream(request.stream(), Path(tmp.name), limits.upload_bytes)
        upload = await run_in_threadpool(extract_zip, settings, Path(tmp.name), limits)

    def work() -> Any:
        root = Path(str(upload["path"]))
        try:
            clf = model_for(settings, run_id, snapshot)
            if clf.task.name in ("detection", "segmentation"):  # overlays (and masks) per image, as `predict`
                from deepyard.web.api.vision import predict_folder

                return predict_folder(settings, run_id, clf, root)
            items = read_inputs(root, classes=clf.classes, task=clf.task)
            for item in items:
                check_pixels(Path(item.source), f"image {Path(item.source).relative_to(root).as_posix()!r}")
            if items and all(it.label is not None for it in items):
                with closing(db.connect(settings)) as conn:  # an evaluation is written into the run's folder
                    require_owner(conn, "run", run_id, user)
                doc = evaluate_model(settings, run_id, images=root, top_n=top_n, snapshot=snapshot)
                return _evaluation(doc, _file_url(settings, run_id, Path(doc["files"]["json"]).parent), None)
            return {"predictions": [p.to_json() for p in classify_many(clf, items)], "model": clf.info}
        finally:
            shutil.rmtree(root, ignore_errors=True)  # the results are kept; the uploaded images are not

    return await run_in_threadpool(work)


@router.post("/runs/{run_id}/export", status_code=202)
def export(
    run_id: IdPath,
    settings: SettingsDep,
    user: UserDep,
    formats: list[str] | None = Query(None, max_length=len(FORMATS) * 2, description=EXPORT_FORMATS),
    snapshot: str | None = Query(None, max_length=NAME_MAX),
) -> Any:
    """Export to each format and check it against PyTorch on a validation sample (the parity report), as a job.
    A failed parity check fails the job, with `PARITY CHECK FAILED` and the figures as its error; once done,
    `GET /runs/{run_id}/results/{job_id}` gives the reports, each with a download URL."""
    return submit_infer(settings, run_id, "export", {"formats": formats, "snapshot": snapshot or None}, user)


def _evaluation(doc: dict[str, Any], base: str, job_id: str | None) -> dict[str, Any]:
    """An evaluation as the run page shows it: the document, where its pictures are, and its task's partial."""
    task = get_task(doc.get("task"))
    html = task_partial(task, "evaluate.html", r=doc, base=base, suffix=f"?job={job_id}" if job_id else "")
    return {**doc, "base": base, "job": job_id, "html": html}


@router.get("/runs/{run_id}/results/{job_id}")
def result(run_id: IdPath, job_id: IdPath, settings: SettingsDep) -> Any:
    """What a finished evaluate or export job of this run produced: the evaluation (as classify-many returns one,
    with `base`, the URL its pictures are under) or the export reports (each with a download `url`)."""
    job = jobs.get_job(settings, job_id)
    if job.target != run_id or job.kind not in INFER_KINDS:
        raise NotFoundError(f"job {job_id!r} is not an evaluation or export of run {run_id!r}")
    if job.status != "done" or job.result is None:
        why = f": {job.error}" if job.error else ""
        raise Conflict(f"job {job_id} is {job.status}{why}; its results exist once it is done")
    if job.kind == "evaluate":
        path = _served(settings, run_id, Path(job.result["files"]["json"]))
        return _evaluation(read_json(path), _file_url(settings, run_id, path.parent), job_id)
    doc = dict(job.result)
    for report in doc["reports"]:
        path = _served(settings, run_id, Path(report["path"]))
        report["url"] = _file_url(settings, run_id, path.parent) + path.name
    return {**doc, "job": job_id}


def _served(settings: Settings, run_id: str, path: Path) -> Path:
    """`path` resolved, when it is a file the files route serves for this run (else the result is unusable)."""
    folder = run_dir(settings, run_id).resolve()
    target = path.resolve()
    if not target.is_relative_to(folder) or target.relative_to(folder).parts[:1] not in [(s,) for s in SERVED]:
        raise Forbidden(f"{path} is not an evaluation, inspection or export file of run {run_id!r}")
    if not target.is_file():
        raise NotFoundError(f"run {run_id!r} has no file {target.name!r}")
    return target


@router.get("/runs/{run_id}/files/{path:path}", response_class=FileResponse)
def files(run_id: IdPath, path: str, settings: SettingsDep) -> FileResponse:
    """A file an evaluation, inspection or export wrote in the run's folder."""
    get_run(settings, run_id)
    if "\x00" in path or len(path) > 4096:
        raise NotFoundError(f"run {run_id!r} has no file {path[:60]!r}")
    target = _served(settings, run_id, run_dir(settings, run_id) / path)
    exported = target.relative_to(run_dir(settings, run_id).resolve()).parts[0] == "exports"
    return FileResponse(target, filename=target.name if exported else None)
