"""The lab (shared/LAB.md), walked in real headless Chromium against a real server with real job processes: build an
MNIST subset → train a one-epoch LeNet and watch its chart fill → classify an uploaded digit with visualizations
→ evaluate it and export it (both jobs) → clone with the invert augmentation → a modified network from the editor
→ compare the runs in one table → the table of test images x runs (predicted class and confidence), as CSV
→ MNIST from its IDX files and the LR finder, from the browser. Screenshots: test-artifacts/web/lab-*.png."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from deepyard.datasets.idx import read_idx_pair
from tests.web.conftest import ARTIFACTS, Server, fill_recipe

PER_CLASS = {"train": 60, "t10k": 10}
TRAINING = 120_000  # ms a one-epoch LeNet on 600 images may take on a busy 2-core machine (an upper bound)


def write_mnist_subset(mnist_dir: Path, target: Path) -> Path:
    """`target/{train,test}/<digit>/<n>.png`: the first PER_CLASS images of each digit."""
    for split, folder in (("train", "train"), ("t10k", "test")):
        images, labels = read_idx_pair(mnist_dir / f"{split}-images-idx3-ubyte.gz",
                                       mnist_dir / f"{split}-labels-idx1-ubyte.gz")  # fmt: skip
        for digit in range(10):
            for i in np.flatnonzero(labels == digit)[: PER_CLASS[split]]:
                path = target / folder / str(digit) / f"{i:05d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(images[i]).save(path)
    return target


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"lab-{name}.png"), full_page=True)


def set_invert(page: Page, value: str) -> None:
    """The augmentation card is folded until opened, as a user opens it."""
    if not page.locator("#grp-augment details").evaluate("d => d.open"):
        page.click("#grp-augment summary")
    page.fill('input[name="augment.invert"]', value)


def train_from_form(page: Page, server: Server, name: str) -> str:
    """Submit the new-run form (the run's page comes at once), then wait on the home page until it is done."""
    fill_recipe(page, name, epochs="1", lr="0.05", batch_size="16", solver="momentum")
    page.click("#create-run")  # the new run's page at once (queued, then training)
    page.wait_for_url(re.compile(r"/runs/\d{8}-\d{6}-[0-9a-f]{4}$"), timeout=TRAINING)
    expect(page.locator("#run-log")).to_contain_text("epoch", timeout=TRAINING)  # the job's log, live
    page.goto(server.url + "/")
    row = page.locator("#runs tbody tr", has_text=name)
    expect(row).to_have_count(1, timeout=TRAINING)
    run_id = str(row.get_attribute("data-run"))
    expect(row.locator('[data-field="status"]')).to_have_text("done", timeout=TRAINING)
    return run_id


@pytest.mark.slow
def test_the_lab_in_the_browser(server: Server, page: Page, tmp_path: Path, mnist_dir: Path) -> None:
    digits = write_mnist_subset(mnist_dir, tmp_path / "data" / "mnist")

    # 1. Dataset: MNIST small, grayscale 28x28, the test folder for validation.
    page.goto(server.url + "/datasets/new")
    page.fill("#ds-name", "mnist small")
    page.fill("#src-train", str(digits / "train"))
    page.fill("#src-val", str(digits / "test"))
    page.select_option('select[name="channels"]', "1")
    page.fill('input[name="width"]', "28")
    page.fill('input[name="height"]', "28")
    page.wait_for_function("document.getElementById('resize-preview').naturalWidth === 28")
    shot(page, "1-new-dataset")
    page.click("#create-dataset")  # the dataset's page at once: the build's progress, then the dataset
    expect(page.locator("#count-train")).to_have_text("600", timeout=TRAINING)
    expect(page.locator("#count-val")).to_have_text("100")
    expect(page.locator("#gallery img")).to_have_count(48)
    shot(page, "1-dataset")

    # 2. Model: LeNet, one epoch (38 steps of 16); the chart fills live while it trains.
    page.click("text=Train on it", timeout=TRAINING)  # the first New run page builds the networks table
    expect(page.locator("#net-auto")).to_be_checked()  # the task's default network for the images: LeNet
    expect(page.locator("#net-auto-why")).to_contain_text("lenet")
    first = train_from_form(page, server, "lenet small")
    page.goto(f"{server.url}/runs/{first}")
    expect(page.locator("#run-status")).to_have_text("done")
    page.wait_for_function("Number(document.getElementById('chart-loss').dataset.points) >= 3")  # train + val points
    accuracy = float(page.locator("#run-val-top1").inner_text().rstrip("%"))
    assert accuracy > 30.0  # one epoch over 600 digits already learns (chance is 10%)
    shot(page, "2-run")

    # 3. Classify one uploaded test digit with visualizations and statistics.
    digit = next((digits / "test" / "7").iterdir())
    page.set_input_files("#c1-file", str(digit))
    page.check("#c1-visualize")
    page.click("#c1-go")
    expect(page.locator("#c1-top tbody tr")).to_have_count(5)
    expect(page.locator("#gradcam")).to_be_visible(timeout=TRAINING)
    expect(page.locator("#activations tbody tr").first).to_contain_text("conv1")
    shot(page, "3-classify")

    # 3b. Evaluate on the validation split and export: each a job, followed live on the page until its result shows.
    page.click("#eval-val")
    expect(page.locator("#eval-job")).to_have_attribute("data-status", "done", timeout=TRAINING)
    expect(page.locator("#cm-accuracy")).to_contain_text("100 images")
    expect(page.locator("#per-class tbody tr")).to_have_count(10)
    page.wait_for_function("document.getElementById('confusion').naturalWidth > 0")
    page.click("#ex-go")
    expect(page.locator("#ex-job")).to_have_attribute("data-status", "done", timeout=TRAINING)
    expect(page.locator("#ex-table tbody tr")).to_have_count(3)
    expect(page.locator("#ex-table td.ok-box")).to_have_count(3)  # parity passed for each format
    with page.expect_download() as fetched:
        page.locator("#ex-table a", has_text="download").first.click()
    name = fetched.value.suggested_filename
    (exported,) = (server.settings.home / "runs" / first / "exports").glob(f"*/{name}")  # the export job's folder
    assert name.endswith(".zip") and Path(fetched.value.path()).read_bytes() == exported.read_bytes()
    shot(page, "3-evaluate-export")

    # 5. Clone the run and turn on the invert augmentation.
    page.click("#clone-run")
    expect(page.locator("#run-name")).to_have_value("lenet small (clone)")
    set_invert(page, "0.5")
    second = train_from_form(page, server, "lenet inverted")

    # 6. Modify the network as text: conv1 20 -> 75 filters, conv2 50 -> 100, a ReLU after pool1.
    page.goto(server.url + "/runs/new")
    page.click('button.customize[data-name="lenet"]')
    expect(page.locator("#spec-status")).to_contain_text("ok:")
    editor = page.locator("#spec-editor")
    text = editor.input_value()
    text = text.replace("out_channels: 20", "out_channels: 75").replace("out_channels: 50", "out_channels: 100")
    text = re.sub(r"(  - \{name: pool1.*\}\n)", r"\1  - {name: relu_pool1, type: relu}\n", text)
    editor.fill(text)
    expect(page.locator("#spec-status")).to_contain_text("ok:")
    page.click("#visualize")
    expect(page.locator("#network-svg")).to_be_visible()
    shot(page, "6-modified-network")
    set_invert(page, "0.5")
    third = train_from_form(page, server, "lenet modified")

    # 7. Compare the three runs in one table with overlaid curves.
    page.goto(f"{server.url}/compare?runs={first},{second},{third}")
    table = page.locator("#compare-table")
    expect(table.locator("thead th")).to_have_count(4)
    expect(table.locator("tr.differs", has_text="augment.invert")).to_have_count(1)
    expect(table.locator("tr.differs", has_text="network spec")).to_have_count(1)
    expect(page.locator("#cmp-val-top1 canvas")).to_have_count(1)
    shot(page, "7-compare")

    # 8. The lab's last table: test images x runs, each run's class and confidence; an inverted digit among them.
    inverted = tmp_path / "inverted-7.png"
    Image.fromarray(255 - np.asarray(Image.open(digit))).save(inverted)
    panel = page.locator("#cmp-predictions")
    panel.locator("#cmp-files").set_input_files([str(digit), str(inverted)])
    panel.locator("#cmp-count").fill("4")
    panel.locator("#cmp-predict").click()
    predictions = panel.locator("#cmp-pred-table")
    expect(predictions.locator("tbody tr")).to_have_count(6)  # two uploads, then the val split's first 4
    expect(predictions.locator("thead th")).to_have_count(5)  # image, label, the three runs
    expect(predictions.locator("tbody tr").nth(1)).to_contain_text("inverted-7.png")
    shot(page, "8-predictions")
    with page.expect_download() as table_csv:
        panel.locator("#cmp-csv").click()
    rows = list(csv.DictReader(Path(table_csv.value.path()).read_text().splitlines()))
    assert [r["image"] for r in rows[:2]] == [digit.name, "inverted-7.png"] and len(rows) == 6
    assert all(0 <= float(r["lenet inverted confidence"]) <= 1 for r in rows)

    # 9. Offline, from the browser: MNIST imported from its IDX files (the four files in a data root), then the
    #    LR range test's button fills the learning rate for LeNet on it.
    idx = tmp_path / "data" / "mnist-idx"
    idx.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):  # fmt: skip
        shutil.copy(mnist_dir / name, idx / name)  # a copy: a symlink out of the data roots is refused
    page.goto(server.url + "/datasets/new")
    page.click('.tab[data-tab="mnist"]')
    page.fill("#mnist-folder", str(idx))
    page.fill('input[name="max_per_class"]', "30")
    page.fill('input[name="val_max_per_class"]', "5")
    page.fill("#ds-name", "mnist idx")
    page.click("#create-dataset")
    expect(page.locator("#count-train")).to_have_text("300", timeout=TRAINING)
    expect(page.locator("#count-val")).to_have_text("50")
    page.click("text=Train on it", timeout=TRAINING)
    page.check("#net-lenet")
    page.fill('input[name="device"]', "cpu")
    page.click("#find-lr")
    expect(page.locator("#find-lr-note")).to_contain_text("suggested", timeout=TRAINING)
    assert 1e-6 <= float(page.locator("#lr-values").input_value()) <= 10
    shot(page, "9-offline-mnist-lr-find")
