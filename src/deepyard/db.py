"""The embedded database: one SQLite file (WAL) in the home, shared by the server and its job processes.

Migrations are ordered and recorded: each is applied once, in order, inside a transaction, and its name is stored
in the `migrations` table. Every migration is listed in `MIGRATIONS`, in order; never edit one that has shipped,
add a new one. Before migrating a database that already holds some migrations, `connect` backs it up to
`<home>/backups/deepyard-<UTC time>-before-<migration>.db`.

An existing database is never replaced: `connect` refuses (DatabaseError, naming the file, what is wrong and the
way out) a 0-byte file in a home that has been used and a write-ahead log left without its file, which SQLite
would silently replace by an empty database, and a file that is not SQLite, which SQLite may go on reading from
its log or fail on at random. That check reads only the file's size and header, since it runs on every
connection; `deepyard.dbadmin.check` adds SQLite's quick or full integrity check (server start, `deepyard db
check`), and `deepyard.dbadmin` backs up and restores. Not covered by `connect`: damage behind an intact header
shows up when the page is read (sqlite3.DatabaseError, which `database_error` translates) or in `check`.
"""

from __future__ import annotations

import os
import shlex
import sqlite3
import stat
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from pathlib import Path

from deepyard.config import Settings
from deepyard.errors import DatabaseError
from deepyard.migrations import MIGRATIONS as MIGRATIONS  # (name, SQL script), in the order they run

DB_FILE = "deepyard.db"
BACKUPS_DIR = "backups"
SWEEPS_FILE = "sweeps.db"  # Optuna's own SQLite file beside ours (deepyard.sweeps.study); backed up with it
SWEEPS_SUFFIX = ".sweeps.db"  # a backup X.db has its sweeps copy in X.sweeps.db
BUSY_TIMEOUT_S = 30.0  # waiting longer than this for another connection's lock fails ("database is locked")
HEADER_SIZE = 100  # bytes of the SQLite file header
MAGIC = b"SQLite format 3\x00"
STATE = ("datasets", "runs", "jobs", BACKUPS_DIR, "secret.key")  # what a used home holds beside the database


def db_path(settings: Settings) -> Path:
    return settings.home / DB_FILE


def backups_dir(settings: Settings) -> Path:
    return settings.home / BACKUPS_DIR


def connect(settings: Settings) -> sqlite3.Connection:
    """Open (and create or upgrade) the database. Autocommit mode: use `transaction()` for several statements.

    Raises DatabaseError, and changes nothing, when the file is damaged (see the module docstring) or stays locked
    by another connection for `BUSY_TIMEOUT_S`.
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    refuse_damaged(settings)
    with translate_errors(settings):
        conn = open_file(db_path(settings))
        try:
            _upgrade(settings, conn)
        except BaseException:
            conn.close()
            raise
    return conn


def open_file(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _upgrade(settings: Settings, conn: sqlite3.Connection) -> None:
    """Apply `MIGRATIONS`, backing the database up first unless it is new."""
    applied = applied_migrations(conn)
    pending = [name for name, _ in sorted(MIGRATIONS) if name not in applied]
    if applied and pending:
        backup_to(conn, default_backup_path(settings, f"before-{pending[0]}"))
    migrate(conn)


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


def applied_migrations(conn: sqlite3.Connection) -> list[str]:
    """The names recorded in the `migrations` table, in order (none when there is no such table)."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'migrations'").fetchone() is None:
        return []
    return [row[0] for row in conn.execute("SELECT name FROM migrations ORDER BY name")]


# --- damage: refuse, never replace ------------------------------------------------------------------------------


def refuse_damaged(settings: Settings) -> None:
    """Raise DatabaseError when the file is one SQLite would silently replace or cannot read (cheap: size, header)."""
    problem = file_problem(settings)
    if problem is not None:
        raise damaged(settings, problem)


def file_problem(settings: Settings) -> str | None:
    """What is wrong with the database file, judged by its size and header; None when it is usable or absent."""
    path = db_path(settings)
    try:
        info = path.stat()
    except FileNotFoundError:
        wal = file_size(_wal(path))
        if wal:  # SQLite would delete the log and start empty
            return f"is missing, but its write-ahead log {_wal(path).name} ({wal} bytes) is still there"
        return None
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if not stat.S_ISREG(info.st_mode):
        return "is not a file"
    if info.st_size == 0:
        used = used_state(settings)
        return f"is empty (0 bytes) but the home holds {', '.join(used)}: it was truncated" if used else None
    if info.st_size < HEADER_SIZE:
        return f"is only {info.st_size} bytes long, shorter than a SQLite header: it was truncated"
    try:
        return header_problem(read_header(path))
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"


def used_state(settings: Settings) -> list[str]:
    """What the home holds that only a home with a database holds (empty: first use)."""
    found = [name for name in STATE if (settings.home / name).exists()]
    if file_size(_wal(db_path(settings))):
        found.append(_wal(db_path(settings)).name)
    return found


def header_problem(header: bytes) -> str | None:
    if not header.startswith(MAGIC):
        return "is not a SQLite database (it does not start with 'SQLite format 3'): it was overwritten"
    page = int.from_bytes(header[16:18], "big")
    page = 65536 if page == 1 else page
    if page < 512 or page & (page - 1):
        return f"has a damaged header (page size {page})"
    return None


