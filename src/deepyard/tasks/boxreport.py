"""Detection decisions and their errors: per-class score thresholds (best F1 on validation), precision-recall
curves per class, the detection confusion matrix with a background row and column, and the error browser (the
highest-scoring false positives and the missed objects, each drawn with both boxes); and the evaluation report
that puts them together with COCO's figures (torchmetrics' MeanAveragePrecision, pycocotools backend).

Outputs are (N, D, 6) rows (x1, y1, x2, y2, score, class) and targets (N, M, 6) rows (x1, y1, x2, y2, class,
iscrowd), both padded with class -1 (see deepyard.tasks.detection). Predictions are matched to true boxes as COCO
does at IoU 0.5: per image and class, greedily by score; a prediction on a crowd box is neither right nor wrong,
and crowd boxes are not counted as objects to find.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from deepyard import pictures
from deepyard.tasks.base import EvalContext, Report
from deepyard.tasks.boxmetrics import PALETTE, TRUTH, draw_boxes, iou, match, pairs

IOU = 0.5
TILE = 192  # the error pictures' tiles, pixels wide (their labels are sized for it)
DEFAULT_THRESHOLD = 0.5  # a class never seen in validation, or a model not calibrated


def class_thresholds(stats: dict[str, Any], classes: int) -> np.ndarray:
    """The score each class's box needs: a `threshold` the user gave (one for all), else the calibrated
    per-class `thresholds`, else 0.5."""
    if stats.get("threshold") is not None:
        return np.full(classes, float(stats["threshold"]))
    found = stats.get("thresholds")
    if isinstance(found, list) and len(found) == classes:
        return np.array(found, np.float64)
    return np.full(classes, DEFAULT_THRESHOLD)


def above(rows: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """The rows of one image's outputs (D, 6) whose score reaches their class's threshold."""
    valid = rows[rows[:, 5] >= 0]
    return valid[valid[:, 4] >= cuts[valid[:, 5].astype(np.int64)]]


@dataclass
class Scored:
    """Every prediction of one class over a dataset, best first: its score and whether it found an object."""

    scores: np.ndarray
    hits: np.ndarray
    objects: int  # true (non-crowd) boxes of the class

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """(precision, recall) after each prediction, best first."""
        found = np.cumsum(self.hits)
        precision = found / np.arange(1, len(found) + 1)
        recall = found / max(self.objects, 1)
        return precision, recall

    def best(self) -> dict[str, float]:
        """The threshold with the best F1 (the lowest score kept at that point), with its F1, precision, recall."""
        if not self.objects or not len(self.scores):
            return {"threshold": DEFAULT_THRESHOLD, "f1": 0.0, "precision": 0.0, "recall": 0.0}
        precision, recall = self.curve()
        f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
        i = int(np.argmax(f1))
        return {"threshold": float(self.scores[i]), "f1": float(f1[i]), "precision": float(precision[i]),
                "recall": float(recall[i])}  # fmt: skip


def scored(outputs: np.ndarray, targets: np.ndarray, classes: int) -> list[Scored]:
    """Each class's predictions over all images, matched at IoU 0.5 (see the module's docstring)."""
    scores: list[list[float]] = [[] for _ in range(classes)]
    hits: list[list[bool]] = [[] for _ in range(classes)]
    objects = np.zeros(classes, np.int64)
    for out, truth in zip(outputs, targets, strict=True):
        pred, truth = out[out[:, 5] >= 0], truth[truth[:, 4] >= 0]
        crowd, real = truth[truth[:, 5] > 0], truth[truth[:, 5] <= 0]
        objects += np.bincount(real[:, 4].astype(np.int64), minlength=classes)[:classes]
        on_crowd = iou(pred[:, :4], crowd[:, :4]).max(axis=1, initial=0.0) >= IOU
        for i, j in pairs(pred, real, IOU):
            if j < 0 and on_crowd[i]:
                continue
            c = int(pred[i, 5])
            scores[c].append(float(pred[i, 4]))
            hits[c].append(j >= 0)
    out = []
    for c in range(classes):
        order = np.argsort(-np.array(scores[c]), kind="stable")
        out.append(Scored(np.array(scores[c])[order], np.array(hits[c], bool)[order], int(objects[c])))
    return out


def best_thresholds(outputs: np.ndarray, targets: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Per class, the score threshold that maximises F1 on these (validation) outputs."""
    best = [s.best() for s in scored(outputs, targets, len(names))]
    return {"thresholds": [round(b["threshold"], 6) for b in best], "threshold_f1": [round(b["f1"], 4) for b in best]}


