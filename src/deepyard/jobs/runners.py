"""The built-in job kinds: "dataset" (build a dataset from a spec) and "train" (a new run, or {"run": id} to resume).

Each kind has a check (in the submitting process: validate and normalise the parameters, pick default slots, so a
bad value is refused before anything is queued) and a runner (in the worker process).
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepyard.config import Settings
from deepyard.errors import InvalidValueError, choices
from deepyard.jobs.context import JobContext, JobStopped
from deepyard.jobs.kinds import Checked

if TYPE_CHECKING:
    from deepyard.train.loop import StepInfo
    from deepyard.train.trainer import Run

TRAIN_KEYS = ("dataset", "network", "config", "name", "source", "trial")  # trial: a sweep's (deepyard.sweeps)
SECTIONS = ("solver", "schedule", "augment")
URL_SCHEMES = ("http://", "https://")


def _only(params: dict[str, Any], allowed: tuple[str, ...], kind: str) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise InvalidValueError(f"unknown {kind} job parameter {unknown[0]!r}; valid: {choices(allowed)}")


# --- dataset ---------------------------------------------------------------------------------------------------


def check_dataset(settings: Settings, params: dict[str, Any]) -> Checked:
    """params: {"spec": DatasetSpec fields, "workers": int | None}. Source paths must lie in the data roots."""
    from deepyard.datasets import make_spec
    from deepyard.tasks import get_task

    _only(params, ("spec", "workers"), "dataset")
    if not isinstance(params.get("spec"), dict):
        raise InvalidValueError("dataset job needs 'spec': the dataset options as a mapping (name, source, ...)")
    spec = make_spec(**params["spec"])
    for key, value in spec.source:
        if isinstance(value, Path):
            settings.check_readable(value, f"source.{key}")
    get_task(spec.task).check_source(spec)  # a missing folder or a wrong layout is refused now, not after queueing
    workers = params.get("workers")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise InvalidValueError(f"workers {workers!r} must be a whole number of processes, at least 1")
    return Checked({"spec": spec.model_dump(mode="json"), "workers": workers})


def run_dataset(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    from deepyard.datasets import create_dataset, make_spec

    started = time.monotonic()

    def progress(stage: str, done: int, total: int) -> None:
        if ctx.poll():
            raise JobStopped  # the build removes its unfinished folder
        if stage == "encoding":
            fraction = done / max(total, 1)
            elapsed = time.monotonic() - started
            eta = elapsed / fraction * (1 - fraction) if fraction > 0.02 else None
            ctx.report(0.9 * fraction, f"encoding images: {done:,} of {total:,}", eta)
        else:
            ctx.report(0.9 + 0.1 * done / max(total, 1), stage)

    ctx.report(0.0, "listing the source")
    spec = make_spec(**params["spec"])
    manifest = create_dataset(ctx.settings, spec, progress=progress, workers=params["workers"], confine=True)
    ctx.set_target(manifest.id)
    _release_uploads(ctx, manifest.spec.source)
    counts = {split: info.count for split, info in manifest.splits.items()}
    return {"dataset": manifest.id, "name": manifest.name, "counts": counts, "skipped": manifest.skipped}


def _release_uploads(ctx: JobContext, source: Any) -> None:
    """The dataset holds its own copy now: remove the uploads it was built from, unless another queued or running
    build reads them too."""
    from deepyard.jobs.queue import list_jobs
    from deepyard.uploads import release_upload

    pending = list_jobs(ctx.settings, ("queued", "running"), "dataset")
    others = [j.params.get("spec", {}).get("source", {}) for j in pending if j.id != ctx.job_id]
    needed = [v for other in others if isinstance(other, dict) for v in other.values()]
    release_upload(ctx.settings, source.model_dump().values(), needed)


# --- train -----------------------------------------------------------------------------------------------------


def check_train(settings: Settings, params: dict[str, Any]) -> Checked:
    """params: {"dataset", "network", "config", "name"} for a new run, or {"run": id} to resume one."""
    if "run" in params:
        return _check_resume(settings, params)
    _only(params, TRAIN_KEYS, "train")
    from deepyard.datasets import get_dataset
    from deepyard.limits import check_name

    source = params.get("source")
    if source is not None and (not isinstance(source, str) or not source):
        raise InvalidValueError(f"source {source!r} must be a reference such as pretrained:NAME, store:NAME or run:ID")
    if source and source.startswith(URL_SCHEMES):
        settings.url_policy().check(source)  # the training job downloads it, never the request
        if not params.get("network"):
            raise InvalidValueError(f"{source!r} holds weights only; give the network they belong to")
    elif source and not _is_reference(source):
        settings.check_readable(source, "weights file")
    if not params.get("dataset"):
        raise InvalidValueError("train job needs 'dataset'")
    from deepyard.tasks import get_task
    from deepyard.train.tasking import check_task_augment, default_network, loss_name, metric_info

    manifest = get_dataset(settings, str(params["dataset"]))
    task = get_task(manifest.task)
    config = _config(params.get("config") or {}, manifest.task)  # the task's recipe under it, stored whole
    loss_name(task, config), metric_info(task, config.monitor)  # a loss or monitor of another task is refused now
    check_task_augment(task, config)  # and an augmentation it cannot take
    shape = (manifest.shape[2], manifest.shape[0], manifest.shape[1])  # (C, H, W)
    if config.crop_size:
        shape = (shape[0], config.crop_size, config.crop_size)
    ref = params.get("network") or (_source_network(settings, str(source)) if source else default_network(manifest)[0])
    network = _network(settings, ref, shape, task.outputs(manifest.classes))
    if source:  # channels and sizes are known now: a source that cannot start this network is refused at once
        _check_fit(settings, str(source), network, shape, task.outputs(manifest.classes), manifest.name)
    name = check_name(params.get("name"), "run name")
    normal = {"dataset": manifest.id, "network": network, "config": config.model_dump(mode="json"), "name": name,
              "source": source}  # fmt: skip
    if params.get("trial") is not None:
        from deepyard.sweeps.trial import check_trial_ref

        normal["trial"] = check_trial_ref(settings, params["trial"])
    return Checked(normal, _train_slots(config.device))


def _check_resume(settings: Settings, params: dict[str, Any]) -> Checked:
    from deepyard.train import get_run

    _only(params, ("run",), "train")
    info = get_run(settings, str(params["run"]))
    return Checked({"run": info["id"]}, _train_slots(info["config"].get("device", "auto")), target=info["id"])


def _config(data: Any, task: str | None) -> Any:
    """TrainConfig from a job's config over `task`'s recipe."""
    from deepyard.train import make_config
    from deepyard.train.presets import with_preset

    if not isinstance(data, dict):
        raise InvalidValueError(f"config must be a mapping of training settings, not {data!r}")
    config = make_config(**_flat(with_preset(None, data, task)))
    if config.device.startswith("cuda:"):
        raise InvalidValueError(
            f"device {config.device!r}: the scheduler assigns GPUs to jobs; use 'auto', 'cuda' or 'cpu'"
        )
    return config


def _network(settings: Settings, ref: Any, shape: tuple[int, int, int], classes: int) -> Any:
    """A spec (mapping, standard spec name or spec file) is checked against the data and stored whole."""
    from deepyard.networks import check_spec, get_network, is_torchvision, load_spec, parse_ref, spec_from_data
    from deepyard.networks.registry import check_timm_name

    if isinstance(ref, dict):
        spec = spec_from_data(ref)
    elif not isinstance(ref, str):
        raise InvalidValueError(f"network {ref!r} must be a name, a spec file or a spec mapping")
    else:
        parsed = parse_ref(ref)
        from deepyard.text.networks import is_text_network, text_network_parameters

        if parsed.kind == "standard" and is_text_network(parsed.name):  # text networks: built by name
            text_network_parameters(parsed.name, shape, classes)  # its sizes together fit, checked at submit
            return ref
        if is_torchvision(parsed):
            if parsed.kind == "standard":
                get_network(parsed.name)
            return ref
        if parsed.kind == "timm":
            check_timm_name(parsed.name)
            return ref
        if parsed.kind == "python":
            if not settings.allow_python_networks:
                raise InvalidValueError(
                    f"network {ref!r} is Python code; set DEEPYARD_ALLOW_PYTHON_NETWORKS=1 to allow it"
                )
            return ref
        if Path(ref).suffix:
            settings.check_readable(ref, "network file")
        spec = load_spec(parsed)
    check_spec(spec, shape, classes)
    return spec.to_data()


def _is_reference(source: str) -> bool:
    """A named source or a URL; anything else is read as a file path (and must lie in the roots)."""
    from deepyard.transfer.sources import KINDS

    return source.startswith((*KINDS, *URL_SCHEMES))


def _source_network(settings: Settings, source: str) -> Any:
    """The network a fine-tuning source records, read without loading or downloading its weights."""
    from deepyard.transfer.sources import network_of

    record = network_of(settings, source)
    if record is None:
        raise InvalidValueError(f"{source!r} holds weights only; give the network they belong to")
    return record["spec"] if record.get("spec") is not None else str(record["ref"])


def _check_fit(settings: Settings, source: str, network: Any, shape: tuple[int, int, int], outputs: int,
               dataset: str) -> None:  # fmt: skip
    from deepyard.networks import spec_from_data
    from deepyard.transfer.fit import check_fit

    check_fit(settings, source, spec_from_data(network) if isinstance(network, dict) else network, shape, outputs,
              dataset)  # fmt: skip


def _train_slots(device: str) -> dict[str, int]:
    from deepyard.jobs.hardware import gpu_count

    return {"gpu": 1} if device != "cpu" and gpu_count() > 0 else {"cpu": 1}


class JobProgress:
    """Training callback: progress, ETA and a message for the job; the target as soon as the run exists."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.first_step = 0
        self.started = 0.0
        self.val = ""

    def __getattr__(self, name: str) -> Any:  # the hooks it does not use
        return lambda *args: None

    def on_train_start(self, run: Run) -> None:
        if self.ctx.target != run.run_id:
            self.ctx.set_target(run.run_id)
        self.first_step, self.started = run.state.step, time.monotonic()
        self.ctx.report(run.state.step / run.total_steps, "training")

    def on_step_end(self, run: Run, info: StepInfo) -> None:
        self.ctx.poll()  # the trainer's stop request reads ctx.stop after this step
        step, total = run.state.step, run.total_steps
        rate = (time.monotonic() - self.started) / max(step - self.first_step, 1)  # seconds per step
        epochs = run.config.epochs
        self.ctx.report(step / total, f"epoch {step / run.steps_per_epoch:.2f} of {epochs:g}{self.val}",
                        (total - step) * rate)  # fmt: skip

    def on_validation_end(self, run: Run, metrics: dict[str, float]) -> None:
        self.val = ", " + run.task.format_metrics(metrics, [m.name for m in run.task.metrics[:2]])

    def on_advice(self, run: Run, text: str) -> None:
        if run.is_main:
            print(f"note: {text}", file=sys.stderr, flush=True)  # the worker's stderr is the job's log


