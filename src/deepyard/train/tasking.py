"""What the trainer asks a run's task: its criterion for the configured loss, and its metric records."""

from __future__ import annotations

from deepyard.datasets import Manifest
from deepyard.errors import InvalidValueError, choices
from deepyard.tasks import Task, get_task
from deepyard.tasks.base import Criterion, MetricInfo
from deepyard.train.config import TrainConfig


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


def default_network(manifest: Manifest) -> tuple[str, str]:
    """(network, why) that `deepyard train --dataset D` picks when no network is given."""
    return get_task(manifest.task).default_network(manifest.shape)
