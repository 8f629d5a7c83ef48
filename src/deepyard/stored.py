"""Reading what runs and datasets store, robustly and cheaply: `Damaged`, the record of a stored item whose file
cannot be used, and `FileCache`, files parsed once and kept while they stay the same.

A damaged item (a truncated run.json, a corrupt manifest.json) is listed as damaged with its reason, can be
deleted, and breaks nothing else: listings and pages never fail because of one bad file.

Listings read run.json or manifest.json of every folder on each request; with the cache that is one `stat` per
file while nothing changed. A file counts as unchanged while its stamp (inode, size, mtime_ns, ctime_ns) is: every
write Deepyard makes is a new file renamed into place (a new inode and ctime), and an edit in place changes size or
times. A file changed less than RACY_NS before it was read is parsed again on every read and never kept (git's
"racy" rule: the file system's clock may not tick between two writes), so no change is missed however coarse its
timestamps. The caches hold what a listing shows, never what is changed: read-modify-writes read the file itself.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from deepyard.errors import NotFoundError

T = TypeVar("T")
Stamp = tuple[int, int, int, int]  # (inode, size, mtime_ns, ctime_ns)
RACY_NS = 2_000_000_000  # files changed this recently are not kept (2 s: FAT's timestamp granularity)
MAX_ENTRIES = 20_000  # per cache; past it, the oldest entries go first


@dataclass(frozen=True)
class Damaged:
    """A run or dataset folder whose record file cannot be used: shown as damaged, deletable, never opened."""

    kind: str  # "run" or "dataset"
    id: str  # the folder's name
    file: str  # the file at fault, inside the folder: "run.json", "manifest.json"
    reason: str  # names the file and the problem: "run.json is not valid JSON: Expecting value: line 1 column 1"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "status": "damaged", "file": self.file, "reason": self.reason}


class DamagedError(NotFoundError):
    """The run or dataset asked for exists but is damaged, so there is no usable one (404 on the web, exit 2 in
    the CLI); the message gives the reason and how to delete it."""

    def __init__(self, damaged: Damaged, delete_hint: str) -> None:
        super().__init__(f"{damaged.kind} {damaged.id!r} is damaged: {damaged.reason}; {delete_hint}")
        self.damaged = damaged


def stamp_of(st: os.stat_result) -> Stamp:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def settled(st: os.stat_result, now_ns: int) -> bool:
    """True when the file last changed more than RACY_NS before `now_ns`, so its stamp tells every later change."""
    return max(st.st_mtime_ns, st.st_ctime_ns) < now_ns - RACY_NS


class FileCache(Generic[T]):
    """`parse(path)` of files, each kept while its stamp stays the same. Thread-safe: the server's sync routes run
    in a thread pool; two threads may parse one file at the same time, and both get a correct value."""

    enabled: ClassVar[bool] = True  # False: every read parses again (benchmarks compare; see `set_caching`)

    def __init__(self, parse: Callable[[Path], T]) -> None:
        self._parse = parse
        self._entries: dict[str, tuple[Stamp, T]] = {}
        self._lock = threading.Lock()

    def get(self, path: str | Path) -> T:
        """The parsed file; OSError (FileNotFoundError...) when it cannot be looked at."""
        if not FileCache.enabled:
            return self._parse(Path(path))
        key = os.fspath(path)
        st = os.stat(key)
        stamp = stamp_of(st)
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        now = time.time_ns()
        value = self._parse(Path(key))
        with self._lock:
            if settled(st, now):
                keep(self._entries, key, (stamp, value))
            else:
                self._entries.pop(key, None)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def keep(entries: dict[str, Any], key: str, value: Any) -> None:
    """entries[key] = value, the oldest entries dropped past MAX_ENTRIES (the caller holds the cache's lock)."""
    entries.pop(key, None)  # re-inserted last: dicts keep insertion order
    entries[key] = value
    while len(entries) > MAX_ENTRIES:
        del entries[next(iter(entries))]


def set_caching(enabled: bool) -> None:
    """Turn every file cache on or off for this process (off: each read parses the file again)."""
    FileCache.enabled = enabled
