"""What a runner sees inside the worker process: `JobContext` (report progress, set the target, the stop event).

Progress reports are kept in memory and written to SQLite by a monitor thread about once a second, so a runner may
report every step for free. The same thread copies the message into the job's log (the worker's stderr) at most
every LOG_S seconds, and the last one at the end, so the log tells how the job goes while it runs. It also reads
the abort request and watches the parent (the scheduler's process): when either says so, `stop` is set and
`stop_cause` says why ("abort" or "interrupt").
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
from typing import Any

import psutil

from deepyard import groups, users
from deepyard.config import Settings
from deepyard.jobs import store

FLUSH_S = 1.0  # seconds between progress writes
WATCH_S = 0.2  # seconds between checks of the parent process
LOG_S = 5.0  # seconds between progress lines in the job's log


class JobStopped(Exception):
    """Raised by a runner that stopped early because `ctx.stop` was set."""


class JobContext:
    """A running job's link to the job system. Thread-safe."""

    def __init__(self, settings: Settings, job_id: str, conn: sqlite3.Connection, target: str | None = None,
                 parent: int | None = None, rank: int = 0, world: int = 1, creates: str | None = None,
                 owner: str | None = None, group: str | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.rank = rank  # under torchrun (a multi-GPU job) only rank 0 writes to the database
        self.world = world
        self.job_id = job_id
        self.stop = threading.Event()
        self.stop_cause: str | None = None
        self._target = target
        self._creates = (creates, owner, group)  # what the target is, who owns it, the group it joins
        self._conn = conn
        self._lock = threading.Lock()
        self._pending: dict[str, Any] = {}
        self._line = ("", "")  # (progress, message) last reported, and when it was last logged
        self._logged, self._logged_at = self._line, -LOG_S
        self._parent = parent
        self._parent_created = _created(parent) if parent else None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def target(self) -> str | None:
        """The dataset or run this job works on, once known (a resumed training job starts with it)."""
        return self._target

    def set_target(self, target: str) -> None:
        """Record the id the job produces or works on; written at once, so pages can link to it. A dataset or run
        the job creates gets the job's owner and joins its group at the same moment."""
        self._target = target
        if self.rank != 0:
            return
        kind, owner, group = self._creates
        with self._lock:
            store.update(self._conn, self.job_id, target=target)
            if kind is not None and owner is not None:
                users.claim(self._conn, kind, target, owner)
            if kind is not None and group is not None:
                groups.join_if_ungrouped(self._conn, kind, target, group)

    def report(self, progress: float | None = None, message: str | None = None, eta_s: float | None = None) -> None:
        """Note progress (0..1), a one-line message and an ETA in seconds; written within about a second."""
        with self._lock:
            if progress is not None:
                self._pending["progress"] = min(1.0, max(0.0, float(progress)))
            if message is not None:
                self._pending["message"] = message
            if message is not None or progress is not None:
                done = f"{100 * self._pending['progress']:3.0f}%" if "progress" in self._pending else self._line[0]
                self._line = (done, message if message is not None else self._line[1])
            if eta_s is not None:
                self._pending["eta_s"] = round(float(eta_s), 1)

    def request_stop(self, cause: str) -> None:
        """Ask the runner to stop: "abort" (the user) or "interrupt" (the server is stopping or gone)."""
        if not self.stop.is_set():
            self.stop_cause = cause
            self.stop.set()

    def poll(self) -> bool:
        """Cheap check for the runner's inner loop: stops when the parent is gone. True when stopping."""
        if not self.stop.is_set() and not self.parent_alive():
            self.request_stop("interrupt")
        return self.stop.is_set()

    def parent_alive(self) -> bool:
        if self._parent is None:
            return True
        if os.getppid() == self._parent:
            return True
        return _created(self._parent) == self._parent_created  # torchrun ranks: the parent is not ours

    def flush(self, final: bool = False) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            if pending and self.rank == 0:
                store.update(self._conn, self.job_id, only_if=("running",), **pending)
            self._log_line(final)

    def _log_line(self, final: bool) -> None:
        """The newest message as a line of the job's log: at most every LOG_S seconds, and the last at the end."""
        now = time.monotonic()
        fresh = self._line != self._logged and self._line[1]
        if self.rank != 0 or not fresh or (now - self._logged_at < LOG_S and not final):
            return
        self._logged, self._logged_at = self._line, now
        print(f"{time.strftime('%H:%M:%S')} {self._line[0]} {self._line[1]}", file=sys.stderr, flush=True)

    def start_monitor(self) -> None:
        if self.rank != 0:
            return  # the other ranks stop when rank 0 says so (see runners.SyncStop)
        self._thread = threading.Thread(target=self._monitor, name="job-monitor", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        self.flush(final=True)

    def _monitor(self) -> None:
        last_flush = 0.0
        while not self._done.wait(WATCH_S):
            self.poll()
            if time.monotonic() - last_flush >= FLUSH_S:
                last_flush = time.monotonic()
                self.flush()
                self._check_abort()

    def _check_abort(self) -> None:
        with self._lock:
            row = self._conn.execute("SELECT status, abort_requested FROM jobs WHERE id = ?", (self.job_id,)).fetchone()
        if row is None or row["abort_requested"] or row["status"] != "running":
            self.request_stop("abort")


def _created(pid: int | None) -> float | None:
    try:
        return psutil.Process(pid).create_time() if pid else None
    except psutil.Error:
        return None
