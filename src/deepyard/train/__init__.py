"""Training: one typed config, a loop that reads top to bottom, callbacks, exact resume, DDP.

Public API: `TrainConfig`, `make_config`, `train`, `resume_run`, `lr_at`, `schedule_points`, `Callback`,
`lr_range_test`, `find_batch_size`, `list_runs`, `get_run`.

The names load on first use (PEP 562), so code that only reads run folders or configs (`deepyard run list`, the
jobs CLI) does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deepyard.lazy import lazy_getattr

if TYPE_CHECKING:
    from deepyard.train.callbacks import Callback
    from deepyard.train.config import (
        AugmentConfig,
        FinetuneConfig,
        ScheduleConfig,
        SolverConfig,
        TrainConfig,
        make_config,
    )
    from deepyard.train.runs import get_run, list_runs, run_dir
    from deepyard.train.schedules import lr_at, schedule_points
    from deepyard.train.trainer import RunResult, resume_run, train

_WHERE = {
    "Callback": "callbacks",
    "AugmentConfig": "config",
    "FinetuneConfig": "config",
    "ScheduleConfig": "config",
    "SolverConfig": "config",
    "TrainConfig": "config",
    "make_config": "config",
    "get_run": "runs",
    "list_runs": "runs",
    "run_dir": "runs",
    "lr_at": "schedules",
    "schedule_points": "schedules",
    "RunResult": "trainer",
    "resume_run": "trainer",
    "train": "trainer",
}

__all__ = [
    "AugmentConfig",
    "Callback",
    "FinetuneConfig",
    "RunResult",
    "ScheduleConfig",
    "SolverConfig",
    "TrainConfig",
    "get_run",
    "list_runs",
    "lr_at",
    "make_config",
    "resume_run",
    "run_dir",
    "schedule_points",
    "train",
]


__getattr__ = lazy_getattr(__name__, _WHERE, globals())
