"""Segmentation metrics from a pixel confusion matrix: mIoU, per-class IoU, pixel accuracy, Dice; losses.

One (K, K) confusion matrix (rows: true class, columns: predicted; ignore pixels left out) holds everything, so
the validation meter is a sum that DDP ranks add with one all_reduce, and `deepyard evaluate` computes the same
figures from the same matrix. A class absent from both truth and prediction has no IoU ("n/a", None), never 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from deepyard.tasks.base import Meter

IGNORE = 255


def confusion(predicted: torch.Tensor, true: torch.Tensor, k: int) -> torch.Tensor:
    """(K, K) float64 counts of (true, predicted) over the pixels whose truth is not ignore."""
    codes = torch.where(true == IGNORE, k * k, true.long() * k + predicted.long())  # ignore: one bin more, dropped
    return torch.bincount(codes.view(-1), minlength=k * k + 1)[: k * k].double().view(k, k)  # no masked copies


def image_mious(predicted: torch.Tensor, true: torch.Tensor, k: int) -> list[float]:
    """Each image's mIoU in % of (B, H, W) classes, as `figures` gives it from that image's confusion matrix, from
    three (B, K) counts (true positives, true and predicted pixels per class, ignore left out), so memory is
    B x K counts whatever the number of classes (not B x K x K)."""
    b = len(true)
    valid = true != IGNORE
    offset = k * torch.arange(b, device=true.device).view(b, 1, 1)  # each image its own K bins

    def count(classes: torch.Tensor, where: torch.Tensor) -> np.ndarray:  # (B, K) pixels per image and class
        codes = torch.where(where, classes.long() + offset, b * k)  # the rest: one bin more, dropped
        counts: np.ndarray = torch.bincount(codes.view(-1), minlength=b * k + 1)[: b * k].double().view(b, k).numpy()
        return counts

    tp = count(true, valid & (predicted == true))
    union = count(true, valid) + count(predicted, valid) - tp  # true + predicted - both, per class
    return [mean_iou(tp[i], union[i]) for i in range(b)]


def mean_iou(tp: np.ndarray, union: np.ndarray) -> float:
    """The mean over the classes present (union > 0) of tp / union, in %; 0 where none is."""
    present = union > 0
    return 100 * float(np.nanmean(np.where(present, tp / np.maximum(union, 1), np.nan))) if present.any() else 0.0


def figures(matrix: np.ndarray) -> dict[str, Any]:
    """miou, pixel_acc, dice (in %) and per-class iou/dice (None where the class is absent from both)."""
    tp = np.diag(matrix)
    fp, fn = matrix.sum(0) - tp, matrix.sum(1) - tp
    union = tp + fp + fn
    present = union > 0
    iou = np.where(present, tp / np.maximum(union, 1), np.nan)
    dice = np.where(present, 2 * tp / np.maximum(2 * tp + fp + fn, 1), np.nan)
    total = matrix.sum()
    return {
        "miou": mean_iou(tp, union),
        "pixel_acc": 100 * float(tp.sum() / total) if total else 0.0,
        "dice": 100 * float(np.nanmean(dice)) if present.any() else 0.0,
        "iou": [None if np.isnan(v) else 100 * float(v) for v in iou],
        "class_dice": [None if np.isnan(v) else 100 * float(v) for v in dice],
    }


class ConfusionMeter(Meter):
    """Loss sum, image count, then the flattened (K, K) pixel confusion matrix."""

    def __init__(self, k: int) -> None:
        self.k = k
        self._sums: torch.Tensor | None = None

    def update(self, outputs: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor) -> None:
        count = torch.tensor([float(len(targets))], device=outputs.device, dtype=torch.float64)
        matrix = confusion(outputs.argmax(1), targets, self.k).view(-1)
        batch = torch.cat([loss.double().reshape(1) * count, count, matrix])
        self._sums = batch if self._sums is None else self._sums + batch

    def sums(self) -> torch.Tensor:
        return self._sums if self._sums is not None else torch.zeros(2 + self.k * self.k, dtype=torch.float64)

    def compute(self, sums: torch.Tensor) -> dict[str, float]:
        loss, count = sums[0].item(), max(sums[1].item(), 1.0)
        found = figures(sums[2:].view(self.k, self.k).numpy())
        return {"val_loss": loss / count, "val_miou": found["miou"], "val_pixel_acc": found["pixel_acc"],
                "val_dice": found["dice"]}  # fmt: skip


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - mean soft Dice over the classes present in the batch's truth or prediction; ignore pixels left out."""
    k = logits.shape[1]
    valid = (target != IGNORE).unsqueeze(1)  # (B, 1, H, W)
    probs = logits.float().softmax(1) * valid
    onehot = F.one_hot(torch.where(valid[:, 0], target.long(), 0), k).permute(0, 3, 1, 2) * valid
    inter = (probs * onehot).sum((0, 2, 3))
    sizes = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    present = sizes > 0
    dice = 2 * inter[present] / sizes[present].clamp_min(1e-6)
    return 1 - dice.mean() if present.any() else logits.sum() * 0


def focal_loss(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None, gamma: float = 2.0
) -> torch.Tensor:
    """Per-pixel focal loss (Lin et al., 2017): cross-entropy scaled by (1 - p_true)^gamma, ignore left out."""
    ce = F.cross_entropy(logits.float(), target.long(), weight=weight, ignore_index=IGNORE, reduction="none")
    valid = target != IGNORE
    p = torch.exp(-F.cross_entropy(logits.float(), target.long(), ignore_index=IGNORE, reduction="none"))
    loss = ((1 - p) ** gamma * ce)[valid]
    return loss.mean() if loss.numel() else logits.sum() * 0
