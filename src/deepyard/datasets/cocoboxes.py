"""COCO JSON for object detection (deepyard.datasets.boxformats' `coco` format): the file loaded and checked
(`load_coco`, which the segmentation masks' reader shares) and its images and annotations read into `Scene`s,
each problem reported as a `Skipped`. Duplicate ids (files merged by hand reuse them): an image id listed again
for the same file, or an annotation copied exactly, is reported and left out; an image id two files share takes
both out (their boxes cannot be told apart); a different annotation under a used id is kept and warned."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from deepyard.datasets.boxformats import Annotations, Box, Scene, existing_scenes
from deepyard.datasets.sources import Readable, Skipped
from deepyard.errors import SourceError


def load_coco(path: Path) -> dict[str, Any]:
    """A COCO JSON file's document: a mapping with an 'images' list, else a SourceError naming the file."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"COCO file {str(path)!r} cannot be read: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise SourceError(f"COCO file {str(path)!r} has no 'images' list")
    return doc


def read_coco(path: Path, base: Path | None, readable: Readable | None) -> Annotations:
    doc = load_coco(path)
    skipped: list[Skipped] = []
    where = path.name
    names: dict[int, str] = {}
    for cat in doc.get("categories") or []:
        if not isinstance(cat, dict) or not isinstance(cat.get("id"), int) or not isinstance(cat.get("name"), str):
            skipped.append(Skipped(f"{where} categories", f"malformed category {str(cat)[:80]}"))
        elif cat["id"] in names:
            skipped.append(Skipped(f"{where} categories", f"duplicate category id {cat['id']}"))
        else:
            names[cat["id"]] = cat["name"]
    scenes, shared = _coco_images(doc["images"], base or path.parent, where, skipped)
    seen_ann: dict[object, dict[str, Any]] = {}
    warnings: list[Skipped] = []
    for ann in doc.get("annotations") or []:
        box = _coco_box(ann, names, scenes, seen_ann, where, skipped, warnings)
        if box is not None:
            scenes[ann["image_id"]].boxes.append(box)
    for key in shared:  # an id two files share: neither file's boxes can be trusted
        scene = scenes.pop(key)
        skipped.append(Skipped(scene.image, f"duplicate image id {key}: {shared[key]!r} has it too, so its "
                                            "annotations cannot be told apart"))  # fmt: skip
    classes = [names[k] for k in sorted(names)]
    return Annotations("coco", classes, existing_scenes(list(scenes.values()), readable, skipped), skipped, warnings)


def _coco_images(
    entries: list[Any], root: Path, where: str, skipped: list[Skipped]
) -> tuple[dict[int, Scene], dict[int, str]]:
    """The scenes by image id, and the ids listed for two different files (id -> the second file's name). An id
    listed again for the same file: the copy is reported and left out."""
    scenes: dict[int, Scene] = {}
    shared: dict[int, str] = {}
    seen_files: set[str] = set()
    for img in entries:
        if not isinstance(img, dict) or not isinstance(img.get("id"), int) or not isinstance(img.get("file_name"), str):
            skipped.append(Skipped(f"{where} images", f"malformed image entry {str(img)[:80]}"))
            continue
        at, file = f"{where} image {img['id']}", os.path.normpath(os.path.join(root, img["file_name"]))
        if img["id"] in scenes:
            first = scenes[img["id"]].image
            if file == first:
                skipped.append(Skipped(at, f"duplicate image id {img['id']} for the same file: the copy is left out"))
            else:
                shared[img["id"]] = img["file_name"]
                skipped.append(Skipped(file, f"duplicate image id {img['id']}: {os.path.basename(first)!r} has it "
                                             "too, so its annotations cannot be told apart"))  # fmt: skip
            continue
        if file in seen_files:
            skipped.append(Skipped(at, f"duplicate file_name {img['file_name']!r}"))
            continue
        seen_files.add(file)
        scenes[img["id"]] = Scene(file, where=at)
    return scenes, shared


def _coco_box(
    ann: object, names: dict[int, str], scenes: dict[int, Scene], seen: dict[object, dict[str, Any]], where: str,
    skipped: list[Skipped], warnings: list[Skipped],
) -> Box | None:  # fmt: skip
    """The box of one annotation, or None (reported). An annotation id used again: an exact copy is left out; a
    different annotation under a used id is kept with a warning (files merged by hand reuse ids, and leaving a real
    object out would train the detector to call it background)."""
    if not isinstance(ann, dict):
        skipped.append(Skipped(f"{where} annotations", f"malformed annotation {str(ann)[:80]}"))
        return None
    at = f"{where} annotation {ann.get('id')}"
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(isinstance(v, int | float) for v in bbox):
        skipped.append(Skipped(at, f"bbox must be 4 numbers [x, y, w, h], got {str(bbox)[:60]}"))
        return None
    if isinstance(ann.get("id"), int | str):
        first = seen.setdefault(ann["id"], ann)
        if first == ann and first is not ann:
            skipped.append(Skipped(at, f"duplicate annotation id {ann['id']}, a copy of the first: left out"))
            return None
        if first is not ann:
            warnings.append(Skipped(at, (
                f"duplicate annotation id {ann['id']} (first: image_id {first.get('image_id')!r}, category_id "
                f"{first.get('category_id')!r}); both are kept: ids should be unique")))  # fmt: skip
    if ann.get("image_id") not in scenes:
        skipped.append(Skipped(at, f"image_id {ann.get('image_id')!r} names no image of the file"))
        return None
    if ann.get("category_id") not in names:
        skipped.append(Skipped(at, f"unknown category_id {ann.get('category_id')!r}; known: {sorted(names)}"))
        return None
    x, y, w, h = (float(v) for v in bbox)
    return Box(names[ann["category_id"]], x, y, x + w, y + h, int(bool(ann.get("iscrowd", 0))))
