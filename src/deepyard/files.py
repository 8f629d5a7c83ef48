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
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from deepyard.errors import IntegrityError, InvalidValueError, SourceError


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fp:
            fp.write(data)
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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


def download(url: str, target: Path, max_bytes: int | None = None, timeout: float = 60) -> Path:
    """Fetch `url` into `target` atomically; SourceError (naming the URL) when it cannot be fetched."""
    if urllib.parse.urlparse(url).scheme not in ("http", "https"):
        raise InvalidValueError(f"{url!r} is not an http:// or https:// URL")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read(max_bytes + 1 if max_bytes is not None else -1)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceError(f"cannot download {url!r}: {reason}") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise IntegrityError(f"{url!r} is larger than the {max_bytes:,} bytes announced for it")
    target.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(target, data)
    return target
