"""Server-Sent Events: a metric point appended to a run reaches a connected client, with status and hardware; a
client that goes away ends its stream on the server."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator

import pytest

from deepyard.train.runs import run_dir
from deepyard.web.api import live
from tests.web.conftest import Server


def _events(lines: Iterator[str]) -> Iterator[tuple[str, str | None, object]]:
    """(event name, id, data) from an SSE line stream."""
    name, event_id, data = "message", None, []
    for line in lines:
        if line == "":
            if data:
                yield name, event_id, json.loads("\n".join(data))
            name, event_id, data = "message", None, []
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            data.append(line[6:])


def test_run_stream_pushes_new_points_status_and_hardware(server: Server, run_id: str) -> None:
    with server.client() as c:
        offset = c.get(f"/api/v1/runs/{run_id}/metrics").json()["offset"]
        seen: dict[str, object] = {}
        with c.stream("GET", "/api/v1/events", params={"run": run_id, "offset": offset}) as res:
            assert res.headers["content-type"].startswith("text/event-stream")
            for name, event_id, data in _events(res.iter_lines()):
                seen[name] = data
                if name == "hardware" and "metrics" not in seen:
                    with (run_dir(server.settings, run_id) / "metrics.jsonl").open("a") as fp:
                        fp.write(json.dumps({"step": 77, "epoch": 7.0, "train_loss": 0.25, "lr": 0.1}) + "\n")
                if name == "metrics":
                    assert [p["step"] for p in data["points"]] == [77]  # type: ignore[index]
                    assert event_id is not None and int(event_id) > offset
                    break
        assert seen["status"]["id"] == run_id and seen["status"]["status"] == "done"  # type: ignore[index]
        assert seen["hardware"]["memory_total"] > 0  # type: ignore[index]


def test_reconnect_with_last_event_id_skips_points_seen(server: Server, run_id: str) -> None:
    with server.client() as c:
        end = c.get(f"/api/v1/runs/{run_id}/metrics").json()["offset"]
        with c.stream("GET", "/api/v1/events", params={"run": run_id}, headers={"last-event-id": str(end)}) as res:
            for name, _, data in _events(res.iter_lines()):
                assert name != "metrics", data  # everything up to `end` was seen already
                if name == "hardware":
                    break


def test_home_stream_lists_runs_and_unknown_run_is_404(server: Server, run_id: str) -> None:
    with server.client() as c:
        assert c.get("/api/v1/events", params={"run": "nope"}).status_code == 404
        with c.stream("GET", "/api/v1/events") as res:
            for name, _, data in _events(res.iter_lines()):
                if name == "runs":
                    assert [r["id"] for r in data] == [run_id]  # type: ignore[union-attr]
                    break


@pytest.mark.parametrize("stream", ["home", "run"])
def test_a_client_that_goes_away_ends_its_stream_on_the_server(server: Server, run_id: str, stream: str) -> None:
    """Over real HTTP: open the stream, read a few events, drop the connection; the server's generator ends (so
    its polling stops), checked by waiting for the condition, not for a time."""
    params = {"run": run_id} if stream == "run" else {}
    with server.client() as c, c.stream("GET", "/api/v1/events", params=params) as res:
        served = [live.serving(server.settings) for _ in itertools.islice(_events(res.iter_lines()), 3)]
        assert len(served) == 3 and 1 in served  # it was being served while its events came
    deadline = time.monotonic() + 30  # a bound for a busy machine, not a speed
    while live.serving(server.settings) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live.serving(server.settings) == 0
