"""The job API the CLI and the web server call: submit, get, list, the queue, abort, resume, delete.

These only touch the database (and nudge a worker with a signal); the `Scheduler` starts and reaps the processes.
Each call opens its own short-lived connection, so any thread or process may call them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import psutil

from deepyard import db, groups, users
from deepyard.config import Settings
from deepyard.errors import Conflict, InvalidValueError, NotFoundError, choices
from deepyard.files import new_id
from deepyard.jobs import store
from deepyard.jobs.kinds import KINDS, check_params, get_kind
from deepyard.jobs.model import ACTIVE, FINISHED, RESUMABLE, SLOT_TYPES, STATUSES, Job


@contextmanager
def _connect(settings: Settings) -> Iterator[sqlite3.Connection]:
    with closing(db.connect(settings)) as conn:
        yield conn


def jobs_dir(settings: Settings) -> Path:
    return settings.home / "jobs"


def log_path(settings: Settings, job_id: str) -> Path:
    """The worker's stdout and stderr (appended to by every attempt)."""
    return jobs_dir(settings) / f"{job_id}.log"


def submit(settings: Settings, kind: str, params: dict[str, Any], *, owner: str | None = None, priority: int = 0,
           slots: dict[str, int] | None = None, group: str | None = None) -> Job:  # fmt: skip
    """Queue a job after validating `params` for `kind`; a bad value raises before anything is queued.

    `slots` overrides the kind's default resources ({"cpu": 1}, or {"gpu": 1} for training when a GPU is
    present); {"gpu": 2} asks for two GPUs. Higher `priority` starts first; equal priorities start in order.
    The dataset or run the job creates is owned by `owner` and joins `group` as soon as it exists.
    """
    checked = check_params(settings, kind, params)
    group = groups.check_name(group)
    wanted = _check_slots(slots if slots is not None else checked.slots)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise InvalidValueError(f"priority {priority!r} must be a whole number (higher starts first)")
    with _connect(settings) as conn:
        if checked.target is not None and get_kind(kind).exclusive:
            _refuse_busy_target(conn, checked.target)
        for _ in range(5):  # ids have 4 random hex digits per second; retry the rare clash
            job_id = new_id()
            try:
                store.insert(conn, job_id, kind, checked.params, owner=owner, priority=priority, slots=wanted,
                             target=checked.target, group=group)  # fmt: skip
                break
            except sqlite3.IntegrityError:
                continue
        job = store.find(conn, job_id)
    assert job is not None
    return job


def _check_slots(slots: dict[str, int]) -> dict[str, int]:
    if not isinstance(slots, dict) or not slots:
        raise InvalidValueError(f'slots {slots!r} must be a mapping such as {{"cpu": 1}} or {{"gpu": 2}}')
    for key, count in slots.items():
        if key not in SLOT_TYPES:
            raise InvalidValueError(f"slot type {key!r} is not one of {choices(SLOT_TYPES)}")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise InvalidValueError(f"slots[{key!r}] = {count!r} must be a whole number, at least 1")
    return dict(slots)


def _refuse_busy_target(conn: sqlite3.Connection, target: str, except_id: str | None = None) -> None:
    """Two jobs of exclusive kinds (builds, training) never work on the same dataset or run at once."""
    active = store.select(conn, ACTIVE, target=target)
    busy = [j for j in active if j.id != except_id and j.kind in KINDS and get_kind(j.kind).exclusive]
    if busy:
        raise InvalidValueError(f"{target!r} is already being worked on by job {busy[0].id} ({busy[0].status})")


def find_job(settings: Settings, job_id: str) -> Job | None:
    with _connect(settings) as conn:
        return store.find(conn, job_id)


def get_job(settings: Settings, job_id: str) -> Job:
    job = find_job(settings, job_id)
    if job is None:
        raise NotFoundError(f"no job {job_id!r}; `deepyard jobs list` shows the jobs")
    return job


def list_jobs(settings: Settings, statuses: Iterable[str] | None = None, kind: str | None = None,
              target: str | None = None) -> list[Job]:  # fmt: skip
    """Jobs in submission order, optionally only those with one of `statuses`, of `kind`, or on `target`."""
    wanted = None if statuses is None else list(statuses)
    for status in wanted or []:
        if status not in STATUSES:
            raise InvalidValueError(f"status {status!r} is not one of {choices(STATUSES)}")
    with _connect(settings) as conn:
        return store.select(conn, wanted, kind, target)


def list_queue(settings: Settings) -> list[Job]:
    """Queued jobs in the order the scheduler will consider them: priority first, then submission order."""
    with _connect(settings) as conn:
        return store.select(conn, ["queued"], order=store.QUEUE_ORDER)


