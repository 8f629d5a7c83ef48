"""The pages of a language model show only what applies, in Chromium: the run page has the Samples and Generate
panels and none of the image tasks' (Try one image, Predict many, Export); the dataset page shows text (the split
figures, passages from each split, the vocabulary) instead of a gallery and a mean image. Screenshots:
test-artifacts/web/lm-run-page.png, lm-dataset-page.png. GET /api/v1/datasets/ID/text is the page's JSON twin."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from deepyard.config import Settings
from deepyard.train import get_run
from tests.web.conftest import Server, shot
from tests.web.test_text_stream import TEXT, quick_lm_run


@pytest.fixture
def lm_run(web_settings: Settings, tmp_path: Path) -> str:
    return quick_lm_run(web_settings, tmp_path)


def test_the_text_of_a_language_model_dataset_over_http(server: Server, lm_run: str, dataset_id: str) -> None:
    dataset = get_run(server.settings, lm_run)["dataset"]
    with server.client() as c:
        doc = c.get(f"/api/v1/datasets/{dataset}/text").json()
        assert set(doc["passages"]) == {"train", "val"} and all(len(p) == 3 for p in doc["passages"].values())
        assert all(p["text"] in TEXT for p in doc["passages"]["train"])  # decoded from the stored tokens
        assert doc["vocabulary"]["size"] == len(set(TEXT)) and "\\n" in doc["vocabulary"]["shown"]
        assert doc["text"]["tokenizer"] == "char" and doc["skipped"] == []
        other = c.get(f"/api/v1/datasets/{dataset_id}/text")  # an image dataset
        assert other.status_code in (400, 422) and "classification" in other.text


def test_the_pages_of_a_language_model_show_only_what_applies(server: Server, page: Page, lm_run: str) -> None:
    page.goto(f"{server.url}/runs/{lm_run}")
    expect(page.locator("#lm-form")).to_be_visible()
    expect(page.locator("#text-infer")).to_contain_text(f"deepyard export {lm_run}")
    for image_only in ("#infer", "#c1-go", "#cm-go", "#ex-go", "#c1-inspect-card"):
        expect(page.locator(image_only)).to_have_count(0)
    shot(page, "lm-run-page")
    page.click(f"a[href='/datasets/{get_run(server.settings, lm_run)['dataset']}']")  # Settings: the dataset
    expect(page.locator("#lm-dataset")).to_be_visible()
    expect(page.locator("#lm-passages .lm-passage")).to_have_count(6)  # 3 from each split
    expect(page.locator("#lm-passages")).to_contain_text("the quick brown fox")
    expect(page.locator("#lm-vocab code")).to_have_count(len(set(TEXT)))
    expect(page.locator("#lm-splits tbody tr")).to_have_count(2)
    for image_only in ("#gallery", "#mean-image"):
        expect(page.locator(image_only)).to_have_count(0)
    shot(page, "lm-dataset-page")
