"""Sweeps: search training settings with Optuna (grid, random, TPE), prune bad trials at validation points
(median, successive halving), run the trials as train jobs on the scheduler's slots, and show what mattered.

Public API: `check_sweep`, `create_sweep`, `stop_sweep`, `resume_sweep`, `advance` (the scheduler's driver),
`get_sweep`, `list_sweeps`, `best_run`, `sweep_plots`, `sweep_runs`, `SweepSpec`, and the space (`parse_space`,
`config_keys`).
Studies live in `<home>/sweeps.db` (see deepyard.sweeps.study). Depends on jobs, train and datasets; nothing
below it imports it except the train job, which adds a trial's reporter (deepyard.sweeps.trial) lazily.
"""

from __future__ import annotations

from deepyard.sweeps.driver import advance, create_sweep, resume_sweep, stop_sweep, trial_jobs
from deepyard.sweeps.report import best_run, get_sweep, list_sweeps, sweep_plots, sweep_runs
from deepyard.sweeps.space import config_keys, parse_space
from deepyard.sweeps.spec import SweepSpec, check_sweep

__all__ = [
    "SweepSpec",
    "advance",
    "best_run",
    "check_sweep",
    "config_keys",
    "create_sweep",
    "get_sweep",
    "list_sweeps",
    "parse_space",
    "resume_sweep",
    "stop_sweep",
    "sweep_plots",
    "sweep_runs",
    "trial_jobs",
]
