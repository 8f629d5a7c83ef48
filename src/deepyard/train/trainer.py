"""The trainer wires a run together: dataset, model, optimizer, schedule, data path, callbacks; then loops epochs.

`train(...)` starts a run in `<home>/runs/<id>/`; `resume_run(...)` continues one from its last checkpoint with
model, optimizer, scaler, step, RNG states and data position restored, so it ends bit-identical (on the CPU) to a
run that never stopped. Under `torchrun` each process trains a shard with DistributedDataParallel.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from deepyard.config import Settings
from deepyard.datasets import Manifest, get_dataset, open_split
from deepyard.datasets.catalog import dataset_dir
from deepyard.errors import InvalidValueError
from deepyard.limits import check_name
from deepyard.networks import NetworkSpec
from deepyard.tasks import Task, get_input_kind, get_task
from deepyard.tasks.base import Criterion
from deepyard.train import runs
from deepyard.train.advice import Advice
from deepyard.train.augment import check_augment
from deepyard.train.batchnorm import BatchNormStatistics
from deepyard.train.callbacks import (
    Callback,
    CallbackList,
    Checkpointer,
    EarlyStopping,
    MetricsWriter,
    StopRequest,
    Validator,
    every,
)
from deepyard.train.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from deepyard.train.config import TrainConfig
from deepyard.train.data import Preprocessor, Sharding, SplitBatches, fits_in_memory
from deepyard.train.device import Placement, resolve_placement
from deepyard.train.loop import train_one_epoch
from deepyard.train.optim import build_optimizer, override_dropout
from deepyard.train.start import Start, StartReport, check_start, trainable_params
from deepyard.train.tasking import check_task_augment, default_network, metric_info, task_criterion


@dataclass
class RunState:
    """What changes during training; checkpointed."""

    step: int = 0
    best: float | None = None
    best_step: int = 0
    bad_validations: int = 0
    stop_reason: str | None = None
    last_val: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0


@dataclass
class Run:
    """Everything the loop and the callbacks touch."""

    run_id: str
    folder: Path
    config: TrainConfig
    placement: Placement
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    task: Task
    manifest: Manifest
    criterion: Criterion
    train_data: SplitBatches
    val_data: SplitBatches | None
    preprocess: Preprocessor
    generator: torch.Generator
    steps_per_epoch: int
    total_steps: int
    state: RunState
    callbacks: CallbackList = field(default_factory=lambda: CallbackList([]))
    metrics: MetricsWriter = field(init=False)
    last_checkpoint_step: int = -1
    start_report: StartReport | None = None  # fine-tuning: what loading the source weights did

    @property
    def device(self) -> torch.device:
        return self.placement.device

    @property
    def is_main(self) -> bool:
        return self.placement.rank == 0

    @property
    def world(self) -> int:
        return self.placement.world

    @property
    def minimize(self) -> bool:
        return not metric_info(self.task, self.config.monitor).higher_is_better

    @property
    def log_every(self) -> int:
        return self.config.log_interval or max(1, self.steps_per_epoch // 20)

    @property
    def val_every(self) -> int:
        return every(self.config.val_interval, self.steps_per_epoch)

    @property
    def snapshot_every(self) -> int:
        return every(self.config.snapshot_interval, self.steps_per_epoch)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        dtype = self.placement.autocast_dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def bare_model(self) -> nn.Module:
        return self.model.module if isinstance(self.model, nn.parallel.DistributedDataParallel) else self.model

    def save_checkpoint(self) -> Path | None:
        self.last_checkpoint_step = self.state.step
        if not self.is_main:
            return None
        self.state.wall = self.metrics.wall()
        path = self.folder / "checkpoints" / f"step-{self.state.step:07d}.pt"
        save_checkpoint(path, {
            "model": _plain_state(self.bare_model()),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "state": asdict(self.state),
            "rng": capture_rng(self.generator),
        })  # fmt: skip
        return path

    def save_best(self) -> None:
        if self.is_main:
            save_checkpoint(self.folder / "checkpoints" / "best.pt", {
                "model": _plain_state(self.bare_model()), "state": asdict(self.state),
            })  # fmt: skip


def _plain_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict without torch.compile's prefix, on the CPU."""
    return {k.removeprefix("_orig_mod."): v.detach().cpu() for k, v in model.state_dict().items()}


@dataclass(frozen=True)
class RunResult:
    run_id: str
    folder: Path
    steps: int
    epochs: float
    stop_reason: str | None
    last_val: dict[str, float]
    best: float | None
    best_step: int
    seconds: float


