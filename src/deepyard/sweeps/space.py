"""A sweep's search space: TrainConfig keys → how to draw them, parsed once into typed parameters.

The space file (YAML or JSON) maps keys to `{type: float, low: 0.001, high: 0.3, log: true}`, `{type: int, low:
16, high: 256}` or `{type: choice, values: [...]}`; a float or int may add `step` (a grid needs it for floats).
Keys are TrainConfig's: top-level fields (`batch_size`, `epochs`) and dotted section fields (`solver.lr`,
`augment.rotation`), plus `network` (a choice of networks). A key TrainConfig does not have is refused naming it
and the valid ones; a bound TrainConfig would refuse (a learning rate of 1000) is refused before anything is
queued, as a `--set` would be. Not covered: conditional spaces (a key drawn only for some solver).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from deepyard.errors import InvalidValueError, choices
from deepyard.limits import shown

SECTIONS = ("solver", "schedule", "augment", "finetune")
NETWORK = "network"  # the one key that is not a TrainConfig field: which network a trial trains
FIXED = ("monitor", "device")  # set by the sweep (its objective) or the scheduler, never searched
MAX_KEYS = 32
MAX_VALUES = 64  # choices of one key, and points of a grid


class _Param(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class FloatParam(_Param):
    type: Literal["float"] = "float"
    low: float
    high: float
    log: bool = Field(False, description="Draw on a log scale (learning rates).")
    step: float | None = Field(None, gt=0, description="Draw multiples of step from low (a grid needs one).")

    @model_validator(mode="after")
    def _bounds(self) -> FloatParam:
        _check_bounds(self.low, self.high)
        if self.log and self.low <= 0:
            raise ValueError(f"log needs low > 0, not {self.low:g}")
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be combined")
        return self

    def grid(self) -> list[Any]:
        if self.step is None:
            raise ValueError("a grid needs 'step' for a float (or use type: choice)")
        count = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        return [round(self.low + i * self.step, 12) for i in range(count)]


class IntParam(_Param):
    type: Literal["int"] = "int"
    low: int
    high: int
    log: bool = False
    step: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _bounds(self) -> IntParam:
        _check_bounds(self.low, self.high)
        if self.log and (self.low <= 0 or self.step != 1):
            raise ValueError("log needs low > 0 and step 1")
        return self

    def grid(self) -> list[Any]:
        return list(range(self.low, self.high + 1, self.step))


class ChoiceParam(_Param):
    type: Literal["choice"] = "choice"
    values: list[str | int | float | bool | None] = Field(min_length=1, max_length=MAX_VALUES)

    def grid(self) -> list[Any]:
        return list(self.values)


Param = FloatParam | IntParam | ChoiceParam
PARAM_TYPES: dict[str, type[Param]] = {"float": FloatParam, "int": IntParam, "choice": ChoiceParam}


def _check_bounds(low: float, high: float) -> None:
    if not low < high:
        raise ValueError(f"low {low:g} must be below high {high:g}")


def config_keys() -> list[str]:
    """Every key a space may search: TrainConfig's fields, the sections' as `section.field`, and `network`."""
    from deepyard.train.config import TrainConfig

    keys = [NETWORK]
    for name, info in TrainConfig.model_fields.items():
        if name in FIXED:
            continue
        if name in SECTIONS:
            section = info.annotation
            keys.extend(f"{name}.{field}" for field in section.model_fields)  # type: ignore[union-attr]
        else:
            keys.append(name)
    return keys


def parse_space(data: Any) -> dict[str, Param]:
    """The typed space of a mapping {key: {type, ...}}; a bad key or parameter raises naming it and the valid ones."""
    if not isinstance(data, dict) or not data:
        raise InvalidValueError(f"a search space must be a non-empty mapping of settings to ranges, not {shown(data)}")
    if len(data) > MAX_KEYS:
        raise InvalidValueError(f"a search space has at most {MAX_KEYS} keys, not {len(data)}")
    valid = config_keys()
    space: dict[str, Param] = {}
    for key, raw in data.items():
        if key not in valid:
            hint = f"{key!r} is set by the sweep" if key in FIXED else f"valid: {choices(valid)}"
            raise InvalidValueError(f"search space key {shown(key)} is not a training setting; {hint}")
        space[key] = _param(key, raw)
    _check_values(space)
    return space


def _param(key: str, raw: Any) -> Param:
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind not in PARAM_TYPES:
        raise InvalidValueError(
            f"search space key {key!r}: give a mapping with type {choices(PARAM_TYPES)}, not {shown(raw)}"
        )
    try:
        return PARAM_TYPES[kind].model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        detail = first["msg"].removeprefix("Value error, ")
        raise InvalidValueError(f"search space key {key!r}{f' {where}' if where else ''}: {detail}") from None


def _check_values(space: dict[str, Param]) -> None:
    """Each bound (or choice) must be a value TrainConfig accepts, so no trial fails on its setting."""
    from deepyard.train.config import make_config

    for key, param in space.items():
        if key == NETWORK:
            continue
        values: list[Any] = param.values if isinstance(param, ChoiceParam) else [param.low, param.high]
        for value in values:
            try:
                make_config(**{key: value})
            except InvalidValueError as exc:
                raise InvalidValueError(f"search space key {key!r}: {shown(value)} is refused: {exc}") from None


def space_to_data(space: dict[str, Param]) -> dict[str, Any]:
    return {key: param.model_dump(exclude_none=True) for key, param in space.items()}


def grid_of(space: dict[str, Param]) -> dict[str, list[Any]]:
    """The grid sampler's values per key; a float without a step, or a grid over MAX_VALUES points per key, raises."""
    grid = {}
    for key, param in space.items():
        try:
            values = param.grid()
        except ValueError as exc:
            raise InvalidValueError(f"search space key {key!r}: {exc}") from None
        if len(values) > MAX_VALUES:
            raise InvalidValueError(f"search space key {key!r}: {len(values)} grid points, at most {MAX_VALUES}")
        grid[key] = values
    return grid


def suggest(trial: Any, space: dict[str, Param]) -> dict[str, Any]:
    """Draw one value per key through an Optuna trial: {key: value}."""
    drawn: dict[str, Any] = {}
    for key, p in space.items():
        if isinstance(p, FloatParam):
            drawn[key] = trial.suggest_float(key, p.low, p.high, log=p.log, step=p.step)
        elif isinstance(p, IntParam):
            drawn[key] = trial.suggest_int(key, p.low, p.high, log=p.log, step=p.step)
        else:
            drawn[key] = trial.suggest_categorical(key, p.values)
    return drawn
