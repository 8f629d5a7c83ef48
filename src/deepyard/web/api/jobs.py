"""/api/v1/jobs and the job-backed actions: create a dataset, train (one run per LR x batch-size combination),
abort and resume a run, the queue, a job's log. The work itself runs in the scheduler's child processes.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import Field

from deepyard import jobs
from deepyard.errors import Conflict, Forbidden, InvalidValueError, NotFoundError
from deepyard.jobs.kinds import check_params
from deepyard.limits import NAME_MAX, check_name, check_sweep
from deepyard.networks import parse_spec
from deepyard.networks.spec import SPEC_TEXT_MAX
from deepyard.train import get_run
from deepyard.train.config import MAX_BATCH
from deepyard.train.presets import with_preset
from deepyard.web.deps import ConnDep, IdPath, RequestModel, SettingsDep, UserDep, require_owner

router = APIRouter(tags=["jobs"])
LOG_TAIL = 64 * 1024  # bytes of log returned at most per call


def job_json(job: jobs.Job) -> dict[str, Any]:
    return job.model_dump(mode="json")


@router.get("/jobs")
def list_(
    settings: SettingsDep,
    status: list[str] | None = Query(None, max_length=20, description="Only jobs with these statuses."),
    kind: str | None = Query(None, max_length=NAME_MAX),
    target: str | None = Query(None, max_length=NAME_MAX),
) -> list[dict[str, Any]]:
    """Jobs, newest first."""
    return [job_json(j) for j in reversed(jobs.list_jobs(settings, status, kind, target))]


@router.get("/jobs/queue")
def queue(settings: SettingsDep) -> list[dict[str, Any]]:
    """Queued jobs in the order they will start."""
    return [job_json(j) for j in jobs.list_queue(settings)]


@router.get("/jobs/{job_id}")
def show(job_id: IdPath, settings: SettingsDep) -> dict[str, Any]:
    return job_json(jobs.get_job(settings, job_id))


def _may(conn: Any, job: jobs.Job, user: Any) -> None:
    """Only the job's creator may abort, resume or delete it (jobs submitted without a user are open)."""
    if job.owner is not None and (user is None or user.name != job.owner):
        raise Forbidden(f"job {job.id} belongs to {job.owner!r}; only its creator may change it")


@router.post("/jobs/{job_id}/abort")
def abort(job_id: IdPath, settings: SettingsDep, conn: ConnDep, user: UserDep) -> dict[str, Any]:
    """Queued: aborted now. Running: stops after its step with a checkpoint (killed after the timeout)."""
    _may(conn, jobs.get_job(settings, job_id), user)
    return job_json(jobs.abort_job(settings, job_id))


@router.post("/jobs/{job_id}/resume")
def resume(job_id: IdPath, settings: SettingsDep, conn: ConnDep, user: UserDep) -> dict[str, Any]:
    """Queue an interrupted, aborted or failed job again (training continues from its last checkpoint); one that
    failed on its input (`permanent`) is refused with 409: it would fail the same way."""
    _may(conn, jobs.get_job(settings, job_id), user)
    return job_json(jobs.resume_job(settings, job_id))


@router.delete("/jobs/{job_id}")
def delete(job_id: IdPath, settings: SettingsDep, conn: ConnDep, user: UserDep) -> dict[str, Any]:
    """Forget a job that is not running (its dataset or run stays)."""
    _may(conn, jobs.get_job(settings, job_id), user)
    jobs.delete_job(settings, job_id)
    return {"deleted": job_id}


def read_log(settings: Any, job_id: str, offset: int) -> dict[str, Any]:
    path = jobs.log_path(settings, job_id)
    if not path.is_file():
        return {"text": "", "offset": 0}
    size = path.stat().st_size
    start = max(offset, size - LOG_TAIL) if offset <= size else max(0, size - LOG_TAIL)
    with path.open("rb") as fp:
        fp.seek(start)
        data = fp.read(LOG_TAIL)
    return {"text": data.decode("utf-8", "replace"), "offset": start + len(data)}


@router.get("/jobs/{job_id}/log")
def log(job_id: IdPath, settings: SettingsDep, offset: int = Query(0, ge=0)) -> dict[str, Any]:
    """The worker's output from byte `offset` (at most the last 64 KiB)."""
    jobs.get_job(settings, job_id)
    return read_log(settings, job_id, offset)


Name = Annotated[str, Field(max_length=NAME_MAX)]


