"""Build a dataset: list the source, decode and store every image in parallel, then commit atomically.

`create_dataset` is the one entry point the CLI, the job system and the web server call. It works in
`<home>/datasets/.build-<id>/` and renames that folder to `<id>` only once the store, the mean image, the
report and the manifest are all written and synced, so an interrupted build (Ctrl-C, kill) never leaves a
dataset that looks complete; its leftovers are removed by the next build.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import multiprocessing
import multiprocessing.forkserver
import os
import shutil
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from deepyard import __version__
from deepyard.config import Settings
from deepyard.datasets import catalog, store
from deepyard.datasets.hygiene import find_duplicates
from deepyard.datasets.images import spec_geometry
from deepyard.datasets.sources import Listing, Skipped
from deepyard.datasets.spec import RAW_AUTO_LIMIT, SPLITS, DatasetSpec, Encoding
from deepyard.datasets.worker import Chunk, ChunkResult, WorkerConfig, init_worker, process_chunk
from deepyard.errors import SourceError, disk_full
from deepyard.files import new_id, write_bytes_atomic, write_json_atomic
from deepyard.tasks.base import Task, get_task

ProgressFn = Callable[[str, int, int], None]  # (stage, done, total)
CHUNK = 512  # images per task sent to a worker
SERIAL_BELOW = 2000  # with workers=None, smaller builds run in-process (process start-up would dominate)


def create_dataset(
    settings: Settings,
    spec: DatasetSpec,
    progress: ProgressFn | None = None,
    workers: int | None = None,
    reuse: bool = False,
    confine: bool = False,
) -> catalog.Manifest:
    """Build `spec` into a new dataset under the home and return its manifest.

    `workers`: processes that decode images (None: one per CPU, or none for small builds).
    `reuse`: return an existing dataset built from an identical spec instead of building again.
    `confine`: read nothing outside the home and the data roots (the server's builds): files a list names or
    symlinks lead to outside them are skipped and reported as "outside the data roots", never opened.
    """
    if reuse:
        same = [m for m in catalog.list_datasets(settings) if m.spec == spec]
        if same:
            return same[-1]
    if workers != 1 and _cpus() > 1 and not _can_fork():
        _start_forkserver()  # its interpreter starts and imports while the source is listed
    task = get_task(spec.task)
    readable = settings.readable() if confine else None
    if task.own_build:  # text: the task reads its source and writes its store (deepyard.tasks.base.build_dataset)
        task.check_source(spec)
    listing = None if task.own_build else task.list_source(spec, readable)  # source errors are raised here
    report = progress or (lambda stage, done, total: None)
    settings.datasets_dir.mkdir(parents=True, exist_ok=True)
    catalog.remove_stale_builds(settings)
    dataset_id = new_id()
    work = settings.datasets_dir / (catalog.BUILD_PREFIX + dataset_id)
    work.mkdir()
    try:
        (work / ".pid").write_text(str(os.getpid()))
        started = time.perf_counter()
        manifest = (task.build_dataset(spec, readable, work, dataset_id, report) if listing is None
                    else _build(task, spec, listing, work, dataset_id, report, workers, started))  # fmt: skip
        os.unlink(work / ".pid")
        _fsync_tree(work)
        os.rename(work, catalog.dataset_dir(settings, dataset_id))
    except BaseException as exc:
        was_full = _no_space(settings)
        shutil.rmtree(work, ignore_errors=True)  # before anything else: frees the space the failure needs to be told
        full = disk_full(exc, work) or (disk_full(OSError(errno.ENOSPC, "", str(work))) if was_full else None)
        if full is not None and isinstance(exc, Exception):
            raise full from None
        raise
    return manifest


def _no_space(settings: Settings) -> bool:
    """Whether the home's disk is (nearly) full: what a worker killed by a full disk leaves as its only trace."""
    try:
        st = os.statvfs(settings.datasets_dir)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 1024**2


def resolve_encoding(spec: DatasetSpec, count: int) -> str:
    if spec.encoding is not Encoding.auto:
        return str(spec.encoding.value)
    raw_bytes = count * spec.width * spec.height * spec.channels
    return "raw" if raw_bytes <= RAW_AUTO_LIMIT else "png"


def _build(
    task: Task,
    spec: DatasetSpec,
    listing: Listing,
    work: Path,
    dataset_id: str,
    report: ProgressFn,
    workers: int | None,
    started: float,
) -> catalog.Manifest:
    total = sum(len(items) for items in listing.splits.values())
    encoding = resolve_encoding(spec, total)
    shape = (spec.height, spec.width, spec.channels)
    for split, items in listing.splits.items():
        if not items:
            continue
        (work / split).mkdir()
        if encoding == "raw":
            store.create_raw(work / split, len(items), shape)
    config = WorkerConfig(spec_geometry(spec), encoding, spec.jpeg_quality, spec.seed)
    with contextlib.closing(_run_chunks(listing, work, config, total, workers)) as chunks:  # the pool ends here
        results = _collect(chunks, listing, work, encoding, shape, report)
    report("finishing", 0, 1)
    hashes, names = _finish_splits(task, spec, listing, results, work, encoding)  # only the non-empty splits
    train_count = len(hashes.get("train", []))
    if train_count == 0:
        reasons = sorted({s.reason for s in listing.skipped})[:5]
        raise SourceError(f"no usable training image; reasons files were skipped: {reasons}")
    _save_mean(work, results.pixel_sum / train_count)
    duplicates = find_duplicates(hashes, names)
    write_json_atomic(
        work / catalog.REPORT,
        {
            "skipped": [{"path": s.path, "reason": s.reason} for s in listing.skipped],
            "dropped_classes": listing.dropped_classes,
            "duplicates": duplicates.groups,
            **(
                {"warnings": [{"path": w.path, "reason": w.reason} for w in listing.warnings]}
                if listing.warnings
                else {}
            ),
        },
    )
    splits = {
        split: catalog.SplitInfo(
            count=len(hashes[split]), per_class=task.per_output(task.load_targets(work / split), listing.classes)
        )
        for split in SPLITS
        if hashes.get(split)
    }
    manifest = catalog.Manifest(
        id=dataset_id,
        name=spec.name,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        build_seconds=round(time.perf_counter() - started, 3),
        deepyard_version=__version__,
        spec=spec,
        task=task.name,
        target_stats={**listing.stats, **task.target_stats(task.load_targets(work / "train"), listing.classes)},
        encoding=encoding,
        shape=shape,
        classes=listing.classes,
        splits=splits,
        skipped=len(listing.skipped),
        dropped_classes=listing.dropped_classes,
        duplicates=duplicates.summary,
        content_hash=_content_hash(work, listing.classes, task.targets_file),
        size_bytes=sum(p.stat().st_size for p in work.rglob("*") if p.is_file()),
    )
    write_json_atomic(work / catalog.MANIFEST, manifest.model_dump(mode="json"))
    report("finishing", 1, 1)
    return manifest


def _chunks(listing: Listing, work: Path) -> Iterator[Chunk]:
    for split, items in listing.splits.items():
        for start in range(0, len(items), CHUNK):
            sources = [it.source for it in items[start : start + CHUNK]]
            yield Chunk(split, start, sources, work / split, want_sum=split == "train")


def _run_chunks(
    listing: Listing, work: Path, config: WorkerConfig, total: int, workers: int | None
) -> Generator[ChunkResult, None, None]:
    """Process every chunk, in order, in a pool of worker processes or in this process."""
    if workers is None:
        workers = 0 if total < SERIAL_BELOW else _cpus()
    if workers <= 1:
        init_worker(config)
        yield from map(process_chunk, _chunks(listing, work))
        return
    ctx = multiprocessing.get_context("fork") if _can_fork() else _start_forkserver()
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker, initargs=(config,)) as pool:
        yield from _in_order(pool, _chunks(listing, work), ahead=2 * workers)


