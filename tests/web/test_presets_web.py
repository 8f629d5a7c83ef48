"""Presets over HTTP and on the New run page: GET /presets, POST /runs with a preset (its own config wins), and
the "DIGITS classic" button filling the form with DIGITS' settings, in real Chromium over a real server."""

from __future__ import annotations

import json

from playwright.sync_api import Page, expect

from deepyard.jobs import get_job
from tests.web.conftest import TINY_NET, Server, shot


def test_presets_over_http(server: Server, dataset_id: str) -> None:
    with server.client() as c:
        listed = c.get("/api/v1/presets").json()
        assert [p["name"] for p in listed] == ["default", "digits"]
        assert listed[1]["settings"]["schedule.policy"] == "step"
        body = {"dataset": dataset_id, "spec": json.dumps(TINY_NET), "preset": "digits",
                "config": {"epochs": 1, "device": "cpu", "solver": {"lr": 0.02}}}  # fmt: skip
        made = c.post("/api/v1/runs", json=body)
        assert made.status_code == 202, made.text
        config = get_job(server.settings, made.json()["jobs"][0]["id"]).params["config"]
        assert (config["solver"]["type"], config["solver"]["lr"], config["schedule"]["policy"]) == ("sgd", 0.02, "step")
        bad = c.post("/api/v1/runs", json={**body, "preset": "caffe"})
        assert bad.status_code == 422 and "preset 'caffe' is not one of 'default' or 'digits'" in bad.text


def test_the_digits_button_fills_the_form(server: Server, page: Page, dataset_id: str) -> None:
    page.goto(server.url + "/runs/new")
    expect(page.locator('select[name="solver.type"]')).to_have_value("adamw")  # the default recipe
    expect(page.locator("#lr-values")).to_have_value("0.003")
    expect(page.locator('select[name="schedule.policy"]')).to_have_value("onecycle")
    page.click('button.preset[data-preset="digits"]')
    expect(page.locator('select[name="solver.type"]')).to_have_value("sgd")
    expect(page.locator("#lr-values")).to_have_value("0.01")
    expect(page.locator('input[name="solver.weight_decay"]')).to_have_value("0.0001")
    expect(page.locator('select[name="schedule.policy"]')).to_have_value("step")
    expect(page.locator('input[name="schedule.step_size"]')).to_be_visible()
    expect(page.locator("#preset-note")).to_contain_text("DIGITS' classic settings")
    shot(page, "run-new-preset-digits")
    page.click('button.preset[data-preset="default"]')
    expect(page.locator('select[name="solver.type"]')).to_have_value("adamw")
    expect(page.locator('select[name="schedule.policy"]')).to_have_value("onecycle")
