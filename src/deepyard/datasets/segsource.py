"""List a segmentation source (pairs of image and mask, every mask checked) and store its masks per split.

A COCO JSON file (deepyard.datasets.cocomasks) stands for a folder or a list: its polygons and RLE are
rasterised to class indices (background 0, then its categories). Listing decodes each mask once to check it (its
kind, its indices or colours, its size against the image's header) and reports a bad pair with its reason; the
build goes on with the rest. Storing decodes the kept masks
again and resizes them to the dataset's size with nearest neighbour into one memory-mapped (N, H, W) uint8 array.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from deepyard.datasets import masks
from deepyard.datasets.cocomasks import CocoImage, is_coco, rasterise, read_coco_masks
from deepyard.datasets.images import spec_geometry
from deepyard.datasets.sources import Item, Listing, Readable, Skipped
from deepyard.datasets.spec import SPLITS, DatasetSpec, MaskSource
from deepyard.datasets.tabular import Row, hold_out
from deepyard.errors import SourceError

# (mask path or a COCO image's regions, image width, image height); 0 x 0 when the image header is unreadable
Target = tuple[str | CocoImage, int, int]


def _source(spec: DatasetSpec) -> MaskSource:
    if not isinstance(spec.source, MaskSource):
        raise SourceError(f"segmentation reads images with masks, not a {spec.source.kind} source")
    return spec.source


def mask_source_fields(
    train: Path,
    masks: Path | None = None,
    classes: Path | None = None,
    base: Path | None = None,
    val: Path | None = None,
    test: Path | None = None,
    resize_masks: bool = False,
) -> dict[str, object]:
    """The masks source a path names: a folder with images/ and masks/, a list file of `image mask` lines, or a
    COCO JSON file with `segmentation` polygons or RLE."""
    if not train.exists():
        raise SourceError(
            f"{str(train)!r} does not exist; give a folder with images/ and masks/, a list file or a COCO JSON file"
        )
    return {"kind": "masks", "train": train, "masks": masks, "classes": classes, "base": base, "val": val,
            "test": test, "resize_masks": resize_masks}  # fmt: skip


def class_map(spec: DatasetSpec) -> masks.ClassMap | None:
    src = _source(spec)
    return masks.read_class_map(src.classes) if src.classes is not None else None


def list_masks(spec: DatasetSpec, readable: Readable | None) -> Listing:
    src = _source(spec)
    if readable is not None:
        for key, path in src:
            if isinstance(path, Path) and not readable(str(path)):
                raise SourceError(f"source.{key} {str(path)!r} is outside the data roots")
    classes = class_map(spec)
    skipped: list[Skipped] = []
    warnings: list[Skipped] = []
    kinds: Counter[str] = Counter()
    palette: list[tuple[int, int, int]] | None = None
    top = -1
    given: dict[str, list[Row]] = {}
    coco: dict[str, CocoImage] = {}  # a COCO image's mask by its `file image id`, the row's mask token
    coco_names = classes.names if classes is not None else None
    for split in SPLITS:
        path = getattr(src, split)
        if path is None:
            continue
        pairs: list[tuple[str, str | CocoImage]]
        if path.is_dir():
            pairs = list(masks.pair_folder(path, src.masks if split == "train" else None, readable, skipped))
        elif is_coco(path):
            coco_names, found = read_coco_masks(path, src.base, coco_names, readable, skipped, warnings)
            pairs = list(found)
        else:
            pairs = list(masks.read_pairs(path, src.base or path.parent, readable, skipped))
        rows = []
        for image, given_mask in pairs:
            mask = given_mask if isinstance(given_mask, str) else f"{given_mask.where} ({split})"
            try:
                decoded, size = _check_pair(image, given_mask, classes, spec)
            except masks.MaskProblem as exc:
                skipped.append(Skipped(mask if isinstance(given_mask, str) else image, exc.reason))
                continue
            if not isinstance(given_mask, str):
                coco[mask] = given_mask
            if decoded.warning:
                warnings.append(Skipped(mask, decoded.warning))
            kinds[decoded.kind] += 1
            palette = palette or decoded.palette
            top = max(top, int(decoded.indices[decoded.indices != masks.IGNORE].max(initial=0)))
            rows.append(Row(image, (mask, str(size[0]), str(size[1])), mask))
        given[split] = rows
    if not any(given.values()):
        reasons = sorted({s.reason for s in skipped})[:3]
        raise SourceError(f"no usable image/mask pair; reasons: {reasons or ['the source lists none']}")
    names = coco_names or (classes.names if classes is not None else [str(i) for i in range(max(top + 1, 2))])
    splits = {s: [Item(r.path, (coco.get(r.tokens[0], r.tokens[0]), int(r.tokens[1]), int(r.tokens[2])), r.path)
                  for r in rows] for s, rows in hold_out(given, spec).items()}  # fmt: skip
    colours = classes.colours if classes is not None and classes.colours else palette
    stats: dict[str, Any] = {"mask_kinds": dict(sorted(kinds.items())),
                             "colours": [list(c) for c in _colours(colours, len(names))]}  # fmt: skip
    return Listing(classes=names, splits=splits, skipped=skipped, warnings=warnings, stats=stats)


def _check_pair(
    image: str, mask: str | CocoImage, classes: masks.ClassMap | None, spec: DatasetSpec
) -> tuple[masks.Decoded, tuple[int, int]]:
    if isinstance(mask, str):
        decoded = masks.decode_mask(mask, classes, spec.max_pixels)
    elif mask.width * mask.height > spec.max_pixels:
        raise masks.MaskProblem(f"mask of {mask.width}x{mask.height} pixels is over the limit of {spec.max_pixels:,}")
    else:
        decoded = masks.Decoded(rasterise(mask), "coco")
    size = masks.image_size(image) or (0, 0)
    h, w = decoded.indices.shape
    if size != (0, 0) and size != (w, h) and not _source(spec).resize_masks:
        what = "mask" if isinstance(mask, str) else "the COCO file's width and height say"
        raise masks.MaskProblem(
            f"{what} is {w}x{h} but its image is {size[0]}x{size[1]} (resize_masks resizes it, nearest neighbour)"
        )
    return decoded, size


def _colours(given: Sequence[tuple[int, int, int]] | None, k: int) -> list[tuple[int, int, int]]:
    """k display colours: the given ones first, then a fixed, well-spread palette (class 0 black, as VOC)."""
    out = list(given or [])[:k]
    for i in range(len(out), k):
        r = g = b = 0
        c = i
        for j in range(8):  # the PASCAL VOC colour map: bits of the index spread over the channels
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out.append((r, g, b))
    return out


def store_masks(path: Path, targets: Sequence[Target], spec: DatasetSpec) -> None:
    """Decode, bring to the image's size (nearest) and resize every kept mask into one (N, H, W) uint8 array."""
    geo = spec_geometry(spec)
    classes = class_map(spec)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(len(targets), spec.height, spec.width))
    for i, (mask, width, height) in enumerate(targets):
        try:
            if isinstance(mask, CocoImage):
                indices = rasterise(mask)
            else:
                indices = masks.decode_mask(mask, classes, spec.max_pixels).indices
        except masks.MaskProblem:  # changed since it was listed: nothing of it counts
            out[i] = masks.IGNORE
            continue
        if width and height and indices.shape != (height, width):
            indices = np.asarray(Image.fromarray(indices).resize((width, height), Image.Resampling.NEAREST))
        out[i] = masks.resize_mask(indices, geo)
    out.flush()
    del out
