"""/api/v1/runs/{id}: classify one (an uploaded image), classify many (a zip of images, or a dataset split),
inspect (activations, weights, Grad-CAM), export with its parity report, and the files those write.

Models are loaded only from runs (never from a path in a request) and kept in a small cache keyed by the
checkpoint file and its modification time, so repeated requests do not reload them. Files are served only from
the run's `evaluations/`, `inspections/` and `exports/` folders, with `..` and symlinks resolved first.
"""

from __future__ import annotations

import re
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from deepyard.config import Settings
from deepyard.datasets.images import ImageSkipped
from deepyard.errors import InvalidValueError, NotFoundError
from deepyard.infer import FORMATS, Classifier, classify_many, classify_one, load_run_model, read_inputs
from deepyard.infer.model import checkpoint_path
from deepyard.infer.tasks import evaluate_model, export_model, inspect_model
from deepyard.train import get_run
from deepyard.train.runs import run_dir
from deepyard.web.deps import SettingsDep
from deepyard.web.errors import Forbidden, TooLarge
from deepyard.web.files import Limits, extract_zip, save_stream, uploads_dir

router = APIRouter(tags=["inference"])
IMAGE_LIMIT = 50 * 1024**2  # bytes of one uploaded image
SERVED = ("evaluations", "inspections", "exports")
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")

_cache: OrderedDict[tuple[str, str, float], Classifier] = OrderedDict()
_cache_lock = threading.Lock()
CACHE_SIZE = 4


def model_for(settings: Settings, run_id: str, snapshot: str | None) -> Classifier:
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


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"upload of {int(declared):,} bytes is over the limit of {limit:,}")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise TooLarge(f"upload is larger than the limit of {limit:,} bytes")
    if not data:
        raise InvalidValueError("the request body is empty; send the image file as the body")
    return bytes(data)


def _classify(settings: Settings, run_id: str, data: bytes, k: int, snapshot: str | None, name: str) -> Any:
    clf = model_for(settings, run_id, snapshot)
    try:
        return classify_one(clf, data, k=k, name=name).to_json() | {"model": clf.info}
    except ImageSkipped as exc:
        raise InvalidValueError(f"the uploaded image cannot be used: {exc.reason}") from None


@router.post("/runs/{run_id}/classify")
async def classify(
    run_id: str,
    request: Request,
    settings: SettingsDep,
    k: int = Query(5, ge=1, le=100),
    snapshot: str | None = Query(None, description="best (default), last, or a step number."),
    name: str = Query("upload", max_length=200),
) -> Any:
    """Classify one image sent as the request body: the top-k classes with their probabilities."""
    data = await _body(request, IMAGE_LIMIT)
    return await run_in_threadpool(_classify, settings, run_id, data, k, snapshot, name)


@router.post("/runs/{run_id}/inspect")
async def inspect(
    run_id: str,
    request: Request,
    settings: SettingsDep,
    snapshot: str | None = None,
    target: str | None = Query(None, description="Class for Grad-CAM (default: the predicted one)."),
    layer: str | None = Query(None, description="Layer for Grad-CAM (default: the last convolution)."),
    name: str = Query("upload", max_length=200),
) -> Any:
    """Activations and weights of every layer with statistics, and Grad-CAM, for one uploaded image."""
    data = await _body(request, IMAGE_LIMIT)
    label = SAFE_NAME.sub("_", Path(name).stem)[:60] or "upload"

    def work() -> Any:
        model_for(settings, run_id, snapshot)  # the same checks and errors as classify
        try:
            doc = inspect_model(settings, run_id, data, target, layer, snapshot=snapshot, name=label)
        except ImageSkipped as exc:
            raise InvalidValueError(f"the uploaded image cannot be used: {exc.reason}") from None
        return {**doc, "base": _file_url(settings, run_id, Path(doc["folder"]))}

    return await run_in_threadpool(work)


def _file_url(settings: Settings, run_id: str, folder: Path) -> str:
    rel = folder.resolve().relative_to(run_dir(settings, run_id).resolve())
    return f"/api/v1/runs/{run_id}/files/{rel.as_posix()}/"


@router.post("/runs/{run_id}/evaluate")
def evaluate(
    run_id: str,
    settings: SettingsDep,
    split: str = Query("val", description="Split of the run's dataset."),
    snapshot: str | None = None,
    top_n: int = Query(9, ge=1, le=100),
) -> Any:
    """Evaluate on a split of the run's dataset: accuracy, confusion matrix, per class, top losses, top N."""
    doc = evaluate_model(settings, run_id, split=split, top_n=top_n, snapshot=snapshot)
    return {**doc, "base": _file_url(settings, run_id, Path(doc["files"]["json"]).parent)}


@router.post("/runs/{run_id}/classify-many")
async def classify_zip(
    run_id: str, request: Request, settings: SettingsDep, snapshot: str | None = None, top_n: int = 9
) -> Any:
    """A zip of images (class sub-folders named after the model's classes give labels): with labels, a full
    evaluation (confusion matrix, per-class accuracy, top losses); without, the top-5 of each image."""
    limits: Limits = request.app.state.limits
    uploads_dir(settings).mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=uploads_dir(settings), prefix=".upload-", suffix=".zip") as tmp:
        await save_stream(request.stream(), Path(tmp.name), limits.upload_bytes)
        upload = await run_in_threadpool(extract_zip, settings, Path(tmp.name), limits)

    def work() -> Any:
        clf = model_for(settings, run_id, snapshot)
        root = Path(str(upload["path"]))
        items = read_inputs(root, classes=clf.classes)
        if items and all(it.label is not None for it in items):
            doc = evaluate_model(settings, run_id, images=root, top_n=top_n, snapshot=snapshot)
            return {**doc, "base": _file_url(settings, run_id, Path(doc["files"]["json"]).parent)}
        return {"predictions": [p.to_json() for p in classify_many(clf, items)], "model": clf.info}

    return await run_in_threadpool(work)


@router.post("/runs/{run_id}/export")
def export(
    run_id: str,
    settings: SettingsDep,
    formats: list[str] = Query(list(FORMATS), description="Formats to write."),
    snapshot: str | None = None,
) -> Any:
    """Export to each format and check it against PyTorch on a validation sample (the parity report)."""
    doc = export_model(settings, run_id, formats, snapshot=snapshot)
    for report in doc["reports"]:
        report["url"] = _file_url(settings, run_id, Path(report["path"]).parent) + Path(report["path"]).name
    return doc


@router.get("/runs/{run_id}/files/{path:path}", response_class=FileResponse)
def files(run_id: str, path: str, settings: SettingsDep) -> FileResponse:
    """A file an evaluation, inspection or export wrote in the run's folder."""
    get_run(settings, run_id)
    folder = run_dir(settings, run_id).resolve()
    target = (folder / path).resolve()
    if not target.is_relative_to(folder) or target.relative_to(folder).parts[:1] not in [(s,) for s in SERVED]:
        raise Forbidden(f"{path!r} is not an evaluation, inspection or export file of run {run_id!r}")
    if not target.is_file():
        raise NotFoundError(f"run {run_id!r} has no file {path!r}")
    return FileResponse(target, filename=target.name if target.parent.name == "exports" else None)
