"""A language model on the web: the samples and generate endpoints over HTTP, and the run page's Samples panel and
Generate box in Chromium, the text growing as it streams (screenshot: test-artifacts/web/lm-run.png)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from deepyard.config import Settings
from tests.web.conftest import Server, shot
from tests.web.test_text_stream import quick_lm_run, watch_generate_box


def lm_run(settings: Settings, tmp_path: Path) -> str:
    return quick_lm_run(settings, tmp_path, epochs=1, val_interval=0.5)


@pytest.mark.slow  # trains a run first: about a minute on the shared 2-core machine, over the fast budget
def test_samples_and_generate_over_http_and_in_the_browser(
    web_settings: Settings, tmp_path: Path, server: Server, page: Page
) -> None:
    run = lm_run(web_settings, tmp_path)
    with server.client() as client:
        samples = client.get(f"/api/v1/runs/{run}/samples").json()["samples"]
        assert [s["step"] for s in samples] == sorted(s["step"] for s in samples) and len(
            samples
        ) == 3  # steps 18, 36 and the last, 37
        doc = client.post(f"/api/v1/runs/{run}/generate", json={"prompt": "the ", "length": 25, "temperature": 0})
        assert doc.status_code == 200, doc.text
        assert doc.json()["prompt"] == "the " and len(doc.json()["text"]) == 25
        bad = client.post(f"/api/v1/runs/{run}/generate", json={"prompt": "Q!", "length": 5})
        assert bad.status_code in (400, 422) and "'Q'" in bad.text
        assert client.post(f"/api/v1/runs/{run}/generate", json={"length": 0}).status_code == 422
    page.goto(f"{server.url}/runs/{run}")
    expect(page.locator(".lm-sample")).to_have_count(3)
    grown = watch_generate_box(page, "the quick ", 200)  # streamed: the text grows as it is made
    assert len({n for n in grown if n > len("the quick ")}) > 10, grown
    shot(page, "lm-run")
