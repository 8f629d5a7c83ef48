"""A real server for each test: uvicorn on a free loopback port in a thread, over a temporary home with its own
SQLite file, plus a tiny dataset and a short finished run built for real. Clients talk plain HTTP (httpx)."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from deepyard.config import Settings, load_settings
from deepyard.datasets import create_dataset, make_spec
from deepyard.networks import spec_from_data
from deepyard.train import make_config, train
from deepyard.web import create_app
from deepyard.web.app import JobOptions
from deepyard.web.files import Limits
from tests.conftest import REPO
from tests.train.conftest import write_bars

TINY_NET = {
    "name": "tiny",
    "layers": [
        {"name": "conv", "type": "conv", "out_channels": 6, "kernel": 3},
        {"name": "relu", "type": "relu"},
        {"name": "pool", "type": "max_pool", "kernel": 2},
        {"name": "fc", "type": "linear", "out_features": "num_classes"},
    ],
}


@dataclass
class Server:
    url: str
    settings: Settings
    server: uvicorn.Server
    thread: threading.Thread

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join()


def start_server(settings: Settings, host: str = "127.0.0.1", limits: Limits | None = None,
                 job_options: JobOptions | None = None) -> Server:  # fmt: skip
    """Serve `create_app(settings)` on a free port; returns once the server accepts connections."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(settings, host=host, limits=limits, job_options=job_options)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    started = threading.Event()
    while not started.wait(0.02):  # waits for start-up, asserts nothing about time
        if server.started:
            started.set()
        elif not thread.is_alive():
            raise RuntimeError("the test server did not start")
    return Server(f"http://127.0.0.1:{port}", settings, server, thread)


@pytest.fixture
def web_settings(tmp_path: Path) -> Settings:
    (tmp_path / "data").mkdir()
    return load_settings(tmp_path / "home", data_roots=[tmp_path / "data"])


@pytest.fixture
def dataset_id(web_settings: Settings, tmp_path: Path) -> str:
    write_bars(tmp_path / "data" / "bars", per_class=16)
    spec = make_spec(
        name="bars",
        source={"kind": "folder", "train": tmp_path / "data" / "bars"},
        width=12,
        height=12,
        val_pct=25,
        encoding="raw",
    )
    return create_dataset(web_settings, spec).id


@pytest.fixture
def run_id(web_settings: Settings, dataset_id: str) -> str:
    config = make_config(epochs=1, batch_size=12, device="cpu", log_interval=1)
    return train(web_settings, dataset_id, spec_from_data(TINY_NET), config).run_id


@pytest.fixture
def server(web_settings: Settings) -> Iterator[Server]:
    srv = start_server(web_settings)
    yield srv
    srv.stop()


@pytest.fixture
def make_server() -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def make(settings: Settings, **kwargs: object) -> Server:
        srv = start_server(settings, **kwargs)  # type: ignore[arg-type]
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


ARTIFACTS = REPO / "test-artifacts" / "web"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is missing: `make test` installs it (apt-get install chromium)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert errors == [], errors  # no script error on any page


def shot(page: Page, name: str) -> None:
    """A full-page screenshot under test-artifacts/web/ (git-ignored)."""
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def fill_recipe(page: Page, name: str, epochs: str, lr: str, batch_size: str, solver: str) -> None:
    """Fill the New run form's name and a short CPU recipe."""
    page.fill("#run-name", name)
    page.fill('input[name="epochs"]', epochs)
    page.fill("#lr-values", lr)
    page.fill("#bs-values", batch_size)
    page.select_option('select[name="solver.type"]', solver)
    page.fill('input[name="device"]', "cpu")