def train(
    settings: Settings,
    dataset: str,
    network: str | NetworkSpec | None,
    config: TrainConfig,
    callbacks: list[Callback] | None = None,
    stop: threading.Event | None = None,
    name: str | None = None,
    start: Start | None = None,
    on_created: Callable[[str], None] | None = None,
) -> RunResult:
    """Train `network` (a name, spec file or spec) on `dataset` (id or name) in a new run folder.

    `on_created(run_id)` is called as soon as the run folder exists (rank 0), before the data loads: the job
    system records the run's owner and group then.

    A fine-tune passes its `start` (deepyard.transfer.start_new builds it): the run starts from its weights,
    and `network` defaults to the source's network.
    """
    name = check_name(name, "run name")  # at most NAME_MAX characters, on one line
    check_start("", config, None, start)
    manifest = get_dataset(settings, dataset)
    placement = resolve_placement(config)
    if network is None and start is not None:
        network = start.network
    if network is None:  # the task's default for this dataset
        network = default_network(manifest)[0]
    if start is not None:
        config = start.configure(config, manifest.shape[2])
    if config.input_mean is not None:  # refused before a run folder exists
        _per_channel(config.input_mean, manifest.shape[2], "input_mean")
    record = start.record if start is not None else None
    run_id = (
        runs.create_run(settings, manifest, network, config, placement, name, record) if placement.rank == 0 else ""
    )
    if on_created is not None and placement.rank == 0:
        on_created(run_id)
    run_id = _broadcast_id(run_id, placement)
    return _execute(settings, run_id, callbacks or [], stop, resume=False, start=start)


def resume_run(
    settings: Settings, run_id: str, callbacks: list[Callback] | None = None, stop: threading.Event | None = None,
    start: Start | None = None,
) -> RunResult:  # fmt: skip
    """Continue run `run_id` from its last checkpoint (or from the start if it has none); a fine-tune passes its
    `start` (deepyard.transfer.start_resumed), whose weights load only when the run has no checkpoint yet."""
    info = runs.get_run(settings, run_id)
    check_start(info["id"], TrainConfig.model_validate(info["config"]), info.get("source"), start)
    return _execute(settings, run_id, callbacks or [], stop, resume=True, start=start)


def _execute(
    settings: Settings, run_id: str, extra: list[Callback], stop: threading.Event | None, resume: bool,
    start: Start | None = None,
) -> RunResult:  # fmt: skip
    info = runs.get_run(settings, run_id)
    folder = runs.run_dir(settings, run_id)
    config = TrainConfig.model_validate(info["config"])
    placement = resolve_placement(config, info.get("placement"))
    try:  # a run that cannot start (its data, network or start weights) says failed, with the reason
        manifest = get_dataset(settings, info["dataset"])
        run = assemble(settings, run_id, folder, config, placement, manifest, info, start)
        checkpoint = runs.latest_checkpoint(folder) if resume else None
        if checkpoint is not None:
            _restore(run, load_checkpoint(checkpoint, run.device))
        elif info.get("source") and start is not None:  # never over a checkpoint: a resumed fine-tune keeps its own
            _load_source(settings, run, info, manifest, start)
    except Exception as exc:
        runs.set_status(settings, run_id, "failed", placement.rank, error=str(exc))
        raise
    event = stop or threading.Event()
    run.metrics = MetricsWriter(folder, run.state.step, run.state.wall)
    builtins: list[Callback] = [run.metrics, BatchNormStatistics(), Validator(), Checkpointer(), Advice(settings),
                                *run.task.train_callbacks()]  # fmt: skip
    if config.early_stopping:
        builtins.append(EarlyStopping(config.early_stopping))
    if start is not None:
        builtins.extend(start.callbacks(run))
    run.callbacks = CallbackList([*builtins, *extra, StopRequest(event)])
    started = time.perf_counter()
    runs.set_status(settings, run_id, "running", placement.rank, process=runs.this_process())
    try:
        _fit(run)
    except BaseException as exc:
        runs.set_status(settings, run_id, "aborted" if isinstance(exc, KeyboardInterrupt) else "failed", placement.rank,
                        error=str(exc))  # fmt: skip
        raise
    finally:
        run.callbacks.on_train_end(run)
    runs.set_status(settings, run_id, "aborted" if run.state.stop_reason == "aborted" else "done", placement.rank,
                    result=_summary(run))  # fmt: skip
    state = run.state
    epochs = state.step / run.steps_per_epoch
    seconds = time.perf_counter() - started
    return RunResult(run_id, folder, state.step, epochs, state.stop_reason, state.last_val, state.best,
                     state.best_step, seconds)  # fmt: skip


def _fit(run: Run) -> None:
    run.callbacks.on_train_start(run)
    epoch = run.state.step // run.steps_per_epoch
    while run.state.step < run.total_steps and not run.state.stop_reason:
        run.callbacks.on_epoch_start(run, epoch)
        train_one_epoch(run, epoch)
        run.callbacks.on_epoch_end(run, epoch)
        epoch += 1


def _summary(run: Run) -> dict[str, Any]:
    return {"steps": run.state.step, "stop_reason": run.state.stop_reason, "last_val": run.state.last_val,
            "best": run.state.best, "best_step": run.state.best_step}  # fmt: skip


def _load_source(settings: Settings, run: Run, info: dict[str, Any], manifest: Manifest, start: Start) -> None:
    model = run.bare_model()
    run.start_report = start.load(getattr(model, "_orig_mod", model), _input_shape(manifest, run.config),
                                  list(manifest.classes), run.config)  # fmt: skip
    runs.update_run(settings, run.run_id, run.placement.rank, source={**info["source"],
                    "report": run.start_report.to_json()})  # fmt: skip


