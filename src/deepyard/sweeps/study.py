"""Where sweeps live: Optuna studies in `<home>/sweeps.db` (Optuna's RDB storage, SQLite), one study per sweep.

Why a file of its own next to deepyard.db rather than inside it: Optuna creates and migrates its own schema with
SQLAlchemy and Alembic, which would sit beside deepyard.db's ordered migrations, its backup-before-migrate and its
never-replace checks; and its writes (every intermediate value of every trial) would hold deepyard.db's write
lock. The study is the sweep's only record: its spec, status, owner and times are the study's user attributes, so
there is nothing to keep in step between two stores. The jobs table links trial jobs to it
(`params.trial = {"sweep": ID, "number": N}`).

The server process and every trial's worker open the same file; SQLite's busy timeout serialises their writes.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

from deepyard.config import Settings
from deepyard.db import SWEEPS_FILE, now
from deepyard.errors import NotFoundError
from deepyard.files import new_id
from deepyard.sweeps.spec import SweepSpec

STORE = SWEEPS_FILE
BUSY_TIMEOUT_S = 30
STATUSES = ("running", "stopped", "done")
_storages: dict[Path, Any] = {}
_lock = threading.Lock()


def store_path(settings: Settings) -> Path:
    return settings.home / STORE


def storage(settings: Settings) -> Any:
    """The RDB storage of this home, opened once per process (opening checks Optuna's schema version)."""
    import optuna

    path = store_path(settings)
    with _lock:
        if path not in _storages:
            optuna.logging.set_verbosity(optuna.logging.WARNING)  # trial lines go to our own logs
            settings.home.mkdir(parents=True, exist_ok=True)
            _storages[path] = optuna.storages.RDBStorage(
                f"sqlite:///{path}", engine_kwargs={"connect_args": {"timeout": BUSY_TIMEOUT_S}}
            )
        return _storages[path]


def create_study(settings: Settings, spec: SweepSpec, owner: str | None = None) -> str:
    """A new study for `spec`; returns the sweep id (the study's name)."""
    import optuna

    sweep_id = new_id()
    study = optuna.create_study(storage=storage(settings), study_name=sweep_id, direction=spec.direction)
    study.set_user_attr("spec", spec.model_dump(mode="json"))
    study.set_user_attr("owner", owner)
    study.set_user_attr("created", now())
    set_status(study, "running")
    return sweep_id


def load_study(settings: Settings, sweep_id: str, sampler: Any = None, pruner: Any = None) -> Any:
    import optuna

    if not store_path(settings).is_file():
        raise NotFoundError(f"no sweep {sweep_id!r}; `deepyard sweep list` shows the sweeps")
    try:
        return optuna.load_study(study_name=sweep_id, storage=storage(settings), sampler=sampler, pruner=pruner)
    except KeyError:
        raise NotFoundError(f"no sweep {sweep_id!r}; `deepyard sweep list` shows the sweeps") from None


def sweep_ids(settings: Settings) -> list[str]:
    """Every sweep of this home, oldest first (ids sort by creation time)."""
    if not store_path(settings).is_file():
        return []
    return sorted(s.study_name for s in storage(settings).get_all_studies())


def spec_of(study: Any) -> SweepSpec:
    return SweepSpec.model_validate(study.user_attrs["spec"])


def set_status(study: Any, status: str) -> None:
    study.set_user_attr("status", status)
    study.set_user_attr("status_time", now())


def sampler_for(spec: SweepSpec, asked: int) -> Any:
    """The spec's sampler. Seeded by the sweep's seed and the number of trials asked so far, so a sampler built
    afresh for every ask (the study outlives processes) never repeats its random draws."""
    import optuna

    from deepyard.sweeps.space import grid_of

    seed = spec.seed * 100_003 + asked
    if spec.sampler == "grid":  # one seed: it shuffles the grid, and trial N takes the shuffled grid's point N
        return optuna.samplers.GridSampler(grid_of(spec.parsed_space()), seed=spec.seed)
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    with warnings.catch_warnings():  # constant_liar is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=spec.startup_trials, constant_liar=True)


def pruner_for(spec: SweepSpec) -> Any:
    """Median: stop a trial whose objective at a validation is worse than the median of the earlier trials' there
    (after `prune_startup` finished trials). Halving: successive halving over validations (rungs 1, 2, 4, ...)."""
    import optuna

    if spec.prune == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=spec.prune_startup, n_warmup_steps=0)
    if spec.prune == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    return optuna.pruners.NopPruner()
