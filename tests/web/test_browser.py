"""The pages in real headless Chromium (Debian's `chromium`, driven by Playwright): every page that exists, its
live parts (gallery, charts, validation, the event stream), and sign-in. Screenshots go to test-artifacts/web/."""

from __future__ import annotations

import importlib
import io
import json
import re
import signal
import zipfile
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from deepyard import db, jobs, users
from deepyard.config import Settings
from deepyard.jobs import store, worker
from deepyard.train.runs import run_dir
from tests.web.conftest import TINY_NET, Server, shot


def test_home_dataset_and_gallery(server: Server, page: Page, dataset_id: str, run_id: str) -> None:
    page.goto(server.url + "/")
    expect(page.locator(f'tr[data-run="{run_id}"] [data-field="status"]')).to_have_text("done")
    expect(page.locator("#datasets tbody tr")).to_have_count(1)
    shot(page, "01-home")
    page.fill("#filter", "no such thing")
    expect(page.locator(f'tr[data-run="{run_id}"]')).to_be_hidden()
    page.fill("#filter", "tiny")
    expect(page.locator(f'tr[data-run="{run_id}"]')).to_be_visible()
    page.fill("#filter", "")

    page.click("#datasets a")
    expect(page).to_have_url(f"{server.url}/datasets/{dataset_id}")
    expect(page.locator("#gallery img")).to_have_count(36)
    page.select_option("#g-class", "1")
    expect(page.locator("#gallery figcaption")).to_have_count(12)
    expect(page.locator("#gallery figcaption").first).to_have_text("class1")
    page.select_option("#g-split", "val")
    expect(page.locator("#gallery img")).to_have_count(4)
    assert page.eval_on_selector("#mean-image", "img => img.naturalWidth") == 12
    expect(page.locator("#dataset-runs li")).to_have_count(1)
    shot(page, "02-dataset")


def test_new_run_page_validation_visualize_and_schedule(server: Server, page: Page, dataset_id: str) -> None:
    page.goto(server.url + "/runs/new")
    expect(page.locator("#lr-chart canvas")).to_have_count(1)
    page.fill("#lr-values", "0.1, 0.01")
    expect(page.locator("#lr-chart")).to_have_attribute("data-series", "2")
    page.select_option('select[name="schedule.policy"]', "step")
    page.fill("#lr-values", "abc")
    expect(page.locator("#lr-error")).to_contain_text("not a list of numbers")
    page.fill("#lr-values", "0.05")
    expect(page.locator("#lr-error")).to_be_hidden()

    page.click('button.customize[data-name="lenet"]')
    # LeNet is checked at the chosen dataset's 3x12x12 images, which its two 5x5 convolutions do not fit:
    expect(page.locator("#spec-status")).to_contain_text("layer 'conv2' (conv) with input shape 20x4x4")
    editor = page.locator("#spec-editor")
    editor.fill(editor.input_value().replace("type: conv", "type: convolution", 1))
    expect(page.locator("#spec-status")).to_contain_text("conv1")
    expect(page.locator("#spec-status")).to_have_class("error-box")
    editor.fill("name: small\nlayers:\n  - {name: fc, type: linear, out_features: num_classes}\n")
    expect(page.locator("#spec-status")).to_contain_text("1 layers")
    page.click("#visualize")
    expect(page.locator("#network-svg")).to_be_visible()
    shot(page, "03-new-run")


def test_run_page_chart_updates_live(server: Server, page: Page, run_id: str) -> None:
    page.goto(f"{server.url}/runs/{run_id}")
    chart = page.locator("#chart-loss")
    expect(chart.locator("canvas")).to_have_count(1)
    before = int(chart.get_attribute("data-points") or 0)
    assert before > 0
    expect(page.locator("#hardware dt").first).to_have_text("CPU")
    with (run_dir(server.settings, run_id) / "metrics.jsonl").open("a") as fp:
        fp.write(json.dumps({"step": 50, "epoch": 1.5, "val_loss": 0.4, "val_top1": 91.0, "wall": 9.0}) + "\n")
    expect(chart).to_have_attribute("data-points", str(before + 1))  # arrived over Server-Sent Events
    expect(page.locator("#run-val-top1")).to_have_text("91.00%")
    shot(page, "04-run")


