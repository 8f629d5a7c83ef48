"""`deepyard jobs ...`: list, show, queue, submit, abort, resume, delete, log, and `work` (the scheduler in the
foreground, so jobs run without the web server)."""

from __future__ import annotations

import json
import signal
import threading
from types import FrameType
from typing import Any

import typer
from rich.table import Table

from deepyard.cli.common import console, err_console, print_json
from deepyard.errors import InvalidValueError
from deepyard.limits import DEPTH_MAX, check_data, shown

jobs_app = typer.Typer(help="Queued work: dataset builds and training runs, and the scheduler.", no_args_is_help=True)
JsonOpt = typer.Option(False, "--json", help="Print one JSON document on stdout.")
IdArg = typer.Argument(..., help="Job id.")


def _jobs() -> Any:
    import deepyard.jobs

    return deepyard.jobs


def _table(jobs: list[Any]) -> Table:
    table = Table("id", "kind", "status", "progress", "priority", "slots", "target", "message")
    for j in jobs:
        slots = ", ".join(f"{k} {v}" for k, v in j.slots.items())
        table.add_row(j.id, j.kind, j.status, f"{j.progress:.0%}", str(j.priority), slots, j.target or "-",
                      j.error or j.message)  # fmt: skip
    return table


def _show(jobs: list[Any], as_json: bool, empty: str) -> None:
    if as_json:
        print_json([j.model_dump(mode="json") for j in jobs])
    else:
        console.print(_table(jobs) if jobs else empty)


@jobs_app.command("list")
def list_command(
    ctx: typer.Context,
    status: list[str] = typer.Option([], "--status", help="Only jobs with this status (repeatable)."),
    kind: str | None = typer.Option(None, "--kind", help="Only jobs of this kind."),
    json_: bool = JsonOpt,
) -> None:
    """Jobs, oldest first."""
    found = _jobs().list_jobs(ctx.obj, statuses=status or None, kind=kind)
    _show(found, json_, "no jobs")


@jobs_app.command("queue")
def queue_command(ctx: typer.Context, json_: bool = JsonOpt) -> None:
    """Queued jobs in the order they will start."""
    _show(_jobs().list_queue(ctx.obj), json_, "the queue is empty")


@jobs_app.command("show")
def show(ctx: typer.Context, job_id: str = IdArg, json_: bool = JsonOpt) -> None:
    """One job: parameters, status history, progress, result or error."""
    job = _jobs().get_job(ctx.obj, job_id)
    if json_:
        print_json(job.model_dump(mode="json"))
    else:
        console.print_json(data=job.model_dump(mode="json"))


@jobs_app.command("submit")
def submit(
    ctx: typer.Context,
    kind: str = typer.Argument(..., help="Job kind: dataset, train, ..."),
    params: str = typer.Argument(..., help='Parameters as JSON, e.g. \'{"run": "ID"}\' to resume a run.'),
    priority: int = typer.Option(0, help="Higher starts first."),
    slots: str | None = typer.Option(None, help="Resources as JSON, e.g. '{\"gpu\": 2}' (default: the kind's)."),
    group: str | None = typer.Option(None, help="Group the dataset or run it creates joins."),
    json_: bool = JsonOpt,
) -> None:
    """Queue a job (a scheduler must be running: `deepyard jobs work` or the server)."""
    job = _jobs().submit(ctx.obj, kind, _parse(params, "params"), priority=priority,
                         slots=_parse(slots, "--slots") if slots else None, group=group)  # fmt: skip
    _print_one(job, json_, "queued")


def _parse(text: str, what: str) -> Any:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidValueError(f"{what} is not valid JSON: {exc.msg} (got {shown(text)})") from None
    except RecursionError:
        raise InvalidValueError(f"{what} is nested more than {DEPTH_MAX} levels deep (the limit, DEPTH_MAX)") from None
    check_data(data, what)
    return data


def _print_one(job: Any, as_json: bool, verb: str) -> None:
    if as_json:
        print_json(job.model_dump(mode="json"))
    else:
        console.print(f"job {job.id} ({job.kind}): {job.status}" + ("" if job.status == verb else f" ({verb})"))


@jobs_app.command("abort")
def abort(ctx: typer.Context, job_id: str = IdArg, json_: bool = JsonOpt) -> None:
    """Abort: a queued job at once; a running one after its current step (with a checkpoint)."""
    _print_one(_jobs().abort_job(ctx.obj, job_id), json_, "stop requested")


@jobs_app.command("resume")
def resume(ctx: typer.Context, job_id: str = IdArg, json_: bool = JsonOpt) -> None:
    """Queue an interrupted, aborted or failed job again; training continues from its last checkpoint."""
    _print_one(_jobs().resume_job(ctx.obj, job_id), json_, "queued")


@jobs_app.command("delete")
def delete(ctx: typer.Context, job_id: str = IdArg) -> None:
    """Forget a job that is not running (its dataset or run is kept)."""
    _jobs().delete_job(ctx.obj, job_id)
    console.print(f"deleted job {job_id}")


@jobs_app.command("log")
def log(ctx: typer.Context, job_id: str = IdArg) -> None:
    """The job's worker output (every attempt)."""
    _jobs().get_job(ctx.obj, job_id)
    path = _jobs().log_path(ctx.obj, job_id)
    typer.echo(path.read_text(errors="replace") if path.is_file() else "", nl=False)


@jobs_app.command("work")
def work(
    ctx: typer.Context,
    cpu_slots: int = typer.Option(1, min=0, help="Jobs that may run on the CPU at once."),
    gpus: str | None = typer.Option(None, help="GPU indices to use, e.g. 0,1 (default: all; '' for none)."),
    abort_timeout: float = typer.Option(30.0, min=0, help="Seconds an aborted job has to stop before a SIGKILL."),
    poll: float = typer.Option(0.25, min=0.01, help="Seconds between scheduling rounds."),
) -> None:
    """Run the scheduler in the foreground until Ctrl-C; running jobs then stop with a checkpoint."""
    devices = None if gpus is None else [int(g) for g in gpus.split(",") if g.strip()]
    scheduler = _jobs().Scheduler(ctx.obj, cpu_slots=cpu_slots, gpus=devices, abort_timeout_s=abort_timeout,
                                  poll_s=poll)  # fmt: skip
    done = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    scheduler.start()
    err_console.print(f"scheduler running for {ctx.obj.home}: {cpu_slots} cpu slot(s), GPUs {scheduler.gpus}; "
                      "Ctrl-C stops it")  # fmt: skip
    try:
        while not done.wait(0.5):
            pass
    finally:
        err_console.print("stopping: running jobs write a checkpoint and become interrupted")
        scheduler.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
