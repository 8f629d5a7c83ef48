"""/api/v1/sweeps: create (or only check) a sweep, list, show with its trials, the plots' data, the best run, stop
and resume. The trials run as train jobs on the server's scheduler (deepyard.sweeps drives them)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import Field

from deepyard import sweeps
from deepyard.config import Settings
from deepyard.errors import Forbidden, InvalidValueError
from deepyard.limits import NAME_MAX, parse_yaml
from deepyard.networks import parse_spec
from deepyard.networks.spec import SPEC_TEXT_MAX
from deepyard.sweeps.study import load_study
from deepyard.web.deps import IdPath, RequestModel, SettingsDep, UserDep

router = APIRouter(tags=["sweeps"])
Name = Annotated[str, Field(max_length=NAME_MAX)]
SPACE_TEXT_MAX = 100_000


class SweepRequest(RequestModel):
    dataset: Name
    networks: list[Any] | None = Field(None, max_length=64, description="Names or specs; none: the task's default.")
    space: dict[str, Any] | None = Field(None, description="{key: {type: float|int|choice, ...}}, or give space_text.")
    network_spec: str | None = Field(None, max_length=SPEC_TEXT_MAX, description="A network spec as YAML text.")
    space_text: str | None = Field(None, max_length=SPACE_TEXT_MAX, description="The space as YAML or JSON text.")
    config: dict[str, Any] = Field(default_factory=dict, description="Fixed TrainConfig settings (dotted or nested).")
    config_text: str | None = Field(None, max_length=SPACE_TEXT_MAX, description="The fixed settings as YAML text.")
    objective: Name = "val_loss"
    sampler: Literal["tpe", "random", "grid"] = "tpe"
    prune: Literal["none", "median", "halving"] = "none"
    prune_startup: int = Field(2, ge=0, le=1000)
    startup_trials: int = Field(3, ge=1, le=1000)
    trials: int | None = Field(None, ge=1, le=1000)
    max_seconds: float | None = Field(None, gt=0, le=30 * 24 * 3600)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    name: Name | None = None
    group: Name | None = None

    def data(self) -> dict[str, Any]:
        data = self.model_dump(exclude={"space_text", "group", "network_spec", "config_text"})
        if self.config_text is not None and self.config_text.strip():
            fixed = parse_yaml(self.config_text, "the fixed settings")
            if not isinstance(fixed, dict):
                raise InvalidValueError("the fixed settings must be key: value lines (a mapping)")
            data["config"] = {**self.config, **fixed}
        if self.network_spec is not None:
            if self.networks:
                raise InvalidValueError("give networks or network_spec, not both")
            data["networks"] = [parse_spec(self.network_spec).to_data()]
        if self.space_text is not None:
            if self.space is not None:
                raise InvalidValueError("give the search space as space or as space_text, not both")
            data["space"] = parse_yaml(self.space_text, "the search space")
        return data


@router.get("/sweeps")
def list_(settings: SettingsDep) -> list[dict[str, Any]]:
    """Sweeps, newest first, without their trials."""
    return list(reversed(sweeps.list_sweeps(settings)))


@router.post("/sweeps/check")
def check(body: SweepRequest, settings: SettingsDep) -> dict[str, Any]:
    """Validate a sweep without creating it: the normalised spec (`config`: the fixed settings over the task's
    recipe), or 422 naming the bad key and the valid ones."""
    spec = sweeps.check_sweep(settings, body.data())
    return {"ok": True, "space": spec.space, "direction": spec.direction, "config": spec.config}


@router.post("/sweeps", status_code=201)
def create(body: SweepRequest, settings: SettingsDep, user: UserDep) -> dict[str, Any]:
    """Create a sweep; the scheduler starts its trials within a second. Refused (422) before anything is queued."""
    sweep_id = sweeps.create_sweep(settings, body.data(), owner=user.name if user else None, group=body.group)
    return sweeps.get_sweep(settings, sweep_id)


@router.get("/sweeps/{sweep_id}")
def show(sweep_id: IdPath, settings: SettingsDep) -> dict[str, Any]:
    """The sweep and every trial: state, drawn settings, objective, intermediate values, run, milestones."""
    return sweeps.get_sweep(settings, sweep_id)


@router.get("/sweeps/{sweep_id}/plots")
def plots(sweep_id: IdPath, settings: SettingsDep) -> dict[str, Any]:
    """History, parallel coordinates, fANOVA importance and slices of the finished trials."""
    return sweeps.sweep_plots(settings, sweep_id)


@router.get("/sweeps/{sweep_id}/best")
def best(sweep_id: IdPath, settings: SettingsDep) -> dict[str, Any]:
    """The best finished trial's run (404 until one finished)."""
    run = sweeps.best_run(settings, sweep_id)
    return {"sweep": sweep_id, "run": run, "best": sweeps.get_sweep(settings, sweep_id, trials=False)["best"]}


def _may(settings: Settings, sweep_id: str, user: Any) -> None:
    owner = load_study(settings, sweep_id).user_attrs.get("owner")
    if owner is not None and (user is None or user.name != owner):
        raise Forbidden(f"sweep {sweep_id} belongs to {owner!r}; only its creator may stop or resume it")


@router.post("/sweeps/{sweep_id}/stop")
def stop(sweep_id: IdPath, settings: SettingsDep, user: UserDep) -> dict[str, Any]:
    """No new trials; running ones stop with a checkpoint."""
    _may(settings, sweep_id, user)
    sweeps.stop_sweep(settings, sweep_id)
    return sweeps.get_sweep(settings, sweep_id, trials=False)


@router.post("/sweeps/{sweep_id}/resume")
def resume(sweep_id: IdPath, settings: SettingsDep, user: UserDep) -> dict[str, Any]:
    """Continue a stopped sweep: stopped trials resume from their checkpoints, then new ones start."""
    _may(settings, sweep_id, user)
    sweeps.resume_sweep(settings, sweep_id)
    return sweeps.get_sweep(settings, sweep_id, trials=False)
