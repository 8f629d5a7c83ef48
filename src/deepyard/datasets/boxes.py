"""Boxes of a detection dataset: checked against the image's real size, moved with the resize, split, stored.

Boxes follow the image through the dataset's resize exactly as `deepyard.datasets.images.resize` moves its
pixels (`placement`: a scale per axis and an offset; `fill`, the letterbox, is what detection builds use by
default), and predictions go back through the inverse (`to_original`). The checks, each reported per file with
the build going on: a box with a NaN or infinite coordinate, or of zero or negative size, is dropped; a box
reaching outside the image is clipped to it (and dropped if nothing is left); a box of a class the training source
does not know is dropped; an image whose header cannot be read is skipped.

Stored targets: one float32 array per split, (N, M, 6) with rows (x1, y1, x2, y2, class, iscrowd) in the stored
image's pixels, M the most boxes of any image (at least 1) and unused rows of class -1. A dense array keeps a
split's targets one memory-mappable `.npy` that every process reads and batches index like any other task's
targets (COCO's busiest images have a few hundred boxes: 24 bytes each).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from deepyard.datasets.boxformats import Box, Scene, read_annotations
from deepyard.datasets.images import Geometry, _scale, spec_geometry
from deepyard.datasets.sources import Item, Listing, Readable, Skipped
from deepyard.datasets.spec import SPLITS, DatasetSpec, DetectionSource, ResizeMode
from deepyard.errors import SourceError

FIELDS = 6  # x1, y1, x2, y2, class, iscrowd
ORIENTATION = 0x0112  # EXIF tag; values 5..8 turn the picture a quarter
ROUNDING = 0.01  # pixels a box may reach outside the image unreported (YOLO's normalised text rounds)


@dataclass(frozen=True)
class Placement:
    """Where the resize puts an image of one size: stored = original * scale + offset, per axis."""

    sx: float
    sy: float
    ox: float
    oy: float


def placement(size: tuple[int, int], geo: Geometry) -> Placement:
    """The scale and offset `images.resize` applies to an image of `size` (width, height)."""
    w, h = size
    if geo.resize_mode is ResizeMode.squash:
        sw, sh = geo.width, geo.height
    else:
        s = _scale(size, geo)
        sw, sh = max(1, round(w * s)), max(1, round(h * s))
    left, top = max(0, (sw - geo.width) // 2), max(0, (sh - geo.height) // 2)  # centre crop
    pad_x, pad_y = (geo.width - min(sw, geo.width)) // 2, (geo.height - min(sh, geo.height)) // 2
    return Placement(sw / w, sh / h, pad_x - left, pad_y - top)


def to_stored(boxes: np.ndarray, place: Placement) -> np.ndarray:
    """(K, 4) x1 y1 x2 y2 in the original image -> the stored image's pixels."""
    scale = np.array([place.sx, place.sy, place.sx, place.sy], np.float64)
    shift = np.array([place.ox, place.oy, place.ox, place.oy], np.float64)
    out: np.ndarray = boxes * scale + shift
    return out


def to_original(boxes: np.ndarray, place: Placement, size: tuple[int, int]) -> np.ndarray:
    """(K, 4) boxes in the stored image's pixels -> the original image's, clipped to it."""
    scale = np.array([place.sx, place.sy, place.sx, place.sy], np.float64)
    shift = np.array([place.ox, place.oy, place.ox, place.oy], np.float64)
    out = (np.asarray(boxes, np.float64) - shift) / scale
    limit = np.array([size[0], size[1], size[0], size[1]], np.float64)
    clipped: np.ndarray = np.clip(out, 0, limit)
    return clipped


def image_size(path: str) -> tuple[int, int]:
    """(width, height) of an image as it is shown (EXIF rotation applied), from its header only."""
    with Image.open(path) as img:
        w, h = img.size
        if img.getexif().get(ORIENTATION, 1) in (5, 6, 7, 8):
            return h, w
        return w, h


def check_boxes(scene: Scene, size: tuple[int, int], index: dict[str, int], skipped: list[Skipped]) -> np.ndarray:
    """The scene's usable boxes as (K, 6) rows in the original image's pixels; every problem reported."""
    w, h = size
    rows = []
    for n, box in enumerate(scene.boxes, start=1):
        at = f"{scene.where} box {n}"
        x1, y1, x2, y2 = _pixels(box, size)
        coords = np.array([x1, y1, x2, y2], np.float64)
        if not np.isfinite(coords).all():
            skipped.append(Skipped(at, f"box {_shown(coords)} has a NaN or infinite coordinate: dropped"))
            continue
        if x2 <= x1 or y2 <= y1:
            skipped.append(Skipped(at, f"box {_shown(coords)} has zero or negative size: dropped"))
            continue
        if box.label not in index:
            skipped.append(Skipped(at, f"class {box.label!r} is not a class of the training source: dropped"))
            continue
        clipped = np.clip(coords, 0, [w, h, w, h])
        if (np.abs(clipped - coords) > ROUNDING).any():
            if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
                skipped.append(Skipped(at, f"box {_shown(coords)} lies outside the {w}x{h} image: dropped"))
                continue
            skipped.append(Skipped(at, f"box {_shown(coords)} reaches outside the {w}x{h} image: clipped, kept"))
        rows.append([*clipped, index[box.label], box.crowd])
    return np.array(rows, np.float32).reshape(-1, FIELDS)


