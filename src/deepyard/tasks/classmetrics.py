"""Classification metrics as plain functions of arrays: accuracy, confusion matrix, per-class precision, recall
and F1, the most-confused class pairs, top losses and the most confident images per class.

Conventions: `probs` is (N, K) probabilities, `labels` (N,) true class indices; confusion[i, j] counts images of
true class i predicted as j. A metric with nothing to count (precision of a class never predicted) is 0, as in
scikit-learn's zero_division=0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def topk_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of images whose true class is among the k most probable."""
    if len(labels) == 0:
        return 0.0
    k = min(k, probs.shape[1])
    top = np.argpartition(-probs, k - 1, axis=1)[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) int64 counts: rows are true classes, columns predicted classes."""
    flat = labels.astype(np.int64) * num_classes + predicted.astype(np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


@dataclass(frozen=True)
class ClassScores:
    name: str
    precision: float
    recall: float
    f1: float
    support: int  # true images of the class


def per_class(confusion: np.ndarray, classes: list[str]) -> list[ClassScores]:
    hits = np.diag(confusion).astype(np.float64)
    predicted, actual = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, actual, out=np.zeros_like(hits), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    return [ClassScores(n, float(p), float(r), float(f), int(s))
            for n, p, r, f, s in zip(classes, precision, recall, f1, actual, strict=True)]  # fmt: skip


@dataclass(frozen=True)
class Confusion:
    actual: str
    predicted: str
    count: int
    fraction: float  # of the actual class's images


def most_confused(confusion: np.ndarray, classes: list[str], n: int = 10) -> list[Confusion]:
    """The n largest off-diagonal cells, largest first (ties: by class order)."""
    off = confusion.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:n]
    actual = confusion.sum(axis=1)
    pairs = []
    for flat in order:
        i, j = divmod(int(flat), confusion.shape[1])
        if off[i, j] == 0:
            break
        pairs.append(Confusion(classes[i], classes[j], int(off[i, j]), float(off[i, j] / actual[i])))
    return pairs


def top_losses(probs: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Indices of the n wrong answers given with the highest confidence, most confident first."""
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probs[wrong, predicted[wrong]]
    order: np.ndarray = wrong[np.argsort(-confidence, kind="stable")[:n]]
    return order


def top_per_class(probs: np.ndarray, n: int) -> list[np.ndarray]:
    """For each class, the indices of the n images given the highest probability of it (DIGITS' Top N)."""
    return [np.argsort(-probs[:, c], kind="stable")[:n] for c in range(probs.shape[1])]


def cross_entropy(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-image loss -log p(true class)."""
    loss: np.ndarray = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0))
    return loss
