"""The database is never replaced: a damaged deepyard.db is refused by `deepyard serve` and every verb (one line,
exit code 2, the file left as it was), a running server answers 503 instead of hanging, and `deepyard db backup /
check / restore` give the way back. Real SQLite files, the real console script, a real server over HTTP."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from deepyard import db, users
from deepyard.config import Settings
from deepyard.jobs import store
from tests.web.conftest import Server

DEEPYARD = [str(Path(sys.executable).parent / "deepyard")]  # the installed console script
PASSWORD = "correct horse battery"


def deepyard(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [*DEEPYARD, "--home", str(home), *args], input=stdin, capture_output=True, text=True, env=env, timeout=120
    )


def used_home(settings: Settings) -> str:
    """A home that has been used: a user owning a dataset, and a finished job; returns the user's API token."""
    with closing(db.connect(settings)) as conn:
        alice = users.create_user(conn, "alice", PASSWORD)
        token = users.create_token(conn, alice, "tests")
        users.set_owner(conn, "dataset", "d1", alice)
        store.insert(conn, "j1", "train", {}, owner="alice", priority=0, slots={"cpu": 1}, target=None)
        conn.execute("UPDATE jobs SET status = 'done' WHERE id = 'j1'")  # finished: the scheduler leaves it be
    settings.datasets_dir.mkdir(parents=True, exist_ok=True)
    return token


def contents(settings: Settings) -> tuple[list[str], list[str], str | None]:
    """(users, job ids, owner of dataset d1) as stored."""
    with closing(db.connect(settings)) as conn:
        jobs = [row[0] for row in conn.execute("SELECT id FROM jobs")]
        return [u.name for u in users.list_users(conn)], jobs, users.owner_of(conn, "dataset", "d1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: database "), proc.stderr
    return lines[0]


def test_serve_on_a_garbage_database_prints_one_line_and_leaves_the_file(web_settings: Settings) -> None:
    web_settings.home.mkdir(parents=True)
    garbage = os.urandom(16384)
    db.db_path(web_settings).write_bytes(garbage)
    proc = deepyard(web_settings.home, "serve", "--port", str(free_port()), "--no-jobs")
    line = one_error_line(proc)
    assert str(db.db_path(web_settings)) in line and "is not a SQLite database" in line
    assert "move deepyard.db" in line  # the way out
    assert db.db_path(web_settings).read_bytes() == garbage
    assert sorted(p.name for p in web_settings.home.iterdir()) == ["deepyard.db"]


def test_truncated_database_in_a_used_home_is_refused_not_replaced(web_settings: Settings) -> None:
    used_home(web_settings)
    backup = json.loads(deepyard(web_settings.home, "db", "backup", "--json").stdout)["path"]
    os.truncate(db.db_path(web_settings), 0)
    for verb in (["serve", "--port", str(free_port())], ["user", "list"], ["db", "backup"]):
        line = one_error_line(deepyard(web_settings.home, *verb))
        assert "is empty (0 bytes)" in line and "truncated" in line
        assert db.db_path(web_settings).stat().st_size == 0  # not initialised as a new, empty database
    assert f"db restore {backup}" in line  # the way out names the backup
    restored = deepyard(web_settings.home, "db", "restore", backup, "--yes")
    assert restored.returncode == 0, restored.stderr
    assert "sweeps.db left as it was" in restored.stdout
    assert contents(web_settings) == (["alice"], ["j1"], "alice")
    [aside] = [p for p in web_settings.home.iterdir() if p.name.startswith("deepyard.db.damaged-")]
    assert aside.stat().st_size == 0  # the damaged file is kept, not deleted


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_running_server_answers_503_when_its_database_is_damaged(
    web_settings: Settings, make_server: Callable[..., Server], damage: str
) -> None:
    token = used_home(web_settings)
    server = make_server(web_settings)
    path = db.db_path(web_settings)

    def get(url: str, accept: str = "application/json") -> httpx.Response:
        headers = {"authorization": f"Bearer {token}", "accept": accept}
        with httpx.Client(base_url=server.url, timeout=20.0, headers=headers) as client:  # a hang fails, not stalls
            return client.get(url)  # a new connection each time

    assert get("/api/v1/jobs").status_code == 200
    if damage == "garbage":
        spare = path.with_name("garbage.tmp")
        spare.write_bytes(os.urandom(16384))
        os.replace(spare, path)
    else:
        os.truncate(path, 0)
    before = path.read_bytes()
    for url in ("/api/v1/me", "/api/v1/jobs"):
        response = get(url)
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["type"] == "DatabaseError" and error["status"] == 503
        assert str(path) in error["message"]
    page = get("/", accept="text/html")
    assert page.status_code == 503 and str(path) in page.text
    assert path.read_bytes() == before  # left as it was: nothing replaced it


