"""The New run page's table of standard networks (parameters and MACs: seconds of building and tracing each) is
computed once per version and kept in the home's cache."""

from __future__ import annotations

import json

from deepyard.config import Settings
from deepyard.networks import list_networks
from deepyard.web import views


def test_the_network_table_is_kept_in_the_home(settings: Settings) -> None:
    views._NETWORK_ROWS.clear()
    rows = views.list_standard_networks(settings)
    assert [r["name"] for r in rows] == [e.name for e in list_networks()]
    lenet = next(r for r in rows if r["name"] == "lenet")
    assert lenet["params"] > 0 and lenet["macs"] > 0 and lenet["input"] == [1, 28, 28]
    (cached,) = (settings.home / "cache").glob("networks-*.json")
    assert json.loads(cached.read_text()) == rows
    cached.write_text(json.dumps([{**lenet, "description": "read from the cache"}]))
    views._NETWORK_ROWS.clear()  # a new process: the file is read, nothing is built
    assert views.list_standard_networks(settings)[0]["description"] == "read from the cache"
    views._NETWORK_ROWS[next(iter(views._NETWORK_ROWS))] = rows  # as computed, for the tests that follow