def _in_order(pool: ProcessPoolExecutor, chunks: Iterator[Chunk], ahead: int) -> Iterator[ChunkResult]:
    """Results in chunk order with at most `ahead` chunks in flight (IDX chunks carry their pixels: bounded
    memory). A worker that dies (killed, out of memory, a write through its memory map on a full disk) breaks
    the pool, which raises here at once instead of waiting forever for the chunk it took with it."""
    pending: deque[Future[ChunkResult]] = deque()
    try:
        for chunk in chunks:
            pending.append(pool.submit(process_chunk, chunk))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    except BrokenProcessPool:
        raise SourceError("a decoding worker process died (killed, out of memory, or the disk is full)") from None
    finally:
        for future in pending:
            future.cancel()


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


def _can_fork() -> bool:
    """fork is the fastest start and works from any script, but is unsafe once other threads run."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


def _start_forkserver() -> multiprocessing.context.ForkServerContext:
    """Workers fork from a server process that has already imported the worker module.

    Used when the caller runs threads (a progress bar, a web server), where fork is unsafe. The server is
    started once per process and reused by every later build. Like any spawned process, it imports the
    caller's main module: scripts must guard their work with `if __name__ == "__main__":`.
    """
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["deepyard.datasets.worker"])
    multiprocessing.forkserver.ensure_running()
    return ctx


class _Collected:
    def __init__(self, listing: Listing, shape: tuple[int, int, int]) -> None:
        self.reasons: dict[str, list[str | None]] = {s: [] for s in listing.splits}
        self.hashes: dict[str, list[bytes]] = {s: [] for s in listing.splits}
        self.offsets: dict[str, list[int]] = {s: [0] for s in listing.splits}
        self.pixel_sum = np.zeros(shape, np.int64)


def _collect(
    results: Iterator[ChunkResult],
    listing: Listing,
    work: Path,
    encoding: str,
    shape: tuple[int, int, int],
    report: ProgressFn,
) -> _Collected:
    """Gather chunk results in order; append encoded bytes to each split's blob file."""
    collected = _Collected(listing, shape)
    blobs = {}
    if encoding != "raw":
        blobs = {s: (work / s / store.BLOB_FILE).open("wb") for s, items in listing.splits.items() if items}
    total = sum(len(items) for items in listing.splits.values())
    done = 0
    report("encoding", 0, total)
    try:
        for result in results:
            collected.reasons[result.split].extend(result.reasons)
            collected.hashes[result.split].extend(result.hashes)
            offsets = collected.offsets[result.split]
            for blob in result.blobs:
                blobs[result.split].write(blob)
                offsets.append(offsets[-1] + len(blob))
            if result.pixel_sum is not None:
                collected.pixel_sum += result.pixel_sum
            done += len(result.reasons)
            report("encoding", done, total)
    finally:
        for fp in blobs.values():
            fp.close()
    return collected