def damaged(settings: Settings, problem: str) -> DatabaseError:
    """The error for a damaged file: the file, what is wrong, and the way out."""
    path, newest = db_path(settings), newest_backup(settings)
    if newest is not None:
        command = f"deepyard --home {shlex.quote(str(settings.home))} db restore {shlex.quote(str(newest))}"
        restore = f"restore the newest backup with `{command}`"
    else:
        restore = f"there is no backup in {backups_dir(settings)} to restore"
    return DatabaseError(
        f"database {path} {problem}. Nothing was changed. Way out: {restore}; or move {path.name} (and "
        f"{path.name}-wal, {path.name}-shm if there) aside to start with an empty database (no jobs, users or owners)"
    )


def database_error(settings: Settings, exc: BaseException) -> DatabaseError | None:
    """The DatabaseError an sqlite3 error stands for (damage, or a lock held too long); None for other errors."""
    code = _error_code(exc)
    if code in (SQLITE_BUSY, SQLITE_LOCKED):
        return DatabaseError(
            f"database {db_path(settings)} is locked: another connection held it for over {BUSY_TIMEOUT_S:.0f} s; "
            "retry, or stop the process holding it"
        )
    if code == SQLITE_CORRUPT:
        return damaged(settings, f"is damaged (SQLite: {exc})")
    if code == SQLITE_NOTADB:
        return damaged(settings, "is not a SQLite database (SQLite: file is not a database)")
    return None


@contextmanager
def translate_errors(settings: Settings) -> Iterator[None]:
    """Re-raise sqlite3 errors that mean damage or a stuck lock as DatabaseError."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        error = database_error(settings, exc)
        if error is None:
            raise
        raise error from exc


SQLITE_BUSY, SQLITE_LOCKED, SQLITE_CORRUPT, SQLITE_NOTADB = 5, 6, 11, 26
_ERROR_TEXT = {"database is locked": SQLITE_BUSY, "malformed": SQLITE_CORRUPT, "not a database": SQLITE_NOTADB}


def _error_code(exc: BaseException) -> int | None:
    if not isinstance(exc, sqlite3.DatabaseError):
        return None
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if isinstance(code, int):
        return code & 0xFF  # the primary code of an extended one
    return next((c for text, c in _ERROR_TEXT.items() if text in str(exc)), None)


# Closing any descriptor of a file drops every POSIX lock this process holds on it, those of its open SQLite
# connections included (SQLite locks with fcntl): a WAL database whose shared lock is gone can be checkpointed and
# its log deleted by another process's last connection while this one still writes to it. So the header is read
# through a descriptor kept open, one per file; only past the 16 most recent files is the oldest closed.
_KEEP_OPEN = 16
_held: OrderedDict[str, tuple[int, int, int]] = OrderedDict()  # path -> (fd, st_dev, st_ino)
_replaced: list[int] = []  # descriptors of files replaced under their path: never closed (see above)
_held_lock = threading.Lock()


def read_header(path: Path) -> bytes:
    key, now_at = str(path), os.stat(path)
    with _held_lock:
        entry = _held.pop(key, None)
        if entry is not None and entry[1:] != (now_at.st_dev, now_at.st_ino):
            _replaced.append(entry[0])
            entry = None
        if entry is None:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            opened = os.fstat(fd)
            entry = (fd, opened.st_dev, opened.st_ino)
        _held[key] = entry
        while len(_held) > _KEEP_OPEN:
            os.close(_held.popitem(last=False)[1][0])
        return os.pread(entry[0], HEADER_SIZE, 0)


def _wal(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# --- backups (taken before migrations; deepyard.dbadmin has check, backup and restore) ------------------


def newest_backup(settings: Settings) -> Path | None:
    """The newest `deepyard-<time>*.db` under `<home>/backups/` (names sort by time), if any."""
    try:
        found = sorted(
            p
            for p in backups_dir(settings).glob("deepyard-*.db")
            if not p.name.endswith(SWEEPS_SUFFIX) and file_size(p) >= HEADER_SIZE
        )
    except OSError:
        return None
    return found[-1] if found else None


def sweeps_copy_of(backup: Path) -> Path:
    """Where the copy of `sweeps.db` taken with the backup `backup` lives: `X.db` -> `X.sweeps.db`."""
    stem = backup.name[: -len(".db")] if backup.name.endswith(".db") else backup.name
    return backup.with_name(stem + SWEEPS_SUFFIX)


def default_backup_path(settings: Settings, label: str = "") -> Path:
    """`<home>/backups/deepyard-<UTC time>[-label].db`, a name not taken yet."""
    stem = f"deepyard-{stamp()}" + (f"-{label}" if label else "")
    path, n = backups_dir(settings) / f"{stem}.db", 1
    while path.exists():
        n += 1
        path = path.with_name(f"{stem}-{n}.db")
    return path


def backup_to(conn: sqlite3.Connection, dest: Path) -> Path:
    """Write a consistent copy of `conn`'s database to `dest` atomically (temp file, fsync, rename)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        with closing(sqlite3.connect(tmp, isolation_level=None)) as copy:
            conn.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, whatever the source's mode
        fsync_path(tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(dest.parent)
    return dest


def stamp() -> str:
    """UTC time for file names: 20261123T145433.123Z (sorts by time)."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%f")[:-3] + "Z"


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
