"""/api/v1/datasets: list, show, delete, mean image, sample images, reports, resize preview, zip upload."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from PIL import Image
from pydantic import Field

from deepyard import jobs, users
from deepyard.datasets import Manifest, get_dataset, make_spec, open_split
from deepyard.datasets.catalog import MEAN_IMAGE, dataset_dir, load_dataset
from deepyard.datasets.images import ImageSkipped, load_image, resize, spec_geometry
from deepyard.datasets.sources import walk_images
from deepyard.datasets.spec import SPLITS, Fill, ResizeMode
from deepyard.errors import InvalidValueError, NotFoundError, choices
from deepyard.stored import Damaged
from deepyard.tasks import get_task
from deepyard.train.runs import delete_unused_dataset
from deepyard.uploads import sweep_uploads, uploads_dir
from deepyard.web import views
from deepyard.web.deps import ConnDep, IdPath, RequestModel, SettingsDep, UserDep, require_owner
from deepyard.web.files import Limits, extract_zip, resolve_readable, save_stream

router = APIRouter(prefix="/datasets", tags=["datasets"])
PNG = "image/png"


@router.get("", response_model=list[dict[str, Any]])
def list_(settings: SettingsDep, conn: ConnDep) -> JSONResponse:
    """Every complete dataset, newest first; a damaged one with status "damaged" and the reason."""
    return JSONResponse(views.list_dataset_rows(settings, conn))  # plain JSON: no need for FastAPI's slower encoder


@router.get("/{ref}")
def show(ref: IdPath, settings: SettingsDep, conn: ConnDep) -> dict[str, Any]:
    """The manifest, per-class counts, and the runs trained on it; for a damaged dataset (by id), its status
    "damaged" and the reason."""
    return views.get_dataset_detail(settings, conn, ref)


@router.delete("/{ref}")
def delete(ref: IdPath, settings: SettingsDep, conn: ConnDep, user: UserDep) -> dict[str, Any]:
    """Delete a dataset, also a damaged one; refused while runs use it (delete those first)."""
    m = load_dataset(settings, ref)
    require_owner(conn, "dataset", m.id, user)
    delete_unused_dataset(settings, m.id)
    jobs.forget_target(settings, "dataset", m.id)
    return {"deleted": m.id, "name": None if isinstance(m, Damaged) else m.name}


@router.get("/{ref}/mean.png", response_class=Response, responses={200: {"content": {PNG: {}}}})
def mean_image(ref: IdPath, settings: SettingsDep) -> Response:
    """The training split's mean image."""
    m = _images(get_dataset(settings, ref))
    return Response((dataset_dir(settings, m.id) / MEAN_IMAGE).read_bytes(), media_type=PNG)


@router.get("/{ref}/samples")
def samples(
    ref: IdPath,
    settings: SettingsDep,
    split: str = Query("train", max_length=16),
    label: int | None = Query(None, ge=0, description="Class (label) index; all images when absent."),
    offset: int = Query(0, ge=0),
    limit: int = Query(48, ge=1, le=500),
) -> dict[str, Any]:
    """A page of image indices of one split (optionally those having one class or label), for the gallery. Each
    item's `class` is its target as text (the task's caption); `label` its class index where it has one."""
    m = get_dataset(settings, ref)
    task = get_task(m.task)
    store = open_split(settings, m, _split(m, split))
    if label is not None and label >= len(m.classes):
        raise InvalidValueError(f"label {label} is out of range; the dataset has {len(m.classes)} outputs")
    targets = store.targets
    indices = np.arange(len(store)) if label is None else np.flatnonzero(task.having(targets, label))
    page = indices[offset : offset + limit]
    items = [{"index": int(i), "label": int(targets[i]) if targets.ndim == 1 else None,
              "class": task.caption(targets[i], m.classes)} for i in page]  # fmt: skip
    return {"split": split, "label": label, "total": len(indices), "offset": offset, "items": items}


@router.get("/{ref}/images/{split}/{index}.png", response_class=Response, responses={200: {"content": {PNG: {}}}})
def image(ref: IdPath, split: IdPath, index: int, settings: SettingsDep) -> Response:
    """One stored image as PNG."""
    m = _images(get_dataset(settings, ref))
    store = open_split(settings, m, _split(m, split))
    if not 0 <= index < len(store):
        raise NotFoundError(f"image {index} is out of range; split {split!r} has {len(store)} images")
    return Response(_png(store.get(index)), media_type=PNG, headers={"Cache-Control": "max-age=86400"})


