"""What a sweep shows: its trials (drawn settings, state, objective, run, time to its best), the best trial's run,
and the data of its plots (optimisation history, parallel coordinates, parameter importance by Optuna's fANOVA,
slices). Plain JSON-able dicts: the CLI prints them, the API returns them, the page draws them with uPlot."""

from __future__ import annotations

import math
import warnings
from typing import Any

from deepyard.config import Settings
from deepyard.errors import NotFoundError
from deepyard.sweeps import study as studies
from deepyard.sweeps.driver import _elapsed, trial_jobs

STATES = ("complete", "pruned", "running", "fail", "waiting")


def list_sweeps(settings: Settings) -> list[dict[str, Any]]:
    """Every sweep, oldest first, without its trials."""
    found = []
    for sweep_id in studies.sweep_ids(settings):
        summary = get_sweep(settings, sweep_id, trials=False)
        found.append(summary)
    return found


def get_sweep(settings: Settings, sweep_id: str, trials: bool = True) -> dict[str, Any]:
    study = studies.load_study(settings, sweep_id)
    spec = studies.spec_of(study)
    attrs = study.user_attrs
    rows = _trials(settings, study, spec.direction == "maximize") if trials else []
    frozen = study.get_trials(deepcopy=False)
    counts = {state: 0 for state in STATES}
    for trial in frozen:
        counts[trial.state.name.lower()] = counts.get(trial.state.name.lower(), 0) + 1
    best = _best(study)
    jobs = trial_jobs(settings, sweep_id) if best is not None else {}
    summary: dict[str, Any] = {
        "id": sweep_id, "name": spec.name, "status": attrs.get("status"), "error": attrs.get("error"),
        "created": attrs.get("created"), "owner": attrs.get("owner"), "group": attrs.get("group"),
        "elapsed_s": round(_elapsed(study), 1), "objective": spec.objective, "direction": spec.direction,
        "sampler": spec.sampler, "prune": spec.prune, "dataset": spec.dataset, "planned": spec.trials,
        "max_seconds": spec.max_seconds, "space": spec.space, "config": spec.config, "counts": counts,
        "total": len(frozen),
        "best": None if best is None else {"number": best.number, "value": best.value, "params": best.params,
                                           "run": _run_of(jobs.get(best.number))},
    }  # fmt: skip
    if trials:
        summary["trials"] = rows
    return summary


def best_run(settings: Settings, sweep_id: str) -> str:
    """The run of the sweep's best finished trial (usable everywhere a run id is)."""
    study = studies.load_study(settings, sweep_id)
    best = _best(study)
    run = _run_of(trial_jobs(settings, sweep_id).get(best.number)) if best is not None else None
    if run is None:
        raise NotFoundError(f"sweep {sweep_id} has no finished trial yet; `deepyard sweep show {sweep_id}`")
    return run


def sweep_runs(settings: Settings, sweep_id: str) -> list[str]:
    """The runs of a sweep's trials, in trial order (the compare page takes them)."""
    studies.load_study(settings, sweep_id)  # an unknown sweep raises NotFoundError
    jobs = trial_jobs(settings, sweep_id)
    return [str(jobs[n].target) for n in sorted(jobs) if jobs[n].target]


def _best(study: Any) -> Any:
    try:
        return study.best_trial
    except ValueError:  # no complete trial yet
        return None


def _run_of(job: Any) -> str | None:
    return None if job is None else job.target


def _trials(settings: Settings, study: Any, higher: bool) -> list[dict[str, Any]]:
    from deepyard.train.milestones import run_milestones
    from deepyard.train.runs import load_run, run_dir

    jobs = trial_jobs(settings, study.study_name)
    rows = []
    for trial in study.get_trials(deepcopy=False):
        job = jobs.get(trial.number)
        run = _run_of(job)
        info = load_run(settings, run) if run else None
        stones = run_milestones(run_dir(settings, run), info, higher) if run and isinstance(info, dict) else []
        rows.append({
            "number": trial.number, "state": trial.state.name.lower(), "params": trial.params,
            "value": trial.value, "run": run, "job": None if job is None else job.id,
            "job_status": None if job is None else job.status, "progress": None if job is None else job.progress,
            "values": {str(k): v for k, v in sorted(trial.intermediate_values.items())},
            "duration_s": None if trial.duration is None else round(trial.duration.total_seconds(), 1),
            "milestones": [s.to_json() for s in stones],
        })  # fmt: skip
    return rows


def sweep_plots(settings: Settings, sweep_id: str) -> dict[str, Any]:
    """The plots' data. history: [number, value, best so far] of finished trials; parallel: the keys and one row
    per finished trial (a choice as its index in the values, with `labels`); importance: {key: share} by fANOVA
    (two finished trials at least; `importance_note` says why there is none); slices: {key: [[value, objective]]}."""
    from optuna.trial import TrialState

    study = studies.load_study(settings, sweep_id)
    spec = studies.spec_of(study)
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if _finite(t.value)]
    keys = sorted(spec.space)
    labels = {k: [str(v) for v in spec.space[k]["values"]] for k in keys if spec.space[k]["type"] == "choice"}
    history, best = [], None
    for trial in sorted(done, key=lambda t: t.number):
        better = best is None or (trial.value > best if spec.direction == "maximize" else trial.value < best)
        best = trial.value if better else best
        history.append([trial.number, trial.value, best])
    rows = [[_axis(t.params.get(k), labels.get(k)) for k in keys] + [t.value] for t in done]
    slices = {k: [[_axis(t.params.get(k), labels.get(k)), t.value] for t in done if k in t.params] for k in keys}
    importance, note = _importance(study, done)
    return {"objective": spec.objective, "direction": spec.direction, "history": history,
            "parallel": {"keys": [*keys, spec.objective], "rows": rows, "labels": labels,
                         "log": [k for k in keys if spec.space[k].get("log")]},
            "importance": importance, "importance_note": note, "slices": slices}  # fmt: skip


def _axis(value: Any, labels: list[str] | None) -> Any:
    if labels is not None:
        return labels.index(str(value)) if str(value) in labels else None
    return value


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _importance(study: Any, done: list[Any]) -> tuple[dict[str, float], str]:
    """Optuna's fANOVA importance (a random forest over the finished trials) and, when there is none, why: fewer
    than two finished trials, or all of them scored the same."""
    import optuna

    if len(done) < 2:
        return {}, "needs two finished trials"
    if len({t.value for t in done}) < 2:
        return {}, "the finished trials all scored the same: nothing to attribute yet"
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError) as exc:
        return {}, f"fANOVA could not rank the settings: {exc}"
    return {k: round(float(v), 4) for k, v in found.items() if math.isfinite(v)}, ""
