"""What a new user meets on the dataset pages, in real headless Chromium against a real server with real job
processes: sources refused in the New dataset form with the reason, one message for a folder outside the roots,
a failed build's reason on Home, and the dataset page while its build runs. Screenshots: test-artifacts/web/."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.jobs.conftest import freeze, thaw, wait_for
from tests.train.conftest import write_bars
from tests.web.conftest import Server, shot

BUILD = 120_000  # ms a tiny build may take on a busy 2-core machine, worker start included
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


def job_of(server: Server, *statuses: str) -> dict[str, Any]:
    """The newest dataset job, once it is in one of `statuses` (and, running, has its worker's pid)."""

    def found() -> dict[str, Any] | None:
        with server.client() as c:
            listed = c.get("/api/v1/jobs", params={"kind": "dataset"}).json()
        job = listed[0] if listed else None
        return job if job and job["status"] in statuses and (job["status"] != "running" or job["pid"]) else None

    return wait_for(found, f"a dataset job {statuses}", poll=0.005)


def test_after_create_the_dataset_page_follows_the_build_and_home_lists_it(
    server: Server, page: Page, tmp_path: Path
) -> None:
    write_bars(tmp_path / "data" / "bars", per_class=16)
    page.goto(server.url + "/datasets/new")
    page.fill("#ds-name", "bars")
    page.fill("#src-train", str(tmp_path / "data" / "bars"))
    page.fill('input[name="width"]', "12")
    page.fill('input[name="height"]', "12")
    page.click("#create-dataset")
    job = job_of(server, "running", "done", "failed")
    assert job["status"] == "running", job  # a worker takes seconds to import what a build needs
    freeze(job["pid"])  # held mid-start, so the page is seen while the dataset is being built
    try:
        expect(page).to_have_url(f"{server.url}/jobs/{job['id']}/dataset")
        expect(page.locator("h1")).to_contain_text("bars")
        expect(page.locator("#job-status")).to_have_text("building")
        expect(page.locator("#job-spec")).to_contain_text(str(tmp_path / "data" / "bars"))
        shot(page, "dataset-building")
        home = page.context.new_page()
        home.goto(server.url + "/")
        row = home.locator(f'#datasets tr[data-build="{job["id"]}"]')
        expect(row.locator('[data-field="status"]')).to_have_text("building")
        expect(row.locator("a")).to_have_attribute("href", f"/jobs/{job['id']}/dataset")
        shot(home, "home-dataset-building")
    finally:
        thaw(job["pid"])
    expect(page).to_have_url(re.compile(rf"{server.url}/datasets/\d{{8}}-\d{{6}}-[0-9a-f]{{4}}$"), timeout=BUILD)
    expect(page.locator("#count-train")).to_have_text("36")
    expect(page.locator("#gallery img")).to_have_count(36)
    shot(page, "dataset-built")
    expect(home.locator("#datasets tbody tr[data-id]")).to_have_count(1, timeout=BUILD)  # home reloads with it
    expect(home.locator("#datasets tr[data-build]")).to_have_count(0)
    home.close()
    with server.client() as c:  # the build's page is the dataset's page from now on
        built = c.get(f"/api/v1/jobs/{job['id']}").json()["target"]
        later = c.get(f"/jobs/{job['id']}/dataset")
        assert later.status_code == 303 and later.headers["location"] == f"/datasets/{built}"


def test_a_failed_build_shows_its_reason_and_offers_no_resume(server: Server, page: Page, tmp_path: Path) -> None:
    empty = tmp_path / "data" / "empty"
    for name in ("cat", "dog"):
        (empty / name).mkdir(parents=True)  # the submit check passes; only the build finds no images
    page.goto(server.url + "/datasets/new")
    page.fill("#ds-name", "empty")
    page.fill("#src-train", str(empty))
    page.click("#create-dataset")
    reason = "only 0 class(es) have at least 2 training images"
    expect(page.locator("#job-status")).to_have_text("failed", timeout=BUILD)
    expect(page.locator("#job-error")).to_contain_text(reason)
    expect(page.locator("#job-permanent")).to_be_visible()
    expect(page.locator("#job-resume")).to_be_hidden()
    expect(page.locator("#job-log")).to_contain_text("failed")
    shot(page, "dataset-build-failed")

    page.goto(server.url + "/")
    job_row = page.locator("#jobs tbody tr").first
    expect(job_row.locator("a.job-reason")).to_contain_text(reason)
    expect(job_row.locator("button.job-resume")).to_have_count(0)
    expect(page.locator("#datasets tr[data-build] .status")).to_have_text("failed")
    shot(page, "home-failed-build")
    job_row.locator("a.job-reason").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d{8}-\d{6}-[0-9a-f]{4}$"))
    expect(page.locator("#job-error")).to_contain_text(reason)
    page.click("#job-forget")
    expect(page).to_have_url(server.url + "/")
    expect(page.locator("#no-datasets")).to_be_visible()
