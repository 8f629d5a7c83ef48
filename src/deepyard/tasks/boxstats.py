"""What a detection dataset's boxes look like: boxes and images per class, and a histogram of box sizes with COCO's
small / medium / large bands (area < 32², < 96², larger), for the dataset page.

Works on one split's stored targets, (N, M, 6) float32 rows (x1, y1, x2, y2, class, iscrowd) in the stored
image's pixels with unused rows of class -1 (deepyard.tasks.detection). Sizes are measured in those stored pixels,
the size the network sees, not the source files' (a letterboxed dataset shrinks its boxes with its images).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

BANDS = (("small", 32.0**2), ("medium", 96.0**2), ("large", float("inf")))  # COCO's area bands, in pixels²
EDGES = (0, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)  # √area bins, pixels


def band(area: float) -> str:
    """COCO's size band of a box of `area` pixels²."""
    return next(name for name, top in BANDS if area < top)


def box_summary(targets: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Per class: boxes, images holding one, crowd boxes; the images without a box; and the √area histogram
    (`edges` in pixels, `counts`, and each bin's COCO band) with the boxes per band, overall and per class."""
    rows = targets.reshape(-1, targets.shape[-1]) if targets.size else np.zeros((0, 6), np.float32)
    used = rows[:, 4] >= 0
    rows = rows[used]
    classes = rows[:, 4].astype(np.int64)
    k = len(names)
    image_of = np.repeat(np.arange(len(targets)), targets.shape[1] if targets.ndim == 3 else 0)[used]
    area = np.clip(rows[:, 2] - rows[:, 0], 0, None) * np.clip(rows[:, 3] - rows[:, 1], 0, None)
    side = np.sqrt(area)
    top = max(float(side.max()) if len(side) else 0.0, 1.0)
    edges = [e for e in EDGES if e < top] + [next((e for e in EDGES if e >= top), int(np.ceil(top)))]
    counts = np.histogram(side, bins=edges)[0] if len(side) else np.zeros(len(edges) - 1, np.int64)
    bands = [band(((a + b) / 2) ** 2) for a, b in itertools.pairwise(edges)]
    in_band = np.array([band(float(a)) for a in area], dtype=object)
    per_class = []
    for c in range(k):
        mine = classes == c
        per_class.append({
            "class": names[c], "boxes": int(mine.sum()), "images": len(np.unique(image_of[mine])),
            "crowd": int((rows[mine, 5] > 0).sum()),
            "bands": {name: int((in_band[mine] == name).sum()) for name, _ in BANDS},
        })  # fmt: skip
    return {
        "images": len(targets),
        "boxes": len(rows),
        "negatives": int(len(targets) - len(np.unique(image_of))),
        "per_class": per_class,
        "bands": {name: int((in_band == name).sum()) for name, _ in BANDS},
        "histogram": {"edges": [float(e) for e in edges], "counts": counts.astype(int).tolist(), "bands": bands},
        "thresholds": {name: float(np.sqrt(top)) for name, top in BANDS[:-1]},  # band edges as √area
    }
