"""/api/v1/runs: list, show, metrics since an offset, delete, clone; and the LR-schedule preview."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from deepyard import groups, jobs, users
from deepyard.datasets import find_dataset
from deepyard.errors import InvalidValueError
from deepyard.networks import dump_yaml, spec_from_data
from deepyard.train import get_run, list_runs, make_config, schedule_points
from deepyard.train.runs import annotate_run, delete_run, run_dir
from deepyard.web.deps import ConnDep, SettingsDep, UserDep, require_owner
from deepyard.web.errors import Conflict, Forbidden
from deepyard.web.runinfo import read_metrics, run_summary, snapshots

router = APIRouter(tags=["runs"])


@router.get("/runs")
def list_(settings: SettingsDep, conn: ConnDep) -> list[dict[str, Any]]:
    """Every run, newest first, with status, progress, a loss sparkline and the key metrics."""
    rows = [run_summary(settings, info) for info in reversed(list_runs(settings))]
    grouped = groups.groups_of(conn, "run")
    for row in rows:
        row["owner"] = users.owner_of(conn, "run", row["id"])
        row["group"] = grouped.get(row["id"])
    return rows


@router.get("/runs/{run_id}")
def show(run_id: str, settings: SettingsDep, conn: ConnDep) -> dict[str, Any]:
    """run.json, the summary (progress, ETA, metrics), snapshots and the dataset's name."""
    info = get_run(settings, run_id)
    dataset = find_dataset(settings, info["dataset"])
    summary = run_summary(settings, info)
    return {
        **info,
        "status": summary["status"],  # "interrupted" when run.json says running but nothing runs it
        "summary": summary,
        "snapshots": snapshots(run_dir(settings, run_id)),
        "dataset_name": dataset.name if dataset else None,
        "owner": users.owner_of(conn, "run", run_id),
        "group": groups.group_of(conn, "run", run_id),
    }


@router.get("/runs/{run_id}/metrics")
def metrics(run_id: str, settings: SettingsDep, offset: int = Query(0, ge=0)) -> dict[str, Any]:
    """Metric points appended since byte `offset`; pass back the returned `offset` to get only new ones."""
    get_run(settings, run_id)
    return read_metrics(run_dir(settings, run_id), offset)


class RunEdit(BaseModel):
    name: str | None = Field(None, description="A new name (one line).")
    notes: str | None = Field(None, description="Notes about the run (free text; empty clears them).")


@router.patch("/runs/{run_id}")
def edit(run_id: str, body: RunEdit, settings: SettingsDep, conn: ConnDep, user: UserDep) -> dict[str, Any]:
    """Rename a run or set its notes (its creator only); allowed while it trains."""
    get_run(settings, run_id)
    require_owner(conn, "run", run_id, user)
    annotate_run(settings, run_id, body.name, body.notes)
    return show(run_id, settings, conn)


@router.delete("/runs/{run_id}")
def delete(run_id: str, settings: SettingsDep, conn: ConnDep, user: UserDep) -> dict[str, Any]:
    """Delete a run and its files; refused while it is queued or running (abort it first)."""
    info = get_run(settings, run_id)
    require_owner(conn, "run", run_id, user)
    work = jobs.list_jobs(settings, target=run_id)
    for job in work:
        if job.owner is not None and (user is None or user.name != job.owner):
            raise Forbidden(f"run {run_id!r} belongs to {job.owner!r}; only its creator may delete it")
        if job.status in jobs.ACTIVE:
            raise Conflict(f"run {run_id!r} has a {job.status} job ({job.id}); abort it before deleting the run")
    status = jobs.run_status(settings, info)
    if status in jobs.ACTIVE:  # trained by a live process outside the job system (the CLI)
        raise Conflict(f"run {run_id!r} is {status}{_by(info)}; stop it before deleting it")
    delete_run(settings, run_id)
    jobs.forget_target(settings, "run", run_id)
    return {"deleted": run_id, "name": info["name"]}


def _by(info: dict[str, Any]) -> str:
    process = info.get("process") or {}
    return f" (process {process['pid']} on {process.get('host', '?')})" if "pid" in process else ""


@router.post("/runs/{run_id}/clone")
def clone(run_id: str, settings: SettingsDep) -> dict[str, Any]:
    """A new-run form prefilled from this run: dataset, network (name or spec text), every setting."""
    info = get_run(settings, run_id)
    net = info["network"]
    return {
        "name": f"{info['name']} (clone)",
        "dataset": info["dataset"],
        "network": net["ref"],
        "spec": dump_yaml(spec_from_data(net["spec"])) if net["spec"] is not None else None,
        "config": info["config"],
        "from_run": run_id,
    }


class SchedulePreview(BaseModel):
    schedule: dict[str, Any] = Field(default_factory=dict, description="ScheduleConfig fields.")
    lr: list[float] = Field([0.01], min_length=1, max_length=20, description="One curve per learning rate.")
    epochs: float = Field(30, gt=0)
    points: int = Field(200, ge=2, le=2000)


@router.post("/schedule/preview")
def schedule_preview(body: SchedulePreview) -> dict[str, Any]:
    """The learning rate across training for each base rate: `{"series": [{"lr", "points": [[epoch, lr]]}]}`."""
    series = []
    for lr in body.lr:
        if lr <= 0:
            raise InvalidValueError(f"learning rate {lr!r} must be above 0")
        updates: dict[str, Any] = {f"schedule.{k}": v for k, v in body.schedule.items()}
        config = make_config(None, **updates, **{"solver.lr": lr})
        series.append(
            {"lr": lr, "points": [list(p) for p in schedule_points(config.schedule, lr, body.epochs, body.points)]}
        )
    return {"series": series}
