"""What a new user meets on the dataset pages, in real headless Chromium against a real server with real job
processes: sources refused in the New dataset form with the reason, one message for a folder outside the roots,
a failed build's reason on Home, and the dataset page while its build runs. Screenshots: test-artifacts/web/."""

from __future__ import annotations

import shutil
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.web.conftest import Server, shot

MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"  # the raw IDX files: no class folders


def test_a_folder_outside_the_roots_gets_one_message_in_both_boxes(server: Server, page: Page, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    (outside / "cat").mkdir(parents=True)
    page.goto(server.url + "/datasets/new")
    page.fill("#ds-name", "outside")
    page.fill("#src-train", str(outside))
    roots = f"is outside the data roots and the home ({server.settings.roots_text()})"
    expect(page.locator("#preview-error")).to_have_text(f"folder {str(outside)!r} {roots}")
    page.click("#create-dataset")
    expect(page.locator("#form-error")).to_have_text(f"source.train {str(outside)!r} {roots}")
    shot(page, "dataset-new-outside-roots")


def test_a_source_that_cannot_be_listed_is_refused_in_the_form(server: Server, page: Page, tmp_path: Path) -> None:
    idx = tmp_path / "data" / "mnist"
    if MNIST.is_dir():
        shutil.copytree(MNIST, idx)
    else:  # the same layout: IDX files, no class sub-folders
        idx.mkdir()
        (idx / "train-images-idx3-ubyte.gz").write_bytes(b"\0" * 16)
    page.goto(server.url + "/datasets/new")
    page.fill("#ds-name", "mnist")
    page.fill("#src-train", str(tmp_path / "data" / "missing"))
    page.click("#create-dataset")
    expect(page.locator("#form-error")).to_contain_text("does not exist or is not a folder")
    page.fill("#src-train", str(idx))
    page.click("#create-dataset")
    expect(page.locator("#form-error")).to_contain_text(f"folder {str(idx)!r} has no class sub-folders")
    expect(page).to_have_url(server.url + "/datasets/new")  # stays on the form
    shot(page, "dataset-new-no-class-folders")
    with server.client() as c:
        assert c.get("/api/v1/jobs").json() == []  # nothing was queued
