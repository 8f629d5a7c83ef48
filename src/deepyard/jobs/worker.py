"""The worker: one job in its own process, `python -m deepyard.jobs.worker HOME JOB_ID --parent PID`.

The scheduler starts it in a new session (its own process group), so a crash, an out-of-memory kill or an abort
never reaches the server. It runs the kind's runner and reports the outcome into SQLite. Stopping:
- an abort request (the `abort_requested` column, plus SIGUSR1 as a nudge) → graceful stop, status "aborted";
- SIGTERM (the scheduler stopping) or the death of the parent process → graceful stop, status "interrupted";
- an exception → "failed" with its message (the traceback goes to the job's log file); one of `REPEATS` (the
  input is bad: a value, the source, a missing or damaged file) also marks it `permanent`, not resumable: the same
  parameters would fail the same way. Anything else (a full disk, a bug, a kill) may pass on a second try.
A worker killed before it can report is marked "failed" by the scheduler, with the signal that killed it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from types import FrameType
from typing import Any

from deepyard import db
from deepyard.config import load_settings
from deepyard.errors import DamagedFileError, DeepyardError, InvalidValueError, NotFoundError, SourceError, disk_full
from deepyard.jobs import store
from deepyard.jobs.context import JobContext, JobStopped
from deepyard.jobs.kinds import get_kind, get_runner

REPEATS = (InvalidValueError, SourceError, NotFoundError, DamagedFileError)  # failures the same input meets again


def run_job(home: str, job_id: str, parent: int | None = None) -> str:
    """Run one claimed ("running") job to its end in this process; return the status it ended with."""
    settings = load_settings(home)  # the data roots and options come from the environment the scheduler set
    conn = db.connect(settings)
    job = store.find(conn, job_id)
    if job is None or job.status != "running":
        return "missing" if job is None else job.status
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))  # set by torchrun
    ctx = JobContext(settings, job_id, conn, target=job.target, parent=parent, rank=rank, world=world,
                     creates=get_kind(job.kind).creates, owner=job.owner, group=job.group)  # fmt: skip
    _install_signals(ctx)
    ctx.start_monitor()
    status, fields = _outcome(ctx, job.kind, job.params)
    ctx.close()
    if rank == 0:
        store.transition(conn, job_id, status, expect=("running",), **fields)  # type: ignore[arg-type]
    conn.close()
    return status


def _outcome(ctx: JobContext, kind: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    try:
        result = get_runner(kind)(ctx, params)
    except JobStopped:
        cause = "interrupted" if ctx.stop_cause == "interrupt" else "aborted"
        why = "the server stopped or went away" if cause == "interrupted" else "abort requested"
        return cause, {"message": f"{cause}: {why}"}
    except DeepyardError as exc:
        return "failed", {"error": str(exc), "permanent": isinstance(exc, REPEATS)}
    except BaseException as exc:  # everything a job can throw ends as its error
        full = disk_full(exc)
        if full is not None:
            return "failed", {"error": str(full)}
        traceback.print_exc()
        return "failed", {"error": f"{type(exc).__name__}: {exc}"}
    return "done", {"result": result, "progress": 1.0, "message": "done"}


def _install_signals(ctx: JobContext) -> None:
    def interrupt(signum: int, frame: FrameType | None) -> None:
        ctx.request_stop("interrupt")

    def abort(signum: int, frame: FrameType | None) -> None:
        ctx.request_stop("abort")

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGUSR1, abort)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deepyard.jobs.worker", description=__doc__)
    parser.add_argument("home")
    parser.add_argument("job_id")
    parser.add_argument("--parent", type=int, default=None, help="Stop gracefully when this process is gone.")
    args = parser.parse_args(argv)
    status = run_job(args.home, args.job_id, args.parent)
    print(f"job {args.job_id}: {status}", flush=True)
    return 0 if status in ("done", "aborted", "interrupted") else 1


if __name__ == "__main__":
    sys.exit(main())
