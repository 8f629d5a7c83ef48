"""A task's default recipe over HTTP: POST /runs and /runs/find store it under the request's config and preset,
/sweeps/check shows it under the fixed settings; image classification keeps TrainConfig's defaults. In Chromium:
the New run page shows the recipe in its fields (screenshot test-artifacts/web/run-new-lm-recipe.png), the New
sweep page names it under the fixed settings."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from deepyard.config import Settings
from deepyard.jobs import get_job
from deepyard.train import TrainConfig
from deepyard.web.app import JobOptions
from tests.text.test_recipe import RECIPE, lm_dataset, recipe_of
from tests.web.conftest import TINY_NET, Server, shot


def test_post_runs_and_find_bake_the_recipe_and_classification_is_unchanged(
    web_settings: Settings, tmp_path: Path, dataset_id: str, make_server: Callable[..., Server]
) -> None:
    lm = lm_dataset(web_settings, tmp_path / "data")
    server = make_server(web_settings, job_options=JobOptions(run=False))  # only the queue: nothing trains
    with server.client() as c:

        def stored(body: dict[str, object], route: str = "/api/v1/runs") -> dict[str, object]:
            made = c.post(route, json=body)
            assert made.status_code == 202, made.text
            job = made.json()["jobs"][0] if "jobs" in made.json() else made.json()["job"]
            config = get_job(server.settings, job["id"]).params["config"]
            assert isinstance(config, dict)
            return config

        assert recipe_of(stored({"dataset": lm, "config": {"device": "cpu"}})) == (
            RECIPE["epochs"],
            RECIPE["batch_size"],
            1.0,
        )
        mine = stored({"dataset": lm, "config": {"epochs": 1, "solver": {"clip_grad_norm": 3}}})
        assert recipe_of(mine) == (1, RECIPE["batch_size"], 3)  # the request's config wins
        digits = stored({"dataset": lm, "preset": "digits", "config": {}})
        assert (digits["epochs"], digits["solver"]["type"], digits["solver"]["clip_grad_norm"]) == (30, "sgd", 1.0)
        found = stored({"dataset": lm, "what": "lr", "steps": 10, "config": {}}, "/api/v1/runs/find")
        assert recipe_of(found) == (RECIPE["epochs"], RECIPE["batch_size"], 1.0)
        image = stored({"dataset": dataset_id, "spec": json.dumps(TINY_NET), "config": {}})
        assert image == TrainConfig().model_dump(mode="json")  # classification: TrainConfig's defaults
        checked = c.post("/api/v1/sweeps/check", json={"dataset": lm, "space_text": "solver.lr: {type: float, "
                         "low: 0.001, high: 0.01}", "config_text": "epochs: 1", "trials": 2})  # fmt: skip
        assert checked.status_code == 200, checked.text
        assert checked.json()["config"]["batch_size"] == RECIPE["batch_size"]


def test_the_new_run_page_shows_the_task_recipe_in_its_fields(
    server: Server, page: Page, web_settings: Settings, tmp_path: Path, dataset_id: str
) -> None:
    lm = lm_dataset(web_settings, tmp_path / "data")
    page.goto(f"{server.url}/runs/new?dataset={lm}")
    expect(page.locator('input[name="epochs"]')).to_have_value(str(RECIPE["epochs"]))
    expect(page.locator("#bs-values")).to_have_value(str(RECIPE["batch_size"]))
    expect(page.locator('input[name="solver.clip_grad_norm"]')).to_have_value("1")
    expect(page.locator("#preset-note")).to_contain_text("epochs 2.2")
    shot(page, "run-new-lm-recipe")
    page.select_option("#run-dataset", dataset_id)  # an image dataset: TrainConfig's defaults come back
    expect(page.locator('input[name="epochs"]')).to_have_value("30")
    expect(page.locator("#bs-values")).to_have_value("64")
    expect(page.locator('input[name="solver.clip_grad_norm"]')).to_have_value("")
    page.select_option("#run-dataset", lm)
    page.click('button.preset[data-preset="digits"]')  # the preset over the recipe, as the server layers them
    expect(page.locator('input[name="epochs"]')).to_have_value("30")
    expect(page.locator('input[name="solver.clip_grad_norm"]')).to_have_value("1")
    page.goto(f"{server.url}/sweeps/new")
    page.select_option("#sw-dataset", lm)
    expect(page.locator("#sw-recipe")).to_contain_text("epochs: 2.2")
    page.select_option("#sw-dataset", dataset_id)
    expect(page.locator("#sw-recipe")).to_be_hidden()
