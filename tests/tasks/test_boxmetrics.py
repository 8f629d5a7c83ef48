"""Boxes drawn on images (deepyard.tasks.boxmetrics.draw_boxes): labels sized to the picture, drawn whole
inside it at every edge; and the confusion picture's caption (deepyard.pictures.confusion_png) kept whole."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from deepyard import pictures
from deepyard.tasks.boxmetrics import draw_boxes

RED = (230, 25, 75)  # a dark tag colour: its label is written in white


def label_ink(width: int, height: int, box: list[float], label: str = "Square 0.97") -> np.ndarray:
    """The white pixels (the label's letters) of one labelled box on a grey picture, cropped to their extent."""
    img = np.asarray(draw_boxes(np.full((height, width, 3), 90, np.uint8), [{"box": box, "label": label,
                                                                             "colour": RED}]))  # fmt: skip
    white = (img > 200).all(axis=2)
    ys, xs = np.nonzero(white)
    assert len(ys), "no label drawn"
    return white[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


@pytest.mark.parametrize("width, height", [(96, 80), (640, 480), (2400, 1600)])
def test_labels_are_sized_to_the_picture_and_drawn_whole_at_every_edge(width: int, height: int) -> None:
    middle = label_ink(width, height, [0.4 * width, 0.5 * height, 0.6 * width, 0.7 * height])
    assert middle.shape[0] >= 7  # legible on the smallest picture (11 px type)
    if width >= 640:  # and grows with it: about a fortieth of the long side
        assert 0.5 * width / 40 <= middle.shape[0] <= 1.2 * width / 40, middle.shape
    edges = {"right": [width - 6, 0.5 * height, width - 1, 0.7 * height], "top": [0.4 * width, 0, 0.6 * width,
             0.3 * height], "top-left": [0, 0, 0.2 * width, 0.2 * height]}  # fmt: skip
    for where, box in edges.items():
        assert np.array_equal(label_ink(width, height, box), middle), where  # moved inside, not cut off


def test_a_label_wider_than_the_picture_is_cut_short_not_off() -> None:
    ink = label_ink(60, 40, [5, 20, 30, 35], "a very long class name indeed 0.51")
    assert ink.shape[1] < 60 - 2  # it ends inside the picture (with an ellipsis)


@pytest.mark.parametrize("names", [["a", "background"], ["Disc", "Square", "background"]])
def test_the_confusion_caption_is_inside_the_picture(names: list[str]) -> None:
    matrix = np.arange(len(names) ** 2).reshape(len(names), -1)
    img = np.asarray(Image.open(io.BytesIO(pictures.confusion_png(matrix, names))).convert("RGB"))
    band = (img[-24:] < 120).all(axis=2)  # the caption's dark letters, in the bottom band
    xs = np.nonzero(band.any(axis=0))[0]
    assert len(xs) and xs.max() < img.shape[1] - 3  # its last letter is not at the edge: the whole of it is there
