"""The job-kind registry: a kind name → where its runner (and its parameter check) live, as "module:function".

Functions are imported lazily, in the worker process or at submit, so any package can add a kind without an import
cycle. Adding a kind is one entry here plus a runner `(ctx: JobContext, params: dict) -> dict` (the job's result),
and optionally a check `(settings, params) -> Checked` that validates and normalises the parameters before
anything is queued. Runners honour `ctx.stop` (set on abort, or when the server goes away) and raise `JobStopped`
when they stopped early because of it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deepyard.config import Settings
from deepyard.errors import InvalidValueError, NotFoundError, choices

if TYPE_CHECKING:
    from deepyard.jobs.context import JobContext

Runner = Callable[["JobContext", dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Checked:
    """What a kind's check returns: normalised parameters, default slots, and the target when already known."""

    params: dict[str, Any]
    slots: dict[str, int] = field(default_factory=lambda: {"cpu": 1})
    target: str | None = None


Check = Callable[[Settings, dict[str, Any]], Checked]


@dataclass(frozen=True)
class JobKind:
    runner: str  # "module:function" of a Runner
    check: str | None = None  # "module:function" of a Check; None: params are taken as given, one cpu slot
    distributed: bool = False  # given several GPUs, run one worker process per GPU under torchrun
    exclusive: bool = True  # no other exclusive job may work on the same target meanwhile (False: it only reads it)
    creates: str | None = None  # what its target is when the job makes it ("dataset", "run"): owned and grouped


KINDS: dict[str, JobKind] = {
    "dataset": JobKind("deepyard.jobs.runners:run_dataset", "deepyard.jobs.runners:check_dataset", creates="dataset"),
    "train": JobKind(
        "deepyard.jobs.runners:run_train", "deepyard.jobs.runners:check_train", distributed=True, creates="run"
    ),
    "evaluate": JobKind("deepyard.infer.jobs:run_evaluate", "deepyard.infer.jobs:check_evaluate", exclusive=False),
    "export": JobKind("deepyard.infer.jobs:run_export", "deepyard.infer.jobs:check_export", exclusive=False),
    "find": JobKind("deepyard.jobs.finders:run_find", "deepyard.jobs.finders:check_find", exclusive=False),
}


# Work the scheduler drives every round (at most every DRIVE_S seconds): "module:function" of
# `(settings, capacity) -> list[job ids]`, which may submit or resume jobs of its own. `capacity` is the slots of the
# kind a training job takes (the GPUs, else the CPU slots). Imported lazily, in the scheduler's process.
DRIVERS: list[str] = ["deepyard.sweeps.driver:advance"]
DRIVE_S = 1.0


def register_kind(name: str, kind: JobKind) -> None:
    """Add a kind (e.g. from another package); a name already taken raises."""
    if name in KINDS:
        raise InvalidValueError(f"job kind {name!r} is already registered")
    KINDS[name] = kind


def get_kind(name: str) -> JobKind:
    if name not in KINDS:
        raise NotFoundError(f"unknown job kind {name!r}; valid: {choices(KINDS)}")
    return KINDS[name]


def load_function(ref: str) -> Callable[..., Any]:
    module, _, name = ref.partition(":")
    fn: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return fn


def check_params(settings: Settings, kind: str, params: dict[str, Any]) -> Checked:
    entry = get_kind(kind)
    if entry.check is None:
        return Checked(dict(params))
    checked: Checked = load_function(entry.check)(settings, params)
    return checked


def get_runner(kind: str) -> Runner:
    runner: Runner = load_function(get_kind(kind).runner)
    return runner
