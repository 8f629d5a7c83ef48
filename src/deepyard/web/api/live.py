"""/api/v1/events: Server-Sent Events pushing run status and progress, new metric points and hardware figures.

About once a second the stream sends what changed: `status` (a run's status and progress, or every run's for the
home page), `metrics` (points appended to the run's metrics.jsonl since the offset the client last saw) and
`hardware`. SSE and not WebSocket: one-way, plain HTTP, reconnects on its own, and works through the same
cookies and middleware as every other request. A client that reconnects passes `offset` and misses nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import psutil
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from deepyard.config import Settings
from deepyard.train import get_run, list_runs
from deepyard.train.runs import run_dir
from deepyard.web.deps import SettingsDep
from deepyard.web.runinfo import read_metrics, run_summary

router = APIRouter(tags=["live"])
INTERVAL = 1.0  # seconds between updates


def hardware() -> dict[str, Any]:
    """Machine-wide CPU and memory (per-GPU and per-job figures come from the job system when it runs jobs)."""
    mem = psutil.virtual_memory()
    return {
        "cpu_percent": psutil.cpu_percent(interval=None),
        "memory_used": mem.used,
        "memory_total": mem.total,
        "gpus": [],
    }


def _event(kind: str, data: Any, event_id: int | None = None) -> str:
    """One SSE message; metrics carry their end offset as the id, which a reconnecting browser sends back."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data)}\n\n"


def _run_update(settings: Settings, run_id: str, offset: int) -> tuple[list[str], int]:
    info = get_run(settings, run_id)
    chunk = read_metrics(run_dir(settings, run_id), offset)
    out = []
    if chunk["points"] or chunk["reset"]:
        out.append(_event("metrics", chunk, int(chunk["offset"])))
    out.append(_event("status", run_summary(settings, info)))
    return out, int(chunk["offset"])


def _home_update(settings: Settings) -> list[str]:
    rows = [run_summary(settings, info) for info in list_runs(settings)]
    return [_event("runs", rows)]


async def _stream(request: Request, settings: Settings, run_id: str | None, offset: int) -> AsyncIterator[str]:
    yield "retry: 2000\n\n"
    last_sent: dict[str, str] = {}
    while not await request.is_disconnected():
        if run_id is not None:
            events, offset = await run_in_threadpool(_run_update, settings, run_id, offset)
        else:
            events = await run_in_threadpool(_home_update, settings)
        events.append(_event("hardware", hardware()))
        for event in events:
            kind = event.split("\n", 1)[0]
            if not kind.startswith("id:") and last_sent.get(kind) == event:
                continue  # unchanged since the last push
            last_sent[kind] = event
            yield event
        yield ": ping\n\n"
        await asyncio.sleep(INTERVAL)


@router.get("/events")
async def events(
    request: Request,
    settings: SettingsDep,
    run: str | None = Query(None, description="A run id: its status and metrics; absent: every run's status."),
    offset: int = Query(0, ge=0, description="Byte offset in the run's metrics already seen."),
) -> StreamingResponse:
    """Server-Sent Events: `status`/`runs`, `metrics` and `hardware`, about once a second."""
    if run is not None:
        get_run(settings, run)  # 404 before the stream starts
    last = request.headers.get("last-event-id", "")
    offset = max(offset, int(last)) if last.isdigit() else offset
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_stream(request, settings, run, offset), media_type="text/event-stream", headers=headers)
