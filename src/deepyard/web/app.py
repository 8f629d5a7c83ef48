"""The app factory: `create_app(settings, ...)` wires the API routers, the pages, static files, the security
middleware and the error handlers, and runs the job scheduler (a thread starting jobs in child processes) for the
app's lifetime. `serve(...)` runs it with uvicorn after the bind check.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from deepyard import __version__, db, jobs, servers
from deepyard.config import Settings
from deepyard.errors import DeepyardError
from deepyard.uploads import sweep_uploads
from deepyard.web import pages, sweep_pages
from deepyard.web.api import compare, datasets, infer, live, models, networks, runs, system
from deepyard.web.api import groups as groups_api
from deepyard.web.api import jobs as jobs_api
from deepyard.web.api import sweeps as sweeps_api
from deepyard.web.api import text as text_api
from deepyard.web.api import textclass as textclass_api
from deepyard.web.api import vision as vision_api
from deepyard.web.errors import install_error_handlers
from deepyard.web.files import Limits
from deepyard.web.security import Guard, Signer, check_bind, is_loopback, load_secret, make_middleware

STATIC = Path(__file__).parent / "static"
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 5000
log = logging.getLogger("deepyard.web")


@dataclass(frozen=True)
class JobOptions:
    """The scheduler the server runs: off (another `deepyard jobs work` runs the jobs), CPU slots, GPUs."""

    run: bool = True
    cpu_slots: int = 1
    gpus: list[int] | None = None  # None: every visible GPU
    abort_timeout_s: float = 30.0  # an aborted job that has not stopped by then is killed
    poll_s: float = 0.25  # seconds between scheduling rounds


def _lifespan(settings: Settings, options: JobOptions) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sweep_uploads(settings)  # uploads a day old that no dataset was built from
        scheduler = None
        if options.run:
            scheduler = jobs.Scheduler(settings, cpu_slots=options.cpu_slots, gpus=options.gpus,
                                       abort_timeout_s=options.abort_timeout_s, poll_s=options.poll_s)  # fmt: skip
            try:
                scheduler.start()
            except DeepyardError as exc:  # `deepyard jobs work` already runs this home's jobs
                log.warning("not scheduling jobs: %s", exc)
                scheduler = None
        app.state.scheduler = scheduler
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.stop()
                scheduler.release()

    return lifespan


def create_app(
    settings: Settings,
    host: str = DEFAULT_HOST,
    https: bool = False,
    limits: Limits | None = None,
    job_options: JobOptions | None = None,
) -> FastAPI:
    """The web app for the home in `settings`, as it will be served on `host` (loopback: Host header checked)."""
    db.connect(settings).close()  # create or upgrade the database before the first request
    app = FastAPI(
        lifespan=_lifespan(settings, job_options or JobOptions()),
        title="Deepyard",
        version=__version__,
        description="Datasets, networks, training runs and live metrics. Every page is built on this API.",
        docs_url="/docs",
        openapi_url="/api/v1/openapi.json",
    )
    app.state.settings = settings
    app.state.limits = limits or Limits()
    app.state.guard = Guard(settings, Signer(load_secret(settings)), is_loopback(host), https)
    app.state.features = {"jobs": True, "infer": True}
    api = APIRouter(prefix="/api/v1")
    for module in (system, jobs_api, datasets, networks, runs, infer, compare, live, groups_api, sweeps_api,
                   models, text_api, textclass_api, vision_api):  # fmt: skip
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(pages.router)
    app.include_router(sweep_pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.middleware("http")(make_middleware(app.state.guard))
    install_error_handlers(app)
    return app


def serve(
    settings: Settings,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    https: bool = False,
    job_options: JobOptions | None = None,
) -> None:
    """Check the bind address, then serve until interrupted (running jobs then stop with a checkpoint)."""
    import uvicorn

    check_bind(settings, host)
    app = create_app(settings, host=host, https=https, job_options=job_options)
    record = servers.register(settings, host, port, public=not is_loopback(host))
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)
    finally:
        record.unlink(missing_ok=True)
