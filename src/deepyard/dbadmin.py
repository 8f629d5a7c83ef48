"""Check, back up and restore the home's database (`deepyard db check / backup / restore`).

`check` runs the cheap checks of `db.connect` and then SQLite's quick or full integrity check (server start-up,
`deepyard db check`). `backup` and `restore` use SQLite's online backup API, so a backup can be taken while the
server runs; a restore never deletes anything: the replaced file is kept as `deepyard.db.damaged-<UTC time>`.
The sweeps' own file (`sweeps.db`, Optuna's storage) travels with the database: a backup `X.db` has its copy in
`X.sweeps.db`, and restoring `X.db` puts that copy back too (the replaced one kept the same way).
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepyard import db
from deepyard.config import Settings
from deepyard.errors import DatabaseError, InvalidValueError, NotFoundError


@dataclass(frozen=True)
class Health:
    """What `check` found: the file, its size (None: no file yet), the problem (None: usable), the migrations."""

    path: Path
    size: int | None
    problem: str | None
    applied: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    newest_backup: Path | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_json(self) -> dict[str, Any]:
        backup = None if self.newest_backup is None else str(self.newest_backup)
        return {"path": str(self.path), "size": self.size, "ok": self.ok, "problem": self.problem,
                "applied": self.applied, "pending": self.pending, "newest_backup": backup}  # fmt: skip


def check(settings: Settings, full: bool = False) -> Health:
    """The cheap checks, then SQLite's quick_check (or with `full` its integrity_check); changes nothing."""
    path = db.db_path(settings)
    size = path.stat().st_size if path.is_file() else None
    problem = db.file_problem(settings)
    applied: list[str] = []
    if problem is None and size:
        problem, applied = _sqlite_problem(path, full)
    pending = [name for name, _ in sorted(db.MIGRATIONS) if name not in applied]
    return Health(path, size, problem, applied, pending, db.newest_backup(settings))


def ensure_healthy(settings: Settings) -> None:
    """Raise DatabaseError when `check` (quick) finds a problem: the server's start-up check."""
    health = check(settings)
    if health.problem is not None:
        raise db.damaged(settings, health.problem)


def _sqlite_problem(path: Path, full: bool) -> tuple[str | None, list[str]]:
    """(problem, applied migrations) of an existing SQLite file, read by SQLite."""
    try:
        with closing(sqlite3.connect(path, timeout=db.BUSY_TIMEOUT_S, isolation_level=None)) as conn:
            rows = [str(row[0]) for row in conn.execute(f"PRAGMA {'integrity_check' if full else 'quick_check'}")]
            if rows != ["ok"]:
                return f"fails SQLite's integrity check ({'; '.join(rows[:3])})", []
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "migrations" not in tables:
                return "is a SQLite database but not Deepyard's (it has no migrations table)", []
            return None, db.applied_migrations(conn)
    except sqlite3.DatabaseError as exc:
        return f"cannot be read by SQLite ({exc})", []


def backup(settings: Settings, dest: Path | None = None) -> Path:
    """Copy the database with SQLite's online backup API (safe while the server runs); return the copy's path.

    `dest`: a new file, or a folder to put it in; default `default_backup_path`.
    """
    db.refuse_damaged(settings)
    path = db.db_path(settings)
    if not path.is_file():
        raise NotFoundError(f"there is no database at {path} yet: nothing to back up")
    target = db.default_backup_path(settings) if dest is None else dest.expanduser().absolute()
    if target.is_dir():
        target = target / db.default_backup_path(settings).name
    if target.exists():
        raise InvalidValueError(f"{target} already exists; give a new file name or a folder")
    try:
        with db.translate_errors(settings), closing(db.open_file(path)) as conn:
            db.backup_to(conn, target)
        sweeps = settings.home / db.SWEEPS_FILE
        if sweeps.is_file():
            with closing(sqlite3.connect(sweeps, timeout=db.BUSY_TIMEOUT_S)) as conn:
                db.backup_to(conn, db.sweeps_copy_of(target))
    except OSError as exc:
        raise InvalidValueError(f"cannot write the backup {target}: {exc.strerror}") from exc
    return target


def backup_problem(source: Path) -> str | None:
    """Why `source` cannot be restored (not a file, not SQLite, damaged, not Deepyard's, from a newer version)."""
    if not source.is_file():
        return "is not a file"
    if db.file_size(source) < db.HEADER_SIZE:
        return f"is only {db.file_size(source)} bytes long"
    problem = db.header_problem(db.read_header(source))
    if problem is not None:
        return problem
    problem, applied = _sqlite_problem(source, full=False)
    if problem is None and not applied:
        problem = "is not a Deepyard database (no migrations recorded)"
    unknown = sorted(set(applied) - {name for name, _ in db.MIGRATIONS})
    if problem is None and unknown:
        problem = f"was made by a newer Deepyard (unknown migrations {', '.join(unknown)})"
    return problem


def restore(settings: Settings, source: Path) -> Path | None:
    """Put a backup in place of the database; return where the file it replaced now is (None: there was none).

    The current file (and its -wal, -shm) is moved aside as `deepyard.db.damaged-<UTC time>`, never deleted.
    Stop the server and workers first: connections open on the old file would go on using it.
    """
    source, path = source.expanduser().absolute(), db.db_path(settings)
    if path.exists() and source.exists() and source.samefile(path):
        raise InvalidValueError(f"{source} is the database itself; give a backup file")
    problem = backup_problem(source)
    if problem is not None:
        raise DatabaseError(f"backup {source} {problem}; nothing was changed")
    staged = path.with_name(f".{db.DB_FILE}.restore-{os.getpid()}.tmp")
    try:
        with closing(sqlite3.connect(source, timeout=db.BUSY_TIMEOUT_S)) as conn:
            db.backup_to(conn, staged)
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"backup {source} cannot be read ({exc}); nothing was changed") from exc
    try:
        sweeps_staged = _stage_sweeps(settings, source)
    except DatabaseError:
        staged.unlink(missing_ok=True)
        raise
    aside = _move_aside(path)
    os.replace(staged, path)
    if sweeps_staged is not None:
        sweeps = settings.home / db.SWEEPS_FILE
        _move_aside(sweeps)
        os.replace(sweeps_staged, sweeps)
    db.fsync_path(path.parent)
    return aside


def _stage_sweeps(settings: Settings, source: Path) -> Path | None:
    """The backup's copy of sweeps.db staged beside the live one (None: the backup has none; sweeps.db is then
    left as it is); an unreadable copy refuses the whole restore before anything is replaced."""
    copy = db.sweeps_copy_of(source)
    if not copy.is_file():
        return None
    staged = settings.home / f".{db.SWEEPS_FILE}.restore-{os.getpid()}.tmp"
    try:
        with closing(sqlite3.connect(f"file:{copy}?mode=ro", uri=True, timeout=db.BUSY_TIMEOUT_S)) as conn:
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'studies'").fetchone() is None:
                raise DatabaseError(f"{copy} is not a sweeps store (no Optuna studies table); nothing was changed")
            db.backup_to(conn, staged)
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"the sweeps copy {copy} cannot be read ({exc}); nothing was changed") from exc
    return staged


def _move_aside(path: Path) -> Path | None:
    if not path.exists():
        return None
    aside = path.with_name(f"{path.name}.damaged-{db.stamp()}")
    try:
        os.link(path, aside)  # the file stays at `path` until the backup replaces it
    except OSError:
        os.replace(path, aside)
    for suffix in ("-wal", "-shm"):  # a log left beside the restored file would be replayed into it
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, aside.with_name(aside.name + suffix))
    return aside