def test_a_failed_parity_check_is_shown_loudly(
    make_server: Callable[..., Server], web_settings: Settings, run_id: str, page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real export job run by the worker's code, made to fail its parity check (a negative tolerance): the run
    page shows the job as a failed parity check and its error, with the figures, in a loud red box."""
    job = jobs.submit(web_settings, "export", {"model": run_id, "formats": ["torchscript"]})
    with closing(db.connect(web_settings)) as conn:
        assert store.transition(conn, job.id, "running", ("queued",))  # claimed, as the scheduler does
    monkeypatch.setattr(importlib.import_module("deepyard.infer.export"), "RTOL", -1.0)  # the package's `export`
    # attribute is the function of that name, so the module is taken from the import system
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    try:
        assert worker.run_job(str(web_settings.home), job.id) == "failed"
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    error = str(jobs.get_job(web_settings, job.id).error)
    assert re.fullmatch(r"PARITY CHECK FAILED: torchscript: parity FAILED: max \|Δlogit\| .* on \d+ images", error)

    server = make_server(web_settings)
    page.goto(f"{server.url}/runs/{run_id}")
    expect(page.locator("#ex-job .status")).to_have_text("parity check failed")
    box = page.locator("#ex-error")
    expect(box).to_have_text(error)
    expect(box).to_have_class(re.compile(r"\bloud\b"))
    assert box.evaluate("e => getComputedStyle(e).color") == "rgb(185, 28, 28)"  # --bad
    expect(page.locator("#ex-table")).to_be_hidden()
    shot(page, "04-parity-failed")


def test_compare_and_clone(server: Server, page: Page, run_id: str) -> None:
    page.goto(f"{server.url}/compare")
    page.check(f'.cmp-pick[value="{run_id}"]')
    page.click("#compare-go")
    expect(page.locator("#compare-table")).to_be_visible()
    expect(page.locator("#cmp-val-top1 canvas")).to_have_count(1)
    shot(page, "05-compare")
    page.goto(f"{server.url}/runs/{run_id}")
    page.click("#clone-run")
    expect(page.locator("#run-name")).to_have_value("tiny on bars (clone)")
    expect(page.locator("#bs-values")).to_have_value("12")
    expect(page.locator("#spec-status")).to_contain_text("ok:")


def _digits_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for label in ("0", "1"):
            for i in range(3):
                img = io.BytesIO()
                Image.fromarray(np.full((10, 20), 40 * i, np.uint8)).save(img, "PNG")
                zf.writestr(f"digits/{label}/{i}.png", img.getvalue())
    return buf.getvalue()


def test_new_dataset_preview_picker_and_upload(server: Server, page: Page, tmp_path: Path) -> None:
    (tmp_path / "data" / "pets" / "cat").mkdir(parents=True)
    page.goto(server.url + "/datasets/new")
    preview = page.locator("#resize-preview")
    expect(preview).to_have_attribute("src", re.compile("^blob:"))
    page.fill('input[name="width"]', "64")
    page.fill('input[name="height"]', "32")
    page.select_option('select[name="resize_mode"]', "crop")
    page.wait_for_function("document.getElementById('resize-preview').naturalWidth === 64")
    page.click('.pick-folder[data-target="src-train"]')
    expect(page.locator("#picker-list li")).to_have_count(2)  # the home and the data root, nothing else
    page.click(f"#picker-list a:text('{tmp_path / 'data'}/')")
    page.click("#picker-list a:text('pets/')")
    page.click("#picker-choose")
    expect(page.locator("#src-train")).to_have_value(str(tmp_path / "data" / "pets"))
    zip_path = tmp_path / "digits.zip"
    zip_path.write_bytes(_digits_zip())
    page.click('.tab[data-tab="upload"]')
    page.set_input_files("#zip-file", str(zip_path))
    page.click("#zip-upload")
    expect(page.locator("#zip-status")).to_contain_text("2 classes")
    expect(page.locator("#src-train")).to_have_value(re.compile(r"/uploads/.+/digits$"))
    shot(page, "06-new-dataset")


def test_sign_in_and_out(server: Server, page: Page) -> None:
    conn = db.connect(server.settings)
    users.create_user(conn, "ada", "correct horse battery")
    conn.close()
    page.goto(server.url + "/compare")
    expect(page).to_have_url(f"{server.url}/login?next=/compare")
    page.fill('input[name="name"]', "ada")
    page.fill('input[name="password"]', "wrong password")
    page.click('button[type="submit"]')
    expect(page.locator("#login-error")).to_be_visible()
    page.fill('input[name="name"]', "ada")
    page.fill('input[name="password"]', "correct horse battery")
    page.click('button[type="submit"]')
    expect(page).to_have_url(f"{server.url}/compare")
    expect(page.locator(".who")).to_contain_text("ada")
    shot(page, "07-signed-in")
    page.click(".who button")
    expect(page).to_have_url(f"{server.url}/login")
    page.goto(server.url + "/")
    expect(page).to_have_url(f"{server.url}/login?next=/")


def test_fine_tune_from_a_previous_run_in_the_form(server: Server, page: Page, run_id: str) -> None:
    """New run → Starting weights: a previous run's best snapshot, conv frozen; the job trains and keeps conv."""
    import torch

    from deepyard.train.checkpoint import load_checkpoint

    page.goto(server.url + "/runs/new")
    page.select_option("#source-kind", "run")
    page.select_option("#source-run", run_id)
    expect(page.locator('input[name="finetune.freeze"]')).to_be_visible()
    page.fill('input[name="finetune.freeze"]', "conv*")
    page.fill("#run-name", "fine-tuned")
    page.fill("#lr-values", "0.05")
    page.fill("#bs-values", "12")
    page.fill('input[name="epochs"]', "1")
    shot(page, "08-fine-tune-form")
    page.click("#create-run")
    page.wait_for_url(re.compile(r"/jobs/[\w-]+/run$|/runs/\d{8}-\d{6}-[0-9a-f]{4}$"))  # not /runs/new itself
    with server.client() as c:
        job = next(j for j in c.get("/api/v1/jobs").json() if j["params"].get("name") == "fine-tuned")
        assert job["params"]["source"] == f"run:{run_id}@best" and job["params"]["config"]["finetune"]["freeze"] == [
            "conv*"
        ]
        while job["status"] not in ("done", "failed"):
            page.wait_for_timeout(200)
            job = c.get(f"/api/v1/jobs/{job['id']}").json()
    assert job["status"] == "done", job["error"]
    folder = run_dir(server.settings, job["target"])
    before = load_checkpoint(run_dir(server.settings, run_id) / "checkpoints" / "best.pt")["model"]
    after = load_checkpoint(sorted((folder / "checkpoints").glob("step-*.pt"))[-1])["model"]
    assert torch.equal(after["layers.conv.weight"], before["layers.conv.weight"])
    assert not torch.equal(after["layers.fc.1.weight"], before["layers.fc.1.weight"])


def test_batch_abort_from_the_home_page(server: Server, page: Page, dataset_id: str) -> None:
    """A running training picked on the home page and aborted: it ends 'aborted' with a checkpoint; the queued job
    that was not picked is untouched."""
    import time

    body = {"dataset": dataset_id, "spec": json.dumps(TINY_NET), "lr": [0.05, 0.01],
            "config": {"epochs": 2000, "device": "cpu", "snapshot_interval": 1}}  # fmt: skip
    with server.client() as c:
        started = c.post("/api/v1/runs", json=body).json()["jobs"]
        ids = [j["id"] for j in started]
        while not (first := c.get(f"/api/v1/jobs/{ids[0]}").json())["target"] or first["status"] != "running":
            time.sleep(0.1)  # one CPU slot: the first trains, the second waits in the queue
        second = c.get(f"/api/v1/jobs/{ids[1]}").json()
        page.on("dialog", lambda d: d.accept())
        page.goto(server.url + "/")
        page.check(f'input.pick[value="{first["target"]}"]')
        page.click("#abort-selected")
        deadline = time.monotonic() + 120  # a safeguard against a hang, not a timing assertion
        while (first := c.get(f"/api/v1/jobs/{ids[0]}").json())["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert first["status"] == "aborted", first
        assert c.get(f"/api/v1/runs/{first['target']}").json()["snapshots"]
        assert c.get(f"/api/v1/jobs/{ids[1]}").json()["status"] in ("queued", "running")  # not picked
        assert second["status"] == "queued"
        c.post(f"/api/v1/jobs/{ids[1]}/abort")


def test_group_runs_and_datasets_on_the_home_page(
    server: Server, page: Page, dataset_id: str, run_id: str, web_settings: Settings
) -> None:
    from deepyard.networks import spec_from_data
    from deepyard.train import make_config, train

    other = train(web_settings, dataset_id, spec_from_data(TINY_NET), make_config(epochs=1, device="cpu")).run_id
    page.goto(server.url + "/")
    expect(page.locator("tr.group-head")).to_have_count(0)  # no groups yet: plain tables
    page.check(f'#runs input.pick[value="{run_id}"]')
    page.click("#group-runs")
    expect(page.locator("#group-dialog .what")).to_have_text("1 run")
    page.fill("#group-dialog input", "lab: first tries")
    page.click("#group-set")
    expect(page.locator('#runs tr.group-head[data-group="lab: first tries"]')).to_contain_text("1 run")
    expect(page.locator('#runs tr.group-head[data-group=""]')).to_contain_text("Ungrouped")
    assert page.locator("#runs tbody tr[data-run]").evaluate_all("rows => rows.map((r) => r.dataset.run)") == [
        run_id,
        other,
    ]  # the group first, then the ungrouped

    page.check(f'#datasets input.pick[value="{dataset_id}"]')
    page.click("#group-datasets")
    expect(page.locator("datalist#group-names option")).to_have_attribute("value", "lab: first tries")  # offered
    page.fill("#group-dialog input", "lab: first tries")
    page.click("#group-set")
    expect(page.locator('#datasets tr.group-head[data-group="lab: first tries"]')).to_contain_text("1 dataset")

    fold = page.locator('#runs tr.group-head[data-group="lab: first tries"] button.fold')
    fold.click()
    expect(page.locator(f'tr[data-run="{run_id}"]')).to_be_hidden()
    expect(page.locator(f'tr[data-run="{other}"]')).to_be_visible()
    page.reload()  # the browser remembers the fold
    expect(page.locator(f'tr[data-run="{run_id}"]')).to_be_hidden()
    shot(page, "11-home-groups")
    fold.click()
    expect(page.locator(f'tr[data-run="{run_id}"]')).to_be_visible()

    page.fill("#filter", "first tries")  # the filter matches group names; a group left empty hides its header
    expect(page.locator(f'tr[data-run="{other}"]')).to_be_hidden()
    expect(page.locator('#runs tr.group-head[data-group=""]')).to_be_hidden()
    page.fill("#filter", "")

    page.check('#runs tr.group-head[data-group="lab: first tries"] input.pick-group')  # picks the whole group
    page.click("#group-runs")
    expect(page.locator("#group-dialog input")).to_have_value("lab: first tries")  # their common group
    page.fill("#group-dialog input", "")  # blank: out of the group
    page.click("#group-set")
    expect(page.locator("#runs tr.group-head")).to_have_count(0)
    with server.client() as c:
        assert c.get(f"/api/v1/runs/{run_id}").json()["group"] is None
        assert c.get(f"/api/v1/datasets/{dataset_id}").json()["group"] == "lab: first tries"


def test_home_tables_sort_by_a_column_within_groups(
    server: Server, page: Page, dataset_id: str, run_id: str, web_settings: Settings
) -> None:
    from deepyard.networks import spec_from_data
    from deepyard.train import make_config, train

    config = make_config(epochs=1, device="cpu", batch_size=12, **{"solver.lr": 0.5})
    other = train(web_settings, dataset_id, spec_from_data(TINY_NET), config, name="z fast").run_id
    order = "rows => rows.map((r) => r.dataset.run)"
    page.goto(server.url + "/")
    lr = page.locator("#runs th", has_text="lr")
    lr.click()
    expect(lr).to_have_attribute("aria-sort", "ascending")
    assert page.locator("#runs tbody tr[data-run]").evaluate_all(order) == [run_id, other]  # 0.01, then 0.5
    lr.click()
    expect(lr).to_have_attribute("aria-sort", "descending")
    assert page.locator("#runs tbody tr[data-run]").evaluate_all(order) == [other, run_id]
    page.locator("#runs th", has_text="name").click()
    page.reload()  # the browser remembers the sort
    expect(page.locator("#runs th", has_text="name")).to_have_attribute("aria-sort", "ascending")
    assert page.locator("#runs tbody tr[data-run]").evaluate_all(order) == [run_id, other]  # "tiny on bars" < "z fast"

    with server.client() as c:  # within groups: each group's rows sort apart, the headings stay
        c.put("/api/v1/groups", json={"kind": "run", "ids": [other], "group": "a group"})
    page.reload()
    rows = page.locator("#runs tbody tr").evaluate_all(
        "rows => rows.map((r) => r.dataset.run || 'head:' + r.dataset.group)"
    )
    assert rows == ["head:a group", other, "head:", run_id]


def test_rename_a_run_and_keep_notes_that_the_compare_table_shows(server: Server, page: Page, run_id: str) -> None:
    page.goto(f"{server.url}/runs/{run_id}")
    page.once("dialog", lambda d: d.accept("baseline LeNet"))
    page.click("#rename-run")
    expect(page.locator("#run-name")).to_have_text("baseline LeNet")
    page.fill("#run-notes", "the lab's first run: plain LeNet")
    expect(page.locator("#notes-state")).to_have_text("not saved")
    page.click("#save-notes")
    expect(page.locator("#notes-state")).to_have_text("saved")
    page.reload()
    expect(page.locator("#run-name")).to_have_text("baseline LeNet")
    expect(page.locator("#run-notes")).to_have_value("the lab's first run: plain LeNet")
    page.goto(f"{server.url}/compare?runs={run_id}")
    expect(page.locator("#compare-table")).to_contain_text("the lab's first run: plain LeNet")
    expect(page.locator("#compare-table")).to_contain_text("baseline LeNet")
