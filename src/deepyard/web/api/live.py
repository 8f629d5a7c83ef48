"""/api/v1/events: Server-Sent Events pushing run status and progress, new metric points and hardware figures.

About once a second the stream sends what changed: `status` (a run's status and progress, or every run's for the
home page as `runs`), `job` / `jobs` (the job system's status, progress, ETA and message: a run's training job, or
every recent job), `tasks` (a run's evaluate and export jobs, newest first), `metrics` (points appended to the
run's metrics.jsonl since the offset the client last saw), `files` (the run's snapshots and status history), `log`
(new output of the run's job) and `hardware` (machine CPU and memory; per GPU utilization, memory and temperature
through NVML; the job process's CPU and memory). SSE and not WebSocket: one-way, plain HTTP, reconnects on its
own, and works through the same cookies and middleware as every other request. A client that reconnects passes
`offset` and misses nothing; one that goes away ends its stream (and its polling) at once: the body is closed
however the response ends (deepyard.web.streams.ClosingStream), and the loop checks the connection every push.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from deepyard import jobs
from deepyard.config import Settings
from deepyard.stored import FileCache
from deepyard.train import get_run, list_runs
from deepyard.train.runs import run_dir
from deepyard.web.api.infer import INFER_KINDS
from deepyard.web.api.jobs import job_json, read_log, run_job
from deepyard.web.deps import SettingsDep
from deepyard.web.runinfo import read_metrics, run_summary, snapshots
from deepyard.web.streams import ClosingStream

router = APIRouter(tags=["live"])
INTERVAL = 1.0  # seconds between updates
SHARED_S = 0.5  # seconds the home streams share one listing
TASKS = 10  # evaluate and export jobs of a run sent, newest first


class _Hardware:
    """Samples the machine, the GPUs and (when a job runs) the job's process tree between pushes."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.sampler: jobs.ProcessSampler | None = None

    def sample(self, pid: int | None) -> dict[str, Any]:
        if pid != self.pid:
            self.pid, self.sampler = pid, (jobs.ProcessSampler(pid) if pid else None)
        figures = jobs.hardware_figures(pid, self.sampler)
        mem = psutil.virtual_memory()
        machine = {"cpu_percent": psutil.cpu_percent(interval=None), "memory_used": mem.used, "memory_total": mem.total}
        return {**machine, **figures}


def _event(kind: str, data: Any, event_id: int | None = None) -> str:
    """One SSE message; metrics carry their end offset as the id, which a reconnecting browser sends back."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data)}\n\n"


@dataclass
class _Cursor:
    metrics: int = 0  # bytes of metrics.jsonl sent
    log: int = -1  # bytes of the job log sent (-1: start with its tail)
    log_job: str | None = None


def _run_update(settings: Settings, run_id: str, cur: _Cursor, hw: _Hardware) -> list[str]:
    info = get_run(settings, run_id)
    chunk = read_metrics(run_dir(settings, run_id), cur.metrics)
    out = []
    if chunk["points"] or chunk["reset"]:
        out.append(_event("metrics", chunk, int(chunk["offset"])))
    cur.metrics = int(chunk["offset"])
    out.append(_event("status", run_summary(settings, info)))
    out.append(_event("files", {"snapshots": snapshots(run_dir(settings, run_id)), "history": info.get("history", [])}))
    job = run_job(settings, run_id)
    if job is not None:
        out.append(_event("job", job_json(job)))
        if job.id != cur.log_job:
            cur.log_job, cur.log = job.id, -1
        log = read_log(settings, job.id, max(cur.log, 0) if cur.log >= 0 else 1 << 62)
        if log["text"]:
            out.append(_event("log", log))
        cur.log = int(log["offset"])
    tasks = [job_json(j) for j in reversed(jobs.list_jobs(settings, target=run_id)) if j.kind in INFER_KINDS]
    out.append(_event("tasks", tasks[:TASKS]))
    running = job is not None and job.status == "running"
    out.append(_event("hardware", hw.sample(job.pid if running and job else None)))
    return out


class _Shared:
    """The home streams' `runs` and `jobs` events, made at most once per SHARED_S for every open home stream: twenty
    browsers on the home page cost one listing a second, not twenty (each still samples the hardware itself)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.made: dict[Path, tuple[float, list[str]]] = {}  # home -> (time.monotonic() when made, events)

    def events(self, settings: Settings) -> list[str]:
        if not FileCache.enabled:  # caches off (benchmarks): each stream lists for itself, as before
            return _home_events(settings)
        with self.lock:  # the others wait for the one making them, then share its result
            made, events = self.made.get(settings.home, (-math.inf, []))
            if time.monotonic() - made >= SHARED_S:
                events = _home_events(settings)
                self.made[settings.home] = (time.monotonic(), events)
            return events


def _home_events(settings: Settings) -> list[str]:
    rows = [run_summary(settings, info) for info in list_runs(settings)]
    recent = [job_json(j) for j in reversed(jobs.list_jobs(settings))][:30]
    return [_event("runs", rows), _event("jobs", recent)]


_SHARED = _Shared()


def _home_update(settings: Settings, hw: _Hardware) -> list[str]:
    return [*_SHARED.events(settings), _event("hardware", hw.sample(None))]


_serving: Counter[Path] = Counter()  # home -> event streams being served now (touched on the event loop only)


def serving(settings: Settings) -> int:
    """How many event streams this process is serving now over `settings.home`: each polls the run or the home
    once a second until its client goes away."""
    return _serving[settings.home]


async def _stream(request: Request, settings: Settings, run_id: str | None, offset: int) -> AsyncIterator[str]:
    _serving[settings.home] += 1
    try:
        yield "retry: 2000\n\n"
        last_sent: dict[str, str] = {}
        cursor, hw = _Cursor(metrics=offset), _Hardware()
        while not await request.is_disconnected():
            if run_id is not None:
                events = await run_in_threadpool(_run_update, settings, run_id, cursor, hw)
            else:
                events = await run_in_threadpool(_home_update, settings, hw)
            for event in events:
                kind = event.split("\n", 1)[0]
                if not kind.startswith("id:") and kind != "event: log" and last_sent.get(kind) == event:
                    continue  # unchanged since the last push
                last_sent[kind] = event
                yield event
            yield ": ping\n\n"
            await asyncio.sleep(INTERVAL)
    finally:
        _serving[settings.home] -= 1


@router.get("/events")
async def events(
    request: Request,
    settings: SettingsDep,
    run: str | None = Query(
        None, max_length=200, description="A run id: its status and metrics; absent: every run's status."
    ),
    offset: int = Query(0, ge=0, le=2**62, description="Byte offset in the run's metrics already seen."),
) -> StreamingResponse:
    """Server-Sent Events: `status`/`runs`, `metrics` and `hardware`, about once a second."""
    if run is not None:
        get_run(settings, run)  # 404 before the stream starts
    last = request.headers.get("last-event-id", "")
    offset = max(offset, int(last)) if last.isdigit() else offset
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return ClosingStream(_stream(request, settings, run, offset), media_type="text/event-stream", headers=headers)
