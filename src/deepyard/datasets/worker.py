"""The per-chunk work of a build, run in worker processes (or in-process for small builds).

A chunk is a run of consecutive slots of one split. For each image: decode, hash the decoded pixels (duplicate
detection), resize, then either write the pixels into the pre-allocated raw array in place or encode them. Only
small results travel back to the parent: one reason per skipped image, 16-byte hashes, encoded bytes when the
store is encoded, and the chunk's pixel sum for the mean image. Imports no torch: workers start fast.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepyard.datasets import store
from deepyard.datasets.images import Geometry, ImageSkipped, encode, load_image, resize
from deepyard.datasets.spec import SPLITS


@dataclass(frozen=True)
class WorkerConfig:
    geo: Geometry
    encoding: str  # raw, png or jpeg
    jpeg_quality: int
    seed: int


@dataclass
class Chunk:
    split: str
    start: int  # slot of the first source within its split
    sources: list[str | np.ndarray]
    folder: Path  # the split's store folder (raw arrays are written there in place)
    want_sum: bool  # accumulate pixels for the mean image (train split)


@dataclass
class ChunkResult:
    split: str
    reasons: list[str | None]  # None: kept
    hashes: list[bytes]  # pixel hash per kept image, empty for skipped ones
    blobs: list[bytes]  # encoded images, kept ones only (empty for raw)
    pixel_sum: np.ndarray | None  # (H, W, C) int64 over kept images


_config: WorkerConfig | None = None
_raw_arrays: dict[Path, np.memmap] = {}


def init_worker(config: WorkerConfig) -> None:
    global _config
    _config = config
    _raw_arrays.clear()


def process_chunk(chunk: Chunk) -> ChunkResult:
    """Decode, check, resize and store every image of `chunk`."""
    cfg = _config
    assert cfg is not None, "init_worker must run first"
    out = _raw_array(chunk.folder) if cfg.encoding == "raw" else None
    result = ChunkResult(chunk.split, [], [], [], None)
    encoded_sum = np.zeros((cfg.geo.height, cfg.geo.width, cfg.geo.channels), np.int64)
    noise_key = (cfg.seed, SPLITS.index(chunk.split))
    for slot, source in enumerate(chunk.sources, start=chunk.start):
        try:
            img = load_image(source, cfg.geo)
        except ImageSkipped as exc:
            result.reasons.append(exc.reason)
            result.hashes.append(b"")
            continue
        pixels = np.asarray(img)  # decoded once: hashed, then resized (or used as is)
        digest = hashlib.blake2b(pixels.data, digest_size=16)
        digest.update(repr(pixels.shape).encode())
        arr = resize(pixels, cfg.geo, (*noise_key, slot))
        if out is not None:
            out[slot] = arr
        else:
            result.blobs.append(encode(arr, cfg.encoding, cfg.jpeg_quality))
            if chunk.want_sum:
                encoded_sum += arr
        result.reasons.append(None)
        result.hashes.append(digest.digest())
    if chunk.want_sum:
        if out is None:
            result.pixel_sum = encoded_sum
        else:  # one vectorised sum over the chunk's kept rows, read back from the page cache
            kept = chunk.start + np.flatnonzero([r is None for r in result.reasons])
            result.pixel_sum = out[kept].sum(axis=0, dtype=np.int64)
    return result  # raw pixels live in the shared page cache; the parent fsyncs the file before committing


def _raw_array(folder: Path) -> np.memmap:
    if folder not in _raw_arrays:
        _raw_arrays[folder] = store.open_raw_for_writing(folder)
    return _raw_arrays[folder]
