"""/api/v1 for detection and segmentation pages: a dataset's boxes and box statistics, its masks as colour
pictures, and a run's Detect one, Segment one and predict-many (a zip, with overlays).

The dataset routes read the stored split (boxes in the stored image's pixels; masks at the stored size); the
browser draws the boxes over the stored image and lays the mask picture over it, so the server sends numbers and
one PNG per mask. The run routes load the model as classify does (the cached `model_for`) and call the same
functions as `deepyard predict` (deepyard.infer.detect / segment), so a box or an area is the CLI's.
"""

from __future__ import annotations

import re
import secrets
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from PIL import Image

from deepyard.config import Settings
from deepyard.datasets import get_dataset, open_split
from deepyard.datasets.images import ImageSkipped
from deepyard.datasets.sources import walk_images
from deepyard.errors import InvalidValueError, NotFoundError
from deepyard.infer.detect import detect_file
from deepyard.infer.model import TrainedModel
from deepyard.infer.predict import output_stems
from deepyard.infer.segment import segment_file
from deepyard.limits import NAME_MAX
from deepyard.pictures import png
from deepyard.tasks import get_task
from deepyard.tasks.boxmetrics import PALETTE
from deepyard.tasks.boxstats import box_summary
from deepyard.tasks.segreport import colourise
from deepyard.train.runs import run_dir
from deepyard.web.api.datasets import PNG
from deepyard.web.api.datasets import _split as checked_split
from deepyard.web.api.infer import IMAGE_LIMIT, _body, _file_url, check_pixels, model_for
from deepyard.web.deps import IdPath, SettingsDep

router = APIRouter(tags=["detection and segmentation"])
IGNORE = 255
EXTENSION = re.compile(r"\.[a-z0-9]{1,8}")  # what an upload's file name may keep


def _dataset(settings: Settings, ref: str, task: str) -> Any:
    m = get_dataset(settings, ref)
    if m.task != task:
        raise InvalidValueError(f"dataset {ref!r} is a {m.task or 'classification'} dataset, not {task}")
    return m


def class_colours(names: list[str]) -> list[list[int]]:
    """The colour each class's boxes are drawn in (the CLI's overlay palette)."""
    return [list(PALETTE[i % len(PALETTE)]) for i in range(len(names))]


@router.get("/datasets/{ref}/boxes")
def boxes(
    ref: IdPath,
    settings: SettingsDep,
    split: str = Query("train", max_length=16),
    label: int | None = Query(None, ge=0, description="Only the images holding a box of this class index."),
    offset: int = Query(0, ge=0),
    limit: int = Query(24, ge=1, le=200),
) -> dict[str, Any]:
    """A page of a detection split's images with their boxes ([x1, y1, x2, y2] in the stored image's pixels, the
    class index, crowd or not); `width` and `height` are the stored images' size, `colours` each class's."""
    m = _dataset(settings, ref, "detection")
    store = open_split(settings, m, checked_split(m, split))
    if label is not None and label >= len(m.classes):
        raise InvalidValueError(
            f"class {label} is out of range; the dataset has {len(m.classes)} classes (0..{len(m.classes) - 1})"
        )
    targets = store.targets
    indices = np.arange(len(store)) if label is None else np.flatnonzero(get_task(m.task).having(targets, label))
    items = []
    for i in indices[offset : offset + limit]:
        rows = targets[i][targets[i][:, 4] >= 0]
        items.append({"index": int(i), "boxes": [{"box": [round(float(v), 2) for v in r[:4]], "class": int(r[4]),
                                                  "crowd": bool(r[5] > 0)} for r in rows]})  # fmt: skip
    return {"split": split, "label": label, "total": len(indices), "offset": offset, "classes": m.classes,
            "colours": class_colours(m.classes), "width": m.shape[1], "height": m.shape[0], "items": items}  # fmt: skip