def test_backup_while_the_server_runs_and_restore_round_trip(
    web_settings: Settings, make_server: Callable[..., Server]
) -> None:
    token = used_home(web_settings)
    server = make_server(web_settings)
    with server.client(headers={"authorization": f"Bearer {token}"}) as client:
        assert client.get("/api/v1/jobs").status_code == 200  # the server holds connections open
    made = deepyard(web_settings.home, "db", "backup", "--json")
    assert made.returncode == 0, made.stderr
    backup = Path(json.loads(made.stdout)["path"])
    assert backup.parent == web_settings.home / "backups"
    assert json.loads(made.stdout)["sweeps"] is None  # no sweep ever ran in this home: no sweeps.db to copy
    kept = backup.read_bytes()
    refused = deepyard(web_settings.home, "db", "restore", str(backup), "--yes")
    assert refused.returncode == 2 and "stop it, then restore" in refused.stderr  # the scheduler holds the home
    server.stop()
    with closing(db.connect(web_settings)) as conn:
        users.delete_user(conn, "alice")  # the owner record and the job's owner go with it, the job stays
        conn.execute("DELETE FROM jobs")
    assert contents(web_settings) == ([], [], None)
    restored = deepyard(web_settings.home, "db", "restore", str(backup), "--yes")
    assert restored.returncode == 0, restored.stderr
    assert "sweeps.db left as it was" in restored.stdout
    assert contents(web_settings) == (["alice"], ["j1"], "alice")
    assert backup.read_bytes() == kept
    checked = deepyard(web_settings.home, "db", "check", "--json")
    assert checked.returncode == 0 and json.loads(checked.stdout)["ok"] is True


def test_restore_asks_first_and_refuses_a_bad_backup(web_settings: Settings, tmp_path: Path) -> None:
    used_home(web_settings)
    backup = deepyard(web_settings.home, "db", "backup", "--json")
    path = json.loads(backup.stdout)["path"]
    current = db.db_path(web_settings).read_bytes()
    declined = deepyard(web_settings.home, "db", "restore", path, stdin="n\n")
    assert declined.returncode == 1 and "Replace" in declined.stdout
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"SQLite format 3\x00" + os.urandom(4000))
    refused = deepyard(web_settings.home, "db", "restore", str(bad), "--yes")
    assert refused.returncode == 2 and f"backup {bad}" in refused.stderr and "Traceback" not in refused.stderr
    assert db.db_path(web_settings).read_bytes() == current
    assert not [p for p in web_settings.home.iterdir() if p.name.startswith("deepyard.db.damaged-")]


def test_db_check_exit_codes(web_settings: Settings) -> None:
    used_home(web_settings)
    ok = deepyard(web_settings.home, "db", "check")
    assert ok.returncode == 0 and "ok:" in ok.stdout
    data = db.db_path(web_settings).read_bytes()
    db.db_path(web_settings).write_bytes(data[:4096] + os.urandom(len(data) - 4096))  # header intact, pages not
    report = deepyard(web_settings.home, "db", "check", "--json")
    assert report.returncode == 2 and json.loads(report.stdout)["ok"] is False
    line = one_error_line(deepyard(web_settings.home, "db", "check"))
    assert "SQLite" in line


def test_a_damaged_database_is_never_read_by_sqlite_through_the_server_start(web_settings: Settings) -> None:
    """quick_check at start-up catches damage behind an intact header, before anything writes to the file."""
    used_home(web_settings)
    data = db.db_path(web_settings).read_bytes()
    damaged = data[:4096] + os.urandom(len(data) - 4096)
    db.db_path(web_settings).write_bytes(damaged)
    line = one_error_line(deepyard(web_settings.home, "serve", "--port", str(free_port()), "--no-jobs"))
    assert "SQLite" in line
    assert db.db_path(web_settings).read_bytes() == damaged
    with closing(sqlite3.connect(db.db_path(web_settings))) as conn, pytest.raises(sqlite3.DatabaseError):
        conn.execute("SELECT * FROM users").fetchall()  # it is really damaged
