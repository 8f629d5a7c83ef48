"""The dataset page's box statistics, worked by hand: boxes and images per class, negatives, COCO's bands."""

from __future__ import annotations

import numpy as np

from deepyard.tasks.boxstats import band, box_summary


def test_boxes_images_and_coco_bands_per_class_worked_by_hand() -> None:
    unused = [0, 0, 0, 0, -1, 0]
    targets = np.array([
        [[0, 0, 10, 10, 0, 0], [0, 0, 40, 40, 1, 0], [0, 0, 20, 5, 0, 1]],  # small A, medium B, small crowd A
        [[0, 0, 100, 100, 1, 0], unused, unused],  # large B (area 10,000 >= 96²)
        [unused, unused, unused],  # a negative
    ], dtype=np.float32)  # fmt: skip
    s = box_summary(targets, ["A", "B"])
    assert (s["images"], s["boxes"], s["negatives"]) == (3, 4, 1)
    a, b = s["per_class"]
    assert (a["boxes"], a["images"], a["crowd"], a["bands"]) == (2, 1, 1, {"small": 2, "medium": 0, "large": 0})
    assert (b["boxes"], b["images"], b["crowd"], b["bands"]) == (2, 2, 0, {"small": 0, "medium": 1, "large": 1})
    assert s["bands"] == {"small": 2, "medium": 1, "large": 1}
    hist = s["histogram"]
    assert sum(hist["counts"]) == 4 and hist["edges"][-1] >= 100
    by_band = {name: sum(n for n, x in zip(hist["counts"], hist["bands"], strict=True) if x == name)
               for name in ("small", "medium", "large")}  # fmt: skip
    assert by_band == s["bands"]  # no bin straddles a band's edge
    assert [band(31.9**2), band(32.0**2), band(95.9**2), band(96.0**2)] == ["small", "medium", "medium", "large"]


def test_a_split_without_boxes_has_an_empty_histogram() -> None:
    s = box_summary(np.zeros((2, 0, 6), np.float32), ["A"])
    assert (s["boxes"], s["negatives"], sum(s["histogram"]["counts"])) == (0, 2, 0)