@router.get("/datasets/{ref}/box-stats")
def box_stats(ref: IdPath, settings: SettingsDep) -> dict[str, Any]:
    """Per split: boxes and images per class, images without a box, and the box-size histogram (√area in the
    stored image's pixels) with COCO's small / medium / large bands (area < 32², < 96², larger)."""
    m = _dataset(settings, ref, "detection")
    splits = {s: box_summary(open_split(settings, m, s).targets, m.classes) for s in m.splits}
    return {"classes": m.classes, "colours": class_colours(m.classes), "splits": splits}


@router.get("/datasets/{ref}/masks/{split}/{index}.png", response_class=Response,
            responses={200: {"content": {PNG: {}}}})  # fmt: skip
def mask(
    ref: IdPath,
    split: IdPath,
    index: int,
    settings: SettingsDep,
    clear: int | None = Query(None, ge=0, le=254, description="A class index drawn transparent (the background)."),
) -> Response:
    """One stored mask in the dataset's class colours as an RGBA PNG, ignored pixels (255) transparent, and the
    pixels of class `clear` too when it is given."""
    m = _dataset(settings, ref, "segmentation")
    store = open_split(settings, m, checked_split(m, split))
    if not 0 <= index < len(store):
        raise NotFoundError(f"mask {index} is out of range; split {split!r} has {len(store)} images")
    classes = np.asarray(store.targets[index])
    rgba = np.dstack([colourise(classes, m.target_stats.get("colours") or []),
                      np.where((classes == IGNORE) | (classes == clear), 0, 255).astype(np.uint8)])  # fmt: skip
    return Response(png(Image.fromarray(rgba, "RGBA")), media_type=PNG, headers={"Cache-Control": "max-age=86400"})


def _model(settings: Settings, run_id: str, snapshot: str | None, task: str) -> TrainedModel:
    clf = model_for(settings, run_id, snapshot)
    if clf.task.name != task:
        raise InvalidValueError(f"run {run_id!r} is a {clf.task.name} model, not a {task} model")
    return clf


def _thresholds(clf: TrainedModel) -> dict[str, float]:
    """Each class's score threshold the model was calibrated with (0.5 where it has none)."""
    given = clf.stats.get("thresholds")
    if isinstance(given, dict):
        return {c: float(given.get(c, 0.5)) for c in clf.classes}
    if isinstance(given, list) and len(given) == len(clf.classes):
        return {c: float(t) for c, t in zip(clf.classes, given, strict=True)}
    return dict.fromkeys(clf.classes, float(clf.stats.get("threshold", 0.5)))


def _upload_file(folder: Path, data: bytes, name: str) -> Path:
    suffix = Path(name).suffix.lower()  # an ASCII extension only: the name is the client's
    path = folder / ("upload" + (suffix if EXTENSION.fullmatch(suffix) else ".img"))
    path.write_bytes(data)
    return path


@router.post("/runs/{run_id}/detect")
async def detect(
    run_id: IdPath,
    request: Request,
    settings: SettingsDep,
    floor: float = Query(0.05, ge=0, le=1, description="The lowest score sent; the page's slider hides the rest."),
    snapshot: str | None = Query(None, max_length=NAME_MAX),
    name: str = Query("upload", max_length=200),
) -> Any:
    """Detect in one image sent as the body: every box scoring at least `floor`, best first, in the original
    image's pixels ([x1, y1, x2, y2]), with its class, class index and score; `size` is the image's [width,
    height] and `thresholds` each class's calibrated score threshold (the slider's start)."""
    data = await _body(request, IMAGE_LIMIT)

    def work() -> Any:
        clf = _model(settings, run_id, snapshot, "detection")
        with tempfile.TemporaryDirectory() as tmp:
            try:
                row = detect_file(clf, str(_upload_file(Path(tmp), data, name)), Path(tmp), floor)
            except ImageSkipped as exc:
                raise InvalidValueError(f"the uploaded image cannot be used: {exc.reason}") from None
        found = sorted(row["boxes"], key=lambda b: -b["score"])
        return {"name": name, "size": row["size"], "floor": floor, "thresholds": _thresholds(clf),
                "classes": clf.classes, "colours": class_colours(clf.classes), "model": clf.info,
                "boxes": [{**b, "index": clf.classes.index(b["class"])} for b in found]}  # fmt: skip

    return await run_in_threadpool(work)


