"""Multi-label and regression through the pages only, in real headless Chromium against a real server with real
job processes: the New dataset page builds the dataset (a CSV of MNIST digit pairs; a list file of brightness
values), the dataset page shows the task's targets, the New run page offers the task's losses and metrics and
leaves the network to the task, the run trains, the run page shows the task's metrics, one image is predicted,
the validation split is evaluated and the model exported with its parity check. Screenshots: test-artifacts/web/
tasks-*.png."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.tasks.data import write_brightness, write_pairs
from tests.web.conftest import ARTIFACTS, Server, fill_recipe

JOB = 180_000  # ms a dataset build, a 3-epoch run, an evaluation or an export may take on a busy 2-core machine


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"tasks-{name}.png"), full_page=True)


def gallery_loaded(page: Page) -> None:
    page.wait_for_function("[...document.querySelectorAll('#gallery img')].every((i) => i.complete && i.naturalWidth)")


def build_dataset(page: Page, server: Server, name: str, task: str, tab: str, fields: dict[str, str]) -> None:
    """Fill the New dataset page (task, one source tab, grayscale at `fields`' size), submit: the dataset's page
    follows the build and then shows the dataset."""
    page.goto(server.url + "/datasets/new")
    page.fill("#ds-name", name)
    page.select_option("#ds-task", task)
    page.click(f'.tab[data-tab="{tab}"]')
    for selector, value in fields.items():
        page.fill(selector, value)
    page.select_option('select[name="channels"]', "1")
    page.fill('input[name="val_pct"]', "20")
    width = fields['input[name="width"]']  # the preview shows the source's first image at the dataset's size
    page.wait_for_function(f"document.getElementById('resize-preview').naturalWidth === {width}")
    shot(page, f"{task}-new-dataset")
    page.click("#create-dataset")
    expect(page.locator("#gallery")).to_be_visible(timeout=JOB)
    gallery_loaded(page)


def train_from_form(page: Page, server: Server, name: str, losses: list[str], monitor: str) -> str:
    """From the dataset page: the New run form offers only the task's losses and metrics; the network is left to
    the task. Submits a short recipe, waits on the home page until the run is done; returns its id."""
    page.click("text=Train on it")
    expect(page.locator("#net-auto")).to_be_checked()
    options = page.locator('select[name="loss"] option:not([disabled])')
    expect(options).to_have_count(len(losses))  # the task's choices replace the others once the page has read it
    offered = options.evaluate_all("os => os.map((o) => o.value)")
    assert offered == losses
    page.select_option("#run-monitor", monitor)
    fill_recipe(page, name, epochs="3", lr="0.002", batch_size="32", solver="adam")
    expect(page.locator("#lr-chart")).to_contain_text("lr 0.002")  # the schedule preview caught up
    shot(page, f"{name}-new-run")
    page.click("#create-run")  # the new run's page at once (queued, then training)
    page.wait_for_url(re.compile(r"/runs/\d{8}-\d{6}-[0-9a-f]{4}$"), timeout=JOB)
    page.goto(server.url + "/")
    row = page.locator("#runs tbody tr", has_text=name)
    expect(row).to_have_count(1, timeout=JOB)
    expect(row.locator('[data-field="status"]')).to_have_text("done", timeout=JOB)
    expect(row.locator(f'td[data-metric="{monitor}"]')).to_have_text(re.compile(r"\d"))  # the headline, not blank
    shot(page, f"{name}-home")
    run_id = str(row.get_attribute("data-run"))
    page.goto(f"{server.url}/compare?runs={run_id}")
    expect(page.locator(f'#compare-table td[data-metric="{monitor}"]')).to_have_text(re.compile(r"\d"))
    expect(page.locator("#cmp-val-top1 canvas")).to_have_count(1)
    shot(page, f"{name}-compare")
    return run_id


def use_the_model(page: Page, server: Server, run_id: str, image: Path, metric: str) -> None:
    """The run page: the task's metric, one image predicted, an evaluation job and an export job with parity."""
    page.goto(f"{server.url}/runs/{run_id}")
    expect(page.locator("#run-status")).to_have_text("done")
    expect(page.locator(f"#run-{metric}")).to_have_text(re.compile(r"\d"))
    page.set_input_files("#c1-file", str(image))
    page.click("#c1-go")
    expect(page.locator("#c1-top tbody tr").first).to_be_visible(timeout=JOB)
    page.click("#eval-val")
    expect(page.locator("#eval-job")).to_have_attribute("data-status", "done", timeout=JOB)
    expect(page.locator("#cm-accuracy")).to_contain_text(re.compile(r"^\d+ images"))
    page.click("#ex-go")
    expect(page.locator("#ex-job")).to_have_attribute("data-status", "done", timeout=JOB)
    expect(page.locator("#ex-table td.ok-box")).to_have_count(3)  # parity passed: archive, ONNX, TorchScript


def test_multilabel_from_the_pages(server: Server, page: Page, tmp_path: Path) -> None:
    csv = write_pairs(tmp_path / "data" / "pairs", 300)
    build_dataset(page, server, "pairs", "multilabel", "csv", {"#csv-train": str(csv), 'input[name="width"]': "56",
                                                                 'input[name="height"]': "28"})  # fmt: skip
    expect(page.locator("#ds-task")).to_have_text("Multi-label classification")
    expect(page.locator("#distribution tbody tr")).to_have_count(10)  # images per label d0..d9
    expect(page.locator("#gallery figcaption").first).to_have_text(re.compile(r"^d\d( d\d)?$"))
    total = page.locator("#g-info").inner_text()
    page.select_option("#g-class", label="d3")
    expect(page.locator("#g-info")).not_to_have_text(total)  # the filtered page arrived
    captions = page.locator("#gallery figcaption").all_inner_texts()
    assert captions and all("d3" in c.split() for c in captions)  # the label filter keeps the images having d3
    gallery_loaded(page)
    shot(page, "multilabel-dataset")

    run_id = train_from_form(page, server, "pairs-run", ["auto", "bce", "focal"], "val_map")
    use_the_model(page, server, run_id, csv.parent / "img" / "00000.png", "val-map")
    expect(page.locator("#c1-labels")).to_be_visible()
    expect(page.locator("#per-label tbody tr")).to_have_count(10)
    page.wait_for_function("[...document.querySelectorAll('#cm-result img')].every((i) => i.naturalWidth > 0)")
    shot(page, "multilabel-run")


def test_regression_from_the_pages(server: Server, page: Page, tmp_path: Path) -> None:
    listing = write_brightness(tmp_path / "data" / "bright", 300)
    page.goto(server.url + "/datasets/new")  # a source that is not there is refused at submit, on the page
    page.fill("#ds-name", "nothing")
    page.select_option("#ds-task", "regression")
    expect(page.locator("#task-help")).to_contain_text("value")
    page.click('.tab[data-tab="list"]')
    page.fill("#list-train", str(tmp_path / "data" / "missing.txt"))
    page.click("#create-dataset")
    expect(page.locator("#form-error")).to_contain_text("missing.txt")
    shot(page, "regression-new-dataset-error")

    build_dataset(page, server, "brightness", "regression", "list", {"#list-train": str(listing),
                                                                     'input[name="width"]': "28",
                                                                     'input[name="height"]': "28"})  # fmt: skip
    expect(page.locator("#ds-task")).to_have_text("Regression")
    expect(page.locator("#distribution")).to_have_count(0)  # no classes to count: the targets' mean and std
    expect(page.locator("#target-stats tbody tr")).to_have_count(1)
    expect(page.locator("#g-class")).to_have_count(0)
    expect(page.locator("#gallery figcaption").first).to_have_text(re.compile(r"\d"))
    shot(page, "regression-dataset")

    run_id = train_from_form(page, server, "bright-run", ["auto", "mse", "l1", "smooth_l1"], "val_r2")
    use_the_model(page, server, run_id, listing.parent / "img" / "00000.png", "val-r2")
    expect(page.locator("#c1-top tbody tr")).to_have_count(1)
    expect(page.locator("#per-target tbody tr")).to_have_count(1)
    page.wait_for_function("[...document.querySelectorAll('img.scatter')].some((i) => i.naturalWidth > 0)")
    shot(page, "regression-run")