def pr_curves(found: list[Scored], names: Sequence[str], points: int = 101) -> dict[str, dict[str, list[float]]]:
    """Per class, precision at `points` recall levels (COCO's interpolation: the best precision at that recall or
    beyond; 0 past the highest recall reached) and the score at which that recall is first reached."""
    levels = np.linspace(0, 1, points)
    out = {}
    for name, s in zip(names, found, strict=True):
        precision, recall = s.curve()
        envelope = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
        at = np.searchsorted(recall, levels, side="left")
        reached = at < len(recall)
        p = np.where(reached, envelope[np.minimum(at, len(recall) - 1)] if len(recall) else 0.0, 0.0)
        score = np.where(reached, s.scores[np.minimum(at, len(recall) - 1)] if len(recall) else 0.0, 0.0)
        out[name] = {"recall": [round(float(v), 4) for v in levels], "precision": [round(float(v), 4) for v in p],
                     "score": [round(float(v), 4) for v in score]}  # fmt: skip
    return out


def pr_png(curves: dict[str, dict[str, list[float]]], marks: dict[str, tuple[float, float]], size: int = 360) -> bytes:
    """Precision (up) against recall (across) per class, each in its colour; a dot at its chosen threshold."""
    img = Image.new("RGB", (size + 140, size), pictures.BACKGROUND)
    draw = ImageDraw.Draw(img)
    pad = 36
    span = size - 2 * pad

    def at(r: float, p: float) -> tuple[float, float]:
        return pad + r * span, size - pad - p * span

    draw.rectangle([pad, pad, size - pad, size - pad], outline=(180, 180, 180))
    small = pictures.font(11)
    for n, (name, c) in enumerate(curves.items()):
        colour = PALETTE[n % len(PALETTE)]
        line = [at(r, p) for r, p in zip(c["recall"], c["precision"], strict=True)]
        draw.line(line, fill=colour, width=2)
        if name in marks:
            x, y = at(*marks[name])
            draw.ellipse([x - 4, y - 4, x + 4, y + 4], outline=pictures.INK, fill=colour)
        draw.text((size - pad + 12, pad + 16 * n), name[:18], fill=colour, font=small)
    draw.text((pad, 10), "precision-recall at IoU 0.5 (dot: the threshold used)", fill=pictures.INK, font=small)
    draw.text((pad, size - pad + 6), "recall 0 … 1", fill=pictures.INK, font=small)
    draw.text((4, pad - 14), "precision", fill=pictures.INK, font=small)
    return pictures.png(img)


