"""Callback hooks, and the built-ins that use them: metrics writer, validator, checkpointer, early stopping and
stop requests. The job system reports progress and asks a run to stop through the same hooks.

Hooks (all optional): on_train_start, on_train_end, on_epoch_start, on_epoch_end, on_step_end, on_validation_end,
on_checkpoint. Only the main process (rank 0) writes files.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from deepyard.train.checkpoint import prune_checkpoints
from deepyard.train.loop import StepInfo, check_finite, evaluate
from deepyard.train.metricsfile import parse_point

if TYPE_CHECKING:
    from deepyard.train.trainer import Run


class Callback:
    def on_train_start(self, run: Run) -> None: ...
    def on_train_end(self, run: Run) -> None: ...
    def on_epoch_start(self, run: Run, epoch: int) -> None: ...
    def on_epoch_end(self, run: Run, epoch: int) -> None: ...
    def on_step_end(self, run: Run, info: StepInfo) -> None: ...
    def on_validation_end(self, run: Run, metrics: dict[str, float]) -> None: ...
    def on_checkpoint(self, run: Run, path: Path) -> None: ...
    def on_advice(self, run: Run, text: str) -> None: ...  # something the user must see (deepyard.train.advice)


class CallbackList(Callback):
    """Fires each hook on every callback, in order."""

    def __init__(self, callbacks: list[Callback]) -> None:
        self.callbacks = callbacks

    def on_train_start(self, run: Run) -> None:
        for cb in self.callbacks:
            cb.on_train_start(run)

    def on_train_end(self, run: Run) -> None:
        for cb in self.callbacks:
            cb.on_train_end(run)

    def on_epoch_start(self, run: Run, epoch: int) -> None:
        for cb in self.callbacks:
            cb.on_epoch_start(run, epoch)

    def on_epoch_end(self, run: Run, epoch: int) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(run, epoch)

    def on_step_end(self, run: Run, info: StepInfo) -> None:
        for cb in self.callbacks:
            cb.on_step_end(run, info)

    def on_validation_end(self, run: Run, metrics: dict[str, float]) -> None:
        for cb in self.callbacks:
            cb.on_validation_end(run, metrics)

    def on_checkpoint(self, run: Run, path: Path) -> None:
        for cb in self.callbacks:
            cb.on_checkpoint(run, path)

    def on_advice(self, run: Run, text: str) -> None:
        for cb in self.callbacks:
            cb.on_advice(run, text)


def every(interval_epochs: float, steps_per_epoch: int) -> int:
    """An interval in (possibly fractional) epochs as a whole number of steps, at least 1."""
    return max(1, round(interval_epochs * steps_per_epoch))


class MetricsWriter(Callback):
    """Appends JSON lines to metrics.jsonl and scalars to TensorBoard event files.

    Training points: step, epoch, train_loss (mean since the last point), lr, images_per_s, data_wait (fraction
    of step time spent waiting for data), wall (seconds since the run first started). Validation points add
    the task's metrics (val_loss, then classification's val_top1 and val_top5, ...); a loss of several named
    terms adds each as train_<term>. Also checks the loss is finite at each point.
    """

    def __init__(self, run_dir: Path, resume_step: int, wall_offset: float) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.path = run_dir / "metrics.jsonl"
        _truncate_after(self.path, resume_step)  # a resumed run continues as if it had never stopped
        self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=resume_step or None)
        self.started = time.perf_counter() - wall_offset
        self._reset()

    def _reset(self) -> None:
        self.loss = torch.zeros(())
        self.terms: dict[str, torch.Tensor] = {}
        self.steps = self.images = 0
        self.seconds = self.wait = 0.0

    def wall(self) -> float:
        return round(time.perf_counter() - self.started, 3)

    def on_step_end(self, run: Run, info: StepInfo) -> None:
        self.loss = info.loss if self.steps == 0 else self.loss + info.loss
        self.terms = {k: self.terms.get(k, 0) + v for k, v in info.terms.items()}
        self.steps += 1
        self.images += info.images * run.world
        self.seconds += info.seconds
        self.wait += info.wait
        if run.state.step % run.log_every == 0 or run.state.step == run.total_steps:
            self.flush(run, info.lr)

    def flush(self, run: Run, lr: float) -> None:
        if not self.steps:
            return
        loss = float(self.loss) / self.steps
        check_finite(loss, run.state.step, lr)
        point = {
            "step": run.state.step,
            "epoch": round(run.state.step / run.steps_per_epoch, 4),
            "train_loss": loss,
            **{f"train_{k}": float(v) / self.steps for k, v in self.terms.items()},  # a loss's named terms
            "lr": lr,
            "images_per_s": round(self.images / max(self.seconds, 1e-9), 1),
            "data_wait": round(self.wait / max(self.seconds, 1e-9), 4),
            "wall": self.wall(),
        }
        self._reset()
        self._write(run, point)

    def on_validation_end(self, run: Run, metrics: dict[str, float]) -> None:
        point: dict[str, Any] = {"step": run.state.step, "epoch": round(run.state.step / run.steps_per_epoch, 4)}
        self._write(run, {**point, **metrics, "wall": self.wall()})

    def _write(self, run: Run, point: dict[str, Any]) -> None:
        if not run.is_main:
            return
        with self.path.open("a", encoding="utf-8") as fp:
            fp.write(json.dumps(point) + "\n")
        for key, value in point.items():
            if key not in ("step", "epoch", "wall"):
                self.tb.add_scalar(key, value, point["step"])
        self.tb.flush()

    def on_train_end(self, run: Run) -> None:
        self.tb.close()


def _truncate_after(path: Path, step: int) -> None:
    """Keep the points up to `step`; lines that are not metric points go too (skipped by every reader anyway)."""
    if not path.is_file():
        return
    lines = path.read_bytes().split(b"\n")
    kept = [line for line in lines if (point := parse_point(line)) is not None and point["step"] <= step]
    path.write_bytes(b"".join(line + b"\n" for line in kept))


class Validator(Callback):
    """Validates every `val_interval` epochs (in steps) and at the end; tells the others via on_validation_end."""

    def on_step_end(self, run: Run, info: StepInfo) -> None:
        if run.val_data is None:
            return
        if run.state.step % run.val_every == 0 or run.state.step == run.total_steps:
            run.metrics.flush(run, info.lr)
            metrics = evaluate(run)
            run.state.last_val = metrics
            run.callbacks.on_validation_end(run, metrics)


class Checkpointer(Callback):
    """Snapshots every `snapshot_interval` epochs, at the end and when stopped early; keeps the best weights and
    the newest `keep_last` snapshots."""

    def on_step_end(self, run: Run, info: StepInfo) -> None:
        if run.state.step % run.snapshot_every == 0 or run.state.step == run.total_steps:
            run.metrics.flush(run, info.lr)
            self.save(run)

    def save(self, run: Run) -> None:
        path = run.save_checkpoint()
        if path is not None:
            prune_checkpoints(path.parent, run.config.keep_last)  # the newest (this one) and best.pt stay
            run.callbacks.on_checkpoint(run, path)

    def on_validation_end(self, run: Run, metrics: dict[str, float]) -> None:
        value = metrics[run.config.monitor]
        better = run.state.best is None or (value < run.state.best if run.minimize else value > run.state.best)
        if better:
            run.state.best, run.state.best_step = value, run.state.step
            run.state.bad_validations = 0
            run.save_best()
        else:
            run.state.bad_validations += 1

    def on_train_end(self, run: Run) -> None:
        if run.state.stop_reason and run.last_checkpoint_step != run.state.step:
            self.save(run)  # a stopped run keeps the work of its last step


class EarlyStopping(Callback):
    """Stops when the monitored metric has not improved for `patience` validations."""

    def __init__(self, patience: int) -> None:
        self.patience = patience

    def on_validation_end(self, run: Run, metrics: dict[str, float]) -> None:
        if run.state.bad_validations >= self.patience:
            run.state.stop_reason = (
                f"early stopping: {run.config.monitor} did not improve for {self.patience} validations"
            )


class StopRequest(Callback):
    """Stops the run after the current step when `event` is set (the job system's abort; Ctrl-C)."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def on_step_end(self, run: Run, info: StepInfo) -> None:
        if self.event.is_set() and not run.state.stop_reason:
            run.state.stop_reason = "aborted"
