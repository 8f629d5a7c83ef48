"""What the trainer asks a run's task: its criterion for the configured loss, and its metric records."""

from __future__ import annotations

from deepyard.datasets import Manifest
from deepyard.errors import InvalidValueError, choices
from deepyard.tasks import Task, get_task
from deepyard.tasks.base import Criterion, MetricInfo
from deepyard.train.config import AugmentConfig, TrainConfig


def loss_name(task: Task, config: TrainConfig) -> str:
    """The configured loss, or the task's default for `auto`; a loss of another task names this one's."""
    name = task.losses[0] if config.loss == "auto" else config.loss
    if name not in task.losses:
        raise InvalidValueError(f"loss {name!r} does not apply to {task.name}; use {choices(['auto', *task.losses])}")
    return name


def task_criterion(task: Task, config: TrainConfig, manifest: Manifest) -> Criterion:
    return task.criterion(loss_name(task, config), manifest.classes, manifest.target_stats, config)


def metric_info(task: Task, name: str) -> MetricInfo:
    for metric in task.metrics:
        if metric.name == name:
            return metric
    raise InvalidValueError(f"monitor {name!r} is not a metric of {task.name}; use {choices(task.monitors())}")


BOX_AUGMENT = ("iou_crop", "zoom_out")  # augmentations that need boxes to crop around (Task.box_augment)


def check_task_augment(task: Task, config: TrainConfig) -> None:
    """Refuse, by name, an augmentation the task cannot take: IoU crop and zoom-out for a task without boxes
    (left to be ignored, they would silently train another recipe than the one asked for)."""
    if task.box_augment:
        return
    for key in BOX_AUGMENT:
        value, off = getattr(config.augment, key), AugmentConfig.model_fields[key].default
        if value != off:
            raise InvalidValueError(
                f"augment.{key}={value:g} applies to detection only (it moves boxes); {task.name} has no boxes: "
                f"leave it at {off:g}"
            )


def default_network(manifest: Manifest) -> tuple[str, str]:
    """(network, why) that `deepyard train --dataset D` picks when no network is given."""
    return get_task(manifest.task).default_network(manifest.shape)
