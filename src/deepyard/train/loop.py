"""The training loop, top to bottom: `train_one_epoch` and `evaluate` are plain functions of a `Run`.

What happens around a step (metrics, validation at fractional intervals, checkpoints, early stopping, stop
requests) is done by callbacks; the loop only fires the hooks. A run is measured in optimizer steps; a step
consumes `batch_accumulation` batches.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist

from deepyard.errors import DeepyardError
from deepyard.train.optim import l1_penalty, set_lr
from deepyard.train.schedules import lr_at, progress

if TYPE_CHECKING:
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
        for _ in range(accum):
            t0 = time.perf_counter()
            pixels, labels = next(batches)
            wait += time.perf_counter() - t0
            loss = _forward_backward(run, pixels, labels, accum)
            total += loss
            images += len(labels)
        run.scaler.step(run.optimizer)
        run.scaler.update()
        run.optimizer.zero_grad(set_to_none=True)
        run.state.step += 1
        run.callbacks.on_step_end(run, StepInfo(total, images, time.perf_counter() - started, wait, lr))


def _forward_backward(run: Run, pixels: torch.Tensor, labels: torch.Tensor, accum: int) -> torch.Tensor:
    x = run.preprocess(pixels, train=True)
    with run.autocast():
        logits = run.model(x)
        loss = run.criterion(logits, labels)
        penalty = l1_penalty(run.model, run.config.l1)
        if penalty is not None:
            loss = loss + penalty
    run.scaler.scale(loss / accum).backward()
    detached: torch.Tensor = loss.detach() / accum
    return detached


def check_finite(loss: float, step: int, lr: float) -> None:
    if not torch.isfinite(torch.tensor(loss)):
        raise TrainingDiverged(
            f"the training loss became {loss} at step {step} (learning rate {lr:.3g}); "
            "try a lower learning rate (for example a tenth of it), or a warm-up"
        )


@torch.no_grad()
def evaluate(run: Run) -> dict[str, float]:
    """Loss, top-1 and top-5 accuracy (in %) over the validation split, summed across DDP ranks."""
    assert run.val_data is not None
    run.model.eval()
    sums = torch.zeros(4, device=run.device, dtype=torch.float64)  # loss sum, top-1 hits, top-5 hits, count
    for pixels, labels in run.val_data.batches(0):
        with run.autocast():
            logits = run.model(run.preprocess(pixels, train=False))
        loss = run.criterion(logits, labels)
        k = min(5, logits.shape[1])
        top = logits.float().topk(k, dim=1).indices
        hits = top == labels[:, None]
        count = torch.tensor(len(labels), device=run.device, dtype=torch.float64)
        sums += torch.stack([loss.double() * count, hits[:, 0].sum().double(), hits.any(1).sum().double(), count])
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(sums)
    loss_sum, top1, top5, count = sums.tolist()
    run.model.train()
    return {"val_loss": loss_sum / count, "val_top1": 100 * top1 / count, "val_top5": 100 * top5 / count}
