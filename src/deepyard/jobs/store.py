"""The jobs table: short explicit SQL returning `Job`s. The only module of the job system that issues SQL.

Every status change goes through `transition`, which checks the current status and appends to the history in the
same transaction (BEGIN IMMEDIATE), so a claim or an abort is atomic between the server, the CLI and the workers.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from deepyard import db
from deepyard.jobs.model import FINISHED, Job, JobStatus

_JSON = ("params", "history", "result", "slots", "devices")
_COLUMNS = {"progress", "eta_s", "message", "result", "error", "target", "pid", "devices", "abort_requested",
            "priority", "started", "finished", "permanent"}  # fmt: skip
QUEUE_ORDER = "priority DESC, seq ASC"


def _job(row: sqlite3.Row) -> Job:
    data = dict(row)
    for key in _JSON:
        if data[key] is not None:
            data[key] = json.loads(data[key])
    data.pop("seq")
    data["group"] = data.pop("group_name")
    return Job.model_validate(data)


def _encode(key: str, value: Any) -> Any:
    return json.dumps(value) if key in _JSON and value is not None else value


def insert(conn: sqlite3.Connection, job_id: str, kind: str, params: dict[str, Any], *, owner: str | None,
           priority: int, slots: dict[str, int], target: str | None, group: str | None = None) -> None:  # fmt: skip
    created = db.now()
    with db.transaction(conn):
        conn.execute(
            "INSERT INTO jobs (id, seq, kind, params, status, history, owner, priority, slots, target, created, "
            "group_name) VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs), ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
            (job_id, kind, json.dumps(params), json.dumps([["queued", created]]), owner, priority,
             json.dumps(slots), target, created, group),
        )  # fmt: skip


def find(conn: sqlite3.Connection, job_id: str) -> Job | None:
    row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return None if row is None else _job(row)


def select(conn: sqlite3.Connection, statuses: Iterable[str] | None = None, kind: str | None = None,
           target: str | None = None, order: str = "seq ASC") -> list[Job]:  # fmt: skip
    where, args = [], []
    if statuses is not None:
        wanted = list(statuses)
        where.append(f"status IN ({', '.join('?' for _ in wanted)})")
        args.extend(wanted)
    if kind is not None:
        where.append("kind = ?")
        args.append(kind)
    if target is not None:
        where.append("target = ?")
        args.append(target)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return [_job(r) for r in conn.execute(f"SELECT * FROM jobs{clause} ORDER BY {order}", args)]


def transition(conn: sqlite3.Connection, job_id: str, status: JobStatus, expect: Iterable[str],
               **fields: Any) -> bool:  # fmt: skip
    """Move a job to `status` if it is now in `expect`, appending to its history; False if it was not."""
    unknown = set(fields) - _COLUMNS
    if unknown:
        raise ValueError(f"not job columns: {sorted(unknown)}")
    with db.transaction(conn):
        row = conn.execute("SELECT status, history FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None or row["status"] not in set(expect):
            return False
        when = db.now()
        history = [*json.loads(row["history"]), [status, when]]
        values = dict(fields)
        if status == "running":
            values.setdefault("started", when)
            values.setdefault("finished", None)
        if status == "queued":
            values.update(pid=None, devices=[], finished=None, abort_requested=None, eta_s=None, permanent=False)
        if status in FINISHED:
            values.setdefault("finished", when)
            values.setdefault("eta_s", None)
        sets = ", ".join(f"{k} = ?" for k in values)
        conn.execute(
            f"UPDATE jobs SET status = ?, history = ?{', ' if sets else ''}{sets}"
            + (", seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs)" if status == "queued" else "")
            + " WHERE id = ?",
            (status, json.dumps(history), *(_encode(k, v) for k, v in values.items()), job_id),
        )
        return True


def update(conn: sqlite3.Connection, job_id: str, only_if: Iterable[str] | None = None, **fields: Any) -> bool:
    """Set columns of a job (progress, message, target, pid...) without a status change; False if none matched."""
    unknown = set(fields) - _COLUMNS
    if unknown or not fields:
        raise ValueError(f"not job columns: {sorted(unknown)}" if unknown else "nothing to update")
    sets = ", ".join(f"{k} = ?" for k in fields)
    args: list[Any] = [_encode(k, v) for k, v in fields.items()]
    sql = f"UPDATE jobs SET {sets} WHERE id = ?"
    args.append(job_id)
    if only_if is not None:
        wanted = list(only_if)
        sql += f" AND status IN ({', '.join('?' for _ in wanted)})"
        args.extend(wanted)
    return conn.execute(sql, args).rowcount > 0


def delete(conn: sqlite3.Connection, job_id: str) -> None:
    conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
