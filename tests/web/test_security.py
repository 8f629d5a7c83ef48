"""Security: loopback by default, refusal without users, sign-in, CSRF, tokens, Host checks, ownership."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from contextlib import closing

import httpx
import pytest

from deepyard import db, groups, users
from deepyard.config import Settings
from deepyard.web.security import BindRefused, check_bind
from tests.web.conftest import Server

PASSWORD = "correct horse battery"


def _add_user(settings: Settings, name: str = "ada") -> users.User:
    conn = db.connect(settings)
    try:
        return users.create_user(conn, name, PASSWORD)
    finally:
        conn.close()


def _token(settings: Settings, user: users.User) -> str:
    conn = db.connect(settings)
    try:
        return users.create_token(conn, user, "test")
    finally:
        conn.close()


def _csrf(c: httpx.Client, path: str = "/login") -> str:
    page = c.get(path)
    match = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


def _login(c: httpx.Client, name: str = "ada", password: str = PASSWORD) -> httpx.Response:
    token = _csrf(c)
    return c.post("/login", data={"name": name, "password": password, "csrf_token": token, "next": "/"})


def test_check_bind_refuses_other_addresses_until_a_user_exists(web_settings: Settings) -> None:
    check_bind(web_settings, "127.0.0.1")
    check_bind(web_settings, "::1")
    with pytest.raises(BindRefused, match="deepyard user add"):
        check_bind(web_settings, "0.0.0.0")
    _add_user(web_settings)
    check_bind(web_settings, "0.0.0.0")


def test_serve_cli_refuses_public_bind_without_users(web_settings: Settings) -> None:
    env = {**os.environ}
    proc = subprocess.run(
        [sys.executable, "-m", "deepyard", "--home", str(web_settings.home), "serve", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2 and "deepyard user add" in proc.stderr


def test_user_cli_add_and_token(web_settings: Settings) -> None:
    base = [sys.executable, "-m", "deepyard", "--home", str(web_settings.home), "user"]
    added = subprocess.run(
        [*base, "add", "bob", "--password-stdin"], input=PASSWORD + "\n", capture_output=True, text=True, timeout=120
    )
    assert added.returncode == 0, added.stderr
    short = subprocess.run(
        [*base, "add", "eve", "--password-stdin"], input="short\n", capture_output=True, text=True, timeout=120
    )
    assert short.returncode == 2 and "at least 8" in short.stderr
    token = subprocess.run([*base, "token", "bob"], capture_output=True, text=True, timeout=120).stdout.strip()
    conn = db.connect(web_settings)
    assert users.user_for_token(conn, token) == users.find_user(conn, "bob")
    assert users.authenticate(conn, "bob", PASSWORD) is not None and users.authenticate(conn, "bob", "wrong") is None


def test_local_mode_needs_no_login_but_checks_host(server: Server) -> None:
    with server.client() as c:
        assert c.get("/api/v1/me").json() == {"user": None, "admin": False, "auth": False}
        rebound = c.get("/api/v1/health", headers={"host": "evil.example:80"})
        assert rebound.status_code == 403 and rebound.json()["error"]["type"] == "Forbidden"


def test_sign_in_required_once_a_user_exists(server: Server) -> None:
    _add_user(server.settings)
    with server.client() as c:
        api = c.get("/api/v1/datasets")
        assert api.status_code == 401 and api.json()["error"]["type"] == "AuthRequired"
        page = c.get("/runs/new")
        assert page.status_code == 303 and page.headers["location"] == "/login?next=/runs/new"
        assert c.get("/api/v1/health").status_code == 200
        failed = _login(c, password="not the password")
        assert failed.status_code == 401 and "Wrong user name or password" in failed.text
        ok = _login(c)
        assert ok.status_code == 303
        cookie = ok.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
        assert c.get("/api/v1/me").json() == {"user": "ada", "admin": False, "auth": True}
        assert c.get("/api/v1/datasets").status_code == 200


def test_forged_session_cookie_is_not_a_session(server: Server) -> None:
    _add_user(server.settings)
    with server.client() as c:
        c.cookies.set("dy_session", "made-up.0123456789")
        assert c.get("/api/v1/datasets").status_code == 401


def test_csrf_rejected_without_the_token(server: Server, run_id: str) -> None:
    with server.client() as c:
        token = _csrf(c, "/")
        no_header = c.delete(f"/api/v1/runs/{run_id}")  # carries the cookie: a browser request
        assert no_header.status_code == 403 and "CSRF" in no_header.json()["error"]["message"]
        wrong = c.delete(f"/api/v1/runs/{run_id}", headers={"x-csrf-token": "guess"})
        assert wrong.status_code == 403
        cross = c.delete(f"/api/v1/runs/{run_id}", headers={"x-csrf-token": token, "origin": "http://evil.example"})
        assert cross.status_code == 403 and "cross-origin" in cross.json()["error"]["message"]
        ok = c.delete(f"/api/v1/runs/{run_id}", headers={"x-csrf-token": token, "origin": server.url})
        assert ok.status_code == 200 and ok.json()["deleted"] == run_id


def test_cross_site_form_post_without_cookies_is_refused(server: Server, run_id: str) -> None:
    with server.client() as c:
        res = c.post(f"/api/v1/runs/{run_id}/clone", headers={"sec-fetch-site": "cross-site"})
        assert res.status_code == 403


def test_login_form_needs_its_csrf_field(server: Server) -> None:
    _add_user(server.settings)
    with server.client() as c:
        _csrf(c)
        res = c.post("/login", data={"name": "ada", "password": PASSWORD, "csrf_token": "forged"})
        assert res.status_code == 401


def test_api_token_authenticates_scripts_without_csrf(server: Server, run_id: str) -> None:
    user = _add_user(server.settings)
    token = _token(server.settings, user)
    with server.client() as c:
        bad = c.get("/api/v1/runs", headers={"authorization": "Bearer dy_wrong"})
        assert bad.status_code == 401 and "token" in bad.json()["error"]["message"]
        auth = {"authorization": f"Bearer {token}"}
        assert c.get("/api/v1/me", headers=auth).json()["user"] == "ada"
        assert c.post(f"/api/v1/runs/{run_id}/clone", headers=auth).status_code == 200


def test_only_the_owner_may_delete(server: Server, run_id: str) -> None:
    ada, bob = _add_user(server.settings, "ada"), _add_user(server.settings, "bob")
    conn = db.connect(server.settings)
    users.set_owner(conn, "run", run_id, ada)
    conn.close()
    with server.client() as c:
        as_bob = c.delete(f"/api/v1/runs/{run_id}", headers={"authorization": f"Bearer {_token(server.settings, bob)}"})
        assert as_bob.status_code == 403 and "'ada'" in as_bob.json()["error"]["message"]
        as_ada = c.delete(f"/api/v1/runs/{run_id}", headers={"authorization": f"Bearer {_token(server.settings, ada)}"})
        assert as_ada.status_code == 200


def test_public_bind_marks_cookies_secure_when_https(web_settings: Settings) -> None:
    from deepyard.web import create_app

    app = create_app(web_settings, host="0.0.0.0", https=True)
    assert app.state.guard.https and not app.state.guard.loopback_only


def test_a_dataset_built_by_a_user_is_theirs(server: Server) -> None:
    """The worker records the job's submitter as the owner of what it creates: only they may regroup or delete it."""
    import time

    from tests.train.conftest import write_bars

    folder = server.settings.data_roots[0] / "mine"
    write_bars(folder, per_class=4)
    ada, bob = _add_user(server.settings, "ada"), _add_user(server.settings, "bob")
    as_ada = {"authorization": f"Bearer {_token(server.settings, ada)}"}
    as_bob = {"authorization": f"Bearer {_token(server.settings, bob)}"}
    spec = {"name": "mine", "source": {"kind": "folder", "train": str(folder)}, "width": 12, "height": 12}
    with server.client() as c:
        job = c.post("/api/v1/datasets", json={"spec": spec, "group": "ada's"}, headers=as_ada).json()["job"]
        deadline = time.monotonic() + 120  # a safeguard against a hang, not a timing assertion
        while (job := c.get(f"/api/v1/jobs/{job['id']}", headers=as_ada).json())["status"] != "done":
            assert time.monotonic() < deadline, job
            assert job["status"] in ("queued", "running"), job
            time.sleep(0.1)
        shown = c.get(f"/api/v1/datasets/{job['target']}", headers=as_bob).json()
        assert (shown["owner"], shown["group"]) == ("ada", "ada's")
        regroup = {"kind": "dataset", "ids": [job["target"]], "group": "bob's"}
        refused = c.put("/api/v1/groups", json=regroup, headers=as_bob)
        assert refused.status_code == 403 and "belongs to 'ada'" in refused.json()["error"]["message"]
        assert c.delete(f"/api/v1/datasets/{job['target']}", headers=as_bob).status_code == 403
        assert c.put("/api/v1/groups", json=regroup, headers=as_ada).json()["group"] == "bob's"
        assert c.delete(f"/api/v1/datasets/{job['target']}", headers=as_ada).status_code == 200
    with closing(db.connect(server.settings)) as conn:  # nothing left behind of the deleted dataset
        assert users.owner_of(conn, "dataset", job["target"]) is None
        assert groups.group_of(conn, "dataset", job["target"]) is None
