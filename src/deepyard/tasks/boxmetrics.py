"""Detection figures and pictures: the evaluation report (COCO mAP, per-class AP, the worst images), boxes drawn
on images, and the box matching that decides an export's parity.

Outputs are (N, D, 6) rows (x1, y1, x2, y2, score, class) and targets (N, M, 6) rows (x1, y1, x2, y2, class,
iscrowd), both padded with class -1 (see deepyard.tasks.detection). COCO's figures come from torchmetrics'
MeanAveragePrecision (pycocotools backend); the worst images are those with the most errors at the score
threshold (false positives plus missed objects, matched greedily at IoU 0.5 within a class).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from deepyard import pictures
from deepyard.tasks.base import EvalContext, Report

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


def draw_boxes(pixels: np.ndarray, boxes: Sequence[dict[str, Any]], scale: int = 1) -> Image.Image:
    """An image with boxes drawn: each `{box, label, colour}` (a white one: truth), the label above it."""
    img = Image.fromarray(pictures.to_rgb(pixels))
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(img)
    small = pictures.font(10)
    for b in boxes:
        x1, y1, x2, y2 = (float(v) * scale for v in b["box"])
        draw.rectangle([x1, y1, x2, y2], outline=b["colour"], width=2)
        if b.get("label"):
            draw.text((x1 + 2, max(0.0, y1 - 12)), b["label"], fill=b["colour"], font=small)
    return img


def prediction_boxes(rows: np.ndarray, names: Sequence[str], threshold: float) -> list[dict[str, Any]]:
    kept = rows[(rows[:, 5] >= 0) & (rows[:, 4] >= threshold)]
    return [{"box": r[:4].tolist(), "label": f"{names[int(r[5])]} {r[4]:.2f}", "colour": PALETTE[int(r[5]) % 10]}
            for r in kept]  # fmt: skip


def truth_boxes(rows: np.ndarray) -> list[dict[str, Any]]:
    return [{"box": r[:4].tolist(), "label": "", "colour": TRUTH} for r in rows[rows[:, 4] >= 0]]


def detection_report(outputs: np.ndarray, targets: np.ndarray, ctx: EvalContext, threshold: float = 0.5) -> Report:
    """COCO mAP (and @.5, @.75, AR@100, small/medium/large), AP per class, and the worst images as pictures."""
    import torch

    from deepyard.tasks.detection import DetectionMeter

    threshold = float(ctx.stats.get("threshold", threshold))
    meter = DetectionMeter(class_metrics=True)
    meter.update(torch.from_numpy(outputs).float(), torch.from_numpy(targets).float(), torch.tensor(float("nan")))
    found = meter.results()
    figure = {k: _pct(found[k]) for k in ("map", "map_50", "map_75", "mar_100", "map_small", "map_medium",
                                          "map_large")}  # fmt: skip
    classes = found["classes"].reshape(-1).tolist()
    per_class_ap = found["map_per_class"].reshape(-1).tolist()
    boxes = np.bincount(targets[:, :, 4][targets[:, :, 4] >= 0].astype(int), minlength=len(ctx.names))
    per_class = [{"class": ctx.names[int(c)], "ap": _pct(ap), "boxes": int(boxes[int(c)])}
                 for c, ap in zip(classes, per_class_ap, strict=True) if 0 <= int(c) < len(ctx.names)]  # fmt: skip
    errors = []
    for i in range(len(outputs)):
        pred = outputs[i][(outputs[i][:, 5] >= 0) & (outputs[i][:, 4] >= threshold)]
        _, fp, missed = match(pred, targets[i][targets[i][:, 4] >= 0], 0.5)
        errors.append((fp + missed, fp, missed, i))
    worst = sorted((e for e in errors if e[0]), key=lambda e: (-e[0], e[3]))[: ctx.top_n]
    shown = list(ctx.pictures(np.array([e[3] for e in worst], np.int64))) if worst else []
    tiles = [np.asarray(draw_boxes(px, truth_boxes(targets[e[3]]) + prediction_boxes(outputs[e[3]], ctx.names,
                                                                                      threshold)))
             for px, e in zip(shown, worst, strict=True)]  # fmt: skip
    captions = [f"{e[1]} false, {e[2]} missed\n{ctx.sources[e[3]].rsplit('/', 1)[-1]}" for e in worst]
    doc = {**figure, "threshold": threshold, "per_class": per_class,
           "worst": [{"index": e[3], "source": ctx.sources[e[3]], "false_positives": e[1], "missed": e[2]}
                     for e in worst],
           "summary": f"mAP {figure['map']:.1f}%, mAP@.5 {figure['map_50']:.1f}%, {len(outputs)} images"}  # fmt: skip
    grid = pictures.grid_png(tiles, captions, columns=3, tile=192, empty="no errors at this threshold")
    return Report(doc, {"worst.png": grid})


def _pct(value: Any) -> float:
    v = float(value)
    return round(100 * v, 2) if v >= 0 else -1.0
