"""Token stores and the batches a language model trains on.

A split of a language-model dataset is one `tokens.npy`: the split's token ids back to back as uint16 (uint32 for
vocabularies over 65,536), opened with `np.load(mmap_mode="r")` like the raw image store. Training draws random
blocks (nanoGPT's loop): batch b of epoch e takes `batch_size` offsets drawn from a generator seeded by (seed, e, b),
so the data position of a resumed run is its step, and DDP ranks draw different offsets. An epoch is as many
batches as it takes to see the split's token count once. Validation reads the split as consecutive,
non-overlapping blocks, the same every time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepyard.errors import IntegrityError, NotFoundError

TOKENS_FILE = "tokens.npy"
MAX_VAL_BLOCKS = 1024  # validation blocks at most (evenly spread over the split): a bounded validation time


def load_tokens(folder: Path, in_memory: bool = False) -> np.ndarray:
    path = folder / TOKENS_FILE
    if not path.is_file():
        raise NotFoundError(f"no token store in {str(folder)!r} ({TOKENS_FILE} is missing)")
    tokens: np.ndarray = np.load(path, mmap_mode=None if in_memory else "r", allow_pickle=False)
    if tokens.ndim != 1 or tokens.dtype.kind != "u":
        raise IntegrityError(f"{str(path)!r} is not a 1-D array of token ids ({tokens.dtype}, shape {tokens.shape})")
    return tokens


class TokenStore:
    """One split's tokens; `len` is the token count, `context` the block length the dataset was built for."""

    def __init__(self, folder: Path, context: int, tokens: np.ndarray) -> None:
        self.folder, self.context, self.tokens = folder, context, tokens
        self.targets = tokens  # a language model's targets are its inputs, one position on

    def __len__(self) -> int:
        return len(self.tokens)

    def block(self, offset: int, length: int) -> np.ndarray:
        return np.asarray(self.tokens[offset : offset + length], dtype=np.int64)


class TokenBatches:
    """(inputs, targets) batches of (B, T) int64 token ids on the device; the trainer's `SplitBatches` for text."""

    def __init__(
        self, store: TokenStore, batch_size: int, device: torch.device, seed: int, train: bool, rank: int = 0,
        world: int = 1,
    ) -> None:  # fmt: skip
        self.store, self.batch_size, self.device, self.seed = store, batch_size, device, seed
        self.train, self.rank, self.world = train, rank, world
        self.context = store.context
        self.count = len(store)
        self.tokens = torch.from_numpy(np.asarray(store.tokens, dtype=np.int64))  # small corpora: in RAM, int64
        if self.count < self.context + 1:
            raise IntegrityError(f"a split of {self.count} tokens is shorter than one block of {self.context + 1}")

    @property
    def offsets(self) -> torch.Tensor:
        """Validation: the starts of consecutive blocks (at most MAX_VAL_BLOCKS, evenly spread), this rank's."""
        blocks = (self.count - 1) // self.context
        starts = torch.arange(blocks) * self.context
        if blocks > MAX_VAL_BLOCKS:
            starts = starts[torch.linspace(0, blocks - 1, MAX_VAL_BLOCKS).long()]
        return starts[self.rank :: self.world]

    @property
    def batches_per_epoch(self) -> int:
        if self.train:
            return max(1, self.count // (self.batch_size * self.context * self.world))
        return max(1, math.ceil(len(self.offsets) / self.batch_size))

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        span = torch.arange(self.context + 1)
        for b in range(start, self.batches_per_epoch):
            if self.train:
                g = torch.Generator().manual_seed(((self.seed * 1_000_003 + epoch) * 1_000_033 + b) * 64 + self.rank)
                starts = torch.randint(0, self.count - self.context, (self.batch_size,), generator=g)
            else:
                starts = self.offsets[b * self.batch_size : (b + 1) * self.batch_size]
            rows = self.tokens[starts[:, None] + span]  # (B, T + 1)
            yield rows[:, :-1].to(self.device), rows[:, 1:].to(self.device)

    def sample_prompt(self, length: int) -> Any:
        return self.tokens[: min(length, self.count)].tolist()
