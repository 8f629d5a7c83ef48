"""The scheduler: a thread in the server (or `deepyard jobs work`) that starts queued jobs in worker processes when
their slots are free, reaps them, and enforces abort timeouts.

Slots: `cpu_slots` jobs on the CPU at a time (dataset builds and CPU training each take one) and one job per GPU
(a job asking for {"gpu": 2} takes two). A CPU job's worker gets its share of the cores as its thread count
(OMP_NUM_THREADS, MKL_NUM_THREADS: cores x its slots / cpu_slots) unless the server's environment sets them.
Order: priority, then submission (FIFO). A job that does not fit blocks the jobs behind it that need the same
kind of slot, so a big job is never starved by small ones; jobs needing the other kind still start. One
scheduler per home (a lock file); `tick()` does one round, so tests can drive it.

Restarts: on start, jobs left "running" whose worker is gone become "interrupted" (and so does their run); a
worker still finishing its last step after its server died keeps its slots until it reports.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO, Any

from deepyard import db
from deepyard.config import Settings
from deepyard.errors import DeepyardError
from deepyard.jobs import store
from deepyard.jobs.hardware import cuda_visible, thread_env, visible_gpus
from deepyard.jobs.kinds import DRIVE_S, DRIVERS, get_kind, load_function
from deepyard.jobs.model import Job
from deepyard.jobs.queue import is_worker, jobs_dir, log_path

LOCK_FILE = "scheduler.lock"


@dataclass
class _Worker:
    job_id: str
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    killed: str | None = None  # why we killed it, when we did


class Scheduler:
    """Starts queued jobs in child processes as slots free up. `start()`/`stop()`, or `tick()` by hand."""

    def __init__(self, settings: Settings, cpu_slots: int = 1, gpus: list[int] | None = None,
                 abort_timeout_s: float = 30.0, poll_s: float = 0.25) -> None:  # fmt: skip
        if cpu_slots < 0:
            raise DeepyardError(f"cpu_slots {cpu_slots} must be 0 or more")
        self.settings = settings
        self.cpu_slots = cpu_slots
        self.gpus = visible_gpus() if gpus is None else list(gpus)
        self.abort_timeout_s = abort_timeout_s
        self.poll_s = poll_s
        self.conn = db.connect(settings)
        self.workers: dict[str, _Worker] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_fd: int | None = None
        self._driven = 0.0  # monotonic time of the last round of the DRIVERS

    # --- lifecycle -----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Take the home's scheduler lock, recover jobs left running, and start the scheduling thread."""
        self.acquire()
        self.recover()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="deepyard-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop scheduling; running jobs stop gracefully (checkpoint) and become "interrupted", resumable."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.interrupt_all(self.abort_timeout_s if timeout_s is None else timeout_s)
        self.release()
        self.conn.close()

    def __enter__(self) -> Scheduler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def acquire(self) -> None:
        jobs_dir(self.settings).mkdir(parents=True, exist_ok=True)
        fd = os.open(jobs_dir(self.settings) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DeepyardError(f"another scheduler (pid {other}) is running for {self.settings.home}") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as exc:  # one bad round must not end scheduling
                print(f"deepyard scheduler: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            self._stop.wait(self.poll_s)

    # --- one round -------------------------------------------------------------------------------------------------

    def tick(self) -> list[str]:
        """Reap finished workers, enforce abort timeouts, let the drivers submit, start what fits; return the ids
        started."""
        self.reap()
        self.enforce_abort_timeouts()
        self.drive()
        return self.start_ready()

    def drive(self, force: bool = False) -> None:
        """Run each of the DRIVERS (e.g. the sweeps' trials), at most every DRIVE_S seconds unless `force`."""
        if not force and time.monotonic() - self._driven < DRIVE_S:
            return
        self._driven = time.monotonic()
        capacity = len(self.gpus) or self.cpu_slots
        for ref in DRIVERS:
            try:
                load_function(ref)(self.settings, capacity)
            except DeepyardError as exc:  # one driver's trouble must not stop the scheduling
                print(f"deepyard scheduler: {ref}: {exc}", file=sys.stderr, flush=True)

    def recover(self) -> list[str]:
        """Mark jobs left "running" by a previous scheduler whose worker is gone as interrupted."""
        found = []
        for job in store.select(self.conn, ["running"]):
            if job.id not in self.workers and not (job.pid and is_worker(job.pid, job.id)):
                self._finish(job, "interrupted", message="interrupted: its worker was gone when the scheduler started")
                found.append(job.id)
        return found

    def reap(self) -> None:
        for job_id, worker in list(self.workers.items()):
            code = worker.proc.poll()
            if code is None:
                continue
            worker.log.close()
            del self.workers[job_id]
            job = store.find(self.conn, job_id)
            if job is None or job.status != "running":
                continue  # it reported its own outcome
            if worker.killed:
                self._finish(job, "aborted" if worker.killed == "abort" else "interrupted", error=_killed(code))
            else:
                self._finish(job, "failed", error=f"the worker process died without reporting: {_exit(code)}")
        for job in store.select(self.conn, ["running"]):  # orphans of an earlier scheduler
            if job.id not in self.workers and not (job.pid and is_worker(job.pid, job.id)):
                self._finish(job, "interrupted", message="interrupted: the server stopped or went away")

    def enforce_abort_timeouts(self) -> None:
        now = time.time()
        for job in store.select(self.conn, ["running"]):
            if job.abort_requested and now - _epoch(job.abort_requested) > self.abort_timeout_s and job.pid:
                worker = self.workers.get(job.id)
                if worker is not None and worker.killed is None:
                    worker.killed = "abort"
                    _kill_group(job.pid)
                elif worker is None and is_worker(job.pid, job.id):
                    _kill_group(job.pid)
                    self._finish(job, "aborted", error=_killed(-signal.SIGKILL))

    def start_ready(self) -> list[str]:
        running = store.select(self.conn, ["running"])
        free_cpu = self.cpu_slots - sum(j.slots.get("cpu", 0) for j in running)
        used = {d for j in running for d in j.devices}
        free_gpus = [g for g in self.gpus if g not in used]
        blocked: set[str] = set()
        started = []
        for job in store.select(self.conn, ["queued"], order=store.QUEUE_ORDER):
            need_cpu, need_gpu = job.slots.get("cpu", 0), job.slots.get("gpu", 0)
            kinds = {k for k in ("cpu", "gpu") if job.slots.get(k)}
            if need_cpu > self.cpu_slots or need_gpu > len(self.gpus):
                have = f"{self.cpu_slots} cpu slot(s) and {len(self.gpus)} GPU(s)"
                store.transition(self.conn, job.id, "failed", ("queued",),
                                 error=f"needs {job.slots} but this scheduler has {have}")  # fmt: skip
                continue
            if kinds & blocked:
                continue
            if need_cpu > free_cpu or need_gpu > len(free_gpus):
                blocked |= kinds
                continue
            devices, free_gpus = free_gpus[:need_gpu], free_gpus[need_gpu:]
            if self._launch(job, devices):
                free_cpu -= need_cpu
                started.append(job.id)
        return started

    # --- processes -------------------------------------------------------------------------------------------------

    def _launch(self, job: Job, devices: list[int]) -> bool:
        if not store.transition(self.conn, job.id, "running", ("queued",), devices=devices, progress=0.0,
                                message="starting", error=None):  # fmt: skip
            return False  # aborted meanwhile
        env = {**os.environ, **self.settings.to_env(),  # the worker reads the server's roots, not its own
               "CUDA_VISIBLE_DEVICES": cuda_visible(devices) if devices else "",
               **thread_env(job.slots.get("cpu", 0), self.cpu_slots)}  # its share of the cores  # fmt: skip
        cmd = [sys.executable, "-m", "deepyard.jobs.worker", str(self.settings.home), job.id, "--parent",
               str(os.getpid())]  # fmt: skip
        if len(devices) > 1 and get_kind(job.kind).distributed:  # one process per GPU (DDP), rank 0 reports
            cmd[1:2] = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={len(devices)}", "-m"]
        try:
            jobs_dir(self.settings).mkdir(parents=True, exist_ok=True)
            log = log_path(self.settings, job.id).open("ab")
        except OSError as exc:
            store.transition(self.conn, job.id, "failed", ("running",), error=f"cannot write the job's log: {exc}")
            return False
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)  # fmt: skip
        except OSError as exc:
            log.close()
            store.transition(self.conn, job.id, "failed", ("running",), error=f"cannot start a worker: {exc}")
            return False
        self.workers[job.id] = _Worker(job.id, proc, log)
        store.update(self.conn, job.id, pid=proc.pid)
        return True

    def interrupt_all(self, timeout_s: float) -> None:
        """SIGTERM every worker (graceful stop, checkpoint); SIGKILL those still alive after `timeout_s`."""
        for worker in self.workers.values():
            worker.killed = "interrupt"
            _signal(worker.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for worker in self.workers.values():
            try:
                worker.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill_group(worker.proc.pid)
                worker.proc.wait()
        self.reap()

    def _finish(self, job: Job, status: str, **fields: Any) -> None:
        """End a job whose worker could not report, and mark its run the same way (run.json still says running)."""
        ended = store.transition(self.conn, job.id, status, ("running",), **fields)  # type: ignore[arg-type]
        if ended and job.kind == "train" and job.target:
            _mark_run(self.settings, job.target, status, fields.get("error"))


def _mark_run(settings: Settings, run_id: str, status: str, error: str | None) -> None:
    from deepyard.train.runs import get_run, set_status

    try:
        if get_run(settings, run_id)["status"] in ("running", "queued"):
            extra: dict[str, Any] = {"error": error} if error else {}
            set_status(settings, run_id, status, **extra)
    except DeepyardError:
        pass  # the run folder is gone: nothing to mark


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, sig)


def _kill_group(pid: int) -> None:
    """SIGKILL the worker and everything it started (it leads its own process group)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        _signal(pid, signal.SIGKILL)


def _exit(code: int) -> str:
    if code < 0:
        name = signal.Signals(-code).name
        hint = " (the kernel's out-of-memory killer sends SIGKILL)" if name == "SIGKILL" else ""
        return f"killed by signal {name}{hint}"
    return f"exit code {code}"


def _killed(code: int) -> str:
    return f"did not stop in time after the request; {_exit(code)}"


def _epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp).timestamp()
