"""The run page and the New run page as a new user meets them, in real Chromium over a real server and real
training jobs: Train lands on the run's page at once (queued, then filled in), the page stays live while the run
trains (log, snapshots, status history, progress), and what it shows is legible (full-width inspection, captions
at reading size, a log-scale LR chart, local times, a grouped form, empty states that say what to do, a favicon)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from contextlib import closing
from typing import Any

import httpx
import numpy as np
from playwright.sync_api import Page, expect

from deepyard import db, jobs
from deepyard.config import Settings
from deepyard.jobs import store, worker
from tests.conftest import save_image
from tests.web.conftest import TINY_NET, Server, fill_recipe, shot

LONG = {"epochs": 5000, "device": "cpu"}  # trains until the test aborts it


def _until(fetch: Callable[[], Any], ok: Callable[[Any], bool], limit_s: float = 120) -> Any:
    """Poll `fetch` until `ok`; the limit is a safeguard against a hang, not a timing assertion."""
    deadline = time.monotonic() + limit_s
    while not ok(value := fetch()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ok(value), value
    return value


def _job(c: httpx.Client, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = c.get(f"/api/v1/jobs/{job_id}").json()
    return job


def _abort(c: httpx.Client, job_id: str) -> None:
    c.post(f"/api/v1/jobs/{job_id}/abort")
    _until(lambda: _job(c, job_id), lambda j: j["status"] not in ("queued", "running"))


def test_train_goes_to_the_queued_run_page_which_fills_in_when_it_starts(
    server: Server, page: Page, dataset_id: str
) -> None:
    """Item 10: with the one CPU slot busy, Train shows the new run's page at once, "queued", with its settings;
    when the slot frees, the same tab becomes the run's own page (its run folder now exists)."""
    with server.client() as c:
        body = {"dataset": dataset_id, "spec": json.dumps(TINY_NET), "config": LONG}
        busy = c.post("/api/v1/runs", json=body).json()["jobs"][0]["id"]
        _until(lambda: _job(c, busy), lambda j: j["status"] == "running")
        page.goto(server.url + "/runs/new")
        fill_recipe(page, "queued one", epochs="5000", lr="0.05", batch_size="12", solver="sgd")
        page.click('.tab[data-tab="custom"]')
        page.fill("#spec-editor", json.dumps(TINY_NET))  # JSON is YAML
        page.click("#create-run")
        page.wait_for_url(re.compile(r"/jobs/[\w-]+/run$"))
        expect(page.locator("#run-status")).to_have_text("queued")
        expect(page.locator("#run-name")).to_have_text("queued one")
        expect(page.locator("#history-empty")).to_contain_text("queued until a slot is free")
        expect(page.locator("#snapshots-empty")).to_be_visible()
        expect(page.locator("#run-log")).to_have_attribute("data-empty", "the job has not started")
        shot(page, "run-10-queued")
        job_id = page.url.rsplit("/", 2)[-2]
        assert _job(c, job_id)["status"] == "queued" and _job(c, job_id)["target"] is None  # no run folder yet

        _abort(c, busy)
        page.wait_for_url(re.compile(r"/runs/\d{8}-\d{6}-[0-9a-f]{4}$"), timeout=120_000)
        run_id = page.url.rsplit("/", 1)[-1]
        assert _job(c, job_id)["target"] == run_id
        expect(page.locator("#run-name")).to_have_text("queued one")
        expect(page.locator("#run-status")).to_have_text(re.compile("running|queued"))
        expect(page.locator("#chart-loss canvas")).to_have_count(1)
        shot(page, "run-10-started")
        _abort(c, job_id)


def test_the_run_page_stays_live_while_the_run_trains(server: Server, page: Page, dataset_id: str) -> None:
    """Item 11: while the job trains, without a reload: the log shows its progress, snapshots appear, the status
    history gains "running" (read as a local time), and the progress line says the epoch the job line says."""
    config = {**LONG, "snapshot_interval": 2, "val_interval": 2, "log_interval": 100_000}  # metric points: rare
    with server.client() as c:
        body = {"dataset": dataset_id, "spec": json.dumps(TINY_NET), "config": config, "name": "live"}
        job_id = c.post("/api/v1/runs", json=body).json()["jobs"][0]["id"]
        page.goto(f"{server.url}/jobs/{job_id}/run")
        page.wait_for_url(re.compile(r"/runs/\d{8}-\d{6}-[0-9a-f]{4}$"), timeout=120_000)
        expect(page.locator("#snapshots li").first).to_be_visible(timeout=60_000)
        expect(page.locator("#snapshots-empty")).to_be_hidden()
        expect(page.locator("#history li").last).to_contain_text("running")
        stamp = page.locator("#history li time").last
        expect(stamp).to_contain_text(re.compile("just now|minute"))
        assert "T" not in stamp.inner_text() and re.match(r"\d{4}-\d\d-\d\dT", stamp.get_attribute("title") or "")
        log = page.locator("#run-log")
        expect(log).to_contain_text(re.compile(r"epoch \d+\.\d\d of 5000"), timeout=30_000)
        assert _job(c, job_id)["status"] == "running"  # the log filled while it trains, not at the end

        expect(page.locator("#job-status")).to_contain_text("epoch", timeout=30_000)
        page.wait_for_timeout(1500)  # let the epoch move on past the last metric point
        job_line, progress_line = page.evaluate(
            "[document.getElementById('job-status').textContent, document.getElementById('run-epoch').textContent]"
        )
        job_epoch = re.search(r"epoch (\d+\.\d\d) of", job_line)
        assert job_epoch and progress_line.startswith(job_epoch.group(1) + " / "), (job_line, progress_line)
        shot(page, "run-11-live")
        _abort(c, job_id)


