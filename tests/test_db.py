"""The SQLite file: WAL mode, ordered migrations applied once and recorded; a damaged file refused, never replaced;
backups (online, and before each migration) and restore."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from deepyard import db, dbadmin, users
from deepyard.config import Settings
from deepyard.errors import DatabaseError, InvalidValueError


def test_connect_uses_wal_and_records_migrations(settings: Settings) -> None:
    conn = db.connect(settings)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    steps = [("0002-b", "ALTER TABLE t ADD COLUMN y INTEGER"), ("0001-a", "CREATE TABLE t (x INTEGER)")]
    assert db.migrate(conn, steps) == ["0001-a", "0002-b"]  # sorted by name, whatever the list order
    assert db.migrate(conn, steps) == []  # recorded: never applied twice
    conn.execute("INSERT INTO t VALUES (1, 2)")
    names = [r["name"] for r in conn.execute("SELECT name FROM migrations ORDER BY name")]
    assert names == [
        "0001-a",
        "0001-jobs",
        "0002-b",
        "0100-users",
        "0200-groups",
        "0300-jobs-permanent",
        "0310-users-admin",
    ]  # connect() applied db.MIGRATIONS too


def test_failed_migration_rolls_back(settings: Settings) -> None:
    conn = db.connect(settings)
    bad = [("0001-bad", "CREATE TABLE u (x INTEGER); INSERT INTO nowhere VALUES (1)")]
    try:
        db.migrate(conn, bad)
    except Exception as exc:
        assert "nowhere" in str(exc)
    else:
        raise AssertionError("a broken migration must raise")
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'u'").fetchone() is None
    assert [r[0] for r in conn.execute("SELECT name FROM migrations")] == [name for name, _ in db.MIGRATIONS]


# --- a database that exists is never replaced ----------------------------------------------------------------------


def _used_db(settings: Settings) -> bytes:
    """A database with a user in it, closed (so all of it is in the file); returns its bytes."""
    with closing(db.connect(settings)) as conn:
        users.create_user(conn, "alice", "correct horse")
    return db.db_path(settings).read_bytes()


def test_garbage_file_is_refused_and_left_untouched(settings: Settings) -> None:
    settings.home.mkdir(parents=True)
    garbage = b"this is not a database\n" * 100
    db.db_path(settings).write_bytes(garbage)
    with pytest.raises(DatabaseError, match="is not a SQLite database") as caught:
        db.connect(settings)
    assert str(db.db_path(settings)) in str(caught.value)
    assert "move deepyard.db" in str(caught.value)  # the way out, with no backup to offer
    assert db.db_path(settings).read_bytes() == garbage
    assert sorted(p.name for p in settings.home.iterdir()) == ["deepyard.db"]


def test_empty_file_in_a_used_home_is_refused_not_initialised(settings: Settings) -> None:
    _used_db(settings)
    (settings.home / "runs").mkdir()
    db.db_path(settings).write_bytes(b"")  # truncated
    with pytest.raises(DatabaseError, match=r"is empty \(0 bytes\) but the home holds runs: it was truncated"):
        db.connect(settings)
    assert db.db_path(settings).stat().st_size == 0


def test_empty_file_in_a_fresh_home_is_initialised(settings: Settings) -> None:
    settings.home.mkdir(parents=True)
    db.db_path(settings).write_bytes(b"")
    with closing(db.connect(settings)) as conn:
        assert db.applied_migrations(conn) == [name for name, _ in db.MIGRATIONS]


def test_short_file_is_refused(settings: Settings) -> None:
    data = _used_db(settings)
    db.db_path(settings).write_bytes(data[:60])
    with pytest.raises(DatabaseError, match="only 60 bytes long"):
        db.connect(settings)


def test_missing_file_with_its_write_ahead_log_left_is_refused(settings: Settings) -> None:
    settings.home.mkdir(parents=True)
    wal = settings.home / "deepyard.db-wal"
    wal.write_bytes(b"\x37\x7f\x06\x82" + bytes(60))  # SQLite would delete it and start empty
    with pytest.raises(DatabaseError, match=r"is missing, but its write-ahead log deepyard\.db-wal"):
        db.connect(settings)
    assert wal.stat().st_size == 64
    assert not db.db_path(settings).exists()


def test_refusal_names_the_newest_backup_and_the_restore_command(settings: Settings) -> None:
    _used_db(settings)
    dbadmin.backup(settings)
    newest = dbadmin.backup(settings)
    db.db_path(settings).write_bytes(os.urandom(8192))
    with pytest.raises(DatabaseError) as caught:
        db.connect(settings)
    assert f"deepyard --home {settings.home} db restore {newest}" in str(caught.value)


def test_backup_while_a_connection_is_open_holds_its_committed_writes(settings: Settings) -> None:
    conn = db.connect(settings)
    users.create_user(conn, "bob", "correct horse")  # committed into the WAL, not yet in the main file
    assert (settings.home / "deepyard.db-wal").stat().st_size > 0
    path = dbadmin.backup(settings)
    assert path.parent == settings.home / "backups" and path.name.startswith("deepyard-")
    with closing(sqlite3.connect(path)) as copy:
        assert [r[0] for r in copy.execute("SELECT name FROM users")] == ["bob"]
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one self-contained file
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file left
    users.create_user(conn, "carol", "correct horse")  # the open connection goes on working
    conn.close()


def test_backup_refuses_to_overwrite_a_file(settings: Settings, tmp_path: Path) -> None:
    _used_db(settings)
    taken = tmp_path / "taken.db"
    taken.write_bytes(b"mine")
    with pytest.raises(InvalidValueError, match="already exists"):
        dbadmin.backup(settings, taken)
    assert taken.read_bytes() == b"mine"


def test_connect_backs_up_an_older_database_before_migrating_it(settings: Settings) -> None:
    settings.home.mkdir(parents=True)
    with closing(sqlite3.connect(db.db_path(settings), isolation_level=None)) as old:
        assert db.migrate(old, db.MIGRATIONS[:1]) == ["0001-jobs"]  # a database from before users existed
        old.execute(
            "INSERT INTO jobs (id, seq, kind, params, status, history, slots, created) "
            "VALUES ('j1', 1, 'train', '{}', 'done', '[]', '{}', '2026-01-01')"
        )
    with closing(db.connect(settings)) as conn:
        assert db.applied_migrations(conn) == [name for name, _ in db.MIGRATIONS]
    [backup] = list((settings.home / "backups").iterdir())
    assert backup.name.startswith("deepyard-") and backup.name.endswith("-before-0100-users.db")
    with closing(sqlite3.connect(backup)) as copy:
        assert db.applied_migrations(copy) == ["0001-jobs"]
        assert [r[0] for r in copy.execute("SELECT id FROM jobs")] == ["j1"]
    db.connect(settings).close()
    assert len(list((settings.home / "backups").iterdir())) == 1  # nothing pending: no more backups


def test_new_database_takes_no_backup(settings: Settings) -> None:
    db.connect(settings).close()
    assert not (settings.home / "backups").exists()


def test_check_finds_damage_behind_an_intact_header(settings: Settings) -> None:
    data = _used_db(settings)
    assert dbadmin.check(settings, full=True).ok
    db.db_path(settings).write_bytes(data[:4096] + os.urandom(len(data) - 4096))  # page 1 intact, the rest not
    health = dbadmin.check(settings, full=True)
    assert not health.ok and "SQLite" in str(health.problem)
    with closing(sqlite3.connect(db.db_path(settings))) as conn, pytest.raises(sqlite3.DatabaseError) as caught:
        conn.execute("SELECT * FROM users").fetchall()
    error = db.database_error(settings, caught.value)  # what the web layer answers 503 with
    assert error is not None and str(db.db_path(settings)) in str(error)


def test_restore_moves_the_current_file_aside_and_puts_the_backup_in_place(settings: Settings) -> None:
    _used_db(settings)
    backup = dbadmin.backup(settings)
    kept = backup.read_bytes()
    damaged = os.urandom(8192)
    db.db_path(settings).write_bytes(damaged)
    aside = dbadmin.restore(settings, backup)
    assert aside is not None and aside.name.startswith("deepyard.db.damaged-") and aside.read_bytes() == damaged
    assert backup.read_bytes() == kept  # the backup stays as it was
    with closing(db.connect(settings)) as conn:
        assert [u.name for u in users.list_users(conn)] == ["alice"]


def test_restore_refuses_a_file_that_is_not_a_deepyard_database(settings: Settings, tmp_path: Path) -> None:
    current = _used_db(settings)
    other = tmp_path / "other.db"
    with closing(sqlite3.connect(other)) as conn:
        conn.execute("CREATE TABLE notes (x TEXT)")
    with pytest.raises(DatabaseError, match="not Deepyard's"):
        dbadmin.restore(settings, other)
    assert db.db_path(settings).read_bytes() == current
    assert sorted(p.name for p in settings.home.iterdir()) == ["deepyard.db"]


def _studies(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        return [name for (name,) in conn.execute("SELECT study_name FROM studies ORDER BY study_id")]


def _sweeps_store(settings: Settings, *names: str) -> Path:
    """The home's real sweeps store (Optuna's RDB storage, as deepyard.sweeps opens it) holding studies `names`."""
    import optuna

    from deepyard.sweeps.study import storage, store_path

    for name in names:
        optuna.create_study(storage=storage(settings), study_name=name)
    return store_path(settings)


def test_backup_takes_the_sweeps_store_with_it_and_restore_puts_it_back(settings: Settings) -> None:
    _used_db(settings)
    live = _sweeps_store(settings, "first")
    backup = dbadmin.backup(settings)
    copy = db.sweeps_copy_of(backup)
    assert copy.name == backup.name.removesuffix(".db") + ".sweeps.db" and _studies(copy) == ["first"]
    assert db.newest_backup(settings) == backup  # the sweeps copy is never taken for a database backup
    _sweeps_store(settings, "second")
    assert _studies(live) == ["first", "second"]
    dbadmin.restore(settings, backup)
    assert _studies(live) == ["first"]
    (aside,) = [p for p in settings.home.iterdir() if p.name.startswith("sweeps.db.damaged-")]
    assert _studies(aside) == ["first", "second"]  # the replaced store is kept, never deleted


def test_restore_of_a_backup_without_sweeps_leaves_the_sweeps_store_alone(settings: Settings) -> None:
    _used_db(settings)
    backup = dbadmin.backup(settings)  # taken before any sweep
    assert not db.sweeps_copy_of(backup).exists()
    live = _sweeps_store(settings, "kept")
    dbadmin.restore(settings, backup)
    assert _studies(live) == ["kept"]


def test_a_damaged_sweeps_copy_refuses_the_restore_and_changes_nothing(settings: Settings) -> None:
    _used_db(settings)
    _sweeps_store(settings, "first")
    backup = dbadmin.backup(settings)
    db.sweeps_copy_of(backup).write_bytes(b"not a database" * 100)
    before = sorted(p.name for p in settings.home.iterdir())
    current = db.db_path(settings).read_bytes()
    with pytest.raises(DatabaseError, match=r"sweeps copy .* cannot be read"):
        dbadmin.restore(settings, backup)
    assert db.db_path(settings).read_bytes() == current
    assert sorted(p.name for p in settings.home.iterdir()) == before  # nothing staged is left behind
