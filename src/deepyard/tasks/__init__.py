"""Task types: one module per task, each a `Task` registered by name (see `base` for the hooks).

`get_task(name)` returns a task (None: classification, what everything made before tasks is); `list_tasks()`
lists them; `get_input_kind(name)` the input kinds (images, tokens).
"""

from __future__ import annotations

from deepyard.tasks import (
    classification,
    detection,
    languagemodel,
    multilabel,
    regression,
    segmentation,
    textclassification,
)
from deepyard.tasks.base import (
    DEFAULT_TASK,
    EvalContext,
    Meter,
    MetricInfo,
    Report,
    Task,
    get_task,
    list_tasks,
    register_task,
    task_names,
)
from deepyard.tasks.inputs import get_input_kind

__all__ = [
    "DEFAULT_TASK",
    "EvalContext",
    "Meter",
    "MetricInfo",
    "Report",
    "Task",
    "classification",
    "detection",
    "get_input_kind",
    "get_task",
    "languagemodel",
    "list_tasks",
    "multilabel",
    "register_task",
    "regression",
    "segmentation",
    "task_names",
    "textclassification",
]
