"""Write a detection dataset back out as COCO, Pascal VOC, YOLO or KITTI (`deepyard dataset export`).

What is written is what the dataset stores: each split's images at the dataset's size (PNG, as stored: letterboxed
by default) and their boxes in those pixels, one folder per split (`OUT/train`, `OUT/val`, `OUT/test`) in the
format's own layout, so `deepyard dataset create OUT/train... --val OUT/val...` at the same size reads the same
boxes back. File names come from the sources the dataset was built from (made unique). Images without objects
are kept (COCO: an image without annotations; VOC: an XML without objects; YOLO and KITTI: an empty label file).

What a format cannot say is reported, never silently changed: YOLO, KITTI and VOC have no crowd flag (crowd boxes
are written as ordinary boxes and counted in `notes`); KITTI's space-separated lines cannot carry a class name
with white space (refused, naming the class). The folder is written beside OUT and moved into place at the end, so
OUT is complete or absent; an OUT that exists and is not empty is refused.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image

from deepyard.config import Settings
from deepyard.datasets import Manifest, open_split
from deepyard.datasets.catalog import dataset_dir
from deepyard.errors import InvalidValueError, choices
from deepyard.files import read_json

FORMATS = ("coco", "voc", "yolo", "kitti")
LAYOUT = {"coco": "instances.json + images/", "voc": "Annotations/ + JPEGImages/", "yolo": "images/ + labels/ + "
          "classes.txt", "kitti": "image_2/ + label_2/"}  # fmt: skip


def export_detection(settings: Settings, manifest: Manifest, fmt: str, out: Path) -> dict[str, Any]:
    """Write every split of `manifest` (a detection dataset) under `out` in `fmt`; what was written."""
    if manifest.task != "detection":
        raise InvalidValueError(f"dataset {manifest.name!r} is a {manifest.task} dataset; only detection datasets "
                                "export as boxes")  # fmt: skip
    if fmt not in FORMATS:
        raise InvalidValueError(f"export format {fmt!r} is not one of {choices(FORMATS)}")
    spaced = [c for c in manifest.classes if re.search(r"\s", c)]
    if fmt == "kitti" and spaced:
        raise InvalidValueError(f"class {spaced[0]!r} has white space, which a KITTI line cannot hold; "
                                f"use --format {' or '.join(f for f in FORMATS if f != 'kitti')}")  # fmt: skip
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidValueError(f"{str(out)!r} exists and is not an empty folder; name a new one")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        splits = {split: _write_split(settings, manifest, split, fmt, staging / split) for split in manifest.splits}
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    crowd = sum(s["crowd"] for s in splits.values())
    notes = [f"{crowd} crowd boxes written as ordinary boxes ({fmt} has no crowd flag)"] if crowd and fmt != "coco" \
        else []  # fmt: skip
    return {"dataset": manifest.id, "name": manifest.name, "format": fmt, "layout": LAYOUT[fmt], "folder": str(out),
            "size": [manifest.shape[1], manifest.shape[0]], "classes": manifest.classes,
            "splits": {k: {"path": str(out / v["path"]), "images": v["images"], "boxes": v["boxes"]}
                       for k, v in splits.items()},
            "notes": notes}  # fmt: skip


def _write_split(settings: Settings, manifest: Manifest, split: str, fmt: str, folder: Path) -> dict[str, Any]:
    store = open_split(settings, manifest, split)
    sources_file = dataset_dir(settings, manifest.id) / split / "sources.json"
    sources = read_json(sources_file) if sources_file.is_file() else []
    names = _file_names([str(s) for s in sources], len(store))
    image_dir = folder / {"coco": "images", "voc": "JPEGImages", "yolo": "images", "kitti": "image_2"}[fmt]
    image_dir.mkdir(parents=True)
    height, width = manifest.shape[0], manifest.shape[1]
    classes = manifest.classes
    scenes = []
    for start in range(0, len(store), 256):
        idx = np.arange(start, min(len(store), start + 256))
        for i, pixels in zip(idx, store.get_batch(idx), strict=True):
            _image(pixels).save(image_dir / names[i])
            rows = store.targets[i]
            scenes.append((names[i], rows[rows[:, 4] >= 0]))
    writer = {"coco": _coco, "voc": _voc, "yolo": _yolo, "kitti": _kitti}[fmt]
    path = writer(folder, scenes, classes, width, height, manifest.shape[2])
    boxes = sum(len(rows) for _, rows in scenes)
    crowd = int(sum((rows[:, 5] > 0).sum() for _, rows in scenes))
    return {"path": str(path.relative_to(folder.parent)), "images": len(scenes), "boxes": boxes, "crowd": crowd}


def _file_names(sources: list[str], count: int) -> list[str]:
    """`<source stem>.png` per image (safe characters only), numbered where stems repeat or are missing."""
    seen: set[str] = set()
    out = []
    for i in range(count):
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(sources[i]).stem if i < len(sources) else "")[:80] or f"{i:06d}"
        name = f"{stem}.png" if stem not in seen else f"{stem}_{i:06d}.png"
        seen.update({stem, Path(name).stem})
        out.append(name)
    return out


def _image(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)


def _num(v: float) -> float | int:
    r = round(float(v), 3)
    return int(r) if r == int(r) else r


def _coco(folder: Path, scenes: list[tuple[str, np.ndarray]], classes: list[str], w: int, h: int, c: int) -> Path:
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for n, (name, rows) in enumerate(scenes, start=1):
        images.append({"id": n, "file_name": f"images/{name}", "width": w, "height": h})
        for x1, y1, x2, y2, cls, crowd in rows.tolist():
            annotations.append({"id": len(annotations) + 1, "image_id": n, "category_id": int(cls) + 1,
                                "bbox": [_num(x1), _num(y1), _num(x2 - x1), _num(y2 - y1)],
                                "area": _num((x2 - x1) * (y2 - y1)), "iscrowd": int(crowd > 0)})  # fmt: skip
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(classes)]
    path = folder / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def _voc(folder: Path, scenes: list[tuple[str, np.ndarray]], classes: list[str], w: int, h: int, c: int) -> Path:
    (folder / "Annotations").mkdir()
    for name, rows in scenes:
        objects = "".join(
            f"  <object><name>{escape(classes[int(cls)])}</name><difficult>0</difficult><bndbox>"
            f"<xmin>{_num(x1)}</xmin><ymin>{_num(y1)}</ymin><xmax>{_num(x2)}</xmax><ymax>{_num(y2)}</ymax>"
            "</bndbox></object>\n"
            for x1, y1, x2, y2, cls, _ in rows.tolist()
        )
        (folder / "Annotations" / f"{Path(name).stem}.xml").write_text(
            f"<annotation>\n  <filename>{escape(name)}</filename>\n  <size><width>{w}</width><height>{h}</height>"
            f"<depth>{c}</depth></size>\n{objects}</annotation>\n"
        )
    return folder


def _yolo(folder: Path, scenes: list[tuple[str, np.ndarray]], classes: list[str], w: int, h: int, c: int) -> Path:
    (folder / "labels").mkdir()
    (folder / "classes.txt").write_text("".join(f"{name}\n" for name in classes))
    for name, rows in scenes:
        lines = [f"{int(cls)} {(x1 + x2) / 2 / w:.8f} {(y1 + y2) / 2 / h:.8f} {(x2 - x1) / w:.8f} {(y2 - y1) / h:.8f}\n"
                 for x1, y1, x2, y2, cls, _ in rows.tolist()]  # fmt: skip
        (folder / "labels" / f"{Path(name).stem}.txt").write_text("".join(lines))
    return folder


def _kitti(folder: Path, scenes: list[tuple[str, np.ndarray]], classes: list[str], w: int, h: int, c: int) -> Path:
    (folder / "label_2").mkdir()
    for name, rows in scenes:
        lines = [f"{classes[int(cls)]} 0.00 0 0.00 {x1:.3f} {y1:.3f} {x2:.3f} {y2:.3f} 0 0 0 0 0 0 0\n"
                 for x1, y1, x2, y2, cls, _ in rows.tolist()]  # fmt: skip
        (folder / "label_2" / f"{Path(name).stem}.txt").write_text("".join(lines))
    return folder
