"""SweepSpec: what a sweep searches (dataset, networks, space, fixed settings), how (sampler, pruner), for what
(objective) and for how long (trials, wall time). `check_sweep` validates one completely before anything is
queued: the space's keys and bounds, the dataset, every network against the data, the objective against the task,
and the fixed settings at the space's corners, each as the train job's own check would refuse them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deepyard.config import Settings
from deepyard.errors import InvalidValueError, choices
from deepyard.limits import check_name, shown

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("none", "median", "halving")
MAX_TRIALS = 1000
MAX_HOURS = 24 * 30


class SweepSpec(BaseModel):
    """A sweep as stored (normalised): the dataset's id, networks as the train job stores them."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str | None = Field(None, description="Shown in lists; trials are named '<name> #N'.")
    dataset: str = Field(description="Dataset id or name (stored as the id).")
    networks: list[Any] = Field(min_length=1, max_length=64, description="One network, or several to choose from.")
    space: dict[str, Any] = Field(description="{key: {type: float|int|choice, ...}} over TrainConfig keys.")
    config: dict[str, Any] = Field({}, description="The other training settings, fixed for every trial.")
    objective: str = Field("val_loss", description="A metric the task can monitor (val_loss, val_top1, ...).")
    direction: Literal["minimize", "maximize"] = Field("minimize", description="Set from the objective's metric.")
    sampler: Literal["tpe", "random", "grid"] = "tpe"
    prune: Literal["none", "median", "halving"] = "none"
    prune_startup: int = Field(2, ge=0, le=MAX_TRIALS, description="Median: finished trials before pruning starts.")
    startup_trials: int = Field(3, ge=1, le=MAX_TRIALS, description="TPE: random trials before it models.")
    trials: int | None = Field(None, ge=1, le=MAX_TRIALS, description="Budget: trials to run.")
    max_seconds: float | None = Field(
        None, gt=0, le=MAX_HOURS * 3600, description="Budget: no trial starts this long after the sweep started."
    )
    seed: int = Field(0, ge=0, le=2**31 - 1)

    def parsed_space(self) -> dict[str, Any]:
        from deepyard.sweeps.space import parse_space

        return parse_space(self.space)


def check_sweep(settings: Settings, data: dict[str, Any]) -> SweepSpec:
    """A normalised spec, or InvalidValueError naming the bad key or value and the valid ones."""
    from deepyard.datasets import get_dataset
    from deepyard.sweeps.space import NETWORK, ChoiceParam, grid_of, parse_space, space_to_data
    from deepyard.tasks import get_task
    from deepyard.train.presets import with_preset
    from deepyard.train.tasking import metric_info

    try:
        spec = SweepSpec.model_validate({**data, "networks": data.get("networks") or ["auto"]})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "sweep"
        raise InvalidValueError(f"sweep {where}: {first['msg']} (got {shown(first.get('input'))})") from None
    check_name(spec.name, "sweep name")  # trials are named '<name> #N': a run name's limits
    if spec.trials is None and spec.max_seconds is None:
        raise InvalidValueError("a sweep needs a budget: trials, max_seconds, or both")
    space = parse_space(spec.space)
    networks = list(spec.networks)
    if NETWORK in space:
        choice = space[NETWORK]
        if not isinstance(choice, ChoiceParam):
            raise InvalidValueError("search space key 'network' must be of type choice (network names)")
        networks = list(choice.values)
    elif len(networks) > 1:
        space[NETWORK] = ChoiceParam(values=[_network_key(n) for n in networks])
    manifest = get_dataset(settings, spec.dataset)
    if "val" not in manifest.splits:
        raise InvalidValueError(f"dataset {manifest.name!r} has no val split; a sweep's objective is measured on it")
    task = get_task(manifest.task)
    spec = spec.model_copy(update={"config": with_preset(None, spec.config, task.name)})  # the recipe, stored
    try:
        higher = metric_info(task, spec.objective).higher_is_better
    except InvalidValueError:
        raise InvalidValueError(
            f"objective {spec.objective!r} is not a metric of {task.name}; use {choices(task.monitors())}"
        ) from None
    if spec.sampler == "grid":
        grid_of(space)
    normal_networks = [_check_trial(settings, manifest.id, net, spec, space) for net in networks]
    return spec.model_copy(update={
        "dataset": manifest.id, "networks": normal_networks, "space": space_to_data(space),
        "direction": "maximize" if higher else "minimize",
    })  # fmt: skip


def _network_key(network: Any) -> Any:
    if not isinstance(network, str):
        raise InvalidValueError("a choice of networks names them (standard names or spec files), not mappings")
    return network


def _check_trial(settings: Settings, dataset: str, network: Any, spec: SweepSpec, space: dict[str, Any]) -> Any:
    """The train job's own check at the space's low and high corners; returns the network as it stores it."""
    from deepyard.jobs.runners import check_train
    from deepyard.sweeps.space import NETWORK, ChoiceParam

    stored = None
    for corner in (0, -1):
        drawn = {k: (p.values if isinstance(p, ChoiceParam) else [p.low, p.high])[corner] for k, p in space.items()}
        drawn.pop(NETWORK, None)
        params = trial_params(spec, dataset, network, drawn, "check")
        stored = check_train(settings, params).params["network"]
    return network if network == "auto" else stored


def trial_params(spec: SweepSpec, dataset: str, network: Any, drawn: dict[str, Any], name: str) -> dict[str, Any]:
    """The train job's parameters for one trial: the fixed settings, the drawn ones, the objective as monitor."""
    config = {**spec.config, **drawn, "monitor": spec.objective}
    params: dict[str, Any] = {"dataset": dataset, "config": config, "name": name}
    if network != "auto":
        params["network"] = network
    return params
