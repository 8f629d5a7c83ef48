"""Two helpers the UI offers as buttons: an LR range test and a batch-size finder.

The LR range test (Smith, 2015) trains a copy of the model for a few hundred steps while the learning rate grows
exponentially, records the smoothed loss, and suggests the rate where the loss falls fastest. The batch-size
finder returns the largest batch (a power of two) whose training step fits the device's memory: on a GPU it tries
steps and backs off at out-of-memory; on the CPU, where an allocation failure kills the process instead, it
measures a step's peak memory at two small batches and extrapolates against the memory available.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import psutil
import torch

from deepyard.config import Settings
from deepyard.datasets import get_dataset
from deepyard.train.config import TrainConfig, make_config
from deepyard.train.device import resolve_placement
from deepyard.train.loop import total_loss
from deepyard.train.optim import build_optimizer, set_lr
from deepyard.train.runs import create_run, get_run, run_dir
from deepyard.train.start import Start
from deepyard.train.trainer import Run, assemble


@dataclass(frozen=True)
class LRRangeResult:
    lrs: list[float]
    losses: list[float]  # exponentially smoothed
    suggestion: float


def lr_range_test(
    settings: Settings, dataset: str, network: str, config: TrainConfig,
    start: float = 1e-6, end: float = 10.0, steps: int = 200, run_start: Start | None = None,
) -> LRRangeResult:  # fmt: skip
    """Sweep the learning rate from `start` to `end` over `steps` steps; stop when the loss explodes.
    `run_start`: the fine-tune settings' start (deepyard.transfer.start_new), which freezes as the run would."""
    run = _scratch_run(settings, dataset, network, config, run_start)
    model = run.model
    optimizer = build_optimizer(model.parameters(), config.solver)
    lrs: list[float] = []
    losses: list[float] = []
    smooth, best = 0.0, math.inf
    batches = _endless(run)
    for i in range(steps):
        lr = start * (end / start) ** (i / max(1, steps - 1))
        set_lr(optimizer, lr)
        pixels, labels = next(batches)  # labels: the task's targets
        with run.autocast():
            x, y = run.task.transform(run.preprocess, pixels, labels, train=True)
            loss = total_loss(run.criterion(model(x), y))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        smooth = 0.9 * smooth + 0.1 * float(loss.detach())
        corrected = smooth / (1 - 0.9 ** (i + 1))  # bias-corrected running mean
        lrs.append(lr)
        losses.append(corrected)
        best = min(best, corrected)
        if not math.isfinite(corrected) or corrected > 4 * best:
            break
    return LRRangeResult(lrs, losses, _steepest(lrs, losses))


def _steepest(lrs: list[float], losses: list[float]) -> float:
    """The rate where the smoothed loss falls fastest against log(lr), before its minimum."""
    finite = [(lr, loss) for lr, loss in zip(lrs, losses, strict=True) if math.isfinite(loss)]
    lowest = min(range(len(finite)), key=lambda i: finite[i][1])
    window = finite[: lowest + 1]
    if len(window) < 3:
        return window[0][0]
    slopes = [
        (window[i + 1][1] - window[i - 1][1]) / (math.log(window[i + 1][0]) - math.log(window[i - 1][0]))
        for i in range(1, len(window) - 1)
    ]
    return window[1 + min(range(len(slopes)), key=slopes.__getitem__)][0]


def find_batch_size(
    settings: Settings, dataset: str, network: str, config: TrainConfig, limit: int = 4096, headroom: float = 0.7,
    run_start: Start | None = None,
) -> int:  # fmt: skip
    """The largest power-of-two batch (at most `limit`) whose training step fits in `headroom` of free memory."""
    run = _scratch_run(settings, dataset, network, make_config(config, batch_size=2), run_start)
    limit = min(limit, 1 << int(math.log2(max(1, len(run.train_data.store)))))
    if run.device.type == "cuda":
        return _gpu_batch(run, limit)
    small, large = 8, 32
    cost = {b: _cpu_step_bytes(run, b) for b in (small, large)}
    per_image = max(1.0, (cost[large] - cost[small]) / (large - small))
    fixed = max(0.0, cost[small] - per_image * small)
    budget = psutil.virtual_memory().available * headroom - fixed
    fit = max(1, int(budget / per_image))
    return min(limit, 1 << int(math.log2(fit)))


def _step(run: Run, batch: int) -> None:
    store = run.train_data.store
    idx = torch.arange(batch) % len(store)
    pixels = torch.from_numpy(store.get_batch(idx.numpy())).permute(0, 3, 1, 2).to(run.device)
    targets = run.task.collate(torch.from_numpy(store.targets), idx).to(run.device)
    with run.autocast():
        x, y = run.task.transform(run.preprocess, pixels, targets, train=True)
        loss = total_loss(run.criterion(run.model(x), y))
    loss.backward()  # type: ignore[no-untyped-call]
    run.model.zero_grad(set_to_none=True)


def _cpu_step_bytes(run: Run, batch: int) -> float:
    """Peak resident memory added by one training step of `batch` images (measured in this process)."""
    import resource

    _step(run, 1)  # allocator warm-up
    before = psutil.Process().memory_info().rss
    _step(run, batch)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes
    return float(max(peak, psutil.Process().memory_info().rss) - before)


def _gpu_batch(run: Run, limit: int) -> int:
    batch, best = 1, 1
    while batch <= limit:
        try:
            torch.cuda.empty_cache()
            _step(run, batch)
            best = batch
            batch *= 2
        except torch.cuda.OutOfMemoryError:
            break
    torch.cuda.empty_cache()
    return best


def _scratch_run(settings: Settings, dataset: str, network: str, config: TrainConfig, start: Start | None) -> Run:
    """A run wired like a real one (data, model, preprocessing), whose folder is removed at once."""
    manifest = get_dataset(settings, dataset)
    placement = resolve_placement(config)
    scratch = settings.model_copy(update={"home": settings.home / ".scratch"})
    run_id = create_run(scratch, manifest, network, config, placement)
    info = get_run(scratch, run_id)
    try:
        return assemble(settings, run_id, run_dir(scratch, run_id), config, placement, manifest, info, start)
    finally:
        shutil.rmtree(run_dir(scratch, run_id), ignore_errors=True)


def _endless(run: Run) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    epoch = 0
    while True:
        yield from run.train_data.batches(epoch)
        epoch += 1
