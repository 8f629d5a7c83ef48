"""`deepyard db backup / check / restore`: the home's SQLite file, kept safe.

`backup` uses SQLite's online backup API, so it is safe while the server runs. `restore` never deletes anything:
the current file is moved aside as `deepyard.db.damaged-<UTC time>`. It refuses while a server or `deepyard jobs
work` holds the home's scheduler lock, and asks before replacing the file unless given `--yes` (a server run with
`--no-jobs` holds no lock: stop it first).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from deepyard import db, dbadmin
from deepyard.cli.common import console, print_json
from deepyard.config import Settings
from deepyard.errors import DatabaseError

db_app = typer.Typer(help="The home's database: back it up, check it, restore a backup.", no_args_is_help=True)


@db_app.command("backup")
def backup(
    ctx: typer.Context,
    to: Path | None = typer.Option(
        None, "--to", help="New file or folder (default: <home>/backups/).", show_default=False
    ),
    json: bool = typer.Option(False, "--json", help="One JSON document."),
) -> None:
    """Copy the database with SQLite's online backup API (safe while the server runs)."""
    path = dbadmin.backup(ctx.obj, to)
    sweeps = db.sweeps_copy_of(path)
    sweeps_copy = str(sweeps) if sweeps.is_file() else None
    if json:
        print_json({"path": str(path), "size": path.stat().st_size, "sweeps": sweeps_copy})
    else:
        also = f" (and the sweeps' {db.SWEEPS_FILE} to {sweeps_copy})" if sweeps_copy else ""
        console.print(f"backed up {db.db_path(ctx.obj)} to {path}{also}", highlight=False, soft_wrap=True)


@db_app.command("check")
def check(ctx: typer.Context, json: bool = typer.Option(False, "--json", help="One JSON document.")) -> None:
    """SQLite's integrity check and the migrations applied; exit code 2 when the database is not usable."""
    health = dbadmin.check(ctx.obj, full=True)
    if json:
        print_json(health.to_json())
        if not health.ok:
            raise typer.Exit(2)
    elif health.problem is not None:
        raise db.damaged(ctx.obj, health.problem)
    elif health.size is None:
        console.print(f"no database at {health.path} yet (it is created on first use)", highlight=False, soft_wrap=True)
    else:
        pending = f"; pending: {', '.join(health.pending)}" if health.pending else ""
        console.print(f"ok: {health.path} ({health.size:,} bytes, migrations {', '.join(health.applied)}{pending})",
                      highlight=False, soft_wrap=True)  # fmt: skip


@db_app.command("restore")
def restore(
    ctx: typer.Context,
    backup: Path = typer.Argument(..., help="Backup file (deepyard db backup writes them to <home>/backups/)."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask before replacing the database."),
) -> None:
    """Put a backup in place of the database; the current file is kept as deepyard.db.damaged-<time>."""
    settings: Settings = ctx.obj
    with _home_lock(settings):
        problem = dbadmin.backup_problem(backup.expanduser().absolute())
        if problem is not None:
            raise DatabaseError(f"backup {backup} {problem}; nothing was changed")
        if not yes:
            typer.confirm(f"Replace {db.db_path(settings)} with {backup}? (the current file is kept)", abort=True)
        aside = dbadmin.restore(settings, backup)
    kept = f"; the previous file is now {aside}" if aside else ""
    sweeps = db.sweeps_copy_of(backup.expanduser().absolute())
    also = f"; {db.SWEEPS_FILE} from {sweeps}" if sweeps.is_file() else f"; {db.SWEEPS_FILE} left as it was"
    console.print(f"restored {backup} to {db.db_path(settings)}{kept}{also}", highlight=False, soft_wrap=True)


@contextmanager
def _home_lock(settings: Settings) -> Iterator[None]:
    """Hold the home's scheduler lock (the server and `deepyard jobs work` take it), or refuse."""
    from deepyard.jobs.queue import jobs_dir
    from deepyard.jobs.scheduler import LOCK_FILE

    path = jobs_dir(settings) / LOCK_FILE
    if not path.is_file():  # no scheduler ever ran on this home
        yield
        return
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
            raise DatabaseError(
                f"a server or `deepyard jobs work` (pid {pid}) is using {settings.home}: stop it, then restore"
            ) from None
        yield
    finally:
        os.close(fd)
