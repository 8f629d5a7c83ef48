"""Probe: a run's `source` URL cannot make the server a port scanner or a sink (SSRF), nor freeze it.

A real HTTP server on loopback plays the target: it counts the requests it gets, serves files, redirects,
trickles bytes or never answers. URLs are off unless allow-listed; allowed hosts must resolve to public
addresses (checked on every redirect); the body is capped and the download has a deadline; and the request
that names a URL never fetches it: the training job does.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from deepyard.config import Settings
from deepyard.errors import IntegrityError, InvalidValueError, SourceError
from deepyard.urls import UrlPolicy, fetch
from tests.web.conftest import TINY_NET, Server
from tests.web.test_jobs_infer import wait_jobs

BODY = b"weights!" * 1000  # 8000 bytes


class Target(http.server.ThreadingHTTPServer):
    """The probed host: records every path it is asked for."""

    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[str] = []
        self.redirect_to = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Target

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", self.server.redirect_to)
            self.end_headers()
        elif self.path.startswith("/chunked"):  # no Content-Length: the cap is counted while streaming
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(8):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(BODY), BODY))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path.startswith("/trickle"):  # a byte at a time, forever
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(10_000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                return
        elif self.path.startswith("/hang"):  # accepts, never answers
            time.sleep(30)
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)


@pytest.fixture
def target() -> Iterator[Target]:
    srv = Target()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _run(c: httpx.Client, dataset: str, source: str) -> httpx.Response:
    return c.post("/api/v1/runs", json={"dataset": dataset, "spec": json.dumps(TINY_NET), "source": source,
                                        "config": {"epochs": 1, "device": "cpu"}})  # fmt: skip


def _allowing(settings: Settings, **update: object) -> Settings:
    return settings.model_copy(update={"url_allow": ("127.0.0.1",), **update})


def test_urls_are_off_unless_allow_listed(server: Server, dataset_id: str, target: Target) -> None:
    with server.client() as c:
        for source in (f"{target.url}/x.pt", f"{target.url}/redirect/x.pt", "http://[::1]:1/x.pt",
                       "http://169.254.169.254/latest/meta-data/x.pt"):  # fmt: skip
            res = _run(c, dataset_id, source)
            assert res.status_code == 422, res.text
            assert "downloads from URLs are off" in res.json()["error"]["message"]
    assert target.requests == []  # nothing was fetched, not even to check the URL


def test_an_allowed_host_on_a_loopback_address_is_refused_by_the_job(
    make_server: Callable[..., Server], web_settings: Settings, dataset_id: str, target: Target
) -> None:
    srv = make_server(_allowing(web_settings))
    with srv.client() as c:
        other = _run(c, dataset_id, "http://example.org/x.pt")  # not on the list
        assert other.status_code == 422 and "allow-list" in other.json()["error"]["message"]
        res = _run(c, dataset_id, f"{target.url}/x.pt")
        assert res.status_code == 202, res.text
        assert target.requests == []  # the request itself fetched nothing
        (job,) = wait_jobs(c, [j["id"] for j in res.json()["jobs"]])
    assert job["status"] == "failed"
    assert "resolves to 127.0.0.1, a loopback, private, link-local or reserved address" in str(job["error"])
    assert target.requests == []  # refused before connecting: no port scan through error messages


def test_slow_urls_never_hold_a_request(
    make_server: Callable[..., Server], web_settings: Settings, dataset_id: str, target: Target
) -> None:
    """45 requests naming a URL that never answers: each is answered at once and the server stays responsive."""
    srv = make_server(_allowing(web_settings))

    def submit(i: int) -> int:  # no network: before, the request fetched the weights to find it
        body = {"dataset": dataset_id, "source": f"{target.url}/hang/{i}.pt"}
        return c.post("/api/v1/runs", json=body, timeout=10).status_code

    with srv.client() as c, ThreadPoolExecutor(45) as pool:
        answers = list(pool.map(submit, range(45)))
        health = c.get("/api/v1/health", timeout=10)
        listing = c.get("/api/v1/runs", timeout=10)
    assert answers == [422] * 45  # "holds weights only; give the network", at once
    assert health.status_code == 200 and listing.status_code == 200
    assert target.requests == []


# --- the downloader itself (what the training job runs), against the same real HTTP server ---------------------


def test_fetch_brings_an_allowed_file(target: Target, tmp_path: Path) -> None:
    out = fetch(f"{target.url}/w.pt", tmp_path / "w.pt", UrlPolicy(("127.0.0.1",), allow_private=True))
    assert out.read_bytes() == BODY
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.pt"]


def test_fetch_checks_every_redirect(target: Target, tmp_path: Path) -> None:
    policy = UrlPolicy(("127.0.0.1",), allow_private=True)
    target.redirect_to = f"http://localhost:{target.server_address[1]}/elsewhere.pt"  # a host not on the list
    with pytest.raises(InvalidValueError, match=r"'localhost'.*not on this server's URL allow-list"):
        fetch(f"{target.url}/redirect", tmp_path / "w.pt", policy)
    assert target.requests == ["/redirect"]
    target.redirect_to = "/redirect"  # a loop
    with pytest.raises(SourceError, match="more than 5 redirects"):
        fetch(f"{target.url}/redirect", tmp_path / "w.pt", policy)
    public_only = UrlPolicy(("*",))
    target.redirect_to = f"{target.url}/w.pt"
    with pytest.raises(SourceError, match="loopback"):  # a redirect to loopback is refused like a first hop
        fetch(f"{target.url}/redirect", tmp_path / "w.pt", public_only)
    assert list(tmp_path.iterdir()) == []


def test_fetch_caps_the_size_and_keeps_nothing(target: Target, tmp_path: Path) -> None:
    policy = UrlPolicy(("127.0.0.1",), allow_private=True, max_bytes=5000)
    with pytest.raises(IntegrityError, match="8,000 bytes, over the download limit of 5,000"):
        fetch(f"{target.url}/w.pt", tmp_path / "w.pt", policy)  # refused on its Content-Length
    with pytest.raises(IntegrityError, match="over the download limit of 5,000"):
        fetch(f"{target.url}/chunked", tmp_path / "w.pt", policy)  # counted while streaming
    assert list(tmp_path.iterdir()) == []


def test_fetch_has_an_overall_deadline(target: Target, tmp_path: Path) -> None:
    policy = UrlPolicy(("127.0.0.1",), allow_private=True, deadline_s=1.0)
    with pytest.raises(SourceError, match=r"download deadline|timed out"):
        fetch(f"{target.url}/trickle", tmp_path / "w.pt", policy)  # never idle long enough to time out a read
    with pytest.raises(SourceError, match=r"download deadline|timed out"):
        fetch(f"{target.url}/hang", tmp_path / "w.pt", policy)
    assert list(tmp_path.iterdir()) == []
