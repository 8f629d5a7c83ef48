"""Segmentation evaluation: the metrics from one pixel confusion matrix, its heat map, the lowest-IoU images.

Each of the worst images is shown as three tiles: the image with the predicted mask overlaid, the true mask, and
an error map (correct pixels green, wrong red, ignored grey).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from deepyard import pictures
from deepyard.tasks.base import EvalContext, Report
from deepyard.tasks.segmetrics import IGNORE, confusion, figures

CORRECT, WRONG, IGNORED = (46, 160, 67), (215, 48, 39), (150, 150, 150)


def colourise(classes: np.ndarray, colours: list[list[int]]) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) uint8 in the dataset's colours; ignore is white."""
    table = np.full((256, 3), 255, np.uint8)
    table[: len(colours)] = np.asarray(colours, np.uint8).reshape(-1, 3)
    out: np.ndarray = table[classes]
    return out


def blend(pixels: np.ndarray, classes: np.ndarray, colours: list[list[int]], alpha: float = 0.5) -> np.ndarray:
    """The image with its class colours laid over it at `alpha` (ignored pixels left as they are)."""
    rgb = pictures.to_rgb(pixels).astype(np.float32)
    over = colourise(classes, colours).astype(np.float32)
    a = np.where(classes[..., None] == IGNORE, 0.0, alpha)
    out: np.ndarray = np.clip(rgb * (1 - a) + over * a, 0, 255).astype(np.uint8)
    return out


def error_map(predicted: np.ndarray, true: np.ndarray) -> np.ndarray:
    out = np.empty((*true.shape, 3), np.uint8)
    out[:] = WRONG
    out[predicted == true] = CORRECT
    out[true == IGNORE] = IGNORED
    return out


def segmentation_report(outputs: np.ndarray, targets: np.ndarray, ctx: EvalContext) -> Report:
    """mIoU, per-class IoU and Dice (None for a class absent from truth and prediction), pixel accuracy, the
    confusion matrix, and the images with the lowest IoU first. `outputs`: (N, H, W) predicted classes (what
    `deepyard evaluate` keeps, Segmentation.eval_outputs) or (N, K, H, W) logits."""
    k = len(ctx.names)
    predicted = (outputs if outputs.ndim == 3 else outputs.argmax(1)).astype(np.uint8)  # (N, H, W)
    true = np.asarray(targets, dtype=np.uint8)
    matrix = np.zeros((k, k), np.float64)
    per_image = []
    for p, t in zip(predicted, true, strict=True):
        one = confusion(torch.from_numpy(p), torch.from_numpy(t), k).numpy()
        matrix += one
        per_image.append(figures(one)["miou"])
    found = figures(matrix)
    order = np.argsort(np.array(per_image), kind="stable")[: ctx.top_n]
    colours = ctx.stats.get("colours") or [[(37 * i) % 256, (97 * i) % 256, (181 * i) % 256] for i in range(k)]
    pixels = ctx.pictures(order.astype(np.int64)) if len(order) else np.zeros((0, 1, 1, 3), np.uint8)
    tiles, captions, worst = [], [], []
    for n, i in enumerate(order.tolist()):
        tiles += [
            blend(pixels[n], predicted[i], colours),
            colourise(true[i], colours),
            error_map(predicted[i], true[i]),
        ]
        captions += [f"{ctx.sources[i].rsplit('/', 1)[-1]}\nIoU {per_image[i]:.1f}%", "true", "errors"]
        worst.append({"index": int(i), "source": ctx.sources[i], "miou": per_image[i]})
    per_class: list[dict[str, Any]] = [
        {"name": name, "iou": found["iou"][c], "dice": found["class_dice"][c],
         "pixels": int(matrix[c].sum()), "predicted_pixels": int(matrix[:, c].sum())}
        for c, name in enumerate(ctx.names)
    ]  # fmt: skip
    doc = {"classes": list(ctx.names), "miou": found["miou"], "pixel_acc": found["pixel_acc"], "dice": found["dice"],
           "per_class": per_class, "confusion": matrix.astype(np.int64).tolist(), "lowest_iou": worst}  # fmt: skip
    heat = pictures.confusion_png(matrix, list(ctx.names))
    grid = pictures.grid_png(tiles, captions, columns=6, empty="no image")
    return Report(doc, {"confusion.png": heat, "lowest_iou.png": grid})
