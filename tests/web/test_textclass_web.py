"""Text classification on the web: classify-text and dataset texts over HTTP, and in Chromium the dataset page's
texts per class and length histogram and the run page's Classify text box with its bars (screenshots:
test-artifacts/web/textclass-dataset.png, textclass-run.png). Evaluate and export: tests/web/test_text_jobs.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec
from deepyard.train import TrainConfig, train
from tests.text.test_textclass_data import class_folders
from tests.web.conftest import Server, fill_recipe, shot
from tests.web.test_tasks_browser import JOB


def text_run(settings: Settings, tmp_path: Path) -> tuple[str, str]:
    source = {"kind": "labelled-text", "train": class_folders(tmp_path / "data" / "films", 24)}
    spec = make_spec(name="films", task="text-classification", source=source)
    dataset = create_dataset(settings, spec).id
    config = TrainConfig.model_validate({"epochs": 6, "batch_size": 8, "workers": 0, "solver": {"lr": 0.05}})
    return dataset, train(settings, dataset, "bag-ngrams", config).run_id


def test_classify_and_dataset_texts_over_http_and_in_the_browser(
    web_settings: Settings, tmp_path: Path, server: Server, page: Page
) -> None:
    dataset, run = text_run(web_settings, tmp_path)
    with server.client() as client:
        doc = client.post(f"/api/v1/runs/{run}/classify-text", json={"texts": ["not a good film", "a good film"]})
        assert doc.status_code == 200, doc.text
        assert [p["predicted"] for p in doc.json()["predictions"]] == ["neg", "pos"]
        assert "<table" in doc.json()["predictions"][0]["html"]
        assert client.post(f"/api/v1/runs/{run}/classify-text", json={"text": "  "}).status_code in (400, 422)
        texts = client.get(f"/api/v1/datasets/{dataset}/texts?per_class=2").json()
        assert [c["name"] for c in texts["classes"]] == ["neg", "pos"] and len(texts["classes"][0]["examples"]) == 2
        assert texts["lengths"]["per_class"]["pos"]["train"]["counts"]
        assert client.get(f"/api/v1/datasets/{dataset}/texts?split=nope").status_code == 404
        no_mean = client.get(f"/api/v1/datasets/{dataset}/mean.png")
        assert no_mean.status_code == 404 and "holds texts, not images" in no_mean.text
        assert client.get(f"/api/v1/datasets/{dataset}/images/train/0.png").status_code == 404

    page.goto(f"{server.url}/datasets/{dataset}")
    expect(page.locator(".tc-class")).to_have_count(2)
    expect(page.locator("#tc-hist tr")).to_have_count(3)  # a header and a row per class
    expect(page.locator("#mean-image")).to_have_count(0)
    expect(page.locator("#skipped")).to_contain_text("binary file")
    shot(page, "textclass-dataset")

    page.goto(f"{server.url}/runs/{run}")
    page.fill("#tc-text", "not a good film at all")
    page.click("#tc-go")
    expect(page.locator("#tc-result tbody tr").first).to_contain_text("neg")
    expect(page.locator("#tc-result .bar")).to_have_count(2)
    shot(page, "textclass-run")  # its Evaluate and Export panels: tests/web/test_text_jobs.py


@pytest.mark.slow  # real dataset and train jobs from the pages: about a minute and a half here
def test_text_classification_from_the_pages(server: Server, page: Page, tmp_path: Path) -> None:
    """New dataset (the Labelled texts tab sets the task), New run (the network left to the task), the run page."""
    source = class_folders(tmp_path / "data" / "films", 24)
    page.goto(server.url + "/datasets/new")
    page.fill("#ds-name", "films")
    page.click('.tab[data-tab="texts"]')
    expect(page.locator("#ds-task")).to_have_value("text-classification")
    page.fill("#texts-train", str(source))
    page.select_option("#texts-tokenizer", "char")
    shot(page, "textclass-new-dataset")
    page.click("#create-dataset")
    expect(page.locator(".tc-class")).to_have_count(2, timeout=JOB)
    page.click("text=Train on it")
    expect(page.locator("#net-auto")).to_be_checked()
    fill_recipe(page, "films-run", epochs="6", lr="0.05", batch_size="8", solver="adamw")
    shot(page, "textclass-new-run")
    page.click("#create-run")
    page.wait_for_url(re.compile(r"/runs/\d{8}-\d{6}-[0-9a-f]{4}$"), timeout=JOB)
    expect(page.locator("#run-status")).to_have_text("done", timeout=JOB)
    page.reload()
    page.fill("#tc-text", "not a good film")
    page.click("#tc-go")
    expect(page.locator("#tc-result tbody tr").first).to_contain_text("neg")
