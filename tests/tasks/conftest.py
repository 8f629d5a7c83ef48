"""The task tests use the web tests' real server (uvicorn on a loopback port over a temporary home)."""

from tests.web.conftest import server, web_settings  # noqa: F401  (fixtures are found by name)