def _finish_splits(
    task: Task, spec: DatasetSpec, listing: Listing, collected: _Collected, work: Path, encoding: str
) -> tuple[dict[str, list[bytes]], dict[str, list[str]]]:
    """Drop skipped slots, write labels, offsets and source names; return kept hashes and names per split."""
    hashes: dict[str, list[bytes]] = {}
    names: dict[str, list[str]] = {}
    for split, items in listing.splits.items():
        if not items:
            continue
        reasons = collected.reasons[split]
        keep = np.array([r is None for r in reasons], dtype=bool)
        for item, reason in zip(items, reasons, strict=True):
            if reason is not None:
                listing.skipped.append(Skipped(item.name, reason))
        folder = work / split
        if encoding == "raw":
            store.compact_raw(folder, keep)
        else:
            np.save(folder / store.OFFSETS_FILE, np.array(collected.offsets[split], dtype=np.int64))
        task.store_targets(folder, [it.target for it, k in zip(items, keep, strict=True) if k], listing.classes, spec)
        kept_names = [it.name for it, k in zip(items, keep, strict=True) if k]
        write_json_atomic(folder / "sources.json", kept_names)
        if not kept_names:  # an empty split is not stored
            shutil.rmtree(folder)
            continue
        hashes[split] = [h for h, k in zip(collected.hashes[split], keep, strict=True) if k]
        names[split] = kept_names
    return hashes, names


def _save_mean(work: Path, mean: np.ndarray) -> None:
    """The training split's mean image: float32 (H, W, C) array, and a PNG to look at."""
    mean = mean.astype(np.float32)
    buf = io.BytesIO()
    np.save(buf, mean)
    write_bytes_atomic(work / catalog.MEAN_ARRAY, buf.getvalue())
    pixels = np.clip(np.rint(mean), 0, 255).astype(np.uint8)
    img = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    write_bytes_atomic(work / catalog.MEAN_IMAGE, buf.getvalue())


def _content_hash(work: Path, classes: list[str], targets_file: str) -> str:
    """sha256 over the output names and, split by split, the stored targets and pixels."""
    digest = hashlib.sha256("\n".join(classes).encode("utf-8", "surrogateescape"))
    for split in SPLITS:
        for name in (targets_file, store.RAW_FILE, store.OFFSETS_FILE, store.BLOB_FILE):
            path = work / split / name
            if path.is_file():
                with path.open("rb") as fp:
                    while block := fp.read(1 << 22):
                        digest.update(block)
    return digest.hexdigest()


def _fsync_tree(folder: Path) -> None:
    """Push every file of the build to disk before the rename that commits it (workers wrote via mmap)."""
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
