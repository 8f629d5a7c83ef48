"""The SQLite file: WAL mode, ordered migrations applied once and recorded."""

from __future__ import annotations

from deepyard import db
from deepyard.config import Settings


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
