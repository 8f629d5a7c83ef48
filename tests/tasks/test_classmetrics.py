"""Every metric against a small example computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from deepyard.tasks import classmetrics as metrics

# 6 images, 3 classes (a, b, c). True: a a b b c c. Predicted (argmax): a b b b a c.
PROBS = np.array([
    [0.7, 0.2, 0.1],  # a → a
    [0.3, 0.6, 0.1],  # a → b (wrong, 0.6 sure)
    [0.1, 0.8, 0.1],  # b → b
    [0.2, 0.5, 0.3],  # b → b
    [0.9, 0.05, 0.05],  # c → a (wrong, 0.9 sure)
    [0.1, 0.3, 0.6],  # c → c
])  # fmt: skip
LABELS = np.array([0, 0, 1, 1, 2, 2])
CLASSES = ["a", "b", "c"]


def test_accuracy_top1_and_top2() -> None:
    assert metrics.topk_accuracy(PROBS, LABELS, 1) == pytest.approx(4 / 6)
    assert metrics.topk_accuracy(PROBS, LABELS, 3) == 1.0
    # top-2 over the first four: image 1's true class a is its second choice
    assert metrics.topk_accuracy(PROBS[:4], LABELS[:4], 2) == 1.0
    assert metrics.topk_accuracy(PROBS[4:5], LABELS[4:5], 2) == 0.0  # c is image 4's last choice at 0.05


def test_confusion_matrix() -> None:
    cm = metrics.confusion_matrix(LABELS, PROBS.argmax(axis=1), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_precision_recall_f1_by_hand() -> None:
    cm = metrics.confusion_matrix(LABELS, PROBS.argmax(axis=1), 3)
    scores = {s.name: s for s in metrics.per_class(cm, CLASSES)}
    # a: predicted a twice (images 0 and 4), once right → precision 1/2; recall 1/2; F1 1/2
    assert (scores["a"].precision, scores["a"].recall, scores["a"].f1) == pytest.approx((0.5, 0.5, 0.5))
    # b: predicted 3 times, 2 right → 2/3; recall 2/2; F1 = 2 * (2/3 * 1) / (2/3 + 1) = 0.8
    assert (scores["b"].precision, scores["b"].recall, scores["b"].f1) == pytest.approx((2 / 3, 1.0, 0.8))
    # c: predicted once, right → 1; recall 1/2; F1 = 2/3
    assert (scores["c"].precision, scores["c"].recall, scores["c"].f1) == pytest.approx((1.0, 0.5, 2 / 3))
    assert [s.support for s in scores.values()] == [2, 2, 2]


def test_never_predicted_class_scores_zero_not_nan() -> None:
    cm = np.array([[2, 0], [1, 0]])
    second = metrics.per_class(cm, ["x", "y"])[1]
    assert (second.precision, second.recall, second.f1) == (0.0, 0.0, 0.0)


def test_most_confused_pairs() -> None:
    cm = np.array([[5, 3, 0], [1, 6, 0], [4, 0, 2]])
    pairs = metrics.most_confused(cm, CLASSES, n=10)
    assert [(p.actual, p.predicted, p.count) for p in pairs] == [("c", "a", 4), ("a", "b", 3), ("b", "a", 1)]
    assert pairs[0].fraction == pytest.approx(4 / 6)


def test_top_losses_are_confident_mistakes_first() -> None:
    assert metrics.top_losses(PROBS, LABELS, 5).tolist() == [4, 1]


def test_top_per_class() -> None:
    tops = metrics.top_per_class(PROBS, 2)
    assert tops[0].tolist() == [4, 0] and tops[1].tolist() == [2, 1] and tops[2].tolist() == [5, 3]


def test_cross_entropy() -> None:
    assert metrics.cross_entropy(PROBS, LABELS) == pytest.approx(-np.log([0.7, 0.3, 0.8, 0.5, 0.05, 0.6]))
