"""Segmentation masks: pair images with masks, read a classes file, decode any mask kind to class indices.

Mask kinds (detected per file, counted in the manifest): `palette` (a P-mode PNG: the palette index is the class,
the palette gives the colours shown), `index` (grayscale, 1-bit or 16-bit samples that are class indices, or an
RGB image whose channels are equal), `colour` (an RGB mask mapped through the classes file's `name r g b`
lines, DIGITS' colour map). 255 means "ignore" (no loss, no metric); a colour-map line named `ignore` or `void`
maps its colour to 255. Masks are resized with nearest neighbour only, padding with 255.

Every problem is a `MaskProblem` with a reason naming the file's values (the indices or colours and their pixel
counts); the caller skips that pair and reports it. A JPEG mask is read but warned about (lossy compression
invents colours and classes at edges). Pairing by stem reports an image without a mask and a mask without an
image. Paths come from folders walked with the data-root check, or from list lines confined the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from deepyard.datasets.images import FORMATS, Geometry, resize
from deepyard.datasets.sources import OUTSIDE, Readable, Skipped, walk_images
from deepyard.datasets.spec import Fill
from deepyard.errors import SourceError

IGNORE = 255  # the class index of pixels that count for nothing
IGNORE_NAMES = ("ignore", "void")
MAX_CLASSES = 255  # indices 0..254; 255 is ignore
KINDS = ("palette", "index", "colour", "coco")  # coco: rasterised polygons or RLE (deepyard.datasets.cocomasks)
JPEG_WARNING = "JPEG mask: lossy compression invents classes at edges; save masks as PNG"


class MaskProblem(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ClassMap:
    """The classes file: names, and for colour masks each class's (r, g, b) plus the colours that mean ignore."""

    names: list[str]
    colours: list[tuple[int, int, int]] | None = None
    ignore_colours: tuple[tuple[int, int, int], ...] = ()


@dataclass(frozen=True)
class Decoded:
    indices: np.ndarray  # (h, w) uint8 class indices, 255 = ignore
    kind: str  # one of KINDS
    palette: list[tuple[int, int, int]] | None = None  # a palette PNG's colours
    warning: str | None = None


def read_class_map(path: Path) -> ClassMap:
    """`name` lines, or `name r g b` lines (all of one form); line i names class i."""
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8-sig").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read classes file {str(path)!r}: {exc}") from None
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines:
        raise SourceError(f"classes file {str(path)!r} is empty; write one class name (or `name r g b`) per line")
    rows = [ln.split() for ln in lines]
    coloured = [len(r) >= 4 and all(t.isdigit() for t in r[-3:]) for r in rows]
    if any(coloured) and not all(coloured):
        line = coloured.index(False) + 1
        raise SourceError(f"classes file {str(path)!r}, line {line}: every line needs `name r g b` once one has")
    if not all(coloured):
        return _checked(ClassMap(lines), path)
    names, colours, ignored = [], [], []
    for number, row in enumerate(rows, start=1):
        rgb = tuple(int(t) for t in row[-3:])
        if max(rgb) > 255:
            raise SourceError(f"classes file {str(path)!r}, line {number}: colour {rgb} is not 0..255 per channel")
        name = " ".join(row[:-3])
        if name.lower() in IGNORE_NAMES:
            ignored.append(rgb)
        else:
            names.append(name)
            colours.append(rgb)
    return _checked(ClassMap(names, colours, tuple(ignored)), path)  # type: ignore[arg-type]


def _checked(classes: ClassMap, path: Path) -> ClassMap:
    if not classes.names:
        raise SourceError(f"classes file {str(path)!r} names no class")
    if len(classes.names) > MAX_CLASSES:
        raise SourceError(f"classes file {str(path)!r} names {len(classes.names)} classes; at most {MAX_CLASSES}")
    return classes


def decode_mask(path: str, classes: ClassMap | None, max_pixels: int) -> Decoded:
    """The class indices of one mask file, whatever its kind; MaskProblem says why it cannot be used."""
    if not os.path.isfile(path):
        raise MaskProblem(f"mask file {path!r} does not exist")
    try:
        with open(path, "rb") as fp, Image.open(fp, formats=FORMATS) as img:
            if img.width * img.height > max_pixels:
                raise MaskProblem(f"mask of {img.width}x{img.height} pixels is over the limit of {max_pixels:,}")
            img.load()
            jpeg = img.format == "JPEG"
            decoded = _indices(img, classes)
    except MaskProblem:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise MaskProblem(f"mask cannot be decoded: {exc}") from None
    top = int(decoded.indices[decoded.indices != IGNORE].max(initial=0))
    if classes is not None and top >= len(classes.names):
        found = np.unique(decoded.indices[(decoded.indices >= len(classes.names)) & (decoded.indices != IGNORE)])
        raise MaskProblem(
            f"class index {', '.join(map(str, found[:8].tolist()))} beyond the {len(classes.names)} classes "
            f"(0..{len(classes.names) - 1}; {IGNORE} = ignore)"
        )
    return replace(decoded, warning=JPEG_WARNING) if jpeg else decoded


