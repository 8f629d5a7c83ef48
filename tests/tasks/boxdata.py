"""Detection test data: objects pasted onto varied backgrounds with exact boxes, written in COCO, VOC, YOLO and
KITTI, so that every reader is tested against the same truth; and a corpus of hostile annotations.

Scenes: images of varied sizes and aspects (so the letterbox matters), a background of a colour gradient, noise
and clutter (outlined shapes and lines that are no object), and 0 to `most` objects of three classes (`Disc`,
`Square`, `bar`: case kept) in random colours and sizes, that may touch but barely overlap. Boxes are exact:
the object's drawn pixels span exactly [x1, x2) x [y1, y2). `distractors`: filled shapes of no class (triangles,
crosses, rings) of the objects' sizes, placed apart from them, so a detector must tell shapes, not blobs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("Disc", "Square", "bar")


@dataclass
class Truth:
    file: str
    width: int
    height: int
    boxes: list[tuple[str, int, int, int, int]] = field(default_factory=list)  # class, x1, y1, x2, y2


def make_scenes(
    count: int, seed: int = 0, sizes: tuple[int, int] = (64, 112), most: int = 3, negatives: float = 0.1,
    clutter: int = 4, object_size: tuple[int, int] = (10, 28), distractors: int = 0,
) -> list[tuple[Truth, Image.Image]]:  # fmt: skip
    rng = np.random.default_rng(seed)
    out = []
    for n in range(count):
        w, h = (int(v) for v in rng.integers(sizes[0], sizes[1] + 1, size=2))
        img = _background(rng, w, h, clutter)
        truth = Truth(f"img{n:04d}.png", w, h)
        k = 0 if rng.random() < negatives else int(rng.integers(1, most + 1))
        placed: list[tuple[int, int, int, int]] = []
        for _ in range(k * 10):
            if len(placed) == k:
                break
            s = int(rng.integers(object_size[0], min(object_size[1], w // 2, h // 2) + 1))
            name = CLASSES[int(rng.integers(len(CLASSES)))]
            bw, bh = (s, max(4, s // 3)) if name == "bar" else (s, s)
            x1, y1 = int(rng.integers(0, w - bw + 1)), int(rng.integers(0, h - bh + 1))
            box = (x1, y1, x1 + bw, y1 + bh)
            if any(_overlap(box, p) > 0.1 for p in placed):
                continue
            _draw_object(img, name, box, rng)
            placed.append(box)
            truth.boxes.append((name, *box))
        _draw_distractors(img, rng, int(rng.integers(0, distractors + 1)), object_size, placed)
        out.append((truth, img))
    return out


def _background(rng: np.random.Generator, w: int, h: int, clutter: int) -> Image.Image:
    a, b = rng.integers(0, 256, size=3), rng.integers(0, 256, size=3)
    t = np.linspace(0, 1, w)[None, :, None] if rng.random() < 0.5 else np.linspace(0, 1, h)[:, None, None]
    base = a * (1 - t) + b * t + rng.normal(0, 12, size=(h, w, 3))
    img = Image.fromarray(np.clip(np.broadcast_to(base, (h, w, 3)), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(clutter):  # outlines and lines: texture that is no object
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        s = int(rng.integers(6, 24))
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        if rng.random() < 0.5:
            draw.ellipse([x, y, x + s, y + s], outline=colour, width=1)
        else:
            draw.line([x, y, x + s, y + int(rng.integers(-s, s + 1))], fill=colour, width=2)
    return img


Box = tuple[int, int, int, int]


def _draw_distractors(
    img: Image.Image, rng: np.random.Generator, count: int, size: tuple[int, int], placed: list[Box]
) -> None:
    w, h = img.size
    draw = ImageDraw.Draw(img)
    for _ in range(count * 10):
        if not count:
            return
        s = int(rng.integers(size[0], min(size[1], w // 2, h // 2) + 1))
        x1, y1 = int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1))
        box = (x1, y1, x1 + s, y1 + s)
        if any(_overlap(box, p) > 0 for p in placed):
            continue
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        kind = int(rng.integers(3))
        if kind == 0:  # a triangle
            draw.polygon([(x1, y1 + s - 1), (x1 + s // 2, y1), (x1 + s - 1, y1 + s - 1)], fill=colour)
        elif kind == 1:  # a cross
            t = max(2, s // 4)
            draw.rectangle([x1 + s // 2 - t // 2, y1, x1 + s // 2 + t // 2, y1 + s - 1], fill=colour)
            draw.rectangle([x1, y1 + s // 2 - t // 2, x1 + s - 1, y1 + s // 2 + t // 2], fill=colour)
        else:  # a ring
            draw.ellipse([x1, y1, x1 + s - 1, y1 + s - 1], outline=colour, width=max(2, s // 5))
        placed.append(box)
        count -= 1


def _draw_object(img: Image.Image, name: str, box: tuple[int, int, int, int], rng: np.random.Generator) -> None:
    colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
    x1, y1, x2, y2 = box
    draw = ImageDraw.Draw(img)
    if name == "Disc":
        draw.ellipse([x1, y1, x2 - 1, y2 - 1], fill=colour)
    else:
        draw.rectangle([x1, y1, x2 - 1, y2 - 1], fill=colour)


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    iw, ih = max(0, min(a[2], b[2]) - max(a[0], b[0])), max(0, min(a[3], b[3]) - max(a[1], b[1]))
    area = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / area


# ---------------------------------------------------------------- writers


def write_coco(root: Path, scenes: list[tuple[Truth, Image.Image]]) -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i, (t, img) in enumerate(scenes, start=1):
        img.save(root / "images" / t.file)
        images.append({"id": i, "file_name": f"images/{t.file}", "width": t.width, "height": t.height})
        for name, x1, y1, x2, y2 in t.boxes:
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": CLASSES.index(name) + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                }
            )
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)]
    path = root / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def write_voc(root: Path, scenes: list[tuple[Truth, Image.Image]]) -> Path:
    for sub in ("Annotations", "JPEGImages"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for t, img in scenes:
        img.save(root / "JPEGImages" / t.file)
        objects = "".join(
            f"<object><name>{n}</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax>"
            "</bndbox></object>"
            for n, x1, y1, x2, y2 in t.boxes
        )
        (root / "Annotations" / (Path(t.file).stem + ".xml")).write_text(
            f"<annotation><filename>{t.file}</filename><size><width>{t.width}</width><height>{t.height}</height>"
            f"<depth>3</depth></size>{objects}</annotation>"
        )
    return root


def write_yolo(root: Path, scenes: list[tuple[Truth, Image.Image]]) -> Path:
    for sub in ("images", "labels"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    for t, img in scenes:
        img.save(root / "images" / t.file)
        lines = [f"{CLASSES.index(n)} {(x1 + x2) / 2 / t.width:.8f} {(y1 + y2) / 2 / t.height:.8f} "
                 f"{(x2 - x1) / t.width:.8f} {(y2 - y1) / t.height:.8f}" for n, x1, y1, x2, y2 in t.boxes]  # fmt: skip
        (root / "labels" / (Path(t.file).stem + ".txt")).write_text("".join(line + "\n" for line in lines))
    return root


def write_kitti(root: Path, scenes: list[tuple[Truth, Image.Image]]) -> Path:
    for sub in ("image_2", "label_2"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for t, img in scenes:
        img.save(root / "image_2" / t.file)
        lines = [f"{n} 0.00 0 0.00 {x1:.2f} {y1:.2f} {x2:.2f} {y2:.2f} 0 0 0 0 0 0 0" for n, x1, y1, x2, y2 in t.boxes]
        lines.append("DontCare -1 -1 -10 1.00 1.00 5.00 5.00 -1 -1 -1 -1000 -1000 -1000 -10")
        (root / "label_2" / (Path(t.file).stem + ".txt")).write_text("\n".join(lines) + "\n")
    return root


WRITERS = {"coco": write_coco, "voc": write_voc, "yolo": write_yolo, "kitti": write_kitti}


def write(fmt: str, root: Path, scenes: list[tuple[Truth, Image.Image]]) -> Path:
    """Write `scenes` in `fmt` under `root`; returns the path `dataset create` takes."""
    return WRITERS[fmt](root, scenes)
