"""Driving sweeps: create, stop, resume, and `advance`, which the scheduler calls every round to keep each running
sweep's trials going.

Design: no job of its own holds a slot for a sweep. The scheduler (the server's, or `deepyard jobs work`) calls
`advance(settings, capacity)` about once a second; for each running sweep it reconciles the study with the jobs
table and tops up: as many trial jobs queued or running as the scheduler has slots (`capacity`), each asked from
the study just before it is submitted, so the sampler sees every result finished so far. What survives a restart:
the study (its trials, their intermediate values) and the jobs. A trial whose job was interrupted (the server
killed mid-trial) is resumed from its run's last checkpoint; a trial asked but never submitted (a crash in
between) is submitted with its drawn values; a trial whose job ended without telling the study is told from the
job's result. Then new trials are asked until the budget is spent: `trials` asked, or `max_seconds` of the
sweep's running time (stopped time does not count; the clock is the server's, so a server down counts).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from deepyard.config import Settings
from deepyard.errors import DeepyardError, InvalidValueError
from deepyard.jobs import ACTIVE, RESUMABLE, Job, abort_job, list_jobs, resume_job, submit
from deepyard.sweeps import study as studies
from deepyard.sweeps.space import NETWORK, grid_of, suggest
from deepyard.sweeps.spec import SweepSpec, check_sweep, trial_params


def create_sweep(settings: Settings, data: dict[str, Any], owner: str | None = None,
                 group: str | None = None) -> str:  # fmt: skip
    """Validate `data` (a SweepSpec's fields) completely, then record the sweep; its trials start with the next
    scheduler round. Returns the sweep id. A bad key or value raises before anything is recorded or queued."""
    from deepyard import groups

    spec = check_sweep(settings, data)
    group = groups.check_name(group)
    sweep_id = studies.create_study(settings, spec, owner)
    study = studies.load_study(settings, sweep_id)
    study.set_user_attr("group", group)
    _start_clock(study)
    return sweep_id


def stop_sweep(settings: Settings, sweep_id: str) -> None:
    """No new trials; running ones stop at their next step with a checkpoint (aborted), resumable with the sweep."""
    study = studies.load_study(settings, sweep_id)
    if study.user_attrs.get("status") != "running":
        raise InvalidValueError(f"sweep {sweep_id} is {study.user_attrs.get('status')}; only a running sweep stops")
    elapsed = _elapsed(study)
    studies.set_status(study, "stopped")
    study.set_user_attr("elapsed_before", elapsed)
    study.set_user_attr("running_since", None)
    for job in trial_jobs(settings, sweep_id).values():
        if job.status in ACTIVE:
            with contextlib.suppress(InvalidValueError):  # it ended meanwhile
                abort_job(settings, job.id)


def resume_sweep(settings: Settings, sweep_id: str) -> None:
    """Continue a stopped sweep: its stopped trials resume from their checkpoints, then new trials are asked."""
    study = studies.load_study(settings, sweep_id)
    if study.user_attrs.get("status") != "stopped":
        raise InvalidValueError(f"sweep {sweep_id} is {study.user_attrs.get('status')}; only a stopped sweep resumes")
    jobs = trial_jobs(settings, sweep_id)
    for trial in _running_trials(study):
        job = jobs.get(trial.number)
        if job is not None and job.resumable:
            resume_job(settings, job.id)
    studies.set_status(study, "running")
    _start_clock(study)


def trial_jobs(settings: Settings, sweep_id: str) -> dict[int, Job]:
    """The newest train job of each trial of a sweep, by trial number."""
    found: dict[int, Job] = {}
    for job in list_jobs(settings, kind="train"):
        ref = job.params.get("trial")
        if isinstance(ref, dict) and ref.get("sweep") == sweep_id:
            found[int(ref["number"])] = job
    return found


def advance(settings: Settings, capacity: int) -> list[str]:
    """One round for every running sweep; returns the ids of the jobs submitted or resumed."""
    if capacity < 1 or not studies.store_path(settings).is_file():
        return []  # no sweep was ever made here: Optuna is not even imported
    touched: list[str] = []
    for frozen in studies.storage(settings).get_all_studies():  # one query for all; only running ones load
        if frozen.user_attrs.get("status") != "running":
            continue
        study = studies.load_study(settings, frozen.study_name)
        try:
            touched += _advance_one(settings, study, capacity)
        except DeepyardError as exc:  # e.g. its dataset was deleted: the sweep stops with the reason
            study.set_user_attr("error", str(exc))
            studies.set_status(study, "stopped")
    return touched


def _advance_one(settings: Settings, study: Any, capacity: int) -> list[str]:
    spec = studies.spec_of(study)
    jobs = trial_jobs(settings, study.study_name)
    touched, active = [], 0
    for trial in _running_trials(study):
        job = jobs.get(trial.number)
        if job is None:  # asked, never submitted
            touched.append(_submit(settings, study, spec, trial.number, dict(trial.params)))
            active += 1
        elif job.status in ACTIVE:
            active += 1
        elif job.status == "interrupted" and job.resumable:
            touched.append(resume_job(settings, job.id).id)
            active += 1
        else:
            _tell_from_job(study, trial.number, job)
    left = _left(study, spec)
    while active < capacity and left > 0:
        number, drawn = _ask(settings, study, spec)
        touched.append(_submit(settings, study, spec, number, drawn))
        active, left = active + 1, left - 1
    if active == 0 and left == 0:
        studies.set_status(study, "done")
        study.set_user_attr("elapsed_before", _elapsed(study))
        study.set_user_attr("running_since", None)
    return touched


def _running_trials(study: Any) -> list[Any]:
    from optuna.trial import TrialState

    return list(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def _left(study: Any, spec: SweepSpec) -> int:
    """Trials the budget still allows: 0 once `trials` were asked or the running time is spent."""
    if spec.max_seconds is not None and _elapsed(study) >= spec.max_seconds:
        return 0
    asked = len(study.get_trials(deepcopy=False))
    budget = spec.trials if spec.trials is not None else 10**9
    if spec.sampler == "grid":
        points = 1
        for values in grid_of(spec.parsed_space()).values():
            points *= len(values)
        budget = min(budget, points)
    return max(0, budget - asked)


def _ask(settings: Settings, study: Any, spec: SweepSpec) -> tuple[int, dict[str, Any]]:
    asked = len(study.get_trials(deepcopy=False))
    sampled = studies.load_study(settings, study.study_name, sampler=studies.sampler_for(spec, asked))
    trial = sampled.ask()
    return trial.number, suggest(trial, spec.parsed_space())


def _submit(settings: Settings, study: Any, spec: SweepSpec, number: int, drawn: dict[str, Any]) -> str:
    drawn = dict(drawn)
    network = spec.networks[0]
    if NETWORK in drawn:
        names = spec.parsed_space()[NETWORK].values
        network = spec.networks[names.index(drawn.pop(NETWORK))]
    params = trial_params(spec, spec.dataset, network, drawn, f"{spec.name or study.study_name} #{number}")
    params["trial"] = {"sweep": study.study_name, "number": number}
    attrs = study.user_attrs
    return submit(settings, "train", params, owner=attrs.get("owner"), group=attrs.get("group")).id


def _tell_from_job(study: Any, number: int, job: Job) -> None:
    """A trial whose job ended without telling the study (aborted, failed, or killed after its run finished)."""
    from deepyard.sweeps.trial import tell

    result = job.result or {}
    if job.status == "done":
        tell(study, number, result.get("stop_reason"), result.get("best"))
    elif job.status in RESUMABLE:
        tell(study, number, None, None)  # failed or aborted alone: the sweep goes on without it


def _start_clock(study: Any) -> None:
    study.set_user_attr("running_since", time.time())


def _elapsed(study: Any) -> float:
    """Seconds the sweep has been running (stopped time excluded)."""
    attrs = study.user_attrs
    since = attrs.get("running_since")
    return float(attrs.get("elapsed_before") or 0.0) + (time.time() - since if since else 0.0)
