"""COCO segmentation masks: a COCO JSON file's `segmentation` fields (polygons, RLE) rasterised to class indices.

Reading checks every image entry and annotation and reports each problem as a `Skipped` (path, reason) while
going on: a malformed or duplicate image entry, an annotation for an image id the file does not list, an unknown
category, a malformed polygon (fewer than 3 points, an odd number of coordinates, not numbers) or RLE (no
`counts`, a `size` other than the image's). An annotation that cannot be rasterised takes its image out (its
mask would call that object background); one for a missing image id takes nothing out.

Duplicate ids (COCO's are unique; files merged by hand often reuse them):
- an image id listed again for the same file: the copy is reported and left out; for another file, the id's
  annotations cannot be told apart, so both files are reported and taken out (neither mask can be trusted);
- an annotation id again: an exact copy is reported and left out (drawn once); a different annotation under a
  used id is drawn too, with a warning (it is an object of its image: leaving it out would call it background).

Classes: `background` (0), then the categories in id order; with a classes file, its names, and a category must
be one of them. Rasterising (pycocotools, the reference implementation): crowd annotations (`iscrowd: 1`,
usually RLE) are painted 255 = ignore first, so a crowd of people counts for nothing; then the other annotations
from the largest area to the smallest, so where two overlap the smaller one wins (a cup on a table is in front
of it), ties going to the later annotation in the file. Uncovered pixels are background. Image paths inside the
file are confined by `readable` like every other path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepyard.datasets.cocoboxes import load_coco
from deepyard.datasets.masks import IGNORE, MaskProblem
from deepyard.datasets.sources import OUTSIDE, Readable, Skipped
from deepyard.errors import SourceError

BACKGROUND = "background"
CocoProblem = MaskProblem  # why one image's mask cannot be made


@dataclass(frozen=True)
class Region:
    """One annotation: a class index (or IGNORE for a crowd), its area, and its `segmentation` as given."""

    index: int
    area: float
    segmentation: Any  # list of polygons ([x1, y1, x2, y2, ...] each) or an RLE dict {size, counts}
    order: int  # its position in the file, for ties


@dataclass
class CocoImage:
    """The mask of one COCO image: its size from the file and the regions to paint."""

    where: str  # `instances.json image 42`, for reports
    width: int
    height: int
    regions: list[Region] = field(default_factory=list)
    problem: str | None = None  # why its mask cannot be made (the image is skipped)


def is_coco(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".json"


def read_coco_masks(
    path: Path,
    base: Path | None,
    names: list[str] | None,
    readable: Readable | None,
    skipped: list[Skipped],
    warnings: list[Skipped] | None = None,
) -> tuple[list[str], list[tuple[str, CocoImage]]]:
    """(class names, (image path, its mask) pairs) of a COCO JSON file; problems go to `skipped`, what is kept
    but doubtful (an annotation id used twice) to `warnings`."""
    doc = load_coco(path)
    where = path.name
    categories = _categories(doc.get("categories"), where, skipped)
    if names is None:
        names = [BACKGROUND, *(categories[k] for k in sorted(categories))]
    index = {k: names.index(n) for k, n in categories.items() if n in names}
    images = _images(doc["images"], base or path.parent, where, skipped)
    seen: dict[object, dict[str, Any]] = {}  # annotation id -> the first annotation with it
    for order, ann in enumerate(doc.get("annotations") or []):
        if isinstance(ann, dict) and _duplicate(ann, seen, where, skipped, warnings):
            continue
        _add(ann, order, images, categories, index, names, where, skipped)
    pairs = []
    for file, image in images.values():
        if readable is not None and not readable(file):
            skipped.append(Skipped(file, OUTSIDE))
        elif not os.path.isfile(file):
            skipped.append(Skipped(file, f"image file missing ({image.where})"))
        elif image.problem is not None:
            skipped.append(Skipped(file, image.problem))
        else:
            pairs.append((file, image))
    return names, pairs


def _categories(cats: object, where: str, skipped: list[Skipped]) -> dict[int, str]:
    out: dict[int, str] = {}
    for cat in cats if isinstance(cats, list) else []:
        if not isinstance(cat, dict) or not isinstance(cat.get("id"), int) or not isinstance(cat.get("name"), str):
            skipped.append(Skipped(f"{where} categories", f"malformed category {str(cat)[:80]}"))
        elif cat["id"] in out:
            skipped.append(Skipped(f"{where} categories", f"duplicate category id {cat['id']}"))
        else:
            out[cat["id"]] = cat["name"]
    if not out:
        raise SourceError(f"COCO file {where!r} has no usable 'categories' (each needs an int id and a name)")
    return out


def _duplicate(
    ann: dict[str, Any], seen: dict[object, dict[str, Any]], where: str, skipped: list[Skipped],
    warnings: list[Skipped] | None,
) -> bool:  # fmt: skip
    """True for a copy of an annotation already read (left out, reported); a different annotation under a used
    id is read on, with a warning."""
    key = ann.get("id")
    if not isinstance(key, int | str):
        return False
    first = seen.setdefault(key, ann)
    if first is ann:
        return False
    at = f"{where} annotation {key}"
    if first == ann:
        skipped.append(Skipped(at, f"duplicate annotation id {key}, a copy of the first: left out (drawn once)"))
        return True
    (warnings if warnings is not None else skipped).append(Skipped(at, (
        f"duplicate annotation id {key} (first: image_id {first.get('image_id')!r}, category_id "
        f"{first.get('category_id')!r}; this one: image_id {ann.get('image_id')!r}, category_id "
        f"{ann.get('category_id')!r}); both are drawn: ids should be unique")))  # fmt: skip
    return False


def _images(entries: list[Any], root: Path, where: str, skipped: list[Skipped]) -> dict[int, tuple[str, CocoImage]]:
    out: dict[int, tuple[str, CocoImage]] = {}
    seen: set[str] = set()
    for img in entries:
        ok = isinstance(img, dict) and isinstance(img.get("id"), int) and isinstance(img.get("file_name"), str)
        if not ok or not all(isinstance(img.get(k), int) and img[k] > 0 for k in ("width", "height")):
            skipped.append(Skipped(f"{where} images", f"malformed image entry (id, file_name, width, height) "
                                                      f"{str(img)[:80]}"))  # fmt: skip
            continue
        at, path = f"{where} image {img['id']}", os.path.normpath(os.path.join(root, img["file_name"]))
        if img["id"] in out:
            file, first = out[img["id"]]
            if path == file:
                skipped.append(Skipped(at, f"duplicate image id {img['id']} for the same file: the copy is left out"))
            else:
                first.problem = (f"duplicate image id {img['id']}: {img['file_name']!r} has it too, so its "
                                 "annotations cannot be told apart")  # fmt: skip
                skipped.append(Skipped(path, f"duplicate image id {img['id']}: {os.path.basename(file)!r} has it "
                                             "too, so its annotations cannot be told apart"))  # fmt: skip
        elif path in seen:
            skipped.append(Skipped(at, f"duplicate file_name {img['file_name']!r}"))
        else:
            seen.add(path)
            out[img["id"]] = (path, CocoImage(at, img["width"], img["height"]))
    return out


def _add(
    ann: object,
    order: int,
    images: dict[int, tuple[str, CocoImage]],
    categories: dict[int, str],
    index: dict[int, int],
    names: list[str],
    where: str,
    skipped: list[Skipped],
) -> None:
    if not isinstance(ann, dict):
        skipped.append(Skipped(f"{where} annotations", f"malformed annotation {str(ann)[:80]}"))
        return
    at = f"{where} annotation {ann.get('id')}"
    if ann.get("image_id") not in images:
        skipped.append(Skipped(at, f"annotation for a missing image: image_id {ann.get('image_id')!r} names no "
                                   "image of the file"))  # fmt: skip
        return
    image = images[ann["image_id"]][1]
    if image.problem is not None:
        return
    cat = ann.get("category_id")
    if cat not in categories:
        image.problem = f"{at}: unknown category_id {cat!r}; known: {sorted(categories)}"
    elif cat not in index:
        image.problem = f"{at}: category {categories[cat]!r} is not in the classes file ({', '.join(names)})"
    else:
        try:
            seg = _checked(ann.get("segmentation"), image)
        except CocoProblem as exc:
            image.problem = f"{at}: {exc.reason}"
            return
        crowd = bool(ann.get("iscrowd", 0))
        area = ann.get("area")
        size = float(area) if isinstance(area, int | float) else float(_decode(seg, image).sum())
        image.regions.append(Region(IGNORE if crowd else index[cat], size, seg, order))


def _checked(seg: object, image: CocoImage) -> Any:
    if isinstance(seg, list):
        if not seg:
            raise CocoProblem("malformed polygon: an empty list")
        for poly in seg:
            if not isinstance(poly, list) or not all(isinstance(v, int | float) for v in poly):
                raise CocoProblem(f"malformed polygon {str(poly)[:60]}: expected [x1, y1, x2, y2, ...] numbers")
            if len(poly) % 2 or len(poly) < 6:
                raise CocoProblem(f"malformed polygon: {len(poly)} coordinates (an even number, 3 points or more)")
            xs, ys = np.asarray(poly[0::2], np.float64), np.asarray(poly[1::2], np.float64)
            w, h = image.width, image.height
            if not (np.isfinite(xs).all() and np.isfinite(ys).all()) or xs.min() < -w or xs.max() > 2 * w or \
                    ys.min() < -h or ys.max() > 2 * h:  # fmt: skip
                raise CocoProblem(f"malformed polygon: a point is not finite or lies far outside the {w}x{h} image")
        return seg
    if isinstance(seg, dict):
        size, counts = seg.get("size"), seg.get("counts")
        if size != [image.height, image.width]:
            raise CocoProblem(f"RLE size {size!r} is not the image's [height, width] [{image.height}, {image.width}]")
        if isinstance(counts, str):
            counts = string_counts(counts)  # checked here: pycocotools' decoder trusts the run lengths
        if isinstance(counts, list) and all(isinstance(c, int) and c >= 0 for c in counts):
            if sum(counts) != image.width * image.height:
                raise CocoProblem(f"RLE counts sum to {sum(counts)}, not the image's {image.width * image.height} px")
            return {"size": size, "counts": counts}
        raise CocoProblem(f"malformed RLE counts {str(counts)[:60]}: a string or a list of run lengths")
    raise CocoProblem(f"segmentation {str(seg)[:60]} is neither polygons nor RLE")


def string_counts(text: str) -> list[int]:
    """The run lengths of COCO's compressed RLE string (pycocotools' rleFrString, in Python, so it is checked)."""
    counts: list[int] = []
    p = 0
    while p < len(text):
        x, k, more = 0, 0, True
        while more:
            if p >= len(text):
                raise CocoProblem("malformed RLE counts: the string ends inside a number")
            c = ord(text[p]) - 48
            if not 0 <= c < 64:
                raise CocoProblem(f"malformed RLE counts: character {text[p]!r} is not of COCO's alphabet")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def _decode(seg: Any, image: CocoImage) -> np.ndarray:
    """(height, width) uint8 0/1 of one checked segmentation: polygons through pycocotools' rasteriser, run
    lengths expanded here (column-major, as COCO's), so no unchecked length reaches C code."""
    h, w = image.height, image.width
    if isinstance(seg, list):
        from pycocotools import mask as coco  # type: ignore[import-untyped]

        try:
            rle = coco.merge(coco.frPyObjects(seg, h, w))
        except (ValueError, TypeError) as exc:
            raise CocoProblem(f"cannot be rasterised: {exc}") from None
        counts = string_counts(rle["counts"].decode("ascii"))
    else:
        counts = seg["counts"]
    if sum(counts) != h * w or min(counts, default=0) < 0:
        raise CocoProblem(f"RLE counts sum to {sum(counts)}, not the image's {w}x{h} = {h * w} px")
    values = np.arange(len(counts), dtype=np.uint8) % 2
    out: np.ndarray = np.repeat(values, counts).reshape(w, h).T
    return out


def rasterise(image: CocoImage) -> np.ndarray:
    """(height, width) uint8 class indices: crowds ignored first, then largest to smallest (the smaller wins)."""
    out = np.zeros((image.height, image.width), np.uint8)
    crowd = [r for r in image.regions if r.index == IGNORE]
    rest = sorted((r for r in image.regions if r.index != IGNORE), key=lambda r: (-r.area, r.order))
    for region in [*crowd, *rest]:
        out[_decode(region.segmentation, image).astype(bool)] = region.index
    return out
