"""MNIST imported from its IDX files from the web (issue 13 item 9): POST /api/v1/datasets/mnist over HTTP as a
real dataset job, its refusals at submit, and the New dataset page's MNIST tab in real Chromium."""

from __future__ import annotations

import shutil
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.conftest import SHARED_MNIST
from tests.web.conftest import Server, shot
from tests.web.test_failed_jobs import job_in


def idx_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "data" / "mnist"
    shutil.copytree(SHARED_MNIST, folder)  # inside the data roots (a symlink out of them would be refused)
    return folder


def test_mnist_is_imported_from_its_idx_files_as_a_job(server: Server, tmp_path: Path) -> None:
    folder = idx_folder(tmp_path)
    with server.client() as c:
        res = c.post("/api/v1/datasets/mnist", json={"folder": str(folder), "spec": {"name": "mnist-small",
                     "max_per_class": 3, "val_max_per_class": 2}})  # fmt: skip
        assert res.status_code == 202, res.text
        job = job_in(c, res.json()["job"]["id"], "done", "failed")
        assert job["status"] == "done", job["error"]
        assert job["result"]["counts"] == {"train": 30, "val": 20}
        shown = c.get(f"/api/v1/datasets/{job['result']['dataset']}").json()
        assert shown["name"] == "mnist-small" and shown["classes"] == 10 and shown["shape"] == [28, 28, 1]
        (tmp_path / "data" / "half").mkdir()
        shutil.copy(folder / "train-images-idx3-ubyte.gz", tmp_path / "data" / "half")
        missing = c.post("/api/v1/datasets/mnist", json={"folder": str(tmp_path / "data" / "half")})
        assert missing.status_code == 422 and "'train-labels-idx1-ubyte.gz' not found" in missing.text, missing.text
        outside = c.post("/api/v1/datasets/mnist", json={"folder": "/etc"})
        assert outside.status_code == 422 and "MNIST folder '/etc' is outside the data roots" in outside.text
        clash = c.post("/api/v1/datasets/mnist", json={"folder": str(folder), "spec": {"source": {}}})
        assert clash.status_code == 422 and "leave 'source' out" in clash.text
        assert len(c.get("/api/v1/jobs").json()) == 1  # the refusals queued nothing


def test_the_new_dataset_page_imports_mnist(server: Server, page: Page, tmp_path: Path) -> None:
    folder = idx_folder(tmp_path)
    page.goto(server.url + "/datasets/new")
    page.click('.tab[data-tab="mnist"]')
    expect(page.locator('input[name="width"]')).to_have_value("28")
    page.fill("#mnist-folder", str(folder))
    page.fill('input[name="max_per_class"]', "2")
    page.fill('input[name="val_max_per_class"]', "1")
    page.fill("#ds-name", "mnist-web")
    shot(page, "dataset-new-mnist")
    page.click("#create-dataset")
    page.wait_for_url("**/jobs/*/dataset")
    expect(page.locator("body")).to_contain_text("mnist", timeout=120_000)
    with server.client() as c:
        job = job_in(c, c.get("/api/v1/jobs").json()[0]["id"], "done", "failed")
    assert job["status"] == "done" and job["result"]["counts"] == {"train": 20, "val": 10}, job
    assert job["result"]["name"] == "mnist-web"
