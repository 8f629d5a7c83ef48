"""Segmentation data the tests make: shapes on varied backgrounds with exact masks, in every mask format.

A scene is a textured background (a random two-colour gradient with noise) and one to three shapes (circle,
square, triangle) of random size, position and colour, later shapes drawn over earlier ones. The colour says
nothing about the class: only the outline does, so a network has to learn shapes. The mask is exact (the same
boolean pixel sets that painted the image). Written as palette PNGs, grayscale index PNGs or RGB colour masks with
a `name r g b` classes file, or as a COCO JSON file of polygons (or RLE), so each reader is tested against the
one truth. The COCO polygons follow pixel edges (one rectangle per run of a row's pixels of a class), which
pycocotools rasterises exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("background", "circle", "square", "triangle")
COLOURS = ((0, 0, 0), (220, 40, 40), (40, 180, 60), (50, 90, 230))


def scene(rng: np.random.Generator, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(image (size, size, 3) uint8, mask (size, size) uint8 class indices)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * np.pi)
    t = ((np.cos(angle) * xx + np.sin(angle) * yy) / size + 1) / 2
    image = a * (1 - t[..., None]) + b * t[..., None]
    mask = np.zeros((size, size), np.uint8)
    for _ in range(rng.integers(1, 4)):
        cls = int(rng.integers(1, len(CLASSES)))
        r = rng.uniform(size * 0.14, size * 0.28)
        cx, cy = rng.uniform(r, size - r, 2)
        inside = _shape(cls, xx - cx, yy - cy, r, rng.uniform(0, 2 * np.pi))
        colour = rng.uniform(0, 255, 3)
        image[inside] = colour + rng.normal(0, 8, (int(inside.sum()), 3))
        mask[inside] = cls
    image += rng.normal(0, 10, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), mask


def _shape(cls: int, dx: np.ndarray, dy: np.ndarray, r: float, turn: float) -> np.ndarray:
    if cls == 1:
        inside: np.ndarray = dx**2 + dy**2 <= r**2
        return inside
    c, s = np.cos(turn), np.sin(turn)
    u, v = c * dx + s * dy, -s * dx + c * dy
    if cls == 2:
        side = r * 0.85
        return (np.abs(u) <= side) & (np.abs(v) <= side)
    inside = np.ones(dx.shape, bool)  # triangle: three half-planes
    for k in range(3):
        phi = 2 * np.pi * k / 3
        inside &= np.cos(phi) * u + np.sin(phi) * v <= r * 0.5
    return inside


def write_scenes(root: Path, n: int, kind: str = "palette", seed: int = 0, size: int = 64) -> np.ndarray:
    """`root/images/NNNN.png` and `root/masks/NNNN.png` (kind palette, index or colour; colour also writes
    `root/classes.txt`); returns the true masks (n, size, size)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    truth = []
    for i in range(n):
        image, mask = scene(rng, size)
        Image.fromarray(image).save(root / "images" / f"{i:04d}.png")
        save_mask(root / "masks" / f"{i:04d}.png", mask, kind)
        truth.append(mask)
    if kind == "colour":
        write_classes(root / "classes.txt", colours=True)
    return np.stack(truth)


def save_mask(path: Path, mask: np.ndarray, kind: str) -> None:
    if kind == "palette":
        img = Image.fromarray(mask, mode="P")
        flat = [c for rgb in COLOURS for c in rgb]
        img.putpalette(flat + [255, 255, 255] * (256 - len(COLOURS)))
        img.save(path)
    elif kind == "index":
        Image.fromarray(mask, mode="L").save(path)
    elif kind == "colour":
        table = np.array([*COLOURS, *[(255, 255, 255)] * (256 - len(COLOURS))], np.uint8)
        Image.fromarray(table[mask]).save(path)
    else:
        raise ValueError(kind)


def write_classes(path: Path, colours: bool) -> Path:
    lines = [f"{n} {r} {g} {b}" if colours else n for n, (r, g, b) in zip(CLASSES, COLOURS, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_coco(root: Path, n: int, seed: int = 0, size: int = 64, rle: bool = False) -> np.ndarray:
    """`root/images/NNNN.png` and `root/instances.json`, one annotation per class present in each image (polygons,
    or compressed RLE strings with `rle`); returns the true masks (n, size, size), as `write_scenes`."""
    from pycocotools import mask as coco

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    images, annotations, truth = [], [], []
    for i in range(n):
        image, mask = scene(rng, size)
        Image.fromarray(image).save(root / "images" / f"{i:04d}.png")
        images.append({"id": i + 1, "file_name": f"images/{i:04d}.png", "width": size, "height": size})
        for cls in np.unique(mask[mask > 0]).tolist():
            region = mask == cls
            if rle:
                encoded = coco.encode(np.asfortranarray(region.astype(np.uint8)))
                seg: object = {"size": [size, size], "counts": encoded["counts"].decode("ascii")}
            else:
                seg = run_polygons(region)
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": cls * 10,
                                "segmentation": seg, "area": int(region.sum()), "iscrowd": 0})  # fmt: skip
        truth.append(mask)
    categories = [{"id": k * 10, "name": name} for k, name in enumerate(CLASSES) if k]  # sparse ids, as COCO's
    doc = {"images": images, "annotations": annotations, "categories": categories}
    (root / "instances.json").write_text(json.dumps(doc))
    return np.stack(truth)


def run_polygons(region: np.ndarray) -> list[list[float]]:
    """Polygons along pixel edges covering exactly the True pixels: a rectangle per run of a row."""
    out = []
    for y in range(region.shape[0]):
        row = np.concatenate([[0], region[y].astype(np.int8), [0]])
        starts, ends = np.flatnonzero(np.diff(row) == 1), np.flatnonzero(np.diff(row) == -1)
        out.extend(
            [
                [float(a), y, float(b), y, float(b), y + 1.0, float(a), y + 1.0]
                for a, b in zip(starts, ends, strict=True)
            ]
        )
    return out