@router.get("/{ref}/report")
def report(ref: IdPath, settings: SettingsDep, limit: int = Query(1000, ge=1, le=100_000)) -> dict[str, Any]:
    """Skipped files (with reasons), dropped classes and duplicate groups, each list cut at `limit`."""
    return views.get_dataset_report(settings, ref, limit)


def _images(m: Manifest) -> Manifest:
    """`m`, when its examples are images (a text dataset has no mean image and no stored pictures)."""
    if get_task(m.task).input_kind != "image":
        raise NotFoundError(f"dataset {m.name!r} holds texts, not images; its texts: GET /api/v1/datasets/{m.id}/"
                            f"{'texts' if m.task == 'text-classification' else 'text'}")  # fmt: skip
    return m


def _split(m: Manifest, split: str) -> str:
    if split not in SPLITS:
        raise InvalidValueError(f"split {split!r} is not valid; use {choices(SPLITS)}")
    return split


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).save(buf, format="PNG")
    return buf.getvalue()


PREVIEW_MAX = 2048  # pixels of a preview's side


class ResizePreview(RequestModel):
    width: int = Field(256, ge=1, le=PREVIEW_MAX)
    height: int = Field(256, ge=1, le=PREVIEW_MAX)
    channels: int = 3
    resize_mode: ResizeMode = ResizeMode.squash
    fill: Fill = Fill.noise
    fill_value: int = 0
    folder: str | None = Field(None, max_length=4096)  # the first image under this folder; else a built-in sample


@router.post("/resize-preview", response_class=Response, responses={200: {"content": {PNG: {}}}})
def resize_preview(body: ResizePreview, settings: SettingsDep) -> Response:
    """A sample image resized with the chosen mode (DIGITS' "See example"), as PNG."""
    spec = make_spec(
        name="preview",
        source={"kind": "folder", "train": "/"},
        width=body.width,
        height=body.height,
        channels=body.channels,
        resize_mode=body.resize_mode,
        fill=body.fill,
        fill_value=body.fill_value,
    )
    geo = spec_geometry(spec)
    sample = _first_image(resolve_readable(settings, body.folder), settings.readable()) if body.folder else None
    try:
        img = load_image(str(sample), geo) if sample else load_image(_builtin_sample(spec.channels), geo)
    except ImageSkipped as exc:
        raise InvalidValueError(f"sample image {str(sample)!r} cannot be used: {exc.reason}") from None
    return Response(_png(resize(img, geo, noise_seed=0)), media_type=PNG)


def _first_image(folder: Path, readable: Callable[[str], bool]) -> Path | None:
    """The first image under `folder` that lies inside the roots (a symlink out of them is passed over)."""
    found, _ = walk_images(folder, readable)
    return Path(found[0]) if found else None


def _builtin_sample(channels: int) -> np.ndarray:
    """A 320x180 landscape test card: a gradient, a centred disc and a frame, so crops and pads show."""
    y, x = np.mgrid[0:180, 0:320]
    img = np.stack([x * 255 // 319, y * 255 // 179, np.full_like(x, 160)], axis=-1).astype(np.uint8)
    img[(x - 160) ** 2 + (y - 90) ** 2 < 70**2] = (250, 250, 250)
    img[:6], img[-6:], img[:, :6], img[:, -6:] = 20, 20, 20, 20
    return img if channels == 3 else img.mean(axis=2).astype(np.uint8)


@router.post("/uploads", status_code=201)
async def upload_zip(request: Request, settings: SettingsDep, conn: ConnDep, user: UserDep) -> dict[str, Any]:
    """Upload a zip of class folders (the request body is the zip); it lands in `<home>/uploads/<id>/`, and is
    removed once a dataset is built from it, or after a day (deepyard.uploads)."""
    limits: Limits = request.app.state.limits
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limits.upload_bytes:
        from deepyard.web.errors import TooLarge

        raise TooLarge(f"upload of {int(declared):,} bytes is over the limit of {limits.upload_bytes:,}")
    uploads_dir(settings).mkdir(parents=True, exist_ok=True)
    await run_in_threadpool(sweep_uploads, settings)  # uploads a day old that no dataset was built from
    with tempfile.NamedTemporaryFile(dir=uploads_dir(settings), prefix=".upload-", suffix=".zip") as tmp:
        await save_stream(request.stream(), Path(tmp.name), limits.upload_bytes)
        result = await run_in_threadpool(extract_zip, settings, Path(tmp.name), limits)
    users.set_owner(conn, "upload", str(result["id"]), user)
    return result
