"""The New run page's Starting weights card offline, in real Chromium over a real server: a weights file picked in
the data roots with the Browse dialog, one uploaded, a model archive imported into the store and chosen, and a run
submitted from the weights file with the network chosen in the Network card (issue 13 item 9)."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import Page, expect

from deepyard.config import Settings
from deepyard.infer.archive import write_archive
from deepyard.infer.model import open_model
from deepyard.jobs import list_jobs
from tests.web.conftest import TINY_NET, Server, shot
from tests.web.test_weights_api import best_weights


def test_weights_are_picked_uploaded_and_imported_from_the_page(
    server: Server, page: Page, web_settings: Settings, run_id: str, dataset_id: str, tmp_path: Path
) -> None:
    from safetensors.torch import save_file

    weights = tmp_path / "data" / "weights"
    weights.mkdir()
    save_file(best_weights(web_settings, run_id), str(weights / "tiny.safetensors"))
    archive = write_archive(open_model(web_settings, run_id), tmp_path / "tiny-bars.zip")
    page.goto(server.url + "/runs/new")
    page.select_option("#source-kind", "store")
    page.set_input_files("#archive-upload", str(archive))
    expect(page.locator("#archive-note")).to_have_text("imported as store:tiny-bars")
    expect(page.locator("#source-store")).to_have_value("tiny-bars")
    page.select_option("#source-kind", "file")
    page.set_input_files("#weights-upload", str(weights / "tiny.safetensors"))
    expect(page.locator("#weights-note")).to_contain_text("uploaded: 4 tensors")
    assert "/uploads/" in page.locator("#source-file").input_value()
    page.fill("#source-file", "")  # the picker opens at the file's folder, else at the allowed folders
    page.click("#browse-weights")
    page.click(f'#wpick-list a:text-is("{tmp_path / "data"}/")')
    page.click('#wpick-list a:text-is("weights/")')
    expect(page.locator("#wpick-list")).to_contain_text("tiny.safetensors")
    shot(page, "run-new-weights-picker")
    page.click('#wpick-list a:has-text("tiny.safetensors")')
    expect(page.locator("#source-file")).to_have_value(str(weights / "tiny.safetensors"))
    page.locator("#start-card").scroll_into_view_if_needed()
    shot(page, "run-new-weights-file")
    page.click('.tab[data-tab="custom"]')
    page.fill("#spec-editor", json.dumps(TINY_NET))
    page.fill('input[name="device"]', "cpu")
    page.fill('input[name="epochs"]', "1")
    page.click("#create-run")
    page.wait_for_url("**/jobs/*/run")
    job = list_jobs(web_settings, kind="train")[-1]
    assert job.params["source"] == str(weights / "tiny.safetensors") and job.params["network"]["name"] == "tiny"
