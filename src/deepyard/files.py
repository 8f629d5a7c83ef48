"""Atomic file writes: write a temporary file beside the target, fsync, then rename over it.

A reader (or a crash) sees either the old file or the new one, never half of one. Also a file's sha256 and an
HTTP download written the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from deepyard.errors import disk_full
from deepyard.urls import UrlPolicy, fetch


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically; on a full disk, DiskFullError naming `path` (and nothing left behind)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise disk_full(exc, path) or exc from None
    try:
        with os.fdopen(fd, "wb") as fp:
            fp.write(data)
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        full = disk_full(exc, path)
        if full is not None:
            raise full from None
        raise


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write `obj` as indented JSON (ASCII, so any file name survives) to `path` atomically."""
    write_bytes_atomic(path, (json.dumps(obj, indent=2, ensure_ascii=True) + "\n").encode("ascii"))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="ascii"))


def new_id() -> str:
    """`YYYYMMDD-HHMMSS-xxxx` (UTC, 4 random hex digits): sortable by creation time, as DIGITS' job ids."""
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def printable(name: str) -> str:
    """A file name made of surrogate escapes (non-UTF-8 bytes) shown with backslash escapes instead."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fp:
        for block in iter(lambda: fp.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, target: Path, max_bytes: int | None = None, policy: UrlPolicy | None = None) -> Path:
    """Fetch `url` into `target` atomically under `policy` (default: any host, the user at the keyboard asked);
    SourceError (naming the URL) when it cannot be fetched, IntegrityError when it is over `max_bytes`."""
    return fetch(url, target, policy or UrlPolicy.anywhere(), max_bytes)
