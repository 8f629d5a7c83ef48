"""The compare page's predictions panel in a real Chromium: upload an image, pick images of a dataset split, see
each run's prediction with its confidence and thumbnails, and download the table as CSV."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from deepyard.config import Settings
from deepyard.networks import spec_from_data
from deepyard.train import make_config, train
from tests.web.conftest import TINY_NET, Server, shot


def test_predictions_panel_uploads_picks_a_split_and_downloads_csv(
    server: Server, page: Page, web_settings: Settings, dataset_id: str, run_id: str, tmp_path: Path
) -> None:
    recipe: dict[str, Any] = {"solver.type": "momentum", "solver.lr": 0.05}  # 4 epochs: right on the val split
    config = make_config(epochs=4, batch_size=6, device="cpu", seed=7, **recipe)
    second = train(web_settings, dataset_id, spec_from_data(TINY_NET), config, name="second").run_id
    page.goto(f"{server.url}/compare?runs={run_id},{second}")
    panel = page.locator("#cmp-predictions")
    expect(panel.locator("#cmp-dataset")).to_have_value(dataset_id)  # the first run's dataset
    expect(panel.locator("#cmp-split")).to_have_value("val")
    upload = tmp_path / "data" / "bars" / "class1" / "004.png"
    panel.locator("#cmp-files").set_input_files(str(upload))
    panel.locator("#cmp-count").fill("4")
    panel.locator("#cmp-predict").click()

    table = panel.locator("#cmp-pred-table")
    expect(table.locator("tbody tr")).to_have_count(5)  # the upload, then the split's first 4
    expect(table.locator("thead th")).to_have_count(4)
    expect(table.locator("thead")).to_contain_text("second")
    first_row = table.locator("tbody tr").first
    expect(first_row).to_contain_text("004.png")
    expect(first_row.locator("td").nth(2)).to_have_text(re.compile(r"^class\d \d+\.\d%$"))
    expect(table.locator("tbody tr").nth(1)).to_contain_text("bars/val/0")
    expect(table.locator("td.right, td.wrong")).to_have_count(8)  # the split's images are judged, the upload not
    page.wait_for_function(
        "[...document.querySelectorAll('#cmp-pred-table img')].every((i) => i.complete && i.naturalWidth > 0)"
    )
    shot(page, "compare-predictions")

    with page.expect_download() as fetched:
        panel.locator("#cmp-csv").click()
    assert fetched.value.suggested_filename == "predictions.csv"
    lines = list(csv.DictReader(Path(fetched.value.path()).read_text().splitlines()))
    assert [line["image"] for line in lines] == ["004.png", *(f"bars/val/{i}" for i in range(4))]
    shown = table.locator("tbody tr").nth(1).locator("td").nth(3).inner_text()
    assert shown.startswith(lines[1]["second predicted"] + " ") and lines[1]["label"] in ("class0", "class1", "class2")
    assert f"{100 * float(lines[1]['second confidence']):.1f}%" in shown

    # indices instead of a count; a bad one is refused with the valid range
    panel.locator("#cmp-files").set_input_files([])
    panel.locator("#cmp-indices").fill("7, 2")
    panel.locator("#cmp-predict").click()
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table.locator("tbody tr").first).to_contain_text("bars/val/7")
    panel.locator("#cmp-indices").fill("99")
    panel.locator("#cmp-predict").click()
    expect(panel.locator("#cmp-error")).to_contain_text("index 99 is out of range")
