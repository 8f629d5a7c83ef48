"""HTML pages: server-rendered Jinja2 templates over the same functions as the JSON API (web/views.py), plus
small scripts.

Each page renders what it can on the server (tables, forms generated from the configs) and its script then calls
/api/v1 for the live parts (charts, galleries, validation, the event stream). Nothing to build: the chart library
(uPlot, MIT) is vendored under static/vendor with its licence.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from deepyard import groups, users
from deepyard.datasets import find_dataset
from deepyard.datasets.spec import DatasetSpec
from deepyard.errors import DeepyardError
from deepyard.jobs import get_job
from deepyard.sweeps import sweep_runs
from deepyard.tasks import get_task
from deepyard.train import AugmentConfig, ScheduleConfig, SolverConfig, TrainConfig, get_run, list_runs
from deepyard.train.config import FinetuneConfig
from deepyard.train.presets import PRESETS
from deepyard.train.tasking import BOX_AUGMENT
from deepyard.transfer.store import list_models
from deepyard.web import views
from deepyard.web.deps import ConnDep, SettingsDep
from deepyard.web.forms import field_specs
from deepyard.web.security import SESSION_COOKIE, Guard, retry_after
from deepyard.web.templating import render

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).parent / "static"


@router.get("/", response_class=HTMLResponse)
def home(request: Request, settings: SettingsDep, conn: ConnDep) -> HTMLResponse:
    runs = views.list_run_rows(settings, conn)
    datasets = [*views.list_dataset_builds(settings), *views.list_dataset_rows(settings, conn)]  # builds: newest
    return render(
        request,
        "home.html",
        datasets=datasets,
        runs=runs,
        dataset_sections=_sections(datasets),
        run_sections=_sections(runs),
        group_names=groups.group_names(conn),
    )


def _sections(rows: list[dict[str, Any]]) -> list[tuple[str | None, list[dict[str, Any]]]]:
    """Rows by group: the groups by name, then the ungrouped; each keeps the listing's order (newest first)."""
    by: dict[str | None, list[dict[str, Any]]] = {}
    for row in rows:
        by.setdefault(row.get("group"), []).append(row)
    return sorted(by.items(), key=lambda item: (item[0] is None, (item[0] or "").lower()))


@router.get("/datasets/new", response_class=HTMLResponse)
def new_dataset(request: Request, settings: SettingsDep, conn: ConnDep) -> HTMLResponse:
    fields = field_specs(DatasetSpec, skip=("name", "task"))  # the task is chosen above the source
    return render(
        request,
        "dataset_new.html",
        fields=fields,
        tasks=views.list_task_rows(),
        roots=[str(settings.home), *map(str, settings.data_roots)],
        group_names=groups.group_names(conn),
    )


@router.get("/datasets/{ref}", response_class=HTMLResponse)
def dataset(ref: str, request: Request, settings: SettingsDep, conn: ConnDep) -> HTMLResponse:
    data = views.get_dataset_detail(settings, conn, ref)
    if data.get("status") == "damaged":
        return render(request, "damaged.html", item=data, noun="dataset")
    report = views.get_dataset_report(settings, ref, limit=200)
    return render(request, "dataset.html", d=data, m=data["manifest"], report=report, task=get_task(data["task"]))


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job(job_id: str, request: Request, settings: SettingsDep) -> HTMLResponse:
    """A job: status, progress, its error and log (what a failed job's row on the home page links to); Abort,
    Resume (only where it can help: `Job.resumable`) and Forget."""
    return render(request, "job.html", job=get_job(settings, job_id).model_dump(mode="json"), spec=None)


@router.get("/jobs/{job_id}/dataset", response_class=HTMLResponse, response_model=None)
def job_dataset(job_id: str, request: Request, settings: SettingsDep) -> Response:
    """The dataset a build job makes: its own page once built; until then the build's progress, which turns into
    the dataset's page when it is done, or stays with the reason when it fails (New dataset goes here)."""
    found = get_job(settings, job_id)
    if found.kind != "dataset":
        return RedirectResponse(f"/jobs/{job_id}", status_code=303)
    if found.status == "done" and found.target and find_dataset(settings, found.target):
        return RedirectResponse(f"/datasets/{found.target}", status_code=303)
    return render(request, "job.html", job=found.model_dump(mode="json"), spec=found.params["spec"])


@router.get("/runs/new", response_class=HTMLResponse)
def new_run(
    request: Request, settings: SettingsDep, conn: ConnDep, clone: str | None = None, dataset: str | None = None
) -> HTMLResponse:
    prefill = views.build_run_prefill(settings, clone) if clone else None
    return render(
        request,
        "run_new.html",
        datasets=views.list_dataset_choices(settings),
        networks=views.list_standard_networks(settings),
        previous=[
            {"id": r["id"], "name": r["name"], "network": r["network"]["ref"]} for r in reversed(list_runs(settings))
        ],
        general=field_specs(TrainConfig, skip=("device",)),
        solver=field_specs(SolverConfig, prefix="solver."),
        schedule=field_specs(ScheduleConfig, prefix="schedule."),
        augment=field_specs(AugmentConfig, prefix="augment."),
        box_fields=[f"augment.{k}" for k in BOX_AUGMENT],  # shown for a task with boxes only
        finetune=field_specs(FinetuneConfig, prefix="finetune."),
        stored=[{"name": m.name, "network": m.network["ref"], "classes": m.num_classes} for m in list_models(settings)],
        prefill=prefill,
        defaults=TrainConfig().model_dump(),
        presets=[p.to_json() for p in PRESETS.values()],
        chosen_dataset=dataset,
        group_names=groups.group_names(conn),
    )


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run(run_id: str, request: Request, settings: SettingsDep, conn: ConnDep) -> HTMLResponse:
    info = views.get_run_detail(settings, conn, run_id)
    if info["status"] == "damaged":
        return render(request, "damaged.html", item=info, noun="run")
    return render(request, "run.html", r=info, s=info["summary"], task=get_task(info.get("task")))


