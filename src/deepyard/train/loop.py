"""The training loop, top to bottom: `train_one_epoch` and `evaluate` are plain functions of a `Run`.

What happens around a step (metrics, validation at fractional intervals, checkpoints, early stopping, stop
requests) is done by callbacks; the loop only fires the hooks. A run is measured in optimizer steps; a step
consumes `batch_accumulation` batches.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist

from deepyard.errors import DeepyardError
from deepyard.train.optim import l1_penalty, set_lr
from deepyard.train.schedules import lr_at, progress

if TYPE_CHECKING:
    from deepyard.tasks.base import Meter
    from deepyard.train.trainer import Run


class TrainingDiverged(DeepyardError):
    """The loss became NaN or infinite."""


@dataclass
class StepInfo:
    loss: torch.Tensor  # detached scalar on the device (summing on the device avoids a sync per step)
    images: int
    seconds: float  # wall time of the step
    wait: float  # of which, waiting for data
    lr: float
    terms: dict[str, torch.Tensor] = field(default_factory=dict)  # the loss's named terms, when it has several


def train_one_epoch(run: Run, epoch: int) -> None:
    """Run the remaining steps of `epoch` (all of them, unless resuming mid-epoch)."""
    run.model.train()
    accum = run.config.batch_accumulation
    first = run.state.step - epoch * run.steps_per_epoch
    batches = run.train_data.batches(epoch, first * accum)
    for _ in range(first, run.steps_per_epoch):
        if run.state.step >= run.total_steps or run.state.stop_reason:
            return
        started = time.perf_counter()
        lr = lr_at(run.config.schedule, run.config.solver.lr, progress(run.state.step, run.total_steps))
        set_lr(run.optimizer, lr)
        total, images, wait = torch.zeros((), device=run.device), 0, 0.0
        terms: dict[str, torch.Tensor] = {}
        for _ in range(accum):
            t0 = time.perf_counter()
            pixels, targets = next(batches)
            wait += time.perf_counter() - t0
            loss, parts = _forward_backward(run, pixels, targets, accum)
            total += loss
            terms = {k: terms.get(k, 0) + v for k, v in parts.items()}
            images += len(pixels)
        clip_gradients(run)
        run.scaler.step(run.optimizer)
        run.scaler.update()
        run.optimizer.zero_grad(set_to_none=True)
        run.state.step += 1
        run.callbacks.on_step_end(run, StepInfo(total, images, time.perf_counter() - started, wait, lr, terms))


def clip_gradients(run: Run) -> None:
    """`solver.clip_grad_norm`: scale the gradients so that their global L2 norm is at most the limit (Caffe's
    clip_gradients); gradients of a scaled fp16 loss are unscaled first. Nothing when it is not set."""
    limit = run.config.solver.clip_grad_norm
    if limit is not None:
        run.scaler.unscale_(run.optimizer)
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), limit)


def total_loss(terms: dict[str, torch.Tensor]) -> torch.Tensor:
    """The loss to minimise: the sum of a task's named terms."""
    values = list(terms.values())
    return values[0] if len(values) == 1 else torch.stack(values).sum()


def _forward_backward(
    run: Run, pixels: torch.Tensor, targets: torch.Tensor, accum: int
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    x, y = run.task.transform(run.preprocess, pixels, targets, train=True)
    with run.autocast():
        terms = run.task.training_terms(run.model, x, y, run.criterion)
        loss = total_loss(terms)
        penalty = l1_penalty(run.model, run.config.l1)
        if penalty is not None:
            loss = loss + penalty
    run.scaler.scale(loss / accum).backward()  # type: ignore[no-untyped-call]
    detached: torch.Tensor = loss.detach() / accum
    parts = {k: v.detach() / accum for k, v in terms.items()} if len(terms) > 1 else {}
    return detached, parts


def check_finite(loss: float, step: int, lr: float) -> None:
    if not torch.isfinite(torch.tensor(loss)):
        raise TrainingDiverged(
            f"the training loss became {loss} at step {step} (learning rate {lr:.3g}); "
            "try a lower learning rate (for example a tenth of it), or a warm-up"
        )


@torch.no_grad()
def evaluate(run: Run) -> dict[str, float]:
    """The task's validation metrics (val_loss first) over the validation split, over every DDP rank's shard."""
    assert run.val_data is not None
    run.model.eval()
    meter = run.task.meter(run.manifest.classes, run.manifest.target_stats)
    for pixels, targets in run.val_data.batches(0):
        x, y = run.task.transform(run.preprocess, pixels, targets, train=False)
        outputs, loss = run.task.validation_batch(run.model, x, y, run.criterion, run.autocast)
        meter.update(outputs, y, loss)
    run.model.train()
    return reduce_meter(meter, run.device)


def reduce_meter(meter: Meter, device: torch.device) -> dict[str, float]:
    """A meter's metrics over every DDP rank's examples: its sums added across ranks, and what is no sum (a
    detector's predictions, for mAP) gathered by the meter (`Meter.gather`); one process: its own."""
    sums = meter.sums().to(device)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(sums)
        meter.gather()
    return meter.compute(sums.cpu())
