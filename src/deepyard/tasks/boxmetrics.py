"""Detection figures and pictures: box overlaps and matching (which also decides an export's parity), and boxes
drawn on images. The evaluation report is deepyard.tasks.boxreport's.

Outputs are (N, D, 6) rows (x1, y1, x2, y2, score, class) and targets (N, M, 6) rows (x1, y1, x2, y2, class,
iscrowd), both padded with class -1 (see deepyard.tasks.detection).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from deepyard import pictures

PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
           (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128)]  # fmt: skip
TRUTH = (255, 255, 255)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, 4) x (B, 4) xyxy boxes -> (A, B) intersection over union."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    x1, y1 = np.maximum(a[:, None, 0], b[None, :, 0]), np.maximum(a[:, None, 1], b[None, :, 1])
    x2, y2 = np.minimum(a[:, None, 2], b[None, :, 2]), np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    out: np.ndarray = inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)
    return out


def pairs(pred: np.ndarray, truth: np.ndarray, at: float) -> list[tuple[int, int]]:
    """(prediction row, truth row) matches of one image's predictions (K, 6 rows: box, score, class) to its true
    boxes (T, 6 rows: box, class, crowd), greedily by score within a class, at IoU `at`; -1: no match."""
    used = np.zeros(len(truth), bool)
    out = []
    overlaps = iou(pred[:, :4], truth[:, :4])
    for i in np.argsort(-pred[:, 4], kind="stable"):
        same = (truth[:, 4] == pred[i, 5]) & ~used
        best = int(np.argmax(np.where(same, overlaps[i], -1.0))) if len(truth) else -1
        if best >= 0 and same[best] and overlaps[i, best] >= at:
            used[best] = True
            out.append((int(i), best))
        else:
            out.append((int(i), -1))
    return out


def match(pred: np.ndarray, truth: np.ndarray, at: float) -> tuple[int, int, int]:
    """(true positives, false positives, missed) of one image's predictions against its true boxes (`pairs`)."""
    found = pairs(pred, truth, at)
    tp = sum(1 for _, t in found if t >= 0)
    return tp, len(found) - tp, len(truth) - tp


def matching_boxes(expected: np.ndarray, exported: np.ndarray, threshold: float) -> float:
    """Fraction of boxes above `threshold` (of either output) that the other output has too: IoU >= 0.9 and the
    same class. Raw rows are not compared: tied scores may order them differently."""
    matched = total = 0
    for a, b in zip(expected, exported, strict=True):
        a, b = a[(a[:, 5] >= 0) & (a[:, 4] >= threshold)], b[(b[:, 5] >= 0) & (b[:, 4] >= threshold)]
        tp, fp, missed = match(a, as_truth(b), 0.9)
        matched += 2 * tp
        total += 2 * tp + fp + missed
    return matched / total if total else 1.0


def as_truth(rows: np.ndarray) -> np.ndarray:
    """Output rows (box, score, class) -> truth rows (box, class, crowd 0), to match one output against another."""
    return np.concatenate([rows[:, :4], rows[:, 5:6], np.zeros((len(rows), 1))], axis=1)


def score_difference(expected: np.ndarray, exported: np.ndarray) -> float:
    """The largest score difference between the boxes of two outputs that match (IoU >= 0.9, same class)."""
    worst = 0.0
    for a, b in zip(expected, exported, strict=True):
        a, b = a[a[:, 5] >= 0], b[b[:, 5] >= 0]
        for i, j in pairs(a, as_truth(b), 0.9):
            if j >= 0:
                worst = max(worst, abs(float(a[i, 4]) - float(b[j, 4])))
    return worst


def draw_boxes(
    pixels: np.ndarray, boxes: Sequence[dict[str, Any]], scale: int = 1, shown_at: int | None = None
) -> Image.Image:
    """An image (scaled `scale` times) with boxes drawn: each `{box, label, colour}` (a white one: truth), its
    label on a tag of the box's colour just above it, or inside its top where the picture ends, kept inside the
    picture (cut short with an ellipsis when wider than it). Labels are sized to the picture, a fortieth of its
    long side and at least 11 px; `shown_at`: the picture is shown scaled to this width (a grid's tile), and its
    labels are 12 px there."""
    img = Image.fromarray(pictures.to_rgb(pixels))
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(img)
    longest = max(img.size)
    size = max(11, round(longest / 40)) if shown_at is None else max(8, round(12 * img.width / shown_at))
    font = pictures.font(size)
    line = max(2, round(size / 7))
    placed = [(tuple(float(v) * scale for v in b["box"]), b) for b in boxes]
    for (x1, y1, x2, y2), b in placed:
        draw.rectangle([x1, y1, x2, y2], outline=b["colour"], width=line)
    for (x1, y1, _, _), b in placed:  # after every box: no box's line crosses a label
        if b.get("label"):
            _tag(draw, font, str(b["label"]), (x1, y1), b["colour"], img.size, max(1, size // 6))
    return img


def _tag(
    draw: ImageDraw.ImageDraw, font: Any, text: str, corner: tuple[float, float], colour: Any,
    canvas: tuple[int, int], pad: int,
) -> None:  # fmt: skip
    """`text` on a filled tag whose bottom-left is the box's top-left corner, moved inside the canvas."""
    width, height = canvas
    text = pictures.fit_text(draw, text, font, width - 2 * pad)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    w, h = right - left + 2 * pad, bottom - top + 2 * pad
    x = min(max(0.0, corner[0]), max(0.0, width - w))
    y = corner[1] - h if corner[1] - h >= 0 else max(0.0, corner[1])  # above the box; at the top edge, inside it
    y = min(y, max(0.0, height - h))
    r, g, b = colour
    ink = (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 150 else (255, 255, 255)
    draw.rectangle([x, y, x + w - 1, y + h - 1], fill=colour)
    draw.text((x + pad - left, y + pad - top), text, fill=ink, font=font)