class DatasetRequest(RequestModel):
    spec: dict[str, Any] = Field(description="DatasetSpec fields: name, source, channels, width, ...")
    workers: int | None = Field(None, ge=1, le=256, description="Build processes (default: the CPU count).")
    group: Name | None = Field(None, description="The group the new dataset joins (home page).")


@router.post("/datasets", status_code=202)
def create_dataset(body: DatasetRequest, settings: SettingsDep, user: UserDep) -> dict[str, Any]:
    """Build a dataset as a job; its source folders must lie in the data roots (or the home: uploads)."""
    params = body.model_dump(exclude={"group"})
    job = jobs.submit(settings, "dataset", params, owner=user.name if user else None, group=body.group)
    return {"job": job_json(job)}


class MnistRequest(RequestModel):
    folder: str = Field(max_length=4096, description="A folder in the data roots holding MNIST's four IDX files.")
    spec: dict[str, Any] = Field(default_factory=dict, description="DatasetSpec fields but source (default: mnist, "
                                 "28x28 grey, raw); e.g. max_per_class, val_max_per_class.")  # fmt: skip
    workers: int | None = Field(None, ge=1, le=256, description="Build processes (default: the CPU count).")
    group: Name | None = Field(None, description="The group the new dataset joins (home page).")


@router.post("/datasets/mnist", status_code=202)
def import_mnist(body: MnistRequest, settings: SettingsDep, user: UserDep) -> dict[str, Any]:
    """Import MNIST from its IDX files (`deepyard dataset import mnist --from FOLDER`, train -> train, t10k -> val)
    as a dataset job; the folder must lie in the data roots and hold the four files, else 422 naming them."""
    from deepyard.datasets.mnist import find_mnist_files, mnist_spec

    if "source" in body.spec:
        raise InvalidValueError("an MNIST import takes its source from 'folder'; leave 'source' out of 'spec'")
    settings.check_readable(body.folder, "MNIST folder")
    try:
        files = find_mnist_files(Path(body.folder))
    except NotFoundError as exc:
        raise InvalidValueError(str(exc).replace(" (or pass --download)", "")) from None
    params = {"spec": mnist_spec(files, **body.spec).model_dump(mode="json"), "workers": body.workers}
    job = jobs.submit(settings, "dataset", params, owner=user.name if user else None, group=body.group)
    return {"job": job_json(job)}


class TrainRequest(RequestModel):
    dataset: Name
    network: Name | None = Field(
        None, description="A standard network name (or give `spec`); none: the dataset's task picks its default."
    )
    spec: str | None = Field(None, max_length=SPEC_TEXT_MAX, description="A network spec as YAML text.")
    source: str | None = Field(
        None, max_length=4096, description="Start from these weights (pretrained:NAME, store:NAME, run:ID[@S])."
    )
    config: dict[str, Any] = Field(default_factory=dict, description="TrainConfig fields (nested sections).")
    preset: Name | None = Field(None, description="Settings under `config`: default or digits (GET /presets).")
    name: Name | None = None
    lr: list[Annotated[float, Field(gt=0, le=100)]] | None = Field(
        None, max_length=20, description="Several rates: one run per combination."
    )
    batch_size: list[Annotated[int, Field(ge=1, le=MAX_BATCH)]] | None = Field(
        None, max_length=20, description="Several sizes: one run each."
    )
    group: Name | None = Field(None, description="The group the new runs join (home page).")


def _combinations(body: TrainRequest) -> list[tuple[dict[str, Any], str | None]]:
    """(config, name) per learning rate x batch size, named as DIGITS did: `name learning_rate:x batch_size:y`.
    At most SWEEP_MAX of them."""
    solver = body.config.get("solver", {})
    lrs: list[Any] = list(body.lr) if body.lr else [solver.get("lr") if isinstance(solver, dict) else None]
    sizes: list[Any] = list(body.batch_size) if body.batch_size else [body.config.get("batch_size")]
    check_sweep(len(lrs) * len(sizes))
    out = []
    for lr, size in itertools.product(lrs, sizes):
        config = {**body.config, "solver": dict(solver) if isinstance(solver, dict) else solver}
        if lr is not None and isinstance(config["solver"], dict):
            config["solver"]["lr"] = lr
        if size is not None:
            config["batch_size"] = size
        sweep = len(lrs) > 1 or len(sizes) > 1
        name = f"{body.name} learning_rate:{lr} batch_size:{size}" if body.name and sweep else body.name
        out.append((config, check_name(name, "run name")))
    return out