def _web_folder(settings: Settings, run_id: str, kind: str) -> Path:
    """A new folder of the run's `predictions/` for one web request (served by the run's files route)."""
    folder = run_dir(settings, run_id) / "predictions" / f"web-{kind}-{secrets.token_hex(4)}"
    folder.mkdir(parents=True)
    return folder


@router.post("/runs/{run_id}/segment")
async def segment(
    run_id: IdPath,
    request: Request,
    settings: SettingsDep,
    snapshot: str | None = Query(None, max_length=NAME_MAX),
    name: str = Query("upload", max_length=200),
) -> Any:
    """Segment one image sent as the body: `mask` (the URL of the class-index palette PNG at the original size),
    `colour` (the same mask in the dataset's colours, ignored pixels transparent, to lay over the image),
    `overlay` (the image with the colours at half opacity) and each class's area in pixels and as a fraction."""
    data = await _body(request, IMAGE_LIMIT)

    def work() -> Any:
        clf = _model(settings, run_id, snapshot, "segmentation")
        folder = _web_folder(settings, run_id, "segment")
        upload = _upload_file(folder, data, name)
        try:
            row = segment_file(clf, str(upload), folder, 0.5)
        except ImageSkipped as exc:
            raise InvalidValueError(f"the uploaded image cannot be used: {exc.reason}") from None
        finally:
            upload.unlink()
        colours = clf.stats.get("colours") or []
        return {"name": name, **_segment_urls(settings, run_id, row, folder), "colours": colours, "model": clf.info}

    return await run_in_threadpool(work)


def _url(settings: Settings, run_id: str, folder: Path, path: str | Path) -> str:
    """The URL of a file written under the web request's `folder` (in a sub-folder of it for a zip's images)."""
    return _file_url(settings, run_id, folder) + quote(Path(path).relative_to(folder).as_posix())


def _segment_urls(settings: Settings, run_id: str, row: dict[str, Any], folder: Path) -> dict[str, Any]:
    """A segment_file row with its files as URLs, plus the mask in colours with ignore transparent."""
    mask_file = Path(row["mask"])
    with Image.open(mask_file) as img:
        classes = np.asarray(img)
        rgba = img.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.where(classes == IGNORE, 0, 255).astype(np.uint8)))
    colour = mask_file.with_name(mask_file.stem + "_colour.png")
    colour.write_bytes(png(rgba))
    return {**{k: v for k, v in row.items() if k not in ("mask", "overlay", "source")},
            "mask": _url(settings, run_id, folder, mask_file), "colour": _url(settings, run_id, folder, colour),
            "overlay": _url(settings, run_id, folder, row["overlay"])}  # fmt: skip


def predict_folder(settings: Settings, run_id: str, clf: TrainedModel, root: Path) -> dict[str, Any]:
    """predict-many for a detector or a segmenter: every image under `root` through `deepyard predict`'s own
    function (each class's calibrated threshold; opacity 0.5), its overlay (and mask) kept in the run's
    `predictions/` and answered as URLs: in the zip's sub-folders, so that two images of one name never share a
    file (`output_stems`). A file that cannot be read gets a row with its error."""
    folder = _web_folder(settings, run_id, "many")
    files, _ = walk_images(root)
    rows = []
    for path, stem in zip(files, output_stems(files, root), strict=True):
        shown = Path(path).relative_to(root).as_posix()
        check_pixels(Path(path), f"image {shown!r}")
        try:
            if clf.task.name == "detection":
                row = detect_file(clf, path, folder, None, stem)
                row["overlay"] = _url(settings, run_id, folder, row["overlay"])
            else:
                row = _segment_urls(settings, run_id, segment_file(clf, path, folder, 0.5, stem), folder)
        except ImageSkipped as exc:
            row = {"error": exc.reason}
        rows.append({**row, "source": shown, "error": row.get("error")})
    return {"predictions": rows, "model": clf.info}
