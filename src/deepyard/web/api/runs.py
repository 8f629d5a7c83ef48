"""/api/v1/runs: list, show, metrics since an offset, delete, clone; and the LR-schedule preview."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import Field

from deepyard import jobs
from deepyard.errors import Conflict, InvalidValueError
from deepyard.limits import NAME_MAX
from deepyard.stored import Damaged
from deepyard.train import get_run, make_config, schedule_points
from deepyard.train.config import MAX_EPOCHS
from deepyard.train.presets import PRESETS
from deepyard.train.runs import NOTES_MAX, annotate_run, delete_run, load_run, run_dir
from deepyard.web import views
from deepyard.web.deps import ConnDep, IdPath, RequestModel, SettingsDep, UserDep, require_owner
from deepyard.web.runinfo import read_metrics, summary_json

router = APIRouter(tags=["runs"])


@router.get("/presets")
def presets() -> list[dict[str, Any]]:
    """The named training presets (`preset` of POST /runs, `deepyard train --preset`): name, description and the
    settings each puts under a run's own, as dotted TrainConfig keys."""
    return [p.to_json() for p in PRESETS.values()]


@router.get("/runs", response_model=list[dict[str, Any]])
def list_(settings: SettingsDep, conn: ConnDep) -> Response:
    """Every run, newest first, with status, progress, a loss sparkline and the key metrics; a damaged run with
    status "damaged" and the reason."""
    rows = [
        json.dumps({**info.to_json(), **who}) if isinstance(info, Damaged) else summary_json(settings, info, **who)
        for info, who in views.list_runs_with_owners(settings, conn)
    ]  # each unchanged run's row is encoded once, not on every request
    return Response("[" + ",".join(rows) + "]", media_type="application/json")


@router.get("/runs/{run_id}")
def show(run_id: IdPath, settings: SettingsDep, conn: ConnDep) -> dict[str, Any]:
    """run.json, the summary (progress, ETA, metrics), snapshots and the dataset's name; for a damaged run, its
    status "damaged" and the reason."""
    return views.get_run_detail(settings, conn, run_id)


@router.get("/runs/{run_id}/metrics")
def metrics(run_id: IdPath, settings: SettingsDep, offset: int = Query(0, ge=0, le=2**62)) -> dict[str, Any]:
    """Metric points appended since byte `offset`; pass back the returned `offset` to get only new ones."""
    get_run(settings, run_id)
    return read_metrics(run_dir(settings, run_id), offset)


class RunEdit(RequestModel):
    name: str | None = Field(None, max_length=NAME_MAX, description="A new name (one line).")
    notes: str | None = Field(
        None, max_length=NOTES_MAX, description="Notes about the run (free text; empty clears them)."
    )


@router.patch("/runs/{run_id}")
def edit(run_id: IdPath, body: RunEdit, settings: SettingsDep, conn: ConnDep, user: UserDep) -> dict[str, Any]:
    """Rename a run or set its notes (its creator only); allowed while it trains."""
    get_run(settings, run_id)
    require_owner(conn, "run", run_id, user)
    annotate_run(settings, run_id, body.name, body.notes)
    return show(run_id, settings, conn)


@router.delete("/runs/{run_id}")
def delete(run_id: IdPath, settings: SettingsDep, conn: ConnDep, user: UserDep) -> dict[str, Any]:
    """Delete a run and its files, also a damaged one; refused while it is queued or running (abort it first)."""
    info = load_run(settings, run_id)
    require_owner(conn, "run", run_id, user)
    for job in jobs.list_jobs(settings, target=run_id):  # who submitted work on it does not matter: its owner does
        if job.status in jobs.ACTIVE:
            raise Conflict(f"run {run_id!r} has a {job.status} job ({job.id}); abort it before deleting the run")
    status = "damaged" if isinstance(info, Damaged) else jobs.run_status(settings, info)
    if status in jobs.ACTIVE:  # trained by a live process outside the job system (the CLI)
        raise Conflict(f"run {run_id!r} is {status}{_by(info)}; stop it before deleting it")
    delete_run(settings, run_id)
    jobs.forget_target(settings, "run", run_id)
    return {"deleted": run_id, "name": None if isinstance(info, Damaged) else info["name"]}


def _by(info: dict[str, Any] | Damaged) -> str:
    process = {} if isinstance(info, Damaged) else info.get("process") or {}
    return f" (process {process['pid']} on {process.get('host', '?')})" if "pid" in process else ""


@router.post("/runs/{run_id}/clone")
def clone(run_id: IdPath, settings: SettingsDep) -> dict[str, Any]:
    """A new-run form prefilled from this run: dataset, network (name or spec text), every setting."""
    return views.build_run_prefill(settings, run_id)


class SchedulePreview(RequestModel):
    schedule: dict[str, Any] = Field(default_factory=dict, description="ScheduleConfig fields.")
    lr: list[Annotated[float, Field(gt=0, le=100)]] = Field(
        [0.01], min_length=1, max_length=20, description="One curve per learning rate."
    )
    epochs: float = Field(30, gt=0, le=MAX_EPOCHS)
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
