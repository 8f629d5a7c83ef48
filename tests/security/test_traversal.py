"""Probe: no path a request names, directly or through a file it uploads, reads outside the home and the data roots.

Every path-taking field of the API is tried with absolute paths, `..`, relative paths and NUL bytes; a list file
inside an upload names files outside; a symlink inside a root points outside. Nothing outside may be read, served
or even told apart (an existing and a missing outside path get the same reason).
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.train.conftest import write_bars
from tests.web.conftest import TINY_NET, Server
from tests.web.test_jobs_infer import wait_jobs


def _png(seed: int, value: int | None = None) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    if value is not None:
        arr[:] = value
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _build(c: httpx.Client, source: dict[str, Any]) -> dict[str, Any]:
    res = c.post("/api/v1/datasets", json={"spec": {"name": "probe", "source": source, "width": 8, "height": 8,
                                                    "encoding": "raw"}})  # fmt: skip
    assert res.status_code == 202, res.text
    (job,) = wait_jobs(c, [res.json()["job"]["id"]])
    return job


def _outside(tmp_path: Path) -> Path:
    """A folder beside the data root, holding an image a probe must never read (all white: recognisable)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(_png(0, value=255))
    return outside


def test_list_file_in_an_upload_cannot_name_files_outside(server: Server, tmp_path: Path) -> None:
    secret = _outside(tmp_path) / "secret.png"
    lines = [f"{i}.png {i % 2}" for i in range(8)]
    probes = [str(secret), "/etc/shadow", "/no/such/file.png", "../../../outside/secret.png",
              f"../../../../../../..{secret}"]  # fmt: skip
    entries = {f"{i}.png": _png(i + 1) for i in range(8)}
    entries["labels.txt"] = b"a\nb\n"
    entries["train.txt"] = "\n".join(lines + [f"{p} 0" for p in probes]).encode()
    with server.client() as c:
        upload = c.post("/api/v1/datasets/uploads", content=_zip(entries)).json()
        folder = Path(upload["path"])
        job = _build(c, {"kind": "list", "train": str(folder / "train.txt"), "labels": str(folder / "labels.txt")})
        assert job["status"] == "done", job["error"]
        dataset = job["result"]["dataset"]  # type: ignore[index]
        report = c.get(f"/api/v1/datasets/{dataset}/report").json()
        counts = c.get(f"/api/v1/datasets/{dataset}").json()["counts"]
        served = [c.get(f"/api/v1/datasets/{dataset}/images/{split}/{i}.png").content
                  for split, n in counts.items() for i in range(n)]  # fmt: skip
    reasons = {s["path"]: s["reason"] for s in report["skipped"]}
    assert len(reasons) == len(probes)
    assert set(reasons.values()) == {"outside the data roots"}  # existing and missing paths read the same
    assert sum(counts.values()) == len(served) == 8  # only the uploaded images
    white = [Image.open(io.BytesIO(b)).getextrema() == ((255, 255),) * 3 for b in served]
    assert not any(white)  # the outside image is never served


def test_symlinks_inside_a_root_that_point_outside_are_skipped(server: Server, tmp_path: Path) -> None:
    outside = _outside(tmp_path)
    data = tmp_path / "data" / "pets"
    write_bars(data, per_class=4)
    classes = sorted(p.name for p in data.iterdir())
    os.symlink(outside / "secret.png", data / classes[0] / "link.png")
    os.symlink(outside, data / classes[1] / "linked-folder")
    os.symlink(outside, data / "outside-class")
    with server.client() as c:
        job = _build(c, {"kind": "folder", "train": str(data)})
        assert job["status"] == "done", job["error"]
        dataset = job["result"]["dataset"]  # type: ignore[index]
        report = c.get(f"/api/v1/datasets/{dataset}/report").json()
        shown = c.get(f"/api/v1/datasets/{dataset}").json()
        preview = c.post("/api/v1/datasets/resize-preview", json={"folder": str(data / classes[0]), "width": 8,
                                                                   "height": 8})  # fmt: skip
    skipped = {Path(s["path"]).name: s["reason"] for s in report["skipped"]}
    assert skipped == {n: "symlink to a path outside the data roots" for n in
                       ("link.png", "linked-folder", "outside-class")}  # fmt: skip
    assert shown["classes"] == len(classes) and sum(shown["counts"].values()) == 4 * len(classes)
    assert preview.status_code == 200
    assert Image.open(io.BytesIO(preview.content)).getextrema() != ((255, 255),) * 3


def test_resize_preview_passes_over_a_symlink_out_of_the_roots(server: Server, tmp_path: Path) -> None:
    outside = _outside(tmp_path)
    folder = tmp_path / "data" / "only-link"
    folder.mkdir()
    os.symlink(outside / "secret.png", folder / "a.png")
    with server.client() as c:
        res = c.post("/api/v1/datasets/resize-preview", json={"folder": str(folder), "width": 8, "height": 8})
    # no image inside the roots: the built-in test card, never the outside file
    assert res.status_code == 200
    assert Image.open(io.BytesIO(res.content)).getextrema() != ((255, 255),) * 3


PATHS = ["/etc", "/etc/passwd", "../../etc/passwd", "relative/folder", "data/../../outside", "/tmp/\x00x"]


@pytest.mark.parametrize("path", PATHS)
def test_every_path_field_refuses_paths_outside_the_roots(
    server: Server, tmp_path: Path, dataset_id: str, path: str
) -> None:
    write_bars(tmp_path / "data" / "ok", per_class=4)
    inside = str(tmp_path / "data" / "ok")
    requests: list[tuple[str, dict[str, Any]]] = [
        ("/api/v1/datasets", {"spec": {"name": "p", "source": {"kind": "folder", "train": path}}}),
        ("/api/v1/datasets", {"spec": {"name": "p", "source": {"kind": "folder", "train": inside, "val": path}}}),
        ("/api/v1/datasets", {"spec": {"name": "p", "source": {"kind": "list", "train": path, "labels": path}}}),
        (
            "/api/v1/datasets",
            {"spec": {"name": "p", "source": {"kind": "idx", "train_images": path, "train_labels": path}}},
        ),
        ("/api/v1/runs", {"dataset": dataset_id, "network": "lenet", "source": path}),
        ("/api/v1/datasets/resize-preview", {"folder": path}),
    ]
    with server.client() as c:
        for url, body in requests:
            res = c.post(url, json=body)
            assert 400 <= res.status_code < 500, (url, body, res.status_code, res.text)
        picker = c.get("/api/v1/folders", params={"path": path})
        assert 400 <= picker.status_code < 500, picker.text
    assert not (server.settings.home / "runs").exists() or len(list((server.settings.home / "runs").iterdir())) <= 1


def test_a_run_spec_file_outside_the_roots_is_refused(server: Server, tmp_path: Path, dataset_id: str) -> None:
    spec = tmp_path / "outside-net.yaml"
    spec.write_text(f"name: tiny\nlayers: {TINY_NET['layers']}\n")
    with server.client() as c:
        res = c.post("/api/v1/runs", json={"dataset": dataset_id, "network": str(spec)})
    assert res.status_code == 422 and "outside the data roots" in res.json()["error"]["message"], res.text
