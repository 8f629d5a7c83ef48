"""Reading a run's metrics.jsonl: one JSON point per line, appended by the trainer (see callbacks.MetricsWriter).

A line that is not a metric point (garbage, a JSON value that is not a point) is skipped and counted, never
fatal; a last line without its newline is being written and is left for the next read. `metric_figures` gives
what listings show of a run (last epoch, wall time, last and best figures, the loss sparkline) and keeps it per
file, reading only the bytes appended since the last call: 200 runs of 1,000 points cost 200 `stat`s a listing,
not 200,000 JSON parses. A file rewritten rather than appended to (a resumed run truncates it to its checkpoint)
is told by its inode, a smaller size, changed bytes just before the offset read so far, or a step going back,
and is read again from the start.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepyard.stored import FileCache, Stamp, keep, settled, stamp_of

METRICS = "metrics.jsonl"
NUMBERS = ("step", "epoch", "train_loss", "lr", "wall", "val_loss", "val_top1", "val_top5")  # numeric when present
SPARK_POINTS = 40
GUARD = 64  # bytes before the read offset compared on each read, to tell an append from a rewrite
CHUNK = 8 << 20  # bytes read at a time


def parse_point(line: bytes) -> dict[str, Any] | None:
    """One line as a metric point (a JSON object with numeric `step` and `epoch`), or None when it is not one."""
    try:
        point = json.loads(line)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested beyond reason
        return None
    if not isinstance(point, dict) or "step" not in point or "epoch" not in point:
        return None
    for key in NUMBERS:
        value = point.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
    return point


def parse_lines(data: bytes) -> tuple[list[dict[str, Any]], list[int]]:
    """The points in whole lines of `data`, and the (0-based) indices of the non-empty lines that are not points."""
    points, bad = [], []
    for i, line in enumerate(data.split(b"\n")):
        if not line.strip():
            continue
        point = parse_point(line)
        if point is None:
            bad.append(i)
        else:
            points.append(point)
    return points, bad


@dataclass(frozen=True)
class Figures:
    """What a listing shows of a run's metrics."""

    epoch: float = 0.0  # the last epoch reached
    wall: float = 0.0  # seconds of training so far
    train_loss: float | None = None  # the last training point's
    val_loss: float | None = None  # the last validation point's
    val_top1: float | None = None  # in %
    best_top1: float | None = None
    last_val: dict[str, float] = field(default_factory=dict)  # every metric of the last validation point
    spark: tuple[float, ...] = ()  # the training loss, at most SPARK_POINTS + 1 values
    skipped: int = 0  # lines that are not metric points
    first_skipped: int | None = None  # the first of them, 1-based

    @property
    def warning(self) -> str | None:
        if not self.skipped:
            return None
        return (f"{METRICS}: {self.skipped} line(s) that are not metric points skipped (the first is line "
                f"{self.first_skipped})")  # fmt: skip


@dataclass
class _Digest:
    """Figures folded in point by point."""

    figures: Figures = field(default_factory=Figures)
    losses: array[float] = field(default_factory=lambda: array("d"))  # every training loss, for the sparkline
    lines: int = 0  # lines read

    def add(self, points: list[dict[str, Any]], bad: list[int]) -> None:
        f = self.figures
        epoch, wall, train, val_loss, top1, best = f.epoch, f.wall, f.train_loss, f.val_loss, f.val_top1, f.best_top1
        last_val = f.last_val
        for p in points:
            epoch, wall = max(epoch, float(p["epoch"])), max(wall, float(p.get("wall", 0.0)))
            if "train_loss" in p:
                train = float(p["train_loss"])
                self.losses.append(train)
            if "val_loss" in p:
                val_loss, top1 = float(p["val_loss"]), p.get("val_top1")
                last_val = {k: float(v) for k, v in p.items() if k.startswith("val_") and isinstance(v, int | float)}
                if top1 is not None:
                    best = max(best if best is not None else -math.inf, float(top1))
        first = f.first_skipped if f.first_skipped is not None else (self.lines + bad[0] + 1 if bad else None)
        self.figures = Figures(
            epoch=epoch, wall=wall, train_loss=train, val_loss=val_loss, val_top1=top1, best_top1=best,
            last_val=last_val, spark=_spark(self.losses), skipped=f.skipped + len(bad), first_skipped=first,
        )  # fmt: skip


