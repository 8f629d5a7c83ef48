"""Segmentation data the tests make: shapes on varied backgrounds with exact masks, in every mask format.

A scene is a textured background (a random two-colour gradient with noise) and one to three shapes (circle,
square, triangle) of random size, position and colour, later shapes drawn over earlier ones. The colour says
nothing about the class: only the outline does, so a network has to learn shapes. The mask is exact (the same
boolean pixel sets that painted the image). Written as palette PNGs, grayscale index PNGs or RGB colour masks with
a `name r g b` classes file, so each reader is tested against the one truth.
"""

from __future__ import annotations

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