def confusion(outputs: np.ndarray, targets: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """(K + 1, K + 1) counts, rows the true class, columns the predicted one, the last of each `background`: a
    kept prediction and a true box overlapping at IoU >= 0.5 (of any class, best overlaps first) are a pair; a true
    box without one is [class, background] (missed), a prediction without one [background, class] (false)."""
    k = len(cuts)
    matrix = np.zeros((k + 1, k + 1), np.int64)
    for out, truth in zip(outputs, targets, strict=True):
        pred, truth = above(out, cuts), truth[(truth[:, 4] >= 0) & (truth[:, 5] <= 0)]
        overlaps = iou(pred[:, :4], truth[:, :4])
        used_p, used_t = np.zeros(len(pred), bool), np.zeros(len(truth), bool)
        for flat in np.argsort(-overlaps, axis=None, kind="stable"):
            i, j = divmod(int(flat), len(truth))
            if overlaps[i, j] < IOU:
                break
            if not used_p[i] and not used_t[j]:
                used_p[i] = used_t[j] = True
                matrix[int(truth[j, 4]), int(pred[i, 5])] += 1
        for t in truth[~used_t]:
            matrix[int(t[4]), k] += 1
        for r in pred[~used_p]:
            matrix[k, int(r[5])] += 1
    return matrix


@dataclass
class BoxError:
    """One false positive (a kept prediction that found no object) or one missed object, with the other box
    nearest to it (the truth a false positive overlaps most; the prediction, at any score, nearest a miss)."""

    kind: str  # "false_positive" | "missed"
    image: int
    box: list[float]
    cls: int
    score: float  # the prediction's score (a miss: of the nearest prediction, 0 when none)
    other: list[float] | None
    other_cls: int
    overlap: float


def errors(outputs: np.ndarray, targets: np.ndarray, cuts: np.ndarray) -> tuple[list[BoxError], list[BoxError]]:
    """(false positives, highest score first; missed objects, largest first) at the class thresholds."""
    false, missed = [], []
    for n, (out, truth) in enumerate(zip(outputs, targets, strict=True)):
        kept, every = above(out, cuts), out[out[:, 5] >= 0]
        truth = truth[truth[:, 4] >= 0]
        real = truth[truth[:, 5] <= 0]
        found = pairs(kept, real, IOU)
        overlaps = iou(kept[:, :4], truth[:, :4])
        for i, j in found:
            if j >= 0 or (len(truth) and overlaps[i].max() >= IOU and truth[int(overlaps[i].argmax()), 5] > 0):
                continue  # right, or on a crowd box
            near = int(overlaps[i].argmax()) if len(truth) and overlaps[i].max() > 0 else -1
            false.append(BoxError("false_positive", n, kept[i, :4].tolist(), int(kept[i, 5]), float(kept[i, 4]),
                                  truth[near, :4].tolist() if near >= 0 else None,
                                  int(truth[near, 4]) if near >= 0 else -1,
                                  float(overlaps[i, near]) if near >= 0 else 0.0))  # fmt: skip
        hit = {j for _, j in found if j >= 0}
        near_all = iou(real[:, :4], every[:, :4])
        for j in range(len(real)):
            if j in hit:
                continue
            near = int(near_all[j].argmax()) if len(every) and near_all[j].max() > 0 else -1
            missed.append(BoxError("missed", n, real[j, :4].tolist(), int(real[j, 4]),
                                   float(every[near, 4]) if near >= 0 else 0.0,
                                   every[near, :4].tolist() if near >= 0 else None,
                                   int(every[near, 5]) if near >= 0 else -1,
                                   float(near_all[j, near]) if near >= 0 else 0.0))  # fmt: skip
    false.sort(key=lambda e: (-e.score, e.image))
    missed.sort(key=lambda e: (-(e.box[2] - e.box[0]) * (e.box[3] - e.box[1]), e.image))
    return false, missed


def error_tiles(
    found: list[BoxError], names: Sequence[str], sources: Sequence[str], pixels: Any
) -> tuple[list[np.ndarray], list[str], list[dict[str, Any]]]:
    """Each error drawn on its image (white: the true box; colour: the prediction), its caption and its record."""
    if not found:
        return [], [], []
    shown = pixels(np.array([e.image for e in found], np.int64))
    tiles, captions, docs = [], [], []
    for px, e in zip(shown, found, strict=True):
        truth, pred = (e.other, e.box) if e.kind == "false_positive" else (e.box, e.other)
        truth_cls, pred_cls = (e.other_cls, e.cls) if e.kind == "false_positive" else (e.cls, e.other_cls)
        boxes = []
        if truth is not None:
            boxes.append({"box": truth, "label": "", "colour": TRUTH})
        if pred is not None:
            boxes.append({"box": pred, "label": f"{e.score:.2f}", "colour": PALETTE[pred_cls % len(PALETTE)]})
        tiles.append(np.asarray(draw_boxes(px, boxes, scale=_tile_scale(px), shown_at=TILE)))
        name = sources[e.image].rsplit("/", 1)[-1]
        if e.kind == "false_positive":
            what = f"{names[e.cls]} {e.score:.2f}" + (f" on {names[truth_cls]}" if truth is not None else "")
        else:
            what = f"{names[e.cls]} missed" + (f", near {names[pred_cls]} {e.score:.2f}" if pred is not None else "")
        captions.append(f"{what}\n{name}")
        nearest = None if e.other is None else {"box": [round(v, 2) for v in e.other], "class": names[e.other_cls],
                                                "iou": round(e.overlap, 3)}  # fmt: skip
        docs.append({"source": sources[e.image], "index": e.image, "class": names[e.cls],
                     "box": [round(v, 2) for v in e.box], "score": round(e.score, 4), "nearest": nearest})  # fmt: skip
    return tiles, captions, docs


def detection_report(outputs: np.ndarray, targets: np.ndarray, ctx: EvalContext) -> Report:
    """COCO mAP (and @.5, @.75, AR@100, small/medium/large), AP per class with its threshold and F1 there, the
    precision-recall curves, the confusion matrix, the worst images and the error browser, as JSON and pictures
    (pr.png, confusion.png, worst.png, false_positives.png, missed.png)."""
    import torch

    from deepyard.tasks.detection import DetectionMeter

    names = ctx.names
    cuts = class_thresholds(ctx.stats, len(names))
    meter = DetectionMeter(class_metrics=True)
    meter.update(torch.from_numpy(outputs).float(), torch.from_numpy(targets).float(), torch.tensor(float("nan")))
    found = meter.results()
    figure = {k: _pct(found[k]) for k in ("map", "map_50", "map_75", "mar_100", "map_small", "map_medium",
                                          "map_large")}  # fmt: skip
    ap = {int(c): _pct(a) for c, a in zip(found["classes"].reshape(-1).tolist(),
                                           found["map_per_class"].reshape(-1).tolist(), strict=True)}  # fmt: skip
    per = scored(outputs, targets, len(names))
    matrix = confusion(outputs, targets, cuts)
    per_class: list[dict[str, Any]] = []
    marks: dict[str, tuple[float, float]] = {}
    for c, name in enumerate(names):
        kept = per[c].hits[per[c].scores >= cuts[c]]
        tp = int(kept.sum())
        precision, recall = tp / max(len(kept), 1), tp / max(per[c].objects, 1)
        per_class.append({"class": name, "ap": ap.get(c, -1.0), "boxes": per[c].objects, "threshold": float(cuts[c]),
                          "precision": round(100 * precision, 2), "recall": round(100 * recall, 2),
                          "f1": round(100 * 2 * precision * recall / max(precision + recall, 1e-12), 2)})  # fmt: skip
        if per[c].objects:
            marks[name] = (recall, precision)
    curves = pr_curves(per, names)
    worst, worst_tiles, worst_captions = _worst(outputs, targets, ctx, cuts)
    false, missed = errors(outputs, targets, cuts)
    fp_tiles, fp_captions, fp_docs = error_tiles(false[: ctx.top_n], names, ctx.sources, ctx.pictures)
    miss_tiles, miss_captions, miss_docs = error_tiles(missed[: ctx.top_n], names, ctx.sources, ctx.pictures)
    threshold: float | str = float(cuts[0]) if len(set(cuts.tolist())) == 1 else "each class's own"
    doc = {**figure, "threshold": threshold, "thresholds": {n: float(c) for n, c in zip(names, cuts, strict=True)},
           "per_class": per_class, "pr_curves": curves,
           "confusion": {"labels": [*names, "background"], "matrix": matrix.tolist()},
           "worst": worst, "false_positives": fp_docs, "missed": miss_docs,
           "counts": {"false_positives": len(false), "missed": len(missed)},
           "summary": f"mAP {figure['map']:.1f}%, mAP@.5 {figure['map_50']:.1f}%, {len(outputs)} images"}  # fmt: skip
    grid = pictures.grid_png
    return Report(doc, {
        "worst.png": grid(worst_tiles, worst_captions, columns=3, tile=TILE, empty="no errors at these thresholds"),
        "false_positives.png": grid(fp_tiles, fp_captions, columns=3, tile=TILE, empty="no false positives"),
        "missed.png": grid(miss_tiles, miss_captions, columns=3, tile=TILE, empty="no missed objects"),
        "pr.png": pr_png(curves, marks),
        "confusion.png": pictures.confusion_png(matrix, [*names, "background"]),
    })  # fmt: skip


def _worst(
    outputs: np.ndarray, targets: np.ndarray, ctx: EvalContext, cuts: np.ndarray
) -> tuple[list[dict[str, Any]], list[np.ndarray], list[str]]:
    """The images with the most errors at the thresholds (false positives plus missed objects)."""
    counted = []
    for i in range(len(outputs)):
        _, fp, missed = match(above(outputs[i], cuts), targets[i][targets[i][:, 4] >= 0], IOU)
        counted.append((fp + missed, fp, missed, i))
    worst = sorted((e for e in counted if e[0]), key=lambda e: (-e[0], e[3]))[: ctx.top_n]
    shown = list(ctx.pictures(np.array([e[3] for e in worst], np.int64))) if worst else []
    tiles = []
    for px, e in zip(shown, worst, strict=True):
        truth = [{"box": r[:4].tolist(), "label": "", "colour": TRUTH} for r in targets[e[3]] if r[4] >= 0]
        pred = [{"box": r[:4].tolist(), "label": f"{ctx.names[int(r[5])]} {r[4]:.2f}",
                 "colour": PALETTE[int(r[5]) % len(PALETTE)]} for r in above(outputs[e[3]], cuts)]  # fmt: skip
        tiles.append(np.asarray(draw_boxes(px, truth + pred, scale=_tile_scale(px), shown_at=TILE)))
    captions = [f"{e[1]} false, {e[2]} missed\n{ctx.sources[e[3]].rsplit('/', 1)[-1]}" for e in worst]
    docs = [{"index": e[3], "source": ctx.sources[e[3]], "false_positives": e[1], "missed": e[2]} for e in worst]
    return docs, tiles, captions


def _tile_scale(pixels: np.ndarray) -> int:
    """The whole factor that draws an image at least a tile wide, so that its labels are drawn at the size they
    are shown at rather than enlarged with the picture."""
    return max(1, -(-TILE // int(pixels.shape[1])))


def _pct(value: Any) -> float:
    v = float(value)
    return round(100 * v, 2) if v >= 0 else -1.0
