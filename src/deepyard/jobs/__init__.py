"""Jobs: dataset builds, training runs (and later evaluations and exports) as queued work with a status history,
progress and ETA, run in child processes by a scheduler with CPU and GPU slots.

Public API (the CLI and the web server call these):
`submit`, `get_job`, `find_job`, `list_jobs`, `list_queue`, `abort_job`, `resume_job`, `delete_job`, `log_path`,
`forget_target` (after a delete), `run_status` (a run's status, "interrupted" when nothing runs it any more),
`Job`, `Scheduler`, the kind registry (`KINDS`, `JobKind`, `register_kind`, `Checked`), `JobContext` and
`JobStopped` for runners, and the hardware figures (`hardware_figures`, `ProcessSampler`, `gpu_figures`).
The run folders stay the source of truth for runs; the jobs table tracks the work.
"""

from __future__ import annotations

from deepyard.jobs.context import JobContext, JobStopped
from deepyard.jobs.hardware import GpuFigures, ProcessFigures, ProcessSampler, gpu_figures, hardware_figures
from deepyard.jobs.kinds import KINDS, Checked, JobKind, register_kind
from deepyard.jobs.model import ACTIVE, FINISHED, RESUMABLE, STATUSES, Job, JobStatus
from deepyard.jobs.queue import (
    abort_job,
    delete_job,
    find_job,
    forget_target,
    get_job,
    list_jobs,
    list_queue,
    log_path,
    resume_job,
    run_status,
    submit,
)
from deepyard.jobs.scheduler import Scheduler

__all__ = [
    "ACTIVE",
    "FINISHED",
    "KINDS",
    "RESUMABLE",
    "STATUSES",
    "Checked",
    "GpuFigures",
    "Job",
    "JobContext",
    "JobKind",
    "JobStatus",
    "JobStopped",
    "ProcessFigures",
    "ProcessSampler",
    "Scheduler",
    "abort_job",
    "delete_job",
    "find_job",
    "forget_target",
    "get_job",
    "gpu_figures",
    "hardware_figures",
    "list_jobs",
    "list_queue",
    "log_path",
    "register_kind",
    "resume_job",
    "run_status",
    "submit",
]
