"""The app factory: `create_app(settings, ...)` wires the API routers, the pages, static files, the security
middleware and the error handlers. `serve(...)` runs it with uvicorn after the bind check.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from deepyard import __version__, db
from deepyard.config import Settings
from deepyard.web import pages
from deepyard.web.api import datasets, live, networks, runs, system
from deepyard.web.errors import install_error_handlers
from deepyard.web.files import Limits
from deepyard.web.security import Guard, Signer, check_bind, is_loopback, load_secret, make_middleware

STATIC = Path(__file__).parent / "static"
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 5000


def create_app(
    settings: Settings, host: str = DEFAULT_HOST, https: bool = False, limits: Limits | None = None
) -> FastAPI:
    """The web app for the home in `settings`, as it will be served on `host` (loopback: Host header checked)."""
    db.connect(settings).close()  # create or upgrade the database before the first request
    app = FastAPI(
        title="Deepyard",
        version=__version__,
        description="Datasets, networks, training runs and live metrics. Every page is built on this API.",
        docs_url="/docs",
        openapi_url="/api/v1/openapi.json",
    )
    app.state.settings = settings
    app.state.limits = limits or Limits()
    app.state.guard = Guard(settings, Signer(load_secret(settings)), is_loopback(host), https)
    app.state.features = {"jobs": False, "infer": False}
    api = APIRouter(prefix="/api/v1")
    for module in (system, datasets, networks, runs, live):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.middleware("http")(make_middleware(app.state.guard))
    install_error_handlers(app)
    return app


def serve(settings: Settings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, https: bool = False) -> None:
    """Check the bind address, then serve until interrupted."""
    import uvicorn

    check_bind(settings, host)
    app = create_app(settings, host=host, https=https)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)