@router.post("/runs", status_code=202)
def create_runs(body: TrainRequest, settings: SettingsDep, user: UserDep) -> dict[str, Any]:
    """Train as jobs: one run per (learning rate, batch size) combination. Every job is checked first, so a bad
    value in any combination queues none. Without a network, spec or source, the dataset's task picks the network
    (as `deepyard train` does)."""
    if body.network is not None and body.spec is not None:
        raise InvalidValueError("give one of 'network' (a standard name) or 'spec' (YAML text), not both")
    network: Any = parse_spec(body.spec).to_data() if body.spec is not None else body.network
    body = body.model_copy(update={"config": with_preset(body.preset, body.config)})
    start = {"source": body.source} if body.source else {}
    params = [{"dataset": body.dataset, "network": network, "config": c, "name": n, **start}
              for c, n in _combinations(body)]  # fmt: skip
    for p in params:
        check_params(settings, "train", p)
    owner = user.name if user else None  # a bad group is refused by the first submit, before anything is queued
    return {"jobs": [job_json(jobs.submit(settings, "train", p, owner=owner, group=body.group)) for p in params]}


class FindRequest(RequestModel):
    what: Literal["lr", "batch_size"] = Field(description="lr: the LR range test; batch_size: the batch-size finder.")
    steps: int = Field(100, ge=10, le=1000, description="Steps of the LR sweep.")
    dataset: Name
    network: Name | None = Field(None, description="As for POST /runs: a standard name, or `spec`, or none.")
    spec: str | None = Field(None, max_length=SPEC_TEXT_MAX, description="A network spec as YAML text.")
    source: str | None = Field(None, max_length=4096, description="The run's starting weights (its network).")
    config: dict[str, Any] = Field(default_factory=dict, description="TrainConfig fields (nested sections).")
    preset: Name | None = Field(None, description="Settings under `config` (GET /presets).")


@router.post("/runs/find", status_code=202)
def find(body: FindRequest, settings: SettingsDep, user: UserDep) -> dict[str, Any]:
    """The LR range test or the batch-size finder for the run these settings describe, as a "find" job (it trains,
    so it runs in a worker, never in the request): its result has `suggestion` (a learning rate, with the `lrs`
    and `losses` swept) or `batch_size`. Checked as POST /runs is, before it is queued."""
    if body.network is not None and body.spec is not None:
        raise InvalidValueError("give one of 'network' (a standard name) or 'spec' (YAML text), not both")
    network: Any = parse_spec(body.spec).to_data() if body.spec is not None else body.network
    params = {
        "what": body.what,
        "steps": body.steps,
        "dataset": body.dataset,
        "network": network,
        "config": with_preset(body.preset, body.config),
        **({"source": body.source} if body.source else {}),
    }
    return {"job": job_json(jobs.submit(settings, "find", params, owner=user.name if user else None))}


def run_job(settings: Any, run_id: str) -> jobs.Job | None:
    """The newest training job working on (or that worked on) run `run_id` (evaluations and exports of the run
    are jobs on it too, but they are not what aborting or resuming the run means)."""
    found = jobs.list_jobs(settings, kind="train", target=run_id)
    return found[-1] if found else None


@router.post("/runs/{run_id}/abort")
def abort_run(run_id: IdPath, settings: SettingsDep, conn: ConnDep, user: UserDep) -> dict[str, Any]:
    get_run(settings, run_id)
    job = run_job(settings, run_id)
    if job is None or job.status not in jobs.ACTIVE:
        raise InvalidValueError(f"run {run_id!r} has no queued or running job to abort")
    return abort(job.id, settings, conn, user)


@router.post("/runs/{run_id}/resume", status_code=202)
def resume_run(run_id: IdPath, settings: SettingsDep, conn: ConnDep, user: UserDep) -> dict[str, Any]:
    """Continue a stopped run from its last checkpoint: its job again when there is one, else a new job (a run
    whose CLI training was killed hard shows as "interrupted" and resumes so). Refused while it trains."""
    info = get_run(settings, run_id)
    job = run_job(settings, run_id)
    if job is not None and job.status in jobs.ACTIVE:
        raise InvalidValueError(f"run {run_id!r} is already {job.status} (job {job.id})")
    if (status := jobs.run_status(settings, info)) in jobs.ACTIVE:
        raise Conflict(f"run {run_id!r} is {status}: a process outside the job system trains it (process "
                       f"{info.get('process', {}).get('pid', '?')}); stop it, or wait for it, first")  # fmt: skip
    if job is not None and job.status in jobs.RESUMABLE:
        return resume(job.id, settings, conn, user)
    require_owner(conn, "run", run_id, user)
    return job_json(jobs.submit(settings, "train", {"run": run_id}, owner=user.name if user else None))
