"""The per-split image store: write it once during a build, then read random batches from any process.

Layout of a split folder:
- the targets:   one .npy array per split, written and read by the dataset's task (deepyard.tasks):
  classification's `labels.npy` holds (N,) int64 class indices.
- raw encoding:  `images.npy`, one (N, H, W, C) uint8 array in NumPy's .npy format. Readers memory-map it, so a
  whole split costs no RAM beyond the page cache, which every DataLoader worker and DDP rank on the machine
  shares; a random batch is one fancy-index copy.
- png / jpeg:    `images.bin`, the encoded images one after another, and `offsets.npy`, (N + 1,) int64 byte
  offsets into it: random access to image i is one slice of a memory map, then one decode.
Both are plain files opened read-only, so any number of processes can read them at once, before or after a fork.
Why this format and not LMDB, HDF5 or tar shards: see the README's "Dataset store" section.
"""

from __future__ import annotations

import errno
import itertools
import os
from pathlib import Path
from typing import Literal

import numpy as np

from deepyard.datasets.images import decode_stored
from deepyard.errors import IntegrityError, NotFoundError

RAW_FILE, BLOB_FILE, OFFSETS_FILE, LABELS_FILE = "images.npy", "images.bin", "offsets.npy", "labels.npy"


def create_raw(folder: Path, count: int, shape: tuple[int, int, int]) -> None:
    """Pre-allocate the raw array so that worker processes can fill their slots in place.

    The blocks are reserved on disk now (posix_fallocate), not left sparse: a full disk is an ENOSPC here, in
    the parent, instead of a SIGBUS that kills a worker writing through its memory map later.
    """
    path = folder / RAW_FILE
    np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(count, *shape)).flush()
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):  # a file system that cannot reserve: stay sparse
            return
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    finally:
        os.close(fd)


def open_raw_for_writing(folder: Path) -> np.memmap:
    arr: np.memmap = np.load(folder / RAW_FILE, mmap_mode="r+")
    return arr


def compact_raw(folder: Path, keep: np.ndarray) -> None:
    """Drop the slots of skipped images: move kept rows forward in place, rewrite the header, truncate."""
    path = folder / RAW_FILE
    arr = np.load(path, mmap_mode="r+")
    kept = np.flatnonzero(keep)
    if len(kept) == len(arr):
        return
    header_len = arr.offset
    row_bytes = int(np.prod(arr.shape[1:]))
    block = max(1, (64 << 20) // max(1, row_bytes))  # rows per copy: bounded memory for any dataset size
    shift = kept - np.arange(len(kept))  # how far back each kept row moves; constant along a run
    starts = [0, *(np.flatnonzero(np.diff(shift)) + 1).tolist(), len(kept)]
    for run_start, run_end in itertools.pairwise(starts):
        step = int(shift[run_start])
        for d in range(run_start, run_end, block) if step else ():
            e = min(d + block, run_end)
            arr[d:e] = arr[d + step : e + step]  # destination lies before source: earlier rows are done
    arr.flush()
    del arr
    new_shape = (len(kept), *np.load(path, mmap_mode="r").shape[1:])
    header = _npy_header(new_shape)
    if len(header) != header_len:  # header length changed (it practically never does): rewrite the file
        data = np.load(path, mmap_mode="r")[: len(kept)].copy()
        np.save(path, data)
        return
    with path.open("r+b") as fp:
        fp.write(header)
        fp.truncate(header_len + len(kept) * row_bytes)


def _npy_header(shape: tuple[int, ...]) -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": shape})
    return buf.getvalue()


class ImageStore:
    """Read-only access to one split: `len`, `targets`, `get(i)`, `get_batch(indices)`, `to_array()`.

    `targets` is the split's target array as its task read it (default: classification's `labels.npy`)."""

    def __init__(self, folder: Path, channels: int, in_memory: bool = False, targets: np.ndarray | None = None) -> None:
        if targets is None and not (folder / LABELS_FILE).is_file():
            raise NotFoundError(f"no image store in {str(folder)!r} ({LABELS_FILE} is missing)")
        self.folder = folder
        self.channels = channels
        self.targets: np.ndarray = np.load(folder / LABELS_FILE) if targets is None else targets
        self.raw = (folder / RAW_FILE).is_file()
        mode: Literal["r"] | None = None if in_memory else "r"
        if self.raw:
            self._images: np.ndarray = np.load(folder / RAW_FILE, mmap_mode=mode)
            if len(self._images) != len(self.targets):
                raise IntegrityError(f"{str(folder)!r}: {len(self._images)} images but {len(self.targets)} targets")
        else:
            self._offsets: np.ndarray = np.load(folder / OFFSETS_FILE)
            blob = folder / BLOB_FILE
            if blob.stat().st_size == 0:
                self._blob = np.zeros(0, dtype=np.uint8)
            elif in_memory:
                self._blob = np.fromfile(blob, dtype=np.uint8)
            else:
                self._blob = np.memmap(blob, dtype=np.uint8, mode="r")

    @property
    def labels(self) -> np.ndarray:
        """The targets under their classification name."""
        return self.targets

    def __len__(self) -> int:
        return len(self.targets)

    def get(self, index: int) -> np.ndarray:
        """Image `index` as (H, W, C) uint8."""
        if self.raw:
            return np.asarray(self._images[index])
        start, end = self._offsets[index], self._offsets[index + 1]
        return decode_stored(self._blob[start:end].tobytes(), self.channels)

    def get_batch(self, indices: np.ndarray) -> np.ndarray:
        """Images at `indices` as (B, H, W, C) uint8, in the order given."""
        if self.raw:
            return np.asarray(self._images[indices])
        return np.stack([self.get(int(i)) for i in indices])

    def to_array(self) -> np.ndarray:
        """The whole split as one (N, H, W, C) uint8 array in RAM."""
        return self.get_batch(np.arange(len(self)))