def abort_job(settings: Settings, job_id: str) -> Job:
    """Queued: aborted at once. Running: asked to stop after its current step (and checkpoint); the scheduler
    kills it if it has not stopped within its abort timeout."""
    with _connect(settings) as conn:
        job = _get(conn, job_id)
        if job.status == "queued" and store.transition(conn, job_id, "aborted", ("queued",), message="aborted"):
            return _get(conn, job_id)
        if store.update(conn, job_id, only_if=("running",), abort_requested=job.abort_requested or db.now()):
            job = _get(conn, job_id)
            _nudge(job)
            return job
        job = _get(conn, job_id)
        raise InvalidValueError(f"job {job_id} is {job.status}; only queued or running jobs can be aborted")


def _nudge(job: Job) -> None:
    """SIGUSR1 makes the worker stop after this step instead of at its next database poll. Only sent once the
    worker catches it: a worker still starting up (importing torch) would die of it, and its first poll of the
    database sees the request anyway."""
    pid = job.pid
    if pid is not None and is_worker(pid, job.id, direct=True) and catches_signal(pid, signal.SIGUSR1):
        with contextlib.suppress(OSError):  # it just ended; the database request stands
            os.kill(pid, signal.SIGUSR1)


def catches_signal(pid: int, sig: int) -> bool:
    """True when process `pid` has installed a handler for `sig` (Linux: the SigCgt mask in /proc/PID/status).
    False where that cannot be read: the caller must then not count on the signal being handled."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    return False


def is_worker(pid: int, job_id: str, direct: bool = False) -> bool:
    """True when `pid` is alive and is the worker of `job_id` (not a recycled pid). `direct`: the worker module
    itself, not torchrun leading a multi-GPU job (torchrun would die of a SIGUSR1)."""
    try:
        proc = psutil.Process(pid)
        cmdline = proc.cmdline()
        alive = proc.status() != psutil.STATUS_ZOMBIE and job_id in cmdline
        return alive and (not direct or "deepyard.jobs.worker" in cmdline[:3])
    except psutil.Error:
        return False


def resume_job(settings: Settings, job_id: str) -> Job:
    """Queue an interrupted, aborted or failed job again. A training job continues its run from the last
    checkpoint (exactly, as the training engine resumes); a dataset build starts over. A job that failed on its
    input (`Job.permanent`) is refused (Conflict): it would fail the same way."""
    with _connect(settings) as conn:
        job = _get(conn, job_id)
        if job.permanent:
            raise Conflict(
                f"job {job_id} failed on its input, and resuming would fail the same way: {job.error}. Fix the input "
                "and submit it again"
            )
        if job.status not in RESUMABLE:
            raise InvalidValueError(f"job {job_id} is {job.status}; only {choices(RESUMABLE)} jobs can be resumed")
        if job.target is not None and get_kind(job.kind).exclusive:
            _refuse_busy_target(conn, job.target, except_id=job_id)
        if not store.transition(conn, job_id, "queued", RESUMABLE, error=None, message="queued again"):
            raise InvalidValueError(f"job {job_id} changed status meanwhile; try again")
        return _get(conn, job_id)


def run_status(settings: Settings, info: dict[str, Any]) -> str:
    """A run's status as people should see it: run.json's, except for a run it says is queued or running that
    nothing runs: no queued or running job works on it and the process recorded as training it is gone (a CLI
    training killed hard never got to say so). That run is "interrupted": shown so, deletable, and resumable from
    its last checkpoint."""
    from deepyard.train.runs import process_gone

    status = str(info["status"])
    if status not in ACTIVE or not process_gone(info):
        return status
    if list_jobs(settings, ACTIVE, kind="train", target=info["id"]):
        return status  # its worker just ended; the scheduler records how
    return "interrupted"


def delete_job(settings: Settings, job_id: str) -> None:
    """Forget a job that is not running (its dataset or run stays; delete those separately)."""
    with _connect(settings) as conn:
        job = _get(conn, job_id)
        if job.status == "running":
            raise InvalidValueError(f"job {job_id} is running; abort it first")
        store.delete(conn, job_id)
    log_path(settings, job_id).unlink(missing_ok=True)


def forget_target(settings: Settings, kind: str, ref: str) -> None:
    """After a dataset or run (`kind`) was deleted: the finished jobs on it, its group and its owner record go too
    (a job still queued or running on it stays, to end as it will)."""
    with _connect(settings) as conn:
        for job in store.select(conn, FINISHED, target=ref):
            store.delete(conn, job.id)
            log_path(settings, job.id).unlink(missing_ok=True)
        groups.forget(conn, kind, ref)
        users.forget(conn, kind, ref)


def _get(conn: sqlite3.Connection, job_id: str) -> Job:
    job = store.find(conn, job_id)
    if job is None:
        raise NotFoundError(f"no job {job_id!r}; `deepyard jobs list` shows the jobs")
    return job
