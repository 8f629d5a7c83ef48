"""Who is asking, and may they: loopback binding, sessions, API tokens, CSRF and Host checks.

The rules, in the order the middleware applies them:
1. Host header. Bound to a loopback address, the server answers only requests addressed to a loopback name
   (`localhost`, `127.0.0.1`, `[::1]`), which stops DNS-rebinding pages from reaching it through a browser.
2. Identity. `Authorization: Bearer <token>` (scripts), else the session cookie (browsers). With no user in the
   database a loopback server is in single-user local mode: everyone is the anonymous local user. A server bound
   to any other address (`check_bind` refuses to start one until a user exists) never falls back to it: if its
   last user is deleted while it runs, it refuses every request until a user exists again. The lookup runs in
   a worker thread of its own pool (`AUTH_THREADS`), so it neither blocks the event loop nor waits behind slow
   route handlers; health and static files need no lookup at all.
3. Authentication. Once a user exists every route but the login page, static files and health needs one.
   Failed sign-ins back off per user name and per client address (`LoginThrottle`).
4. CSRF. A state-changing request (POST, PUT, PATCH, DELETE) from a browser (it carries a cookie, an Origin or a
   Sec-Fetch-Site header) must send the `X-CSRF-Token` header equal to its CSRF cookie (double submit; pages and
   their fetch calls do), and its Origin, when sent, must be this server. Token-authenticated requests are
   exempt: a token is never sent by a browser on its own.
Cookies are HttpOnly, SameSite=Lax, Secure when served over https, and signed with the home's secret key.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import anyio
import anyio.to_thread
from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from deepyard import db, users
from deepyard.config import Settings
from deepyard.errors import DatabaseError, DeepyardError
from deepyard.web.errors import error_body

SESSION_COOKIE, CSRF_COOKIE, CSRF_HEADER = "dy_session", "dy_csrf", "x-csrf-token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PUBLIC_PREFIXES = ("/static/", "/login", "/api/v1/health", "/favicon.ico")
NO_LOOKUP = ("/static/", "/api/v1/health", "/favicon.ico")  # answered without touching the database
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
AUTH_THREADS = 8  # threads that look up sessions and tokens, apart from the route handlers' pool


class BindRefused(DeepyardError):
    """Serving on a non-loopback address with no user to sign in."""


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings, host: str) -> None:
    """Refuse to listen on anything but loopback until a user exists (`deepyard user add NAME`)."""
    if is_loopback(host):
        return
    conn = db.connect(settings)
    try:
        if not users.has_users(conn):
            raise BindRefused(
                f"refusing to serve on {host!r} (reachable from other machines) with no user: run "
                "`deepyard user add NAME` first, or serve on 127.0.0.1 (the default)"
            )
    finally:
        conn.close()


def load_secret(settings: Settings) -> bytes:
    """The home's signing key (`secret.key`, created 0600 on first use)."""
    path = settings.home / "secret.key"
    settings.home.mkdir(parents=True, exist_ok=True)
    if not path.is_file():
        fd = os.open(_tmp(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fp:
            fp.write(secrets.token_hex(32))
        os.replace(_tmp(path), path)
    return bytes.fromhex(path.read_text().strip())


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@dataclass(frozen=True)
class Signer:
    key: bytes

    def sign(self, value: str) -> str:
        return f"{value}.{self._mac(value)}"

    def unsign(self, signed: str | None) -> str | None:
        if not signed or "." not in signed:
            return None
        value, _, mac = signed.rpartition(".")
        return value if hmac.compare_digest(mac, self._mac(value)) else None

    def _mac(self, value: str) -> str:
        return hmac.new(self.key, value.encode(), hashlib.sha256).hexdigest()[:40]


class LoginThrottle:
    """Back-off for failed sign-ins, per user name and per client address (in this server process).

    After `free` failures in a row a key must wait `base_s * 2**(failures - free)` seconds (at most `max_s`)
    before its next attempt counts; an attempt during the wait is refused without checking the password. A
    success clears the user's failures (not the address's: one address guessing many names stays slowed).
    """

    def __init__(self, free: int = 5, base_s: float = 1.0, max_s: float = 900.0) -> None:
        self.free, self.base_s, self.max_s = free, base_s, max_s
        self._failures: dict[str, tuple[int, float]] = {}  # key -> (failures, time of the last one)
        self._lock = threading.Lock()

    def wait_s(self, *keys: str) -> float:
        """Seconds before these keys may try again (0: now)."""
        now = time.monotonic()
        with self._lock:
            return max((self._until(key) - now for key in keys), default=0.0)

    def _until(self, key: str) -> float:
        count, last = self._failures.get(key, (0, 0.0))
        if count < self.free:
            return 0.0
        return last + min(self.base_s * 2.0 ** (count - self.free), self.max_s)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > 100_000:  # bounded memory under a flood of names
                self._failures.clear()
            for key in keys:
                self._failures[key] = (self._failures.get(key, (0, 0.0))[0] + 1, now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


@dataclass(frozen=True)
class Guard:
    """The middleware's configuration."""

    settings: Settings
    signer: Signer
    loopback_only: bool  # bound to loopback: check the Host header; otherwise sign-in is always required
    https: bool
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    limiter: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(AUTH_THREADS))

    def connect(self) -> sqlite3.Connection:
        return db.connect(self.settings)

    def set_cookie(self, response: Response, name: str, value: str, max_age: int | None = None) -> None:
        response.set_cookie(
            name, self.signer.sign(value), max_age=max_age, httponly=True, samesite="lax", secure=self.https, path="/"
        )


def _deny(request: Request, status: int, kind: str, message: str) -> Response:
    if status == 401 and not request.url.path.startswith("/api/") and request.method == "GET":
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    return JSONResponse(error_body(kind, message, status), status_code=status)


def _host_ok(request: Request) -> bool:
    host = request.headers.get("host", "")
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return is_loopback(name.strip("[]"))


def _browser(request: Request) -> bool:
    h = request.headers
    return "cookie" in h or "origin" in h or "sec-fetch-site" in h


def _origin_ok(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


def identify(guard: Guard, conn: sqlite3.Connection, request: Request) -> tuple[users.User | None, bool]:
    """(user, via_token). A bad token is an error, not a fallback to the cookie."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return users.user_for_token(conn, auth[7:].strip()), True
    session = guard.signer.unsign(request.cookies.get(SESSION_COOKIE))
    return (users.user_for_session(conn, session) if session else None), False


def csrf_token(guard: Guard, request: Request) -> str:
    """This browser's CSRF token (new when it has none yet; the middleware then sets the cookie)."""
    existing = guard.signer.unsign(request.cookies.get(CSRF_COOKIE))
    token = existing or getattr(request.state, "new_csrf", None) or secrets.token_urlsafe(24)
    if not existing:
        request.state.new_csrf = token
    return token


def _lookup(guard: Guard, request: Request) -> tuple[users.User | None, bool, bool]:
    """(user, via_token, whether any user exists), in a worker thread."""
    conn = guard.connect()
    try:
        user, via_token = identify(guard, conn, request)
        return user, via_token, users.has_users(conn)
    finally:
        conn.close()


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


def make_middleware(guard: Guard) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    async def middleware(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if guard.loopback_only and not _host_ok(request):
            return _deny(request, 403, "Forbidden", "this server answers only requests addressed to localhost")
        path = request.url.path
        if path.startswith(NO_LOOKUP):
            return await call_next(request)
        try:
            user, via_token, has_users = await anyio.to_thread.run_sync(_lookup, guard, request, limiter=guard.limiter)
        except DatabaseError as exc:  # a middleware's errors reach only the 500 handler
            return _deny(request, 503, "DatabaseError", str(exc))
        auth_on = has_users or not guard.loopback_only  # a public server never falls back to local mode
        request.state.user, request.state.via_token, request.state.auth_on = user, via_token, auth_on
        public = path == "/login" or path.startswith(PUBLIC_PREFIXES)
        if via_token and user is None:
            return _deny(request, 401, "AuthRequired", "the API token is not valid (create one: deepyard user token)")
        if auth_on and not has_users and not public:
            return _deny(request, 401, "AuthRequired", "this server is reachable from other machines and has no "
                         "user: nothing is served until one is added (deepyard user add NAME)")  # fmt: skip
        if auth_on and user is None and not public:
            return _deny(request, 401, "AuthRequired", "sign in first (POST /login) or send an API token")
        if request.method in UNSAFE and not via_token and _browser(request):
            if not _origin_ok(request):
                return _deny(request, 403, "Forbidden", "cross-origin request refused")
            sent = request.headers.get(CSRF_HEADER)
            expected = guard.signer.unsign(request.cookies.get(CSRF_COOKIE))
            if path != "/login" and (not sent or not expected or not hmac.compare_digest(sent, expected)):
                return _deny(request, 403, "Forbidden", "CSRF check failed: reload the page and try again")
        response = await call_next(request)
        new = getattr(request.state, "new_csrf", None)
        if new:
            guard.set_cookie(response, CSRF_COOKIE, new)
        return response

    return middleware