def _pixels(box: Box, size: tuple[int, int]) -> tuple[float, float, float, float]:
    if box.normalised:
        return box.x1 * size[0], box.y1 * size[1], box.x2 * size[0], box.y2 * size[1]
    return box.x1, box.y1, box.x2, box.y2


def _shown(coords: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in coords) + "]"


def stored_boxes(boxes: np.ndarray, place: Placement, geo: Geometry) -> np.ndarray:
    """Checked boxes (K, 6) in original pixels -> stored pixels; boxes a crop cuts away entirely are dropped."""
    out = boxes.copy()
    out[:, :4] = np.clip(to_stored(boxes[:, :4].astype(np.float64), place), 0, [geo.width, geo.height] * 2)
    keep = (out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])
    kept: np.ndarray = out[keep].astype(np.float32)
    return kept


def list_detection(spec: DatasetSpec, readable: Readable | None) -> Listing:
    """The classes and the items of every split of a detection source; targets are stored-pixel boxes."""
    src = spec.source
    if not isinstance(src, DetectionSource):
        raise SourceError(f"a {src.kind} source has no boxes; give a COCO JSON file or a VOC, YOLO or KITTI folder")
    skipped: list[Skipped] = []
    warnings: list[Skipped] = []
    train = read_annotations(src.train, src.format, src.base, readable)
    given = {"train": train}
    for split in ("val", "test"):
        path = getattr(src, split)
        if path is not None:
            given[split] = read_annotations(path, train.format if src.format == "auto" else src.format, src.base,
                                            readable)  # fmt: skip
    if not train.classes:
        raise SourceError(f"{str(src.train)!r} names no class at all ({train.format} format)")
    index = {name: i for i, name in enumerate(train.classes)}
    geo = spec_geometry(spec)
    splits: dict[str, list[Item]] = {s: [] for s in SPLITS}
    for split, found in given.items():
        skipped.extend(found.skipped)
        warnings.extend(found.warnings)
        for scene in found.scenes:
            item = _item(scene, geo, index, skipped)
            if item is not None:
                splits[scene.split if split == "train" and scene.split else split].append(item)
    _hold_out(splits, spec, held=[s for s in ("val", "test") if s not in given and not splits[s]])
    return Listing(classes=list(train.classes), splits=splits, skipped=skipped, warnings=warnings)


def _item(scene: Scene, geo: Geometry, index: dict[str, int], skipped: list[Skipped]) -> Item | None:
    try:
        size = image_size(scene.image)
    except UnidentifiedImageError:
        skipped.append(Skipped(scene.image, "not an image (no known image format)"))
        return None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        skipped.append(Skipped(scene.image, f"corrupt or truncated image header: {exc}"))
        return None
    boxes = check_boxes(scene, size, index, skipped)
    return Item(scene.image, stored_boxes(boxes, placement(size, geo), geo), scene.image)


def _hold_out(splits: dict[str, list[Item]], spec: DatasetSpec, held: list[str]) -> None:
    """Move val_pct / test_pct of the training images (seeded) to the splits the source does not give."""
    pct = {"val": spec.val_pct, "test": spec.test_pct}
    held = [s for s in held if pct[s] > 0]
    if not held:
        return
    train = splits["train"]
    order = np.random.default_rng(spec.seed).permutation(len(train))
    start = 0
    for split in held:
        n = round(len(train) * pct[split] / 100)
        splits[split] = [train[i] for i in sorted(order[start : start + n])]
        start += n
    splits["train"] = [train[i] for i in sorted(order[start:])]


def target_array(targets: Sequence[np.ndarray]) -> np.ndarray:
    """(N, M, 6) float32 boxes, rows past an image's own of class -1."""
    most = max([1, *(len(t) for t in targets)])
    out = np.zeros((len(targets), most, FIELDS), np.float32)
    out[:, :, 4] = -1
    for row, boxes in enumerate(targets):
        out[row, : len(boxes)] = boxes
    return out


def valid_rows(target: np.ndarray) -> np.ndarray:
    """The real boxes (K, 6) of one image's (M, 6) stored target."""
    rows: np.ndarray = target[target[:, 4] >= 0]
    return rows