class SyncStop:
    """Under DDP every rank must stop at the same step: rank 0's stop request is broadcast after each step."""

    def __init__(self, local: threading.Event, synced: threading.Event) -> None:
        self.local, self.synced = local, synced

    def __getattr__(self, name: str) -> Any:
        return lambda *args: None

    def on_step_end(self, run: Run, info: StepInfo) -> None:
        import torch
        import torch.distributed as dist

        flag = torch.tensor([float(run.is_main and self.local.is_set())], device=run.device)
        dist.broadcast(flag, 0)
        if flag.item():
            self.synced.set()


def run_train(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    from deepyard.networks import spec_from_data
    from deepyard.train import make_config
    from deepyard.train.runs import set_status
    from deepyard.transfer import resume_from, train_from

    callbacks: list[Any] = [JobProgress(ctx)]
    reporter = None
    if params.get("trial"):  # a sweep's trial: report to its study, prune (deepyard.sweeps)
        from deepyard.sweeps.trial import TrialReporter

        reporter = TrialReporter(ctx.settings, params["trial"])
        callbacks.append(reporter)
    stop = ctx.stop
    if ctx.world > 1:
        stop = threading.Event()
        callbacks.append(SyncStop(ctx.stop, stop))
    run_id = params.get("run") or ctx.target
    if run_id:
        result = resume_from(ctx.settings, run_id, callbacks=callbacks, stop=stop)
    else:
        network = params["network"]
        ref = spec_from_data(network) if isinstance(network, dict) else network
        config = make_config(**_flat(params["config"]))
        result = train_from(ctx.settings, params["dataset"], ref, config, callbacks=callbacks, stop=stop,
                       name=params.get("name"), source=params.get("source"), on_created=ctx.set_target)  # fmt: skip
    if result.stop_reason == "aborted":
        if ctx.stop_cause == "interrupt":
            set_status(ctx.settings, result.run_id, "interrupted", ctx.rank)
        raise JobStopped
    if reporter is not None and ctx.rank == 0:
        reporter.finish(result)
    return {"run": result.run_id, "steps": result.steps, "epochs": result.epochs, "stop_reason": result.stop_reason,
            "last_val": result.last_val, "best": result.best, "best_step": result.best_step,
            "seconds": round(result.seconds, 3)}  # fmt: skip


def _flat(config: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if key in SECTIONS and isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat
