"""Uploads do not pile up: one a dataset was built from is removed when the build is done (unless another queued
build reads it), one never used goes after a day (on the next upload, and when the server starts); through the
real server over HTTP with real build jobs, and the domain functions."""

from __future__ import annotations

import os
import time
from pathlib import Path

from deepyard.config import Settings
from deepyard.uploads import release_upload, sweep_uploads, upload_of, uploads_dir
from tests.web.conftest import Server, start_server
from tests.web.test_failed_jobs import job_in
from tests.web.test_files import _png_bytes, _zip

CLASSES = {f"digits/{c}/{i}.png": _png_bytes(10 * c + i) for c in range(2) for i in range(4)}


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_built_upload_is_removed_and_an_unused_one_goes_after_a_day(server: Server) -> None:
    settings = server.settings
    with server.client() as c:
        first, second = (c.post("/api/v1/datasets/uploads", content=_zip(CLASSES)).json() for _ in range(2))
        assert Path(first["path"]).is_dir() and Path(second["path"]).is_dir()
        body = {"spec": {"name": "up", "source": {"kind": "folder", "train": first["path"]}, "width": 8,
                         "height": 8, "val_pct": 25}}  # fmt: skip
        built = job_in(c, c.post("/api/v1/datasets", json=body).json()["job"]["id"], "done", "failed")
        assert built["status"] == "done", built["error"]
        assert not (uploads_dir(settings) / first["id"]).exists()  # the dataset holds its own copy now
        assert c.get(f"/api/v1/datasets/{built['target']}").json()["manifest"]["splits"]["train"]["count"] == 6
        assert (uploads_dir(settings) / second["id"]).is_dir()  # not built from: kept for now

        _age(uploads_dir(settings) / second["id"], 25 * 3600)
        (uploads_dir(settings) / ".extract-leftover").mkdir()
        _age(uploads_dir(settings) / ".extract-leftover", 25 * 3600)
        third = c.post("/api/v1/datasets/uploads", content=_zip(CLASSES)).json()
        assert sorted(p.name for p in uploads_dir(settings).iterdir()) == [third["id"]]


def test_the_server_sweeps_old_uploads_when_it_starts(web_settings: Settings) -> None:
    old, fresh = uploads_dir(web_settings) / "20990101-000000-0000", uploads_dir(web_settings) / "20990101-000000-1111"
    for folder in (old, fresh):
        (folder / "cats").mkdir(parents=True)
    _age(old, 2 * 24 * 3600)
    server = start_server(web_settings)
    try:
        assert not old.exists() and fresh.is_dir()
    finally:
        server.stop()


def test_an_upload_another_build_still_reads_is_kept(settings: Settings, tmp_path: Path) -> None:
    folder = uploads_dir(settings) / "20990101-000000-aaaa" / "digits"
    folder.mkdir(parents=True)
    assert upload_of(settings, folder / "0") == uploads_dir(settings).resolve() / "20990101-000000-aaaa"
    assert upload_of(settings, tmp_path) is None and upload_of(settings, uploads_dir(settings)) is None
    assert release_upload(settings, [str(folder), "folder", None], still_needed=[str(folder)]) == []
    assert folder.is_dir()
    assert release_upload(settings, [folder]) == ["20990101-000000-aaaa"] and not folder.exists()
    assert sweep_uploads(settings) == []
