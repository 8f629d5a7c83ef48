"""Detection decisions worked by hand: the per-class threshold with the best F1, the confusion matrix with its
background row and column, the error browser's false positives and missed objects, and the report's pictures."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from deepyard.tasks import get_task
from deepyard.tasks.base import EvalContext
from deepyard.tasks.boxreport import best_thresholds, class_thresholds, confusion, errors, scored

NAMES = ["Disc", "Square"]


def outputs(*images: list[tuple[float, ...]]) -> np.ndarray:
    out = np.zeros((len(images), 6, 6))
    out[:, :, 5] = -1
    for i, rows in enumerate(images):
        for j, r in enumerate(rows):
            out[i, j] = r
    return out


def targets(*images: list[tuple[float, ...]]) -> np.ndarray:
    out = np.full((len(images), 4, 6), -1.0)
    for i, rows in enumerate(images):
        for j, r in enumerate(rows):
            out[i, j] = r
    return out


# Two images. Disc: two objects; predictions 0.9 (right), 0.8 (wrong place), 0.6 (right), 0.3 (wrong place).
# Square: one object, found at 0.7 as a Disc-sized box of the wrong class in image 1 (a Disc at 0.3 is beside it).
TRUTH = targets([(10, 10, 30, 30, 0, 0), (40, 40, 60, 60, 1, 0)], [(5, 5, 25, 25, 0, 0)])
PRED = outputs([(10, 10, 30, 30, 0.9, 0), (70, 5, 90, 20, 0.8, 0), (41, 41, 60, 60, 0.7, 0), (0, 60, 9, 70, 0.3, 0)],
               [(5, 5, 25, 25, 0.6, 0)])  # fmt: skip


def test_the_threshold_with_the_best_f1_per_class() -> None:
    """Disc's predictions best first: 0.9 right, 0.8 wrong, 0.7 wrong (on the Square), 0.6 right, 0.3 wrong; 2
    objects. F1 after each: 0.67, 0.5, 0.4, 0.67 (P 2/4, R 1), 0.57: the best is at 0.9 (the first of the tie);
    Square is never predicted: 0.5, F1 0."""
    found = scored(PRED, TRUTH, 2)
    assert found[0].scores.tolist() == [0.9, 0.8, 0.7, 0.6, 0.3] and found[0].hits.tolist() == [1, 0, 0, 1, 0]
    assert found[0].objects == 2 and found[1].objects == 1
    doc = best_thresholds(PRED, TRUTH, NAMES)
    assert doc["thresholds"] == [0.9, 0.5] and doc["threshold_f1"] == [pytest.approx(0.6667, abs=1e-4), 0.0]
    assert class_thresholds(doc, 2).tolist() == [0.9, 0.5]
    assert class_thresholds({**doc, "threshold": 0.2}, 2).tolist() == [0.2, 0.2]  # the user's one threshold wins
    assert class_thresholds({}, 2).tolist() == [0.5, 0.5]


def test_confusion_has_a_background_row_and_column() -> None:
    """At 0.5 for both classes: image 0 keeps Disc 0.9 (on the Disc), 0.8 (on nothing), 0.7 (on the Square);
    image 1 keeps Disc 0.6 (on its Disc)."""
    matrix = confusion(PRED, TRUTH, np.array([0.5, 0.5]))
    assert matrix.tolist() == [[2, 0, 0],  # Disc: both found as Disc
                               [1, 0, 0],  # Square: found as a Disc
                               [1, 0, 0]]  # background: one Disc where there is nothing  # fmt: skip


def test_error_browser_lists_false_positives_by_score_and_misses_with_the_nearest_box() -> None:
    false, missed = errors(PRED, TRUTH, np.array([0.5, 0.5]))
    assert [(e.score, e.other is None) for e in false] == [(0.8, True), (0.7, False)]
    assert false[1].other_cls == 1 and false[1].overlap > 0.9  # the wrong-class box over the Square
    (miss,) = missed
    assert miss.cls == 1 and miss.box == [40, 40, 60, 60] and miss.other_cls == 0 and miss.score == 0.7


def test_report_has_thresholds_curves_confusion_and_error_pictures() -> None:
    pixels = np.zeros((2, 80, 100, 3), np.uint8)
    ctx = EvalContext(NAMES, {"thresholds": [0.5, 0.5]}, ["a.png", "b.png"], lambda idx: pixels[idx], 9)
    report = get_task("detection").evaluate(PRED, TRUTH, ctx)
    doc = report.doc
    assert {"pr.png", "confusion.png", "worst.png", "false_positives.png", "missed.png"} == set(report.pictures)
    disc = doc["per_class"][0]
    assert disc["threshold"] == 0.5 and disc["precision"] == 50.0  # 0.9, 0.6 right; 0.8, 0.7 wrong
    assert disc["recall"] == 100.0
    assert doc["confusion"]["labels"] == ["Disc", "Square", "background"]
    curve = doc["pr_curves"]["Disc"]
    assert curve["precision"][0] == 1.0 and curve["precision"][-1] == pytest.approx(0.5)  # recall 1 at 4 kept
    assert all(a >= b for a, b in zip(curve["precision"], curve["precision"][1:], strict=False))  # interpolated
    assert doc["counts"] == {"false_positives": 2, "missed": 1}
    assert [e["score"] for e in doc["false_positives"]] == [0.8, 0.7]
    assert doc["missed"][0]["nearest"]["class"] == "Disc"
    for name in ("false_positives.png", "missed.png", "pr.png"):
        img = Image.open(io.BytesIO(report.pictures[name])).convert("RGB")
        assert len(np.unique(np.asarray(img).reshape(-1, 3), axis=0)) > 3  # drawn, not blank
