"""Uploaded files the server keeps for a while: `<home>/uploads/<id>/` (zips of class folders, extracted by
deepyard.web.files). An upload is only a source: once a dataset is built from it, the dataset holds its own copy,
so the upload goes (`release_upload`); one never used goes after a day (`sweep_uploads`, run when the server
starts and on each new upload), as do unfinished extractions and temporary files left by a killed server.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from deepyard.config import Settings

MAX_AGE_S = 24 * 3600.0


def uploads_dir(settings: Settings) -> Path:
    return settings.home / "uploads"


def sweep_uploads(settings: Settings, max_age_s: float = MAX_AGE_S, now: float | None = None) -> list[str]:
    """Remove the uploads (and leftover temporary entries) last changed more than `max_age_s` ago; their names."""
    root = uploads_dir(settings)
    if not root.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - max_age_s
    removed = []
    for entry in sorted(root.iterdir()):
        try:
            if entry.lstat().st_mtime >= cutoff:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except FileNotFoundError:  # another sweep or a release got there first
            continue
        removed.append(entry.name)
    return removed


def upload_of(settings: Settings, path: Path | str) -> Path | None:
    """The upload folder (`<home>/uploads/<id>`) that `path` lies in, else None."""
    root = uploads_dir(settings).resolve()
    try:
        relative = Path(path).resolve().relative_to(root)
    except ValueError:
        return None
    if not relative.parts or relative.parts[0].startswith("."):
        return None
    return root / relative.parts[0]


def release_upload(settings: Settings, paths: Iterable[object], still_needed: Iterable[object] = ()) -> list[str]:
    """Remove the uploads that any of `paths` lie in (a dataset was built from them), except those that a path of
    `still_needed` (the sources of builds still queued or running) lies in too; the ids removed."""
    folders = {found for p in paths if isinstance(p, (str, Path)) and (found := upload_of(settings, p))}
    folders -= {found for p in still_needed if isinstance(p, (str, Path)) and (found := upload_of(settings, p))}
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    return sorted(f.name for f in folders)
