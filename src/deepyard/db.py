"""The embedded database: one SQLite file (WAL) in the home, shared by the server and its job processes.

Migrations are ordered and recorded: each is applied once, in order, inside a transaction, and its name is stored
in the `migrations` table. Every migration is listed in `MIGRATIONS`, in order; never edit one that has shipped,
add a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from deepyard.config import Settings

DB_FILE = "deepyard.db"

# (name, SQL script). Names sort in the order they must run.
MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001-jobs",
        """
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            params TEXT NOT NULL,
            status TEXT NOT NULL,
            history TEXT NOT NULL,
            progress REAL NOT NULL DEFAULT 0,
            eta_s REAL,
            message TEXT NOT NULL DEFAULT '',
            result TEXT,
            error TEXT,
            owner TEXT,
            priority INTEGER NOT NULL DEFAULT 0,
            slots TEXT NOT NULL,
            devices TEXT NOT NULL DEFAULT '[]',
            target TEXT,
            pid INTEGER,
            created TEXT NOT NULL,
            started TEXT,
            finished TEXT,
            abort_requested TEXT
        );
        CREATE INDEX jobs_status ON jobs (status, priority, seq);
        CREATE INDEX jobs_target ON jobs (target)
        """,
    ),
    (
        "0100-users",
        """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            password TEXT NOT NULL,
            created TEXT NOT NULL
        );
        CREATE TABLE tokens (
            hash TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            label TEXT NOT NULL,
            created TEXT NOT NULL
        );
        CREATE TABLE sessions (
            hash TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            expires TEXT NOT NULL
        );
        CREATE TABLE owners (
            kind TEXT NOT NULL,
            ref TEXT NOT NULL,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            PRIMARY KEY (kind, ref)
        )
        """,
    ),
    (
        "0200-groups",
        """
        CREATE TABLE groups (
            kind TEXT NOT NULL,
            ref TEXT NOT NULL,
            name TEXT NOT NULL,
            PRIMARY KEY (kind, ref)
        );
        CREATE INDEX groups_name ON groups (name);
        ALTER TABLE jobs ADD COLUMN group_name TEXT
        """,
    ),
]


def connect(settings: Settings) -> sqlite3.Connection:
    """Open (and create or upgrade) the database. Autocommit mode: use `transaction()` for several statements."""
    settings.home.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(settings.home / DB_FILE, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    migrate(conn)
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def migrate(conn: sqlite3.Connection, migrations: list[tuple[str, str]] | None = None) -> list[str]:
    """Apply the migrations not yet recorded, in order; return the names applied."""
    todo = MIGRATIONS if migrations is None else migrations
    conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
    done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
    applied = []
    for name, script in sorted(todo):
        if name in done:
            continue
        with transaction(conn):
            if conn.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)).fetchone():
                continue  # another process applied it meanwhile
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute("INSERT INTO migrations VALUES (?, ?)", (name, now()))
        applied.append(name)
    return applied


def _statements(script: str) -> list[str]:
    """Split a migration script on `;` (migrations hold plain DDL: no semicolons inside strings or triggers)."""
    return [s.strip() for s in script.split(";") if s.strip()]


def now() -> str:
    """UTC timestamp as stored in the database."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
