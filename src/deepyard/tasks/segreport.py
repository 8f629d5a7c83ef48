"""Segmentation evaluation: the metrics from one pixel confusion matrix, its heat map, the lowest-IoU images.

Each of the worst images is shown as three tiles: the image with the predicted mask overlaid, the true mask, and
an error map (correct pixels green, wrong red, ignored grey).

`deepyard evaluate` streams (`SegmentationStream`, the task's `eval_stream`): per batch it adds the pixel
confusion matrix, takes each image's IoU from per-class counts, and keeps the predicted and true masks of the
`top_n` lowest-IoU images seen so far only, so memory is the matrix and `top_n` masks whatever the number of
images (no logits and no per-image masks are held). `segmentation_report` computes the same report from all the
predictions at once.
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np
import torch

from deepyard import pictures
from deepyard.tasks.base import EvalContext, EvalStream, Report
from deepyard.tasks.segmetrics import IGNORE, confusion, figures, image_mious

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


Worst = tuple[int, float, np.ndarray, np.ndarray]  # (index, the image's mIoU, predicted (H, W), true (H, W))


def segmentation_report(outputs: np.ndarray, targets: np.ndarray, ctx: EvalContext) -> Report:
    """mIoU, per-class IoU and Dice (None for a class absent from truth and prediction), pixel accuracy, the
    confusion matrix, and the images with the lowest IoU first, from all the outputs at once: (N, H, W)
    predicted classes or (N, K, H, W) logits. (`deepyard evaluate` streams instead: `SegmentationStream`.)"""
    k = len(ctx.names)
    predicted = (outputs if outputs.ndim == 3 else outputs.argmax(1)).astype(np.uint8)  # (N, H, W)
    true = np.asarray(targets, dtype=np.uint8)
    matrix = np.zeros((k, k), np.float64)
    per_image = []
    for p, t in zip(predicted, true, strict=True):
        one = confusion(torch.from_numpy(p), torch.from_numpy(t), k).numpy()
        matrix += one
        per_image.append(figures(one)["miou"])
    order = np.argsort(np.array(per_image), kind="stable")[: ctx.top_n]
    return render_report(matrix, [(i, per_image[i], predicted[i], true[i]) for i in order.tolist()], ctx)


class SegmentationStream(EvalStream):
    """The same report batch by batch: the confusion matrix summed, the `top_n` lowest-IoU images' masks kept
    (ties: the earlier image, as the stable sort of `segmentation_report`)."""

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx, self.k = ctx, len(ctx.names)
        self.matrix = np.zeros((self.k, self.k), np.float64)
        self.count = 0
        self._worst: list[tuple[float, int, np.ndarray, np.ndarray]] = []  # a max-heap on (IoU, index), negated

    @property
    def kept(self) -> int:
        """How many images' masks are held now (at most `top_n`)."""
        return len(self._worst)

    def update(self, outputs: torch.Tensor, targets: np.ndarray, indices: np.ndarray) -> None:
        predicted = outputs.argmax(1).to(torch.uint8) if outputs.ndim == 4 else outputs.to(torch.uint8)  # (B, H, W)
        true = torch.from_numpy(np.asarray(targets, dtype=np.uint8))
        self.matrix += confusion(predicted, true, self.k).numpy()
        self.count += len(true)
        for n, (index, miou) in enumerate(zip(indices.tolist(), image_mious(predicted, true, self.k), strict=True)):
            if len(self._worst) < self.ctx.top_n:
                heapq.heappush(self._worst, (-miou, -index, predicted[n].numpy().copy(), true[n].numpy().copy()))
            elif self._worst and (miou, index) < (-self._worst[0][0], -self._worst[0][1]):
                heapq.heapreplace(self._worst, (-miou, -index, predicted[n].numpy().copy(), true[n].numpy().copy()))

    def report(self) -> Report:
        worst = sorted(((-i, -m, p, t) for m, i, p, t in self._worst), key=lambda w: (w[1], w[0]))
        return render_report(self.matrix, worst, self.ctx)


def render_report(matrix: np.ndarray, worst: list[Worst], ctx: EvalContext) -> Report:
    """The report's document and pictures from the (K, K) pixel confusion matrix and the worst images, worst
    first."""
    found, k = figures(matrix), len(ctx.names)
    colours = ctx.stats.get("colours") or [[(37 * i) % 256, (97 * i) % 256, (181 * i) % 256] for i in range(k)]
    indices = np.array([w[0] for w in worst], np.int64)
    pixels = ctx.pictures(indices) if len(indices) else np.zeros((0, 1, 1, 3), np.uint8)
    tiles, captions, lowest = [], [], []
    for n, (i, miou, predicted, true) in enumerate(worst):
        tiles += [blend(pixels[n], predicted, colours), colourise(true, colours), error_map(predicted, true)]
        captions += [f"{ctx.sources[i].rsplit('/', 1)[-1]}\nIoU {miou:.1f}%", "true", "errors"]
        lowest.append({"index": int(i), "source": ctx.sources[i], "miou": miou})
    per_class: list[dict[str, Any]] = [
        {"name": name, "iou": found["iou"][c], "dice": found["class_dice"][c],
         "pixels": int(matrix[c].sum()), "predicted_pixels": int(matrix[:, c].sum())}
        for c, name in enumerate(ctx.names)
    ]  # fmt: skip
    doc = {"classes": list(ctx.names), "miou": found["miou"], "pixel_acc": found["pixel_acc"], "dice": found["dice"],
           "per_class": per_class, "confusion": matrix.astype(np.int64).tolist(), "lowest_iou": lowest}  # fmt: skip
    heat = pictures.confusion_png(matrix, list(ctx.names))
    grid = pictures.grid_png(tiles, captions, columns=6, empty="no image")
    return Report(doc, {"confusion.png": heat, "lowest_iou.png": grid})