@router.get("/jobs/{job_id}/run", response_class=HTMLResponse, response_model=None)
def job_run(job_id: str, request: Request, settings: SettingsDep) -> Response:
    """The run a training job trains: its page once the job has created it; until then the page of a queued run,
    from the job's parameters, which turns into the run's own page when the run starts (New run goes here)."""
    job = get_job(settings, job_id)
    if job.kind != "train":
        return RedirectResponse(f"/jobs/{job_id}", status_code=303)
    if job.target is not None:
        return RedirectResponse(f"/runs/{job.target}", status_code=303)
    pending = views.get_pending_run(settings, job)
    return render(request, "run.html", r=pending, s=pending["summary"], task=get_task(pending["task"]), pending=True)


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    """The icon for pages that do not link it (the API docs); every page links /static/favicon.svg."""
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")


@router.get("/compare", response_class=HTMLResponse)
def compare(request: Request, settings: SettingsDep, conn: ConnDep, runs: str = "", sweep: str = "") -> HTMLResponse:
    chosen = [r for r in runs.split(",") if r]
    if sweep:  # a sweep's runs (deepyard.sweeps): its trials' runs, in trial order
        chosen += [r for r in sweep_runs(settings, sweep) if r not in chosen]
    infos = [get_run(settings, r) for r in chosen]
    return render(
        request,
        "compare.html",
        all_runs=[r for r in views.list_run_rows(settings, conn) if r["status"] != "damaged"],
        chosen=chosen,
        infos=infos,
        rows=_settings_rows(infos),
        summaries=[views.get_run_detail(settings, conn, r)["summary"] for r in chosen],
        reached=[_time_to_best(settings, info) for info in infos],
    )


def _time_to_best(settings: Any, info: dict[str, Any]) -> dict[str, Any] | None:
    """When the run first reached its best monitored value (deepyard.train.milestones): wall time, images seen."""
    from deepyard.train.milestones import run_milestones
    from deepyard.train.runs import run_dir
    from deepyard.train.tasking import metric_info

    task = get_task(info.get("task"))
    try:
        higher = metric_info(task, str(info["config"].get("monitor", "val_loss"))).higher_is_better
    except DeepyardError:
        return None
    found = run_milestones(run_dir(settings, info["id"]), info, higher)
    return found[-1].to_json() if found else None


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _digest(spec: Any) -> str:
    """A short fingerprint of a stored spec, so that a customised network shows as different from the standard."""
    if spec is None:
        return "-"
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]


def _settings_rows(infos: list[dict[str, Any]]) -> list[tuple[str, list[Any], bool]]:
    """(setting, value per run, differs) for the dataset, the network and every config field."""
    flats = [{"notes": i.get("notes") or "", "dataset": i["dataset"], "network": i["network"]["ref"],
              "network spec": _digest(i["network"]["spec"]), **_flat(i["config"])} for i in infos]  # fmt: skip
    keys = list(flats[0]) if flats else []
    return [(k, [f.get(k) for f in flats], len({repr(f.get(k)) for f in flats}) > 1) for k in keys]


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", next=_local(next), failed=False)


@router.post("/login", response_model=None)
def login(
    request: Request,
    conn: ConnDep,
    name: str = Form(...),
    password: str = Form(...),
    csrf_token: str = Form(""),
    next: str = Form("/"),
) -> Response:
    guard: Guard = request.app.state.guard
    keys = (f"user:{name.strip().lower()[:200]}", f"address:{request.client.host if request.client else '-'}")
    wait = guard.throttle.wait_s(*keys)
    if wait > 0:  # refused without checking the password: guessing is slowed, per name and per address
        refused = render(request, "login.html", status=429, next=_local(next), failed=True, wait_s=retry_after(wait))
        refused.headers["Retry-After"] = retry_after(wait)
        return refused
    expected = guard.signer.unsign(request.cookies.get("dy_csrf"))
    user = users.authenticate(conn, name, password) if expected and csrf_token == expected else None
    if user is None:
        guard.throttle.failed(*keys)
        return render(request, "login.html", status=401, next=_local(next), failed=True)
    guard.throttle.succeeded(keys[0])
    response = RedirectResponse(_local(next), status_code=303)
    guard.set_cookie(response, SESSION_COOKIE, users.create_session(conn, user), max_age=users.SESSION_DAYS * 86400)
    return response


@router.post("/logout")
def logout(request: Request, conn: ConnDep) -> RedirectResponse:
    guard: Guard = request.app.state.guard
    session = guard.signer.unsign(request.cookies.get(SESSION_COOKIE))
    if session:
        users.end_session(conn, session)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _local(target: str) -> str:
    """Only same-site paths as redirect targets (no open redirects)."""
    parts = urlsplit(target)
    return target if target.startswith("/") and not target.startswith("//") and not parts.netloc else "/"
