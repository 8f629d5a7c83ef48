"""The database's schema, as ordered migrations (deepyard.db applies them): every one is listed here, in order;
never edit one that has shipped, add a new one."""

from __future__ import annotations

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
    (
        "0300-jobs-permanent",
        """
        ALTER TABLE jobs ADD COLUMN permanent INTEGER NOT NULL DEFAULT 0
        """,
    ),
    (
        "0310-users-admin",
        """
        ALTER TABLE users ADD COLUMN admin INTEGER NOT NULL DEFAULT 0
        """,
    ),
]