def _finished_evaluation(settings: Settings, run_id: str) -> None:
    """An evaluation of the run on its validation split, run by the worker's code in this process."""
    job = jobs.submit(settings, "evaluate", {"model": run_id, "split": "val"})
    with closing(db.connect(settings)) as conn:
        assert store.transition(conn, job.id, "running", ("queued",))
    assert worker.run_job(str(settings.home), job.id) == "done"


def test_the_run_page_is_legible(
    make_server: Callable[..., Server], web_settings: Settings, run_id: str, page: Page, tmp_path: Any
) -> None:
    """Item 12 on the run page: inspection at full width, top-loss captions at reading size with their arrow,
    a log-scale LR chart, local times, and a favicon."""
    import signal

    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    try:
        _finished_evaluation(web_settings, run_id)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    server = make_server(web_settings)
    page.goto(f"{server.url}/runs/{run_id}")

    caption = page.locator("#top-losses figcaption").first
    expect(caption).to_contain_text("→")
    size = float(caption.evaluate("e => getComputedStyle(e).fontSize").removesuffix("px"))
    assert size >= 12, size
    tile = page.locator("#top-losses .tile").first
    assert tile.evaluate("e => e.getBoundingClientRect().width") >= 90
    expect(page.locator("#top-per-class figcaption").first).to_contain_text("true: ")

    image = save_image(tmp_path / "one.png", np.full((12, 12, 3), 200, np.uint8))
    page.check("#c1-visualize")
    page.set_input_files("#c1-file", str(image))
    page.click("#c1-go")
    expect(page.locator("#weights tbody tr").first).to_be_visible(timeout=60_000)
    card = page.locator("#c1-inspect-card")
    main_width = page.evaluate("document.querySelector('main').clientWidth")
    assert card.evaluate("e => e.getBoundingClientRect().width") >= 0.9 * main_width
    assert card.evaluate(
        "e => { const b = document.getElementById('c1-inspect'); return b.scrollWidth <= b.clientWidth; }"
    )

    page.check("#lr-log")
    spacing = page.evaluate(
        "(() => { const u = document.getElementById('chart-lr').uplot; const y = (v) => u.valToPos(v, 'y');"
        " return [u.scales.y.distr, y(1e-3) - y(1e-2), y(1e-2) - y(1e-1)]; })()"
    )
    assert spacing[0] == 3 and abs(spacing[1] - spacing[2]) < 0.5 and spacing[1] > 0, spacing  # decades equal

    created = page.locator("time").first
    not_iso = re.compile(r"^(?!\d{4}-\d\d-\d\dT).* · (just now|\d+ \w+ ago)$")  # "Mar 12, 2026, 10:02 AM · just now"
    expect(created).to_have_text(not_iso)
    icon = page.eval_on_selector('link[rel="icon"]', "e => e.href")
    with server.client() as c:
        for url in (icon, "/favicon.ico"):
            res = c.get(url)
            assert res.status_code == 200 and res.headers["content-type"].startswith("image/svg+xml"), url
    shot(page, "run-12-legible")


def test_the_new_run_form_is_grouped_and_short(server: Server, page: Page, dataset_id: str) -> None:
    """Item 12 on the New run page: the settings in named groups, a page that fits in about two screens, the
    schedule's settings and the fine-tune fields shown only when they apply, and empty lists that say what next."""
    page.goto(server.url + "/runs/new")
    expect(page.locator("#lr-chart canvas")).to_have_count(1)
    for group in ("data", "network", "solver", "schedule", "validation", "augment", "device"):
        expect(page.locator(f"#grp-{group}")).to_be_visible()
    height = page.eval_on_selector("#run-form", "e => e.getBoundingClientRect().height")
    expect(page.locator("#net-resnet18")).to_be_visible()  # a classifier's table: no per-pixel networks
    expect(page.locator("#net-fcn_resnet50")).to_be_hidden()
    expect(page.locator("#net-unet")).to_be_hidden()
    assert height <= 2300, height  # 2,810 px before it was grouped; one-cycle (the default) shows its 3 settings
    expect(page.locator('input[name="finetune.freeze"]')).to_be_hidden()
    expect(page.locator('input[name="schedule.gamma"]')).to_be_hidden()
    page.select_option('select[name="schedule.policy"]', "step")
    expect(page.locator('input[name="schedule.gamma"]')).to_be_visible()
    expect(page.locator('input[name="schedule.pct_start"]')).to_be_hidden()
    expect(page.locator("#previous-run option").first).to_contain_text("no runs yet")
    page.select_option("#source-kind", "run")
    expect(page.locator('input[name="finetune.freeze"]')).to_be_visible()
    expect(page.locator("#source-run option").first).to_contain_text("no runs yet")
    shot(page, "run-12-new-run-form")
