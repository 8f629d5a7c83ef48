"""Probe: sign-in cannot be switched off on a public server, guessed quickly, or bypassed by a test Host name."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from deepyard import db, users
from deepyard.config import Settings
from tests.web.conftest import Server
from tests.web.test_security import PASSWORD, _add_user, _login


def _cli(settings: Settings, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "deepyard", "--home", str(settings.home), *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=120)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def public_server(web_settings: Settings) -> Iterator[str]:
    """`deepyard serve --host 0.0.0.0` as a user starts it (console script, own process), with one user."""
    added = _cli(web_settings, "user", "add", "ada", "--password-stdin", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    port = _free_port()
    cmd = [sys.executable, "-m", "deepyard", "--home", str(web_settings.home), "serve", "--host", "0.0.0.0",
           "--port", str(port), "--no-jobs"]  # fmt: skip
    log = web_settings.home.parent / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    while True:  # until it answers (a start-up failure ends the loop through the exit code)
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_the_last_user_of_a_public_server_is_not_deleted_by_accident(
    public_server: str, web_settings: Settings
) -> None:
    refused = _cli(web_settings, "user", "delete", "ada")
    assert refused.returncode == 2
    assert "last user" in refused.stderr and "reachable from other machines" in refused.stderr, refused.stderr
    assert "local mode" not in refused.stdout + refused.stderr
    with closing(db.connect(web_settings)) as conn:
        assert users.find_user(conn, "ada") is not None
    forced = _cli(web_settings, "user", "delete", "ada", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "refuses every request until a user exists" in forced.stdout
    # the running public server stays closed: no fallback to local mode
    for path in ("/api/v1/runs", "/api/v1/datasets", "/"):
        res = httpx.get(public_server + path, timeout=10)
        assert res.status_code in (401, 303), (path, res.status_code, res.text[:200])
    api = httpx.get(public_server + "/api/v1/runs", timeout=10)
    assert "has no user" in api.json()["error"]["message"]
    assert httpx.get(public_server + "/api/v1/health", timeout=10).status_code == 200


def test_a_public_app_without_users_serves_nothing(
    make_server: Callable[..., Server], web_settings: Settings, tmp_path: Path
) -> None:
    """A server started public whose users are then deleted in the database directly (no CLI check)."""
    user = _add_user(web_settings)
    srv = make_server(web_settings, host="0.0.0.0")
    with srv.client() as c:
        assert _login(c).status_code == 303
        assert c.get("/api/v1/runs").status_code == 200
        with closing(db.connect(web_settings)) as conn:
            users.delete_user(conn, user.name)
        anonymous = httpx.get(srv.url + "/api/v1/runs", timeout=10)
        assert anonymous.status_code == 401 and "has no user" in anonymous.json()["error"]["message"]
        assert c.get("/api/v1/runs").status_code == 401  # the old session died with the user


def test_the_host_check_has_no_test_exception(server: Server) -> None:
    with server.client() as c:
        res = c.get("/api/v1/runs", headers={"host": "testserver"})
    assert res.status_code == 403 and "localhost" in res.json()["error"]["message"]


def test_sign_in_backs_off_per_user_and_per_address(server: Server) -> None:
    _add_user(server.settings)
    with server.client() as c:
        answers = [_login(c, password=f"guess {i}").status_code for i in range(5)]
        assert answers == [401] * 5
        throttled = _login(c)  # the right password, but during the back-off: not even checked
        assert throttled.status_code == 429 and "Too many failed sign-ins" in throttled.text
        wait = int(throttled.headers["retry-after"])
        other = _login(c, name="bob", password="anything")  # another name from the same address
        assert other.status_code == 429
        time.sleep(wait)  # wait as told (the first back-off is 1 s)
        assert _login(c).status_code == 303
        assert c.get("/api/v1/me").json() == {"user": "ada", "admin": False, "auth": True}
