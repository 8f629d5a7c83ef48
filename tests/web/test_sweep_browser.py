"""The sweep pages in a real browser over a real server and scheduler: New sweep (a bad key named live, before
anything is queued), then the sweep's page with its live trial table and plots, then the best trial's run and the
compare page with the sweep's runs. Screenshots: sweep-new-error, sweep-page, sweep-best-run, sweep-compare."""

from __future__ import annotations

import json
from collections.abc import Callable

from playwright.sync_api import Page, expect

from deepyard.config import Settings
from deepyard.jobs import list_jobs
from deepyard.networks import dump_yaml, spec_from_data
from deepyard.sweeps import get_sweep
from deepyard.web.app import JobOptions
from tests.web.conftest import TINY_NET, Server, shot

SPACE = "solver.lr: {type: float, low: 0.005, high: 0.3, log: true}\nbatch_size: {type: choice, values: [8, 16]}\n"


def test_new_sweep_then_its_page_with_plots_then_the_best_run(
    make_server: Callable[..., Server], page: Page, web_settings: Settings, dataset_id: str
) -> None:
    server = make_server(web_settings, job_options=JobOptions(cpu_slots=2, gpus=[], poll_s=0.05))  # trials at once
    page.goto(f"{server.url}/sweeps/new")
    page.select_option("#sw-network", "spec")
    page.fill("#sw-spec", dump_yaml(spec_from_data(TINY_NET)))
    page.fill("#sw-space", SPACE.replace("batch_size", "batchsize"))
    expect(page.locator("#sweep-error")).to_contain_text("search space key 'batchsize' is not a training setting; "
                                                         "valid: 'network', 'epochs', 'batch_size'")  # fmt: skip
    shot(page, "sweep-new-error")
    page.click("#sweep-create")  # refused too: nothing is queued
    expect(page.locator("#sweep-error")).to_contain_text("'batchsize'")
    assert list_jobs(web_settings) == [] and page.url.endswith("/sweeps/new")

    page.fill("#sw-name", "lr and batch")
    page.fill("#sw-space", SPACE)
    page.fill("#sw-config", "epochs: 1\nval_interval: 0.5\ndevice: cpu\nprecision: fp32\nsolver.type: sgd")
    page.select_option("#sw-objective", "val_loss")  # continuous: two trials never tie, so fANOVA ranks them
    page.select_option("#sw-sampler", "random")
    page.select_option("#sw-prune", "none")
    page.fill("#sw-trials", "2")
    expect(page.locator("#sweep-ok")).to_contain_text("2 setting(s) searched, minimize val_loss")
    page.click("#sweep-create")
    page.wait_for_url("**/sweeps/2*")
    sweep_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#sweep-status")).to_have_text("done", timeout=180_000)
    expect(page.locator("#sweep-trials tbody tr")).to_have_count(2)
    expect(page.locator("#plot-history canvas")).to_have_count(1)
    expect(page.locator("#plot-parallel canvas")).to_have_count(1)
    expect(page.locator("#plot-importance canvas")).to_have_count(1)
    expect(page.locator("#plot-slices .slice canvas")).to_have_count(2)
    expect(page.locator("#sweep-trials tbody tr.best")).to_have_count(1)
    shot(page, "sweep-page")

    summary = get_sweep(web_settings, sweep_id)
    assert summary["counts"]["complete"] == 2 and summary["name"] == "lr and batch"
    best = summary["best"]["run"]
    page.click("#sweep-best")
    page.wait_for_url(f"**/runs/{best}")
    expect(page.locator("h1")).to_contain_text("lr and batch #")
    shot(page, "sweep-best-run")

    page.goto(f"{server.url}/sweeps/{sweep_id}")
    page.click("#sweep-compare")
    ids = json.loads(page.locator("#compare-runs").text_content() or "[]")
    assert ids == [t["run"] for t in summary["trials"]]
    expect(page.locator("#compare-table thead th")).to_have_count(3)
    expect(page.locator("#cmp-time-to-best td")).to_have_count(2)
    assert " s · " in (page.locator("#cmp-time-to-best td").first.text_content() or "")
    shot(page, "sweep-compare")
