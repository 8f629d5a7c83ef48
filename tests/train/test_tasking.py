"""What the trainer asks a run's task: the box-aware augmentations (IoU crop, zoom-out) are refused by name by
every task without boxes, at submit and at the start of training, never silently ignored."""

from __future__ import annotations

import pytest

from deepyard.config import Settings
from deepyard.errors import InvalidValueError
from deepyard.jobs import submit
from deepyard.networks import NetworkSpec
from deepyard.tasks import list_tasks
from deepyard.train import make_config, train
from deepyard.train.tasking import BOX_AUGMENT, check_task_augment


@pytest.mark.parametrize("key, value", [("iou_crop", 0.5), ("zoom_out", 2.0)])
def test_box_augmentations_are_refused_by_every_task_without_boxes(key: str, value: float) -> None:
    config = make_config(**{f"augment.{key}": value})
    takers = []
    for task in list_tasks():
        check_task_augment(task, make_config())  # off: every task takes the defaults
        if task.box_augment:
            check_task_augment(task, config)
            takers.append(task.name)
            continue
        with pytest.raises(InvalidValueError, match=rf"augment\.{key}={value:g} applies to detection only.*"
                                                    rf"{task.name} has no boxes"):  # fmt: skip
            check_task_augment(task, config)
    assert takers == ["detection"]
    assert {"classification", "segmentation", "language-model", "text-classification"} <= {t.name for t in list_tasks()}
    assert key in BOX_AUGMENT


def test_a_classification_run_with_an_iou_crop_is_refused_at_submit_and_at_train(
    settings: Settings, tiny: str, tiny_net: NetworkSpec
) -> None:
    config = {"epochs": 1, "batch_size": 8, "augment.iou_crop": 0.5}
    with pytest.raises(InvalidValueError, match=r"augment\.iou_crop=0\.5 applies to detection only"):
        submit(settings, "train", {"dataset": tiny, "network": "lenet", "config": config})
    with pytest.raises(InvalidValueError, match=r"classification has no boxes: leave it at 0"):
        train(settings, tiny, tiny_net, make_config(**config))


def test_the_box_augmentations_are_bounded() -> None:
    with pytest.raises(InvalidValueError, match=r"augment\.zoom_out"):
        make_config(**{"augment.zoom_out": 5})
    with pytest.raises(InvalidValueError, match=r"augment\.iou_crop"):
        make_config(**{"augment.iou_crop": 1.5})
