"""The hostile probes share the web tests' real-server fixtures (uvicorn on a loopback port over a temporary home)."""

from tests.web.conftest import (  # noqa: F401  (fixtures are found by name)
    dataset_id,
    make_server,
    run_id,
    server,
    web_settings,
)
