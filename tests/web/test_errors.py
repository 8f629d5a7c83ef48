"""One JSON error shape for every error: domain errors, FastAPI's validation errors, unknown routes, bad methods."""

from __future__ import annotations

import pytest

from deepyard.errors import (
    Conflict,
    DeepyardError,
    Forbidden,
    IntegrityError,
    InvalidValueError,
    NotFoundError,
    SourceError,
)
from deepyard.web.errors import AuthRequired, TooLarge, status_for
from tests.web.conftest import Server


def _shape(body: dict[str, object], status: int) -> dict[str, object]:
    assert set(body) == {"error"}
    error = body["error"]
    assert isinstance(error, dict)
    assert {"type", "message", "status"} <= set(error) and error["status"] == status
    assert isinstance(error["message"], str) and error["message"]
    return error


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (AuthRequired(), 401),
        (Forbidden(), 403),
        (NotFoundError(), 404),
        (Conflict(), 409),
        (TooLarge(), 413),
        (InvalidValueError(), 422),
        (SourceError(), 422),
        (IntegrityError(), 500),
        (DeepyardError(), 400),
        (RuntimeError(), 500),
    ],
)
def test_each_error_class_has_its_status(exc: Exception, status: int) -> None:
    assert status_for(exc) == status


def test_error_shape_everywhere(server: Server) -> None:
    with server.client() as c:
        unknown_route = c.get("/api/v1/nothing-here")
        assert _shape(unknown_route.json(), 404)["type"] == "NotFoundError"
        missing = c.get("/api/v1/datasets/no-such-set")
        assert "no-such-set" in str(_shape(missing.json(), 404)["message"])
        validation = c.get("/api/v1/runs/x/metrics", params={"offset": "-3"})
        error = _shape(validation.json(), 422)
        assert error["type"] == "InvalidValueError" and error["detail"][0]["loc"] == ["query", "offset"]  # type: ignore[index]
        body = c.post("/api/v1/networks/check", content=b"{not json", headers={"content-type": "application/json"})
        assert _shape(body.json(), 422)["type"] == "InvalidValueError"
        domain = c.post("/api/v1/networks/check", json={"network": "lenet", "spec": "x"})
        assert "exactly one" in str(_shape(domain.json(), 422)["message"])
        method = c.put("/api/v1/datasets")
        assert _shape(method.json(), 405)["type"] == "MethodNotAllowed"


def test_pages_get_an_html_error_page(server: Server) -> None:
    with server.client() as c:
        res = c.get("/datasets/no-such-set", headers={"accept": "text/html"})
        assert res.status_code == 404 and res.headers["content-type"].startswith("text/html")
        assert "no dataset with id or name" in res.text
