"""Probe: work on someone else's item does not transfer it, and only its owner starts jobs that write into it."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepyard import db, users
from deepyard.config import Settings
from tests.cli.test_datasets_cli import DEEPYARD
from tests.cli.test_datasets_cli import run as cli
from tests.web.conftest import Server
from tests.web.test_jobs_infer import wait_jobs
from tests.web.test_security import PASSWORD, _add_user, _token
from tests.web.test_textclass_web import text_run


def _labelled_zip(classes: list[str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, name in enumerate(classes):
            img = io.BytesIO()
            Image.fromarray(np.full((12, 12, 3), 40 * i, dtype=np.uint8)).save(img, "PNG")
            zf.writestr(f"{name}/{i}.png", img.getvalue())
    return buf.getvalue()


def test_another_user_cannot_start_jobs_in_my_run_nor_block_its_delete(server: Server, run_id: str) -> None:
    ada, bob = _add_user(server.settings, "ada"), _add_user(server.settings, "bob")
    with closing(db.connect(server.settings)) as conn:
        users.set_owner(conn, "run", run_id, ada)
    as_ada = {"authorization": f"Bearer {_token(server.settings, ada)}"}
    as_bob = {"authorization": f"Bearer {_token(server.settings, bob)}"}
    with server.client() as c:
        dataset = c.get(f"/api/v1/runs/{run_id}", headers=as_bob).json()["dataset"]
        classes = c.get(f"/api/v1/datasets/{dataset}", headers=as_bob).json()["manifest"]["classes"]
        for url in (f"/api/v1/runs/{run_id}/evaluate", f"/api/v1/runs/{run_id}/export"):
            refused = c.post(url, headers=as_bob)
            assert refused.status_code == 403 and "belongs to 'ada'" in refused.json()["error"]["message"], url
        many = c.post(f"/api/v1/runs/{run_id}/classify-many", content=_labelled_zip(classes), headers=as_bob)
        assert many.status_code == 403, many.text  # a labelled zip writes an evaluation into the run
        mine = c.post(f"/api/v1/runs/{run_id}/evaluate", headers=as_ada)
        assert mine.status_code == 202, mine.text
        c.headers.update(as_ada)  # the job belongs to ada; others see it as well, but follow it as her
        (job,) = wait_jobs(c, [mine.json()["job"]["id"]])
        assert job["status"] == "done", job
        shown = c.get(f"/api/v1/runs/{run_id}", headers=as_bob).json()
        assert shown["owner"] == "ada"
        assert c.delete(f"/api/v1/runs/{run_id}", headers=as_ada).status_code == 200


def test_an_admin_may_change_what_others_made(server: Server, run_id: str) -> None:
    """`deepyard user add NAME --admin` and `deepyard user admin NAME [--off]` (the console script): an admin may
    start jobs in and delete another user's run; the owner's work is not transferred; a plain user still may not."""
    home = server.settings.home
    ada, bob = _add_user(server.settings, "ada"), _add_user(server.settings, "bob")
    made = subprocess.run([*DEEPYARD, "--home", str(home), "user", "add", "cleo", "--admin", "--password-stdin"],
                          input=PASSWORD + "\n", capture_output=True, text=True)  # fmt: skip
    assert made.returncode == 0 and "added user cleo (admin)" in made.stdout, made.stderr
    listed = json.loads(cli(home, "user", "list", "--json").stdout)
    assert {"name": "cleo", "admin": True} in listed and {"name": "bob", "admin": False} in listed
    with closing(db.connect(server.settings)) as conn:
        users.set_owner(conn, "run", run_id, ada)
        cleo = users.get_user(conn, "cleo")
    as_bob = {"authorization": f"Bearer {_token(server.settings, bob)}"}
    as_cleo = {"authorization": f"Bearer {_token(server.settings, cleo)}"}
    with server.client() as c:
        assert c.post(f"/api/v1/runs/{run_id}/evaluate", headers=as_bob).status_code == 403
        started = c.post(f"/api/v1/runs/{run_id}/evaluate", headers=as_cleo)
        assert started.status_code == 202, started.text
        c.headers.update(as_cleo)
        (job,) = wait_jobs(c, [started.json()["job"]["id"]])
        assert job["status"] == "done", job
        assert c.get("/api/v1/me", headers=as_cleo).json()["admin"] is True
        assert c.get(f"/api/v1/runs/{run_id}", headers=as_bob).json()["owner"] == "ada"  # still ada's
        assert cli(home, "user", "admin", "bob").returncode == 0
        assert cli(home, "user", "admin", "bob", "--off").stdout.strip() == "bob is no longer an admin"
        assert c.delete(f"/api/v1/runs/{run_id}", headers=as_bob).status_code == 403
        assert c.delete(f"/api/v1/runs/{run_id}", headers=as_cleo).status_code == 200


def test_another_user_cannot_evaluate_or_export_my_text_runs(
    server: Server, web_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Evaluate and export of a text run (and the old /text-evaluation, /text-export, now aliases of the same jobs)
    write into the run's folder: refused (403) to another user, before anything is queued; its owner may."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the tiny model's job runs on one torch thread
    _, run = text_run(web_settings, tmp_path)
    ada, bob = _add_user(server.settings, "ada"), _add_user(server.settings, "bob")
    with closing(db.connect(server.settings)) as conn:
        users.set_owner(conn, "run", run, ada)
    as_ada = {"authorization": f"Bearer {_token(server.settings, ada)}"}
    as_bob = {"authorization": f"Bearer {_token(server.settings, bob)}"}
    with server.client() as c:
        for url, body in (("evaluate", None), ("export", None), ("text-evaluation", {}), ("text-export", {})):
            refused = c.post(f"/api/v1/runs/{run}/{url}", json=body, headers=as_bob)
            assert refused.status_code == 403 and "belongs to 'ada'" in refused.json()["error"]["message"], url
        assert c.get("/api/v1/jobs", headers=as_bob).json() == []  # nothing was queued
        mine = c.post(f"/api/v1/runs/{run}/text-evaluation", json={}, headers=as_ada)
        assert mine.status_code == 202, mine.text
        c.headers.update(as_ada)
        (job,) = wait_jobs(c, [mine.json()["job"]["id"]])
        assert job["status"] == "done" and job["result"]["metrics"]["top1"] > 90, job