def _indices(img: Image.Image, classes: ClassMap | None) -> Decoded:
    mode = img.mode
    if mode == "P":
        flat = img.getpalette() or []
        palette = [(flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat) - 2, 3)]
        return Decoded(np.asarray(img, dtype=np.uint8), "palette", palette)
    if mode in ("L", "LA", "1"):
        return Decoded(np.asarray(img.convert("L") if mode != "1" else img, dtype=np.uint8), "index")
    if mode.startswith("I"):
        wide = np.asarray(img).astype(np.int64)
        if wide.min(initial=0) < 0 or wide.max(initial=0) > 255:
            raise MaskProblem(
                f"16-bit mask holds values {int(wide.min())}..{int(wide.max())}; class indices are 0..255"
            )
        return Decoded(wide.astype(np.uint8), "index")
    if mode not in ("RGB", "RGBA"):
        raise MaskProblem(f"mask mode {mode} is not a palette, grayscale or RGB image")
    rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    if classes is not None and classes.colours is not None:
        return Decoded(_map_colours(rgb, classes), "colour")
    if (rgb[:, :, 0] == rgb[:, :, 1]).all() and (rgb[:, :, 1] == rgb[:, :, 2]).all():
        return Decoded(np.ascontiguousarray(rgb[:, :, 0]), "index")  # grey written as RGB
    raise MaskProblem("RGB colour mask but no colour map: give a classes file of `name r g b` lines")


def _map_colours(rgb: np.ndarray, classes: ClassMap) -> np.ndarray:
    assert classes.colours is not None
    codes = (rgb[:, :, 0].astype(np.int32) << 16) | (rgb[:, :, 1].astype(np.int32) << 8) | rgb[:, :, 2]
    table = {(r << 16) | (g << 8) | b: i for i, (r, g, b) in enumerate(classes.colours)}
    table.update({(r << 16) | (g << 8) | b: IGNORE for r, g, b in classes.ignore_colours})
    found, inverse, counts = np.unique(codes.ravel(), return_inverse=True, return_counts=True)
    unknown = [(int(c), int(n)) for c, n in zip(found, counts, strict=True) if int(c) not in table]
    if unknown:
        unknown.sort(key=lambda x: -x[1])
        shown = ", ".join(f"({c >> 16}, {(c >> 8) & 255}, {c & 255}) {n:,} px" for c, n in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        total = sum(n for _, n in unknown)
        raise MaskProblem(f"{len(unknown)} colour(s) not in the colour map, {total:,} pixels: {shown}{more}")
    lookup = np.array([table[int(c)] for c in found], dtype=np.uint8)
    out: np.ndarray = lookup[inverse].reshape(codes.shape)
    return out


def resize_mask(indices: np.ndarray, geo: Geometry) -> np.ndarray:
    """(h, w) class indices to the dataset's (H, W) with its resize mode: nearest neighbour, padding is ignore."""
    geometry = replace(geo, channels=1, fill=Fill.constant, fill_value=IGNORE)
    out: np.ndarray = np.array(resize(indices, geometry, resample=Image.Resampling.NEAREST)[:, :, 0])
    return out


def image_size(path: str) -> tuple[int, int] | None:
    """(width, height) from an image's header, or None when it cannot be read (its decoder reports why)."""
    try:
        with open(path, "rb") as fp, Image.open(fp, formats=FORMATS) as img:
            orientation = img.getexif().get(0x0112, 1) if img.format in ("JPEG", "TIFF") else 1  # stored upright
            return (img.height, img.width) if orientation in (5, 6, 7, 8) else img.size
    except Exception:
        return None


def pair_folder(
    root: Path, masks: Path | None, readable: Readable | None, skipped: list[Skipped]
) -> list[tuple[str, str]]:
    """(image, mask) pairs of `root/images` and `masks` (default `root/masks`), matched by relative stem."""
    images_dir, masks_dir = root / "images", masks or root / "masks"
    for folder, what in ((images_dir, "images"), (masks_dir, "masks")):
        if not folder.is_dir():
            raise SourceError(f"folder {str(folder)!r} does not exist; a segmentation folder holds images/ and masks/")
        if readable is not None and not readable(str(folder)):
            raise SourceError(f"{what} folder {str(folder)!r} is {OUTSIDE}")
    images, bad = walk_images(images_dir, readable)
    skipped.extend(bad)
    found, bad = walk_images(masks_dir, readable)
    skipped.extend(bad)
    by_stem: dict[str, list[str]] = {}
    for mask in found:
        by_stem.setdefault(_stem(mask, masks_dir), []).append(mask)
    pairs, used = [], set()
    for image in images:
        stem = _stem(image, images_dir)
        candidates = by_stem.get(stem, [])
        if not candidates:
            skipped.append(Skipped(image, f"no mask for this image (looked for {stem}.* in {str(masks_dir)!r})"))
            continue
        if len(candidates) > 1:
            skipped.append(Skipped(image, f"several masks match this image: {', '.join(sorted(candidates))}"))
        else:
            pairs.append((image, candidates[0]))
        used.add(stem)
    for stem, masks_found in sorted(by_stem.items()):
        if stem not in used:
            skipped.extend(
                Skipped(m, f"mask with no image (looked for {stem}.* in {str(images_dir)!r})") for m in masks_found
            )
    return pairs


def _stem(path: str, root: Path) -> str:
    return os.path.splitext(os.path.relpath(path, root))[0]


def read_pairs(path: Path, base: Path, readable: Readable | None, skipped: list[Skipped]) -> list[tuple[str, str]]:
    """`image mask` lines of a list file (blank lines and `#` comments skipped); paths relative to `base`."""
    try:
        lines = path.read_text(encoding="utf-8-sig", errors="surrogateescape").splitlines()
    except OSError as exc:
        raise SourceError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    pairs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            skipped.append(
                Skipped(
                    f"{path.name}:{number}", f"expected `image mask`, got {len(parts)} field(s): {line.strip()[:80]}"
                )
            )
            continue
        image, mask = (os.path.join(base, p) for p in parts)
        outside = [p for p in (image, mask) if readable is not None and not readable(p)]
        if outside:
            skipped.append(Skipped(outside[0], OUTSIDE))
            continue
        pairs.append((image, mask))
    return pairs
