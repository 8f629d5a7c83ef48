"""No route reads outside the data roots and the home; zip uploads are checked (traversal, links, bombs, size)."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest

from deepyard.config import Settings
from deepyard.web.files import Limits
from tests.conftest import save_image
from tests.web.conftest import Server


def _png_bytes(seed: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _zip(entries: dict[str, bytes], links: dict[str, str] | None = None, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buf.getvalue()


def test_folder_picker_lists_roots_and_subfolders(server: Server, tmp_path: Path) -> None:
    save_image(tmp_path / "data" / "digits" / "7" / "a.png", np.zeros((4, 4), np.uint8))
    save_image(tmp_path / "data" / "digits" / "top.png", np.zeros((4, 4), np.uint8))
    with server.client() as c:
        roots = c.get("/api/v1/folders").json()
        assert {f["path"] for f in roots["folders"]} == {str(server.settings.home), str(tmp_path / "data")}
        digits = c.get("/api/v1/folders", params={"path": str(tmp_path / "data" / "digits")}).json()
        assert [f["name"] for f in digits["folders"]] == ["7"] and digits["images"] == 1
        assert digits["parent"] == str(tmp_path / "data")
        top = c.get("/api/v1/folders", params={"path": str(tmp_path / "data")}).json()
        assert top["parent"] is None  # the root's parent is outside: not offered


@pytest.mark.parametrize(
    "path",
    ["/etc", "{data}/../../..", "{data}/..", "{data}/link-out", "{data}%2F..%2F..", "etc", "{data}/\x00x"],
)
def test_folder_picker_refuses_everything_outside(server: Server, tmp_path: Path, path: str) -> None:
    os.symlink("/etc", tmp_path / "data" / "link-out")
    raw = path.format(data=tmp_path / "data")
    with server.client() as c:
        res = c.get("/api/v1/folders", params={"path": raw})
        assert res.status_code in (403, 422), res.text
        assert res.json()["error"]["type"] in ("Forbidden", "InvalidValueError")
        assert "passwd" not in res.text


def test_symlinked_subfolder_pointing_outside_is_not_listed(server: Server, tmp_path: Path) -> None:
    os.symlink("/etc", tmp_path / "data" / "sneaky")
    (tmp_path / "data" / "fine").mkdir()
    with server.client() as c:
        listed = c.get("/api/v1/folders", params={"path": str(tmp_path / "data")}).json()
        assert [f["name"] for f in listed["folders"]] == ["fine"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/datasets/..%2F..%2Fetc",
        "/api/v1/datasets/%2E%2E/mean.png",
        "/api/v1/runs/..%2Fdatasets",
        "/api/v1/runs/%2E%2E%2F%2E%2E/metrics",
        "/static/..%2F..%2F..%2Fetc%2Fpasswd",
        "/static/../../etc/passwd",
    ],
)
def test_encoded_separators_and_dots_in_urls_read_nothing(server: Server, url: str) -> None:
    with httpx.Client(base_url=server.url) as c:
        res = c.send(c.build_request("GET", url))  # sent as written, not normalised by the client
        assert res.status_code in (400, 404), (url, res.status_code)
        assert "root:" not in res.text


def test_resize_preview_folder_must_be_inside_roots(server: Server) -> None:
    with server.client() as c:
        res = c.post("/api/v1/datasets/resize-preview", json={"folder": "/usr/share"})
        assert res.status_code == 403


def test_zip_upload_extracts_class_folders(server: Server) -> None:
    body = _zip({"digits/0/a.png": _png_bytes(0), "digits/1/b.png": _png_bytes(1), "__MACOSX/._x": b"junk"})
    with server.client() as c:
        res = c.post("/api/v1/datasets/uploads", content=body)
        assert res.status_code == 201, res.text
        got = res.json()
        assert got["classes"] == ["0", "1"] and Path(got["path"]).name == "digits"
        assert Path(got["path"]).resolve().is_relative_to(server.settings.home / "uploads")
        assert (Path(got["path"]) / "1" / "b.png").read_bytes() == _png_bytes(1)
        assert not (Path(got["path"]).parent / "__MACOSX").exists()
        assert c.get("/api/v1/folders", params={"path": got["path"]}).json()["folders"][0]["name"] == "0"


@pytest.mark.parametrize(
    ("entries", "links", "message"),
    [
        ({"../evil.png": b"x"}, None, "outside the archive"),
        ({"a/../../evil.png": b"x"}, None, "outside the archive"),
        ({"/abs/evil.png": b"x"}, None, "absolute"),
        ({"c:/evil.png": b"x"}, None, "drive"),
        ({"a\\..\\evil.png": b"x"}, None, "backslash"),
        ({"ok/1.png": b"x"}, {"ok/link": "/etc/passwd"}, "symlink"),
        ({"bomb/0.bin": b"\0" * 5_000_000}, None, "zip bomb"),
    ],
)
def test_zip_upload_refuses_crafted_archives(
    server: Server, entries: dict[str, bytes], links: dict[str, str] | None, message: str
) -> None:
    with server.client() as c:
        res = c.post("/api/v1/datasets/uploads", content=_zip(entries, links))
        assert res.status_code == 422 and message in res.json()["error"]["message"]
    uploads = server.settings.home / "uploads"
    assert [p.name for p in uploads.iterdir() if not p.name.startswith(".upload-")] == []  # nothing left behind
    assert not (server.settings.home / "evil.png").exists()


def test_zip_upload_total_size_and_not_a_zip(make_server: object, web_settings: Settings) -> None:
    srv = make_server(web_settings, limits=Limits(unzipped_bytes=10_000, upload_bytes=50_000))  # type: ignore[operator]
    stored = _zip({f"c{i}/x.bin": os.urandom(4000) for i in range(3)}, method=zipfile.ZIP_STORED)
    with srv.client() as c:
        big = c.post("/api/v1/datasets/uploads", content=stored)
        assert big.status_code == 422 and "more than 10,000 bytes" in big.json()["error"]["message"]
        junk = c.post("/api/v1/datasets/uploads", content=b"PK not really")
        assert junk.status_code == 422 and "not a zip" in junk.json()["error"]["message"]


def test_upload_over_the_size_limit_is_refused(make_server: object, web_settings: Settings) -> None:
    srv = make_server(web_settings, limits=Limits(upload_bytes=1000))  # type: ignore[operator]
    with srv.client() as c:
        declared = c.post("/api/v1/datasets/uploads", content=b"x" * 5000)
        assert declared.status_code == 413 and declared.json()["error"]["type"] == "TooLarge"

        def chunks() -> object:  # no Content-Length: counted while streaming
            for _ in range(10):
                yield b"y" * 500

        streamed = c.post("/api/v1/datasets/uploads", content=chunks())  # type: ignore[arg-type]
        assert streamed.status_code == 413
    assert [p for p in (web_settings.home / "uploads").iterdir()] == []


def test_a_folder_outside_the_roots_gets_one_message_from_picker_preview_and_submit(
    server: Server, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    (outside / "cat").mkdir(parents=True)
    roots = f"is outside the data roots and the home ({server.settings.roots_text()})"
    with server.client() as c:
        picker = c.get("/api/v1/folders", params={"path": str(outside)})
        preview = c.post("/api/v1/datasets/resize-preview", json={"folder": str(outside)})
        submit = c.post("/api/v1/datasets", json={"spec": {"name": "x", "source": {"kind": "folder",
                                                                                  "train": str(outside)}}})  # fmt: skip
    messages = [res.json()["error"]["message"] for res in (picker, preview, submit)]
    assert messages == [f"folder {str(outside)!r} {roots}"] * 2 + [f"source.train {str(outside)!r} {roots}"]
    assert [picker.status_code, preview.status_code, submit.status_code] == [403, 403, 422]
    assert str(server.settings.home) in roots and str(tmp_path / "data") in roots
