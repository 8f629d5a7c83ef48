"""The training data path: batches of (uint8 images, targets) on the training device, in a seeded, resumable order.

Small splits are held whole in (device) memory as uint8 (N, C, H, W) and batches are index-selected through the
epoch's permutation: nothing crosses a process or the PCIe bus per step. Larger splits stream from the store
through DataLoader worker processes, a batch of indices per task. Either way the order of epoch e is a pure
function of (seed, e) and each DDP rank takes every world-th index of it, so a run resumes mid-epoch exactly and
ranks never share an image. `Preprocessor` turns uint8 batches into model inputs on the device.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from deepyard.datasets.store import ImageStore
from deepyard.train.augment import augment, crop
from deepyard.train.config import AugmentConfig

MEMORY_LIMIT = 2 * 1024**3  # bytes of uint8 pixels per split held in memory when in_memory is "auto"
Batch = tuple[torch.Tensor, torch.Tensor]  # (B, C, H, W) uint8, the task's targets (classification: (B,) int64)
Collate = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (split targets, batch indices) -> batch targets


def _rows(targets: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return targets.index_select(0, index)


@dataclass(frozen=True)
class Sharding:
    rank: int = 0
    world: int = 1


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool, shard: Sharding) -> torch.Tensor:
    """The indices this rank visits in `epoch`: a seeded permutation (or 0..n-1), every world-th entry."""
    if shuffle:
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=g)
    else:
        order = torch.arange(n)
    return order[shard.rank :: shard.world]


class SplitBatches:
    """Batches of one split; `batches(epoch, start)` starts at batch `start` of the epoch."""

    def __init__(
        self,
        store: ImageStore,
        batch_size: int,
        device: torch.device,
        seed: int,
        train: bool,
        shard: Sharding = Sharding(),
        in_memory: bool = True,
        workers: int = 2,
        collate: Collate = _rows,  # the task's (deepyard.tasks.Task.collate)
    ) -> None:
        self.store, self.batch_size, self.device, self.seed = store, batch_size, device, seed
        self.train, self.shard, self.workers, self.collate = train, shard, workers, collate
        self.targets = torch.from_numpy(np.ascontiguousarray(store.targets))
        self.count = len(store)
        self.images: torch.Tensor | None = None
        if in_memory:
            pixels = torch.from_numpy(np.ascontiguousarray(store.to_array()))  # (N, H, W, C) uint8
            self.images = pixels.permute(0, 3, 1, 2).contiguous().to(device)  # (N, C, H, W)
            self.targets = self.targets.to(device)

    @property
    def batches_per_epoch(self) -> int:
        per_rank = math.ceil(self.count / self.shard.world) if not self.train else self.count // self.shard.world
        if self.train:  # equal batches in training (the last partial one is dropped), at least one
            return max(1, per_rank // self.batch_size)
        return max(1, math.ceil(per_rank / self.batch_size))

    def batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        order = epoch_order(self.count, self.seed, epoch, self.train, self.shard)
        chunks = [order[i * self.batch_size : (i + 1) * self.batch_size] for i in range(start, self.batches_per_epoch)]
        if self.images is not None:
            for idx in chunks:
                idx = idx.to(self.device)
                yield self.images.index_select(0, idx), self.collate(self.targets, idx)
            return
        loader = DataLoader(
            _StoreBatches(self.store, self.targets, self.collate),
            sampler=chunks,
            batch_size=None,
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
            generator=torch.Generator().manual_seed(self.seed + epoch),  # leaves the global RNG (dropout) alone
        )
        for pixels, targets in loader:
            yield pixels.to(self.device, non_blocking=True).permute(0, 3, 1, 2), targets.to(self.device)


class _StoreBatches(Dataset[Batch]):
    """Item i of this dataset is a whole batch: the store reads many rows (or decodes many images) at once."""

    def __init__(self, store: ImageStore, targets: torch.Tensor, collate: Collate) -> None:
        self.store, self.targets, self.collate = store, targets, collate

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, idx: torch.Tensor) -> Batch:
        rows = idx.numpy()
        return torch.from_numpy(self.store.get_batch(rows)), self.collate(self.targets, idx)


def fits_in_memory(store: ImageStore, shape: tuple[int, int, int], setting: str) -> bool:
    if setting != "auto":
        return setting == "on"
    return len(store) * math.prod(shape) <= MEMORY_LIMIT


class Preprocessor:
    """uint8 (B, C, H, W) -> float model input: augment (training), subtract the mean, crop, scale to ~[-1, 1]
    (times 1/255), and divide by the per-channel `std` when given (the normalisation pretrained weights expect)."""

    def __init__(
        self,
        mean: torch.Tensor | None,  # (C, H, W) or (C, 1, 1) in pixel units, on the device
        crop_size: int | None,
        aug: AugmentConfig,
        generator: torch.Generator,
        channels_last: bool,
        std: torch.Tensor | None = None,  # (C, 1, 1) on the 0..1 scale, on the device
    ) -> None:
        self.mean, self.crop_size, self.aug, self.generator = mean, crop_size, aug, generator
        self.inv_std = None if std is None else 1.0 / std
        self.channels_last = channels_last
        self.augments = aug != AugmentConfig()

    def __call__(self, pixels: torch.Tensor, train: bool) -> torch.Tensor:
        x = pixels.float()
        if train and self.augments:
            x = augment(x, self.aug, self.generator)
        if self.mean is not None:
            x = x - self.mean
        if self.crop_size is not None:
            x = crop(x, self.crop_size, self.generator if train else None)
        x = x * (1.0 / 255.0)
        if self.inv_std is not None:
            x = x * self.inv_std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
