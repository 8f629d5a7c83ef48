"""Batch-norm statistics recomputed for the weights being validated or saved ("precise BN").

A BatchNorm layer normalises with the batch's own statistics in training and with its running mean and variance in
evaluation. The running values are an exponential average (PyTorch's momentum 0.1: about the last 10 steps) of
batch statistics taken while the weights kept changing, so they describe the network of some steps ago. Early in
training, and with an adaptive solver (Adam at 1e-3), the weights outrun that average and the evaluation-mode
network collapses: a ResNet-18 trained for 4 epochs on 600 images classified its own training images at about 97%
in training mode and at 50% in evaluation mode. Recomputing the statistics for the current weights gave 98%.

So before every validation and every checkpoint the trainer recomputes them: the layers' running statistics are
reset and averaged (momentum None: a plain mean) over up to `MAX_IMAGES` training images, taken in the order of
epoch 0 and through the evaluation transform (no augmentation, centre crop), so the statistics are those of the
inputs evaluation gives the network, the computation draws nothing from any random generator (a resumed run stays
exact), and dropout is off while it runs. Under DDP each rank averages its shard and the ranks average the results.
BatchNorm layers whose parameters are all frozen (fine-tuning) keep their statistics, as they do in training.
Not covered: other normalisations with running statistics (none in torchvision's classifiers or the spec layers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
from torch import nn

from deepyard.train.callbacks import Callback
from deepyard.train.loop import StepInfo

if TYPE_CHECKING:
    from deepyard.train.trainer import Run

MAX_IMAGES = 2048  # training images (per rank) the statistics are averaged over; whole batches, at least one
BatchNorm = nn.modules.batchnorm._BatchNorm


def trained_batchnorms(model: nn.Module) -> list[BatchNorm]:
    """The BatchNorm layers whose running statistics training updates: tracked, and not entirely frozen."""
    found = []
    for module in model.modules():
        if not isinstance(module, BatchNorm) or not module.track_running_stats or module.running_mean is None:
            continue
        params = list(module.parameters(recurse=False))
        if params and not any(p.requires_grad for p in params):  # frozen: kept in eval mode by fine-tuning
            continue
        found.append(module)
    return found


@torch.no_grad()
def recompute_batchnorm(run: Run, max_images: int = MAX_IMAGES, across_ranks: bool = True) -> int:
    """Reset and recompute the running statistics of the trained BatchNorm layers of `run.model` for its current
    weights; returns the number of images used (0 when the model has no such layer). Every module's mode is left
    as it was. Under DDP, `across_ranks` averages the ranks' statistics (every rank must then call it)."""
    model = run.bare_model()
    model = getattr(model, "_orig_mod", model)  # the compiled model shares these modules; no recompilation
    layers = trained_batchnorms(model)
    if not layers:
        return 0
    modes = {m: m.training for m in model.modules()}
    saved = [(m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone()) for m in layers]
    model.eval()  # dropout off: no draw from the global generator
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average of the batches' statistics
        m.train()
    seen = 0
    try:
        for pixels, targets in run.train_data.batches(0):
            with run.autocast():
                model(run.task.transform(run.preprocess, pixels, targets, train=False)[0])
            seen += len(pixels)
            if seen >= max_images:
                break
    finally:
        for m, (momentum, tracked) in zip(layers, saved, strict=True):
            m.momentum = momentum
            if tracked is not None and m.num_batches_tracked is not None:
                m.num_batches_tracked.copy_(tracked)  # it counts training steps; keep that meaning
        for module, training in modes.items():
            module.training = training
    if across_ranks and run.world > 1 and dist.is_available() and dist.is_initialized():
        for m in layers:
            for stat in (m.running_mean, m.running_var):
                assert stat is not None
                dist.all_reduce(stat)
                stat.div_(run.world)
    return seen


class BatchNormStatistics(Callback):
    """Recomputes the statistics just before the Validator and the Checkpointer use the weights: at each
    validation, each snapshot, the last step, and when a stopped run saves its last step."""

    def __init__(self) -> None:
        self.done_step = -1

    def on_step_end(self, run: Run, info: StepInfo) -> None:
        step = run.state.step
        validates = run.val_data is not None and step % run.val_every == 0
        if validates or step % run.snapshot_every == 0 or step == run.total_steps:
            self.recompute(run)

    def on_train_end(self, run: Run) -> None:
        # only rank 0 saves this checkpoint, and ranks need not stop together: no collective here
        if run.state.stop_reason and run.last_checkpoint_step != run.state.step and run.is_main:
            self.recompute(run, across_ranks=False)

    def recompute(self, run: Run, across_ranks: bool = True) -> None:
        if self.done_step != run.state.step:
            recompute_batchnorm(run, across_ranks=across_ranks)
            self.done_step = run.state.step
