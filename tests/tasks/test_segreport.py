"""The streamed segmentation report (SegmentationStream, what `deepyard evaluate` uses) against the report of
all the predictions at once (segmentation_report): the same document and pictures for any batching, ties
broken the same way, and never more than top_n images' masks held."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepyard.tasks.base import EvalContext
from deepyard.tasks.segmentation import SEGMENTATION
from deepyard.tasks.segmetrics import confusion, figures, image_mious
from deepyard.tasks.segreport import SegmentationStream, segmentation_report
from tests.tasks.segdata import CLASSES, scene

N, SIZE = 23, 20


def _predictions(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(logits (N, K, H, W), true masks (N, H, W) with ignore pixels, images (N, H, W, 3)): predictions that
    are the truth with a different share of pixels wrong per image, and two pairs of identical images (ties)."""
    rng = np.random.default_rng(seed)
    images, masks = (np.stack(x) for x in zip(*(scene(rng, SIZE) for _ in range(N)), strict=True))
    masks[3:6, :2] = 255  # ignored pixels
    masks[10], images[10] = masks[4], images[4]
    predicted = masks.copy()
    for i in range(N):
        wrong = rng.random((SIZE, SIZE)) < rng.uniform(0, 0.6)
        predicted[i][wrong] = rng.integers(0, len(CLASSES), int(wrong.sum()))
    predicted[17], masks[17] = predicted[8], masks[8]  # the same IoU twice: the earlier image comes first
    predicted[predicted == 255] = 0
    logits = torch.nn.functional.one_hot(torch.from_numpy(predicted).long(), len(CLASSES)).permute(0, 3, 1, 2)
    return (logits.float() + torch.rand(logits.shape) * 0.5).numpy(), masks, images


def _ctx(images: np.ndarray, top_n: int) -> EvalContext:
    sources = [f"data/{i:04d}.png" for i in range(len(images))]
    return EvalContext(list(CLASSES), {}, sources, lambda ix: images[ix], top_n)


def test_per_image_iou_is_the_iou_of_each_images_own_confusion_matrix() -> None:
    logits, masks, _ = _predictions(0)
    masks[7] = 255  # an image all ignored: no class present, 0 as figures gives it
    predicted = torch.from_numpy(logits).argmax(1)
    true = torch.from_numpy(masks)
    each = image_mious(predicted, true, len(CLASSES))
    assert each == [figures(confusion(predicted[i], true[i], len(CLASSES)).numpy())["miou"] for i in range(N)]
    assert each[7] == 0.0 and len(set(each)) > N // 2  # the images differ, so do their figures


@pytest.mark.parametrize(("batches", "top_n"), [([23], 5), ([1] * 23, 5), ([7, 7, 7, 2], 9), ([4, 19], 0),
                                                ([10, 13], 30)])  # fmt: skip
def test_streamed_report_is_the_report_of_everything_at_once(batches: list[int], top_n: int) -> None:
    logits, masks, images = _predictions(1)
    whole = segmentation_report(logits, masks, _ctx(images, top_n))
    stream = SegmentationStream(_ctx(images, top_n))
    start = 0
    for size in batches:
        idx = np.arange(start, start + size)
        stream.update(torch.from_numpy(logits[idx]), masks[idx], idx)
        assert stream.kept <= top_n  # the masks held: never more than the report shows
        start += size
    streamed = stream.report()
    assert streamed.doc == whole.doc and streamed.pictures == whole.pictures
    worst = [w["index"] for w in streamed.doc["lowest_iou"]]
    assert len(worst) == min(top_n, N)
    ious = [w["miou"] for w in streamed.doc["lowest_iou"]]
    assert ious == sorted(ious)
    if top_n >= N:
        assert worst.index(8) < worst.index(17)  # a tie goes to the earlier image


def test_the_task_streams_its_evaluation() -> None:
    logits, masks, images = _predictions(2)
    stream = SEGMENTATION.eval_stream(_ctx(images, 3))
    assert stream is not None
    stream.update(torch.from_numpy(logits), masks, np.arange(N))
    assert stream.report().doc == SEGMENTATION.evaluate(logits, masks, _ctx(images, 3)).doc


def test_ties_keep_the_earliest_images_whatever_the_batches() -> None:
    _, masks, images = _predictions(3)
    perfect = torch.nn.functional.one_hot(torch.from_numpy(np.where(masks == 255, 0, masks)).long(), 4)
    logits = perfect.permute(0, 3, 1, 2).float().numpy()  # every image right: all tie at IoU 100
    stream = SegmentationStream(_ctx(images, 3))
    for idx in np.array_split(np.arange(N)[::-1], 5):  # the later images first
        stream.update(torch.from_numpy(logits[idx]), masks[idx], idx)
    got = [w["index"] for w in stream.report().doc["lowest_iou"]]
    assert got == [w["index"] for w in segmentation_report(logits, masks, _ctx(images, 3)).doc["lowest_iou"]]
    assert got == [0, 1, 2]
