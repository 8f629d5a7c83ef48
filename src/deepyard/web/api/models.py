"""/api/v1/models and weights uploads: what the New run page's Starting weights card needs offline.

- `GET /models`: the model store's entries (name, network, classes, input shape).
- `POST /models/import?name=N`: a model archive (`deepyard export`'s, the request body, or `?path=` of one inside
  the data roots) stored as a model-store entry (deepyard.transfer.import_archive, which checks the archive).
- `POST /uploads/weights?name=FILE`: a `.safetensors` or weights-only `.pt`/`.pth` file (the request body), kept
  in `<home>/uploads/<id>/FILE` like the zip uploads (deepyard.uploads: gone after a day) and read once with
  safetensors or `torch.load(weights_only=True)`, so a file carrying code is refused; its path is the run's source.

Bodies are streamed to disk under `Limits.upload_bytes`; the reading runs in the thread pool and is bounded by
that size (no training happens here).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from deepyard import users
from deepyard.errors import IntegrityError, InvalidValueError
from deepyard.files import new_id
from deepyard.limits import NAME_MAX
from deepyard.uploads import sweep_uploads, uploads_dir
from deepyard.web.deps import ConnDep, SettingsDep, UserDep
from deepyard.web.errors import TooLarge
from deepyard.web.files import Limits, resolve_readable, save_stream

router = APIRouter(tags=["models"])
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth")  # what an upload may be (deepyard.transfer.weights reads more)
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")


def entry_json(entry: Any) -> dict[str, Any]:
    return {"name": entry.name, "network": entry.network["ref"], "classes": entry.num_classes,
            "input_shape": entry.input_shape, "description": entry.description}  # fmt: skip


@router.get("/models")
def list_(settings: SettingsDep) -> list[dict[str, Any]]:
    """The model store's entries, by name."""
    from deepyard.transfer import list_models

    return [entry_json(m) for m in list_models(settings)]


def _limit(request: Request) -> int:
    limits: Limits = request.app.state.limits
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limits.upload_bytes:
        raise TooLarge(f"upload of {int(declared):,} bytes is over the limit of {limits.upload_bytes:,}")
    return limits.upload_bytes


@router.post("/uploads/weights", status_code=201)
async def upload_weights(
    request: Request, settings: SettingsDep, conn: ConnDep, user: UserDep,
    name: str = Query(..., max_length=NAME_MAX, description="The file's name: NAME.safetensors, .pt or .pth."),
) -> dict[str, Any]:  # fmt: skip
    """Upload a weights file (the request body); answers its path (a run's `source`) and its tensor count."""
    if not SAFE_NAME.match(name) or Path(name).suffix.lower() not in WEIGHT_SUFFIXES:
        raise InvalidValueError(f"weights file name {name!r} must be a plain file name ending in "
                                f"{', '.join(WEIGHT_SUFFIXES)} (letters, digits, '.', '_', '-')")  # fmt: skip
    limit = _limit(request)
    await run_in_threadpool(sweep_uploads, settings)
    upload_id = new_id()
    folder = uploads_dir(settings) / upload_id
    folder.mkdir(parents=True)
    try:
        target = folder / name
        size = await save_stream(request.stream(), target, limit)
        tensors = await run_in_threadpool(_tensor_count, target)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    users.set_owner(conn, "upload", upload_id, user)
    return {"id": upload_id, "path": str(target), "bytes": size, "tensors": tensors}


def _tensor_count(path: Path) -> int:
    from deepyard.transfer import load_weights_file

    try:
        return len(load_weights_file(path))  # refuses a file that is not plain tensor data
    except IntegrityError as exc:  # a bad upload is the request's fault: 422, not a damaged store (500)
        raise InvalidValueError(f"the upload {path.name!r} was refused: {exc}") from None


@router.post("/models/import", status_code=201)
async def import_model(
    request: Request, settings: SettingsDep,
    name: str | None = Query(None, max_length=NAME_MAX, description="The store entry's name (default: the file's)."),
    path: str | None = Query(None, max_length=4096, description="An archive inside the data roots, instead of a body."),
) -> dict[str, Any]:  # fmt: skip
    """Store a model archive as a model-store entry (`store:NAME` as a run's source); a file that is not a model
    archive, or a name the store has already, is a 422 naming it."""
    if name is not None and not SAFE_NAME.match(name):
        raise InvalidValueError(f"model name {name!r} must be letters, digits, '.', '_' or '-' (at most 121)")
    if path is not None:
        archive = resolve_readable(settings, path)
        if not archive.is_file():
            raise InvalidValueError(f"model archive {path!r} does not exist or is not a file")
        return entry_json(await run_in_threadpool(_import, settings, archive, name))
    limit = _limit(request)
    uploads_dir(settings).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=uploads_dir(settings), prefix=".archive-") as work:
        archive = Path(work) / f"{name or 'model'}.zip"
        await save_stream(request.stream(), archive, limit)
        entry = await run_in_threadpool(_import, settings, archive, name)
    return entry_json(entry)


def _import(settings: Any, archive: Path, name: str | None) -> Any:
    from deepyard.transfer import import_archive

    try:
        return import_archive(settings, archive, name)
    except IntegrityError as exc:  # the request's file, not the store, is damaged
        raise InvalidValueError(str(exc).replace(str(archive), archive.name)) from None
