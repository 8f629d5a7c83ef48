"""Which servers use a home: each `deepyard serve` keeps a record (`<home>/servers/<pid>.json`) while it runs.

The CLI reads them to tell the truth about sign-in: deleting the last user of a home that a public server
(bound to an address other machines reach) is using would leave that server refusing everyone, so the CLI
refuses it unless forced. A record whose process is gone (a killed server) is ignored and removed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psutil

from deepyard.config import Settings
from deepyard.files import read_json, write_json_atomic


@dataclass(frozen=True)
class ServerRecord:
    pid: int
    host: str
    port: int
    public: bool  # bound to a non-loopback address

    @property
    def url(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}/"


def _folder(settings: Settings) -> Path:
    return settings.home / "servers"


def register(settings: Settings, host: str, port: int, public: bool) -> Path:
    """Record this process as a server of the home; returns the record's path (remove it on exit)."""
    path = _folder(settings) / f"{os.getpid()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"pid": os.getpid(), "host": host, "port": port, "public": public})
    return path


def running(settings: Settings) -> list[ServerRecord]:
    """The servers using the home now (records of dead processes are removed)."""
    found = []
    for path in sorted(_folder(settings).glob("*.json")) if _folder(settings).is_dir() else []:
        try:
            data = read_json(path)
            record = ServerRecord(int(data["pid"]), str(data["host"]), int(data["port"]), bool(data["public"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if psutil.pid_exists(record.pid) and record.pid != 0:
            found.append(record)
        else:
            path.unlink(missing_ok=True)
    return found
