"""The sweep pages: the list, New sweep (a form whose space is YAML, checked live against the API) and a sweep's
page (trial table, optimisation history, parallel coordinates, fANOVA importance and slices; sweep.js draws them
from /api/v1/sweeps/ID and /plots with uPlot and keeps them live)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from deepyard import groups, sweeps
from deepyard.web import views
from deepyard.web.deps import ConnDep, SettingsDep
from deepyard.web.templating import render

router = APIRouter(include_in_schema=False)
EXAMPLE_SPACE = """solver.lr: {type: float, low: 0.001, high: 0.3, log: true}
batch_size: {type: choice, values: [32, 64, 128]}
"""


@router.get("/sweeps", response_class=HTMLResponse)
def sweep_list(request: Request, settings: SettingsDep) -> HTMLResponse:
    return render(request, "sweeps.html", sweeps=list(reversed(sweeps.list_sweeps(settings))))


@router.get("/sweeps/new", response_class=HTMLResponse)
def new_sweep(request: Request, settings: SettingsDep, conn: ConnDep) -> HTMLResponse:
    return render(request, "sweep_new.html", datasets=views.list_dataset_choices(settings),
                  networks=views.list_standard_networks(settings), example=EXAMPLE_SPACE, keys=sweeps.config_keys(),
                  group_names=groups.group_names(conn))  # fmt: skip


@router.get("/sweeps/{sweep_id}", response_class=HTMLResponse)
def sweep(sweep_id: str, request: Request, settings: SettingsDep) -> HTMLResponse:
    return render(request, "sweep.html", s=sweeps.get_sweep(settings, sweep_id, trials=False))