def _spark(values: array[float]) -> tuple[float, ...]:
    if len(values) <= SPARK_POINTS:
        return tuple(round(v, 5) for v in values)
    step = len(values) / SPARK_POINTS
    return (*(round(values[int(i * step)], 5) for i in range(SPARK_POINTS)), round(values[-1], 5))


@dataclass
class _Tail:
    """How far one metrics.jsonl has been read, and what it said."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    inode: int = -1
    offset: int = 0  # bytes folded in (whole lines)
    guard: bytes = b""  # the GUARD bytes before `offset`
    last_step: float = -math.inf
    digest: _Digest = field(default_factory=_Digest)
    stamp: Stamp | None = None  # the file's stamp when `digest` was last brought up to date (None: read again)

    def reset(self, inode: int) -> None:
        self.inode, self.offset, self.guard, self.last_step, self.digest = inode, 0, b"", -math.inf, _Digest()

    def update(self, fp: Any, st: os.stat_result) -> None:
        """Fold in the lines appended since the last read; start again when the file was rewritten."""
        if st.st_ino != self.inode or st.st_size < self.offset or not self._guard_holds(fp):
            self.reset(st.st_ino)
        incremental = self.offset > 0
        fp.seek(self.offset)
        for data in _whole_lines(fp):
            points, bad = parse_lines(data)
            steps = [float(p["step"]) for p in points]
            if incremental and steps and min(steps) < self.last_step:  # a rewrite that outgrew the old offset
                self.reset(st.st_ino)
                self.update(fp, st)
                return
            self.digest.add(points, bad)
            self.digest.lines += data.count(b"\n")
            self.last_step = max([self.last_step, *steps])
            self.offset += len(data)
            self.guard = (self.guard + data[-GUARD:])[-GUARD:]

    def _guard_holds(self, fp: Any) -> bool:
        if not self.guard:
            return True
        fp.seek(self.offset - len(self.guard))
        return bool(fp.read(len(self.guard)) == self.guard)


def _whole_lines(fp: Any) -> Iterator[bytes]:
    """CHUNK-sized reads cut after their last newline; a last line without its newline is left unread."""
    rest = b""
    while block := fp.read(CHUNK):
        data = rest + block
        end = data.rfind(b"\n") + 1
        rest = data[end:]
        if end:
            yield data[:end]


class MetricsTails:
    """`Figures` of each metrics.jsonl, brought up to date by reading only what was appended. Thread-safe."""

    def __init__(self) -> None:
        self._tails: dict[str, _Tail] = {}
        self._lock = threading.Lock()

    def figures(self, path: str) -> Figures:
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return Figures()
        if not FileCache.enabled:
            with open(path, "rb") as fp:
                tail = _Tail()
                tail.update(fp, os.fstat(fp.fileno()))
                return tail.digest.figures
        tail = self._tail(path)
        with tail.lock:
            if tail.stamp != stamp_of(st):  # changed (or changed too recently to trust its stamp)
                with open(path, "rb") as fp:
                    st, now = os.fstat(fp.fileno()), time.time_ns()
                    tail.update(fp, st)
                tail.stamp = stamp_of(st) if settled(st, now) else None
            return tail.digest.figures

    def _tail(self, key: str) -> _Tail:
        with self._lock:
            tail = self._tails.get(key)
            if tail is None:
                tail = _Tail()
                keep(self._tails, key, tail)
            return tail


TAILS = MetricsTails()


def metric_figures(folder: str | Path) -> Figures:
    """What listings show of the metrics in a run folder (empty figures when it has none yet)."""
    return TAILS.figures(os.path.join(folder, METRICS))
