"""A language model on the web: the samples and generate endpoints over HTTP, and the run page's Samples panel and
Generate box in Chromium (screenshot: test-artifacts/web/lm-run.png)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec
from deepyard.train import TrainConfig, train
from tests.web.conftest import Server, shot

TEXT = "the quick brown fox jumps over the lazy dog\n" * 120


def lm_run(settings: Settings, tmp_path: Path) -> str:
    (tmp_path / "data" / "fox.txt").write_text(TEXT, encoding="utf-8")
    spec = make_spec(name="fox", task="language-model", val_pct=10,
                     source={"kind": "text", "train": tmp_path / "data" / "fox.txt", "context": 16})  # fmt: skip
    dataset = create_dataset(settings, spec).id
    config = TrainConfig.model_validate({"epochs": 1, "batch_size": 8, "val_interval": 0.5, "workers": 0,
                                         "solver": {"lr": 0.01, "clip_grad_norm": 1.0}})  # fmt: skip
    return train(settings, dataset, "gpt-mini", config).run_id


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
    page.fill("#lm-prompt", "the quick ")
    page.fill("#lm-temperature", "0")
    page.fill("#lm-length", "40")
    page.click("#lm-go")
    expect(page.locator("#lm-output[data-done='1']")).to_contain_text("the quick ")
    assert len(page.inner_text("#lm-output")) == len("the quick ") + 40
    shot(page, "lm-run")
