"""The run page says plainly what the trainer advised (deepyard.train.advice): a model collapsed to one class and a
batch larger than the training split, in real Chromium over a real server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec
from deepyard.train import make_config, train
from tests.train.test_advice import write_signalless
from tests.web.conftest import Server, shot


def test_the_run_page_shows_the_advice(
    web_settings: Settings, tmp_path: Path, make_server: Callable[..., Server], page: Page
) -> None:
    write_signalless(tmp_path / "data" / "flat")
    spec = make_spec(name="flat", source={"kind": "folder", "train": tmp_path / "data" / "flat"}, channels=1,
                     width=28, height=28)  # fmt: skip
    dataset = create_dataset(web_settings, spec).id
    run = train(web_settings, dataset, "lenet", make_config(epochs=1, batch_size=500, device="cpu")).run_id
    server: Server = make_server(web_settings)
    page.goto(f"{server.url}/runs/{run}")
    boxes = page.locator("#run-advice .warn-box")
    expect(boxes).to_have_count(2)
    expect(boxes.nth(0)).to_contain_text("larger than the 36 training images: each epoch is one step")
    expect(boxes.nth(1)).to_contain_text("collapsed to one class")
    shot(page, "run-advice")
