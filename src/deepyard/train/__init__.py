"""Training: one typed config, a loop that reads top to bottom, callbacks, exact resume, DDP.

Public API: `TrainConfig`, `make_config`, `train`, `resume_run`, `lr_at`, `schedule_points`, `Callback`,
`lr_range_test`, `find_batch_size`, `list_runs`, `get_run`.
"""

from __future__ import annotations

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
