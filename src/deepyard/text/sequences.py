"""Token sequences of a text-classification dataset: how texts become rows of ids, the store, and the batches.

Stored ids are the tokenizer's id + 2: 0 pads a row, 1 is a character the vocabulary does not have (a character
vocabulary is built from the training texts only, so validation and new texts can have such characters; byte-level
BPE encodes every string). A split holds:

- `tokens.npy`: (N, L) uint16 (uint32 above 65,534 tokens) ids, each text truncated to L tokens and padded with 0,
  opened with `np.load(mmap_mode="r")`: a batch is one fancy-index copy, as in the raw image store.
- `lengths.npy`: (N,) int32, the tokens kept of each text (1..L); `labels.npy`: (N,) int64 class indices.
- `texts.bin` + `text_offsets.npy`: the texts themselves as UTF-8 back to back and their (N + 1) byte offsets (the
  encoded image store's layout), so reports and pages show the text, not its tokens.

Why padded rows and not offsets + lengths of one flat array: the networks (a CNN, a GRU, an EmbeddingBag) need a
rectangular batch anyway, and a fixed row makes a batch one slice of a memory map with no collate step; the cost
is the padding, bounded by L, which defaults to the training texts' 95th percentile (at most 1024), and every
truncated text is counted in the report.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepyard.errors import IntegrityError, NotFoundError
from deepyard.text.tokenizer import CharTokenizer, Tokenizer

PAD, UNKNOWN, OFFSET = 0, 1, 2
TOKENS, LENGTHS, TEXTS, TEXT_OFFSETS = "tokens.npy", "lengths.npy", "texts.bin", "text_offsets.npy"


def vocabulary(tokenizer: Tokenizer) -> int:
    """The network's embedding rows: the tokenizer's tokens, padding and unknown."""
    return tokenizer.vocab_size + OFFSET


def encode_ids(tokenizer: Tokenizer, text: str) -> list[int]:
    """All the stored ids of `text` (not truncated); unknown characters are UNKNOWN, never an error."""
    if isinstance(tokenizer, CharTokenizer):
        return [tokenizer.index.get(c, UNKNOWN - OFFSET) + OFFSET for c in text]
    return [i + OFFSET for i in tokenizer.encode(text)]


def encode_rows(tokenizer: Tokenizer, texts: Sequence[str], length: int) -> tuple[np.ndarray, np.ndarray, int]:
    """((N, L) ids, (N,) lengths kept, texts truncated)."""
    dtype = np.uint16 if vocabulary(tokenizer) <= 65536 else np.uint32
    rows = np.zeros((len(texts), length), dtype)
    lengths = np.zeros(len(texts), np.int32)
    truncated = 0
    for i, text in enumerate(texts):
        ids = encode_ids(tokenizer, text)
        truncated += len(ids) > length
        ids = ids[:length] or [UNKNOWN]  # a text of no token (only characters BPE merges away) is one unknown
        rows[i, : len(ids)] = ids
        lengths[i] = len(ids)
    return rows, lengths, truncated


def save_split(folder: Path, rows: np.ndarray, lengths: np.ndarray, labels: np.ndarray, texts: Sequence[str]) -> None:
    folder.mkdir()
    np.save(folder / TOKENS, rows)
    np.save(folder / LENGTHS, lengths)
    np.save(folder / "labels.npy", labels.astype(np.int64))
    encoded = [t.encode("utf-8", "surrogatepass") for t in texts]
    np.save(folder / TEXT_OFFSETS, np.concatenate([[0], np.cumsum([len(b) for b in encoded])]).astype(np.int64))
    (folder / TEXTS).write_bytes(b"".join(encoded))


class SequenceStore:
    """One split: `tokens` (N, L) memory-mapped, `lengths`, `targets` (class indices) and the texts."""

    def __init__(self, folder: Path, length: int, targets: np.ndarray) -> None:
        path = folder / TOKENS
        if not path.is_file():
            raise NotFoundError(f"no token store in {str(folder)!r} ({TOKENS} is missing)")
        self.folder, self.targets = folder, targets
        self.tokens: np.ndarray = np.load(path, mmap_mode="r", allow_pickle=False)
        if self.tokens.ndim != 2 or self.tokens.shape[1] != length or len(self.tokens) != len(targets):
            raise IntegrityError(f"{str(path)!r} is {self.tokens.shape}, not ({len(targets)}, {length}) token rows")
        self.lengths: np.ndarray = np.load(folder / LENGTHS, allow_pickle=False)
        self._offsets: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.tokens)

    def get_batch(self, indices: Any) -> np.ndarray:
        """(B, L) int64 ids."""
        return np.asarray(self.tokens[np.asarray(indices)], dtype=np.int64)

    def text(self, i: int) -> str:
        if self._offsets is None:
            self._offsets = np.load(self.folder / TEXT_OFFSETS, allow_pickle=False)
        start, end = int(self._offsets[i]), int(self._offsets[i + 1])
        with open(self.folder / TEXTS, "rb") as f:
            f.seek(start)
            return f.read(end - start).decode("utf-8", "replace")


class SequenceBatches:
    """The trainer's batches of a split: ((B, L) int64 ids, (B,) int64 classes) on the device, in the image
    batches' seeded order (deepyard.train.data.epoch_order), so a run resumes mid-epoch exactly and DDP ranks
    never share a text. The split is held in RAM as int64 (N x L x 8 bytes: 100 K texts of 256 tokens, 200 MB)."""

    def __init__(self, store: SequenceStore, batch_size: int, device: Any, seed: int, train: bool, shard: Any) -> None:
        import torch

        self.batch_size, self.device, self.seed, self.train, self.shard = batch_size, device, seed, train, shard
        self.count = len(store)
        self.tokens = torch.from_numpy(np.asarray(store.tokens, dtype=np.int64)).to(device)
        self.targets = torch.from_numpy(np.ascontiguousarray(store.targets, dtype=np.int64)).to(device)

    @property
    def batches_per_epoch(self) -> int:
        per_rank: int = self.count // self.shard.world if self.train else math.ceil(self.count / self.shard.world)
        return max(1, per_rank // self.batch_size) if self.train else max(1, math.ceil(per_rank / self.batch_size))

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[Any, Any]]:
        from deepyard.train.data import epoch_order

        order = epoch_order(self.count, self.seed, epoch, self.train, self.shard).to(self.device)
        for b in range(start, self.batches_per_epoch):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            yield self.tokens.index_select(0, idx), self.targets.index_select(0, idx)