def _input_shape(manifest: Manifest, config: TrainConfig) -> tuple[int, int, int]:
    channels, height, width = manifest.shape[2], manifest.shape[0], manifest.shape[1]
    return (channels, config.crop_size, config.crop_size) if config.crop_size else (channels, height, width)


def assemble(
    settings: Settings, run_id: str, folder: Path, config: TrainConfig, placement: Placement, manifest: Manifest,
    info: dict[str, Any], start: Start | None = None,
) -> Run:  # fmt: skip
    """A run wired and ready to train; a fine-tune's `start` picks (and freezes) what the optimizer updates."""
    check_start(run_id, config, info.get("source"), start)
    torch.manual_seed(config.seed)
    task = get_task(manifest.task)
    channels, height, width = get_input_kind(task.input_kind).example_shape(manifest.shape)
    shape = (channels, height, width)
    check_augment(config.augment, shape)
    criterion = task_criterion(task, config, manifest)
    metric_info(task, config.monitor)  # an unknown monitor names the task's metrics
    check_task_augment(task, config)
    input_shape = _input_shape(manifest, config)
    model = runs.build_run_model(info, input_shape, task.outputs(manifest.classes), settings)
    override_dropout(model, config.dropout)
    model = model.to(placement.device)
    if placement.channels_last:
        model = model.to(memory_format=torch.channels_last)
    params = start.param_groups(model, config) if start is not None else trainable_params(model)
    optimizer = build_optimizer(params, config.solver)
    if placement.world > 1:
        # a head-first fine-tune freezes the body for a while: DDP must then find the parameters with no gradient
        model = nn.parallel.DistributedDataParallel(model, find_unused_parameters=config.finetune.head_epochs > 0)
    if config.compile:
        model = torch.compile(model)  # type: ignore[assignment]
    shard = Sharding(placement.rank, placement.world)
    train_store = open_split(settings, manifest, "train")
    in_memory = fits_in_memory(train_store, shape, config.in_memory)
    train_data = task.split_batches(train_store, config.batch_size, placement.device, config.seed, True, shard,
                                    in_memory, config.workers)  # fmt: skip
    val_data = None
    if "val" in manifest.splits:
        val_store = open_split(settings, manifest, "val")
        val_data = task.split_batches(val_store, config.batch_size * 2, placement.device, config.seed, False, shard,
                                      fits_in_memory(val_store, shape, config.in_memory), config.workers)  # fmt: skip
    generator = torch.Generator(device=placement.device).manual_seed(config.seed + 1 + placement.rank)
    preprocess = Preprocessor(_mean(settings, manifest, config, placement.device), config.crop_size, config.augment,
                              generator, placement.channels_last, _std(config, shape[0], placement.device))  # fmt: skip
    steps_per_epoch = max(1, train_data.batches_per_epoch // config.batch_accumulation)
    return Run(
        run_id, folder, config, placement, model, optimizer,
        torch.amp.GradScaler(placement.device.type, enabled=placement.autocast_dtype == torch.float16),
        task, manifest, criterion, train_data, val_data, preprocess, generator,
        steps_per_epoch, max(1, round(config.epochs * steps_per_epoch)), RunState(),
    )  # fmt: skip


def _mean(settings: Settings, manifest: Manifest, config: TrainConfig, device: torch.device) -> torch.Tensor | None:
    if config.input_mean is not None:
        return (_per_channel(config.input_mean, manifest.shape[2], "input_mean") * 255).to(device)
    if config.mean == "none" or get_task(manifest.task).input_kind != "image":  # tokens have no mean image
        return None
    import numpy as np

    mean = torch.from_numpy(np.load(dataset_dir(settings, manifest.id) / "mean.npy")).permute(2, 0, 1)  # (C, H, W)
    if config.mean == "pixel":
        mean = mean.mean(dim=(1, 2), keepdim=True)
    return mean.float().to(device)


def _std(config: TrainConfig, channels: int, device: torch.device) -> torch.Tensor | None:
    if config.input_std is None:
        return None
    return _per_channel(config.input_std, channels, "input_std").to(device)


def _per_channel(values: list[float], channels: int, name: str) -> torch.Tensor:
    """(C, 1, 1) float tensor of one value per channel of the data (else a clear error)."""
    if len(values) != channels:
        raise InvalidValueError(f"{name} has {len(values)} values; the dataset has {channels} channel(s)")
    return torch.tensor([float(v) for v in values]).view(-1, 1, 1)


def _restore(run: Run, data: dict[str, Any]) -> None:
    model = run.bare_model()
    model = getattr(model, "_orig_mod", model)
    model.load_state_dict(data["model"])
    run.optimizer.load_state_dict(data["optimizer"])
    run.scaler.load_state_dict(data["scaler"])
    run.state = RunState(**data["state"])
    run.state.stop_reason = None
    run.last_checkpoint_step = run.state.step
    restore_rng(data["rng"], run.generator)


def _broadcast_id(run_id: str, placement: Placement) -> str:
    if placement.world == 1:
        return run_id
    holder = [run_id]
    dist.broadcast_object_list(holder, src=0)
    return str(holder[0])
