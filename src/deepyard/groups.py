"""Groups: a name that gathers datasets and runs on the home page (DIGITS' `group_name`), kept in SQLite.

A group is a label, not a folder: setting, changing or clearing it touches nothing on disk, and the same name may
gather runs and datasets alike. Set it when submitting a job (`submit(..., group=)`: the dataset or run the job
creates joins the group as soon as it exists) or later with `set_group`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from deepyard import db
from deepyard.errors import InvalidValueError, choices

KINDS = ("dataset", "run")
MAX_LENGTH = 64


def check_name(name: str | None) -> str | None:
    """The group name as stored: trimmed; None (or blank) means no group."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise InvalidValueError(f"group {name!r} must be text")
    name = " ".join(name.split())
    if len(name) > MAX_LENGTH:
        raise InvalidValueError(f"group {name[:20]!r}... is {len(name)} characters long; at most {MAX_LENGTH}")
    return name or None


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidValueError(f"kind {kind!r} cannot be grouped; valid: {choices(KINDS)}")
    return kind


def set_group(conn: sqlite3.Connection, kind: str, refs: Iterable[str], name: str | None) -> str | None:
    """Put each of `refs` in group `name` (None or blank: take them out of any group); return the stored name."""
    _kind(kind)
    stored = check_name(name)
    with db.transaction(conn):
        for ref in refs:
            if stored is None:
                conn.execute("DELETE FROM groups WHERE kind = ? AND ref = ?", (kind, ref))
            else:
                conn.execute("INSERT OR REPLACE INTO groups VALUES (?, ?, ?)", (kind, ref, stored))
    return stored


def join_if_ungrouped(conn: sqlite3.Connection, kind: str, ref: str, name: str) -> None:
    """Put `ref` in group `name` unless it is in one already (a resumed job keeps the group it was given)."""
    conn.execute("INSERT OR IGNORE INTO groups VALUES (?, ?, ?)", (_kind(kind), ref, name))


def groups_of(conn: sqlite3.Connection, kind: str) -> dict[str, str]:
    """{ref: group name} for every grouped dataset or run."""
    rows = conn.execute("SELECT ref, name FROM groups WHERE kind = ?", (_kind(kind),))
    return {str(r["ref"]): str(r["name"]) for r in rows}


def group_of(conn: sqlite3.Connection, kind: str, ref: str) -> str | None:
    row = conn.execute("SELECT name FROM groups WHERE kind = ? AND ref = ?", (_kind(kind), ref)).fetchone()
    return str(row["name"]) if row else None


def members(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every group, by name, with its datasets and runs: [{"name", "datasets": [ids], "runs": [ids]}]."""
    found: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        for ref, name in groups_of(conn, kind).items():
            found.setdefault(name, {"name": name, "datasets": [], "runs": []})[f"{kind}s"].append(ref)
    return [found[name] for name in sorted(found)]


def group_names(conn: sqlite3.Connection) -> list[str]:
    """Every group name in use, sorted."""
    return [str(r["name"]) for r in conn.execute("SELECT DISTINCT name FROM groups ORDER BY name")]


def forget(conn: sqlite3.Connection, kind: str, ref: str) -> None:
    """Drop the group of a deleted dataset or run."""
    conn.execute("DELETE FROM groups WHERE kind = ? AND ref = ?", (_kind(kind), ref))
