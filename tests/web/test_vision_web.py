"""Detection and segmentation in the web app, in real headless Chromium against a real server: the dataset pages
(boxes and images per class, the box-size histogram, the galleries with boxes drawn or masks laid over, their class
filters and the opacity slider), and the run pages' Detect one (the threshold slider shows and hides the boxes the
API sent), predict-many from a zip with overlays, and Segment one (opacity, areas, the mask to download). One
detection dataset and run and one segmentation dataset and run (1 epoch each, tiny generated data) serve every
test of the module. Screenshots: test-artifacts/web/vision-*.png."""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from deepyard.config import load_settings
from deepyard.datasets import create_dataset, get_dataset, make_spec, open_split
from deepyard.train import make_config, train
from tests.tasks.boxdata import make_scenes, write
from tests.tasks.segdata import CLASSES as SEG_CLASSES
from tests.tasks.segdata import scene, write_classes, write_scenes
from tests.web.conftest import ARTIFACTS, Server, start_server

SCENES = 12


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"vision-{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    root = tmp_path_factory.mktemp("vision")
    (root / "data").mkdir()
    settings = load_settings(root / "home", data_roots=[root / "data"])
    scenes = make_scenes(SCENES, seed=2, sizes=(48, 72), most=3)
    coco = write("coco", root / "data" / "coco", scenes)
    boxes = create_dataset(settings, make_spec(name="shapes", task="detection", width=48, height=48, val_pct=25,
                                               source={"kind": "detection", "train": coco}))  # fmt: skip
    config = make_config(epochs=1, batch_size=6, device="cpu")
    detector = train(settings, boxes.id, "fasterrcnn_small", config).run_id
    write_scenes(root / "data" / "seg", 12, "palette", seed=0, size=32)
    names = write_classes(root / "data" / "names.txt", colours=False)
    source = {"kind": "masks", "train": root / "data" / "seg", "classes": names}
    masks = create_dataset(settings, make_spec(name="segs", task="segmentation", width=32, height=32, val_pct=25,
                                               source=source))  # fmt: skip
    segmenter = train(settings, masks.id, "unet", make_config(epochs=1, batch_size=6, device="cpu")).run_id
    server = start_server(settings)
    yield {"server": server, "root": root, "boxes": boxes.id, "masks": masks.id, "scenes": scenes,
           "detector": detector, "segmenter": segmenter, "coco": coco}  # fmt: skip
    server.stop()


def test_detection_dataset_page_counts_boxes_and_draws_them_with_a_class_filter(world: dict, page: Page) -> None:
    server: Server = world["server"]
    with server.client() as http:
        stats = http.get(f"/api/v1/datasets/{world['boxes']}/box-stats").json()
        truth = sum(len(t.boxes) for t, _ in world["scenes"])
        assert sum(s["boxes"] for s in stats["splits"].values()) == truth  # every generated box counted once
        train_stats = stats["splits"]["train"]
        assert sum(train_stats["histogram"]["counts"]) == train_stats["boxes"] == sum(train_stats["bands"].values())
        assert set(train_stats["histogram"]["bands"]) <= {"small", "medium", "large"}
        page_one = http.get(f"/api/v1/datasets/{world['boxes']}/boxes", params={"split": "train"}).json()
        bad = http.get(f"/api/v1/datasets/{world['boxes']}/boxes", params={"label": 7})
        assert bad.status_code == 422 and "0..2" in bad.json()["error"]["message"]
    page.goto(f"{server.url}/datasets/{world['boxes']}")
    expect(page.locator("h2", has_text="Boxes per class")).to_have_count(1)  # the summary's counts are boxes
    expect(page.locator("#distribution tbody tr").first.locator("td").nth(1)).to_have_text(
        str(train_stats["per_class"][0]["boxes"])
    )
    expect(page.locator("#box-classes tbody tr")).to_have_count(4)  # three classes and the total
    expect(page.locator("#box-classes tbody tr").last).to_contain_text(str(train_stats["boxes"]))
    expect(page.locator("#box-hist td.vbin")).to_have_count(len(train_stats["histogram"]["counts"]))
    drawn = sum(len(it["boxes"]) for it in page_one["items"])
    expect(page.locator("#box-gallery rect.box")).to_have_count(drawn)  # a rectangle per box the API sent
    expect(page.locator("#box-gallery figure")).to_have_count(len(page_one["items"]))
    page.wait_for_function(
        "[...document.querySelectorAll('#box-gallery img')].every((i) => i.complete && i.naturalWidth)"
    )
    shot(page, "detection-dataset")
    everything = page.locator("#bx-info").inner_text()
    page.select_option("#bx-class", label="images with Square")
    expect(page.locator("#bx-info")).not_to_have_text(everything)
    figures = page.locator("#box-gallery figure")
    assert figures.count() > 0
    for i in range(figures.count()):  # every image shown holds a Square (class 1) box
        assert figures.nth(i).locator('rect.box[data-class="1"]').count() >= 1
    with_square = sum(any(b[0] == "Square" for b in t.boxes) for t, _ in world["scenes"])
    assert figures.count() <= with_square < SCENES
    shot(page, "detection-dataset-square")


def test_segmentation_dataset_page_shows_pixels_weights_and_masks_with_opacity(world: dict, page: Page) -> None:
    server: Server = world["server"]
    page.goto(f"{server.url}/datasets/{world['masks']}")
    expect(page.locator("h2", has_text=re.compile(r"^Images per class$"))).to_have_count(1)
    rows = page.locator("#mask-classes tbody tr")
    expect(rows).to_have_count(len(SEG_CLASSES) + 1)  # each class, then the ignored pixels
    cells = [rows.nth(i).locator("td").all_inner_texts()[:5] for i in range(len(SEG_CLASSES))]
    assert [c[0] for c in cells] == list(SEG_CLASSES)
    with server.client() as http:
        stats = http.get(f"/api/v1/datasets/{world['masks']}").json()["manifest"]["target_stats"]
    assert [int(c[1].replace(",", "")) for c in cells] == stats["pixels"]  # pixels, images, weights per class
    assert [int(c[3]) for c in cells] == stats["images_per_class"]
    assert [float(c[4]) for c in cells] == pytest.approx(stats["class_weights"], abs=5e-4)
    page.wait_for_function(
        "[...document.querySelectorAll('#mask-gallery img')].every((i) => i.complete && i.naturalWidth)"
    )
    figures = page.locator("#mask-gallery figure")
    expect(figures.locator("img.mask-layer")).to_have_count(figures.count())
    page.locator("#mk-opacity").fill("0.8")
    expect(page.locator("#mk-opacity-value")).to_have_text("80.0%")
    opacity = page.locator("#mask-gallery img.mask-layer").first.evaluate("(i) => getComputedStyle(i).opacity")
    assert float(opacity) == pytest.approx(0.8)
    shot(page, "segmentation-dataset")
    page.locator("#mk-opacity").fill("0.2")
    assert float(
        page.locator("#mask-gallery img.mask-layer").first.evaluate("(i) => getComputedStyle(i).opacity")
    ) == pytest.approx(0.2)
    everything = page.locator("#mk-info").inner_text()
    page.select_option("#mk-class", label="images with triangle")
    expect(page.locator("#mk-info")).not_to_have_text(everything)
    captions = page.locator("#mask-gallery figcaption").all_inner_texts()
    assert captions and all("triangle" in c for c in captions)
    page.check("#mk-clear")  # the background drawn transparent
    page.locator("#mk-opacity").fill("0.6")
    expect(page.locator("#mask-gallery img.mask-layer").first).to_have_attribute("src", re.compile(r"\?clear=0$"))
    page.wait_for_function(
        "[...document.querySelectorAll('#mask-gallery img')].every((i) => i.complete && i.naturalWidth)"
    )
    shot(page, "segmentation-dataset-triangle")
    with server.client() as http:  # the mask picture: the dataset's colours, the stored size
        pictures = [
            http.get(f"/api/v1/datasets/{world['masks']}/masks/train/0.png", params=p) for p in ({}, {"clear": 0})
        ]
    stored = get_dataset(world["server"].settings, world["masks"])
    index = np.asarray(open_split(world["server"].settings, stored, "train").targets[0])  # the stored mask
    colours = stats["colours"]
    for got, clear in zip(pictures, (None, 0), strict=True):
        with Image.open(io.BytesIO(got.content)) as img:
            assert img.mode == "RGBA" and img.size == (32, 32)
            rgba = np.asarray(img)
        assert (rgba[..., 3] == np.where(index == clear, 0, 255)).all()
        assert (rgba[..., :3] == np.asarray(colours, np.uint8)[index]).all()


def test_detect_one_slider_shows_the_boxes_above_it_without_a_new_request(world: dict, page: Page) -> None:
    server: Server = world["server"]
    image = world["coco"].parent / "images" / world["scenes"][0][0].file
    with server.client() as http:
        sent = http.post(f"/api/v1/runs/{world['detector']}/detect", params={"floor": 0.05},
                         content=image.read_bytes()).json()  # fmt: skip
    width, height = sent["size"]
    assert [width, height] == [world["scenes"][0][0].width, world["scenes"][0][0].height]
    assert sent["boxes"], "an untrained detector still proposes boxes above 0.05"
    for b in sent["boxes"]:  # in the original image's pixels
        x1, y1, x2, y2 = b["box"]
        assert 0 <= x1 <= x2 <= width and 0 <= y1 <= y2 <= height and b["score"] >= 0.05
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/detect" in r.url else None)
    page.goto(f"{server.url}/runs/{world['detector']}")
    expect(page.locator("#c1-file")).to_have_count(0)  # Detect one replaces the shared card
    page.set_input_files("#d1-file", str(image))
    page.click("#d1-go")
    expect(page.locator("#d1-result")).to_be_visible(timeout=60_000)
    scores = sorted(b["score"] for b in sent["boxes"])

    def shown_at(value: float) -> int:
        value = math.floor(value * 100) / 100  # the slider's step
        page.locator("#d1-threshold").fill(f"{value:.2f}")
        expect(page.locator("#d1-threshold-value")).to_have_text(f"{value:.2f}")
        kept = sum(s >= value for s in scores)
        expect(page.locator("#d1-view rect.box")).to_have_count(kept)
        expect(page.locator("#d1-table tbody tr")).to_have_count(max(kept, 1))
        return kept

    middle = round(float(np.median(scores)), 2)
    assert shown_at(0.05) == len(scores)
    assert shown_at(middle) == sum(s >= middle for s in scores)
    assert shown_at(1.0) == 0
    expect(page.locator("#d1-table tbody")).to_contain_text("no box scores 1.00 or more")
    shown_at(0.05)
    first = page.locator("#d1-table tbody tr").first.locator("td").all_inner_texts()
    assert first[0] == sent["boxes"][0]["class"] and float(first[1]) == pytest.approx(
        sent["boxes"][0]["score"], abs=1e-3
    )
    assert [float(v) for v in first[2:]] == pytest.approx(sent["boxes"][0]["box"], abs=0.06)
    assert len(requests) == 1  # the slider asked the server nothing
    shown_at(scores[-min(5, len(scores))])  # the five best boxes
    shot(page, "detect-one")


def test_detect_many_from_a_zip_shows_each_image_with_its_overlay(world: dict, page: Page) -> None:
    server: Server = world["server"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for truth, _ in world["scenes"][:3]:
            z.write(world["coco"].parent / "images" / truth.file, f"photos/{truth.file}")
        z.writestr("photos/broken.png", b"not an image")
    zipped = world["root"] / "photos.zip"
    zipped.write_bytes(buf.getvalue())
    page.goto(f"{server.url}/runs/{world['detector']}")
    page.set_input_files("#cm-file", str(zipped))
    page.click("#cm-go")
    rows = page.locator("#cm-predictions tbody tr")
    expect(rows).to_have_count(4, timeout=60_000)
    expect(rows.locator("img.overlay-thumb")).to_have_count(3)  # the broken file has its error, no overlay
    expect(page.locator("#cm-predictions")).to_contain_text("broken.png")
    page.wait_for_function(
        "[...document.querySelectorAll('#cm-predictions img')].every((i) => i.complete && i.naturalWidth)"
    )
    expect(page.locator("#infer")).to_contain_text("(each image gets its overlay)")
    shot(page, "detect-many")
    with server.client() as http:  # a segmenter's predict-many: each image's mask and overlay
        rows = http.post(f"/api/v1/runs/{world['segmenter']}/classify-many", content=zipped.read_bytes()).json()
        good = [r for r in rows["predictions"] if not r["error"]]
        assert len(good) == 3 and len(rows["predictions"]) == 4
        for row, (truth, _) in zip(good, world["scenes"][:3], strict=True):
            with Image.open(io.BytesIO(http.get(row["mask"]).content)) as mask:
                assert mask.mode == "P" and mask.size == (truth.width, truth.height)
            assert http.get(row["overlay"]).headers["content-type"] == "image/png"
            assert sum(a["pixels"] for a in row["areas"]) == truth.width * truth.height


def test_predict_many_keeps_images_of_one_name_in_two_folders_apart(world: dict) -> None:
    """A zip with a/cat.png, "b c/cat.png" (a space: the URL is quoted) and b/cat.jpg, three sizes: each gets
    its own overlay (and mask), none written over another's, each of its own image's size."""
    server: Server = world["server"]
    rng = np.random.default_rng(4)
    sizes = {"a/cat.png": (40, 30), "b c/cat.png": (56, 44), "b c/cat.jpg": (36, 60)}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, (w, h) in sizes.items():
            data = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(data, format=name[-3:].upper()
                                                                                 .replace("JPG", "JPEG"))  # fmt: skip
            z.writestr(f"photos/{name}", data.getvalue())
    with server.client() as http:
        for run, keys in ((world["detector"], ("overlay",)), (world["segmenter"], ("mask", "colour", "overlay"))):
            rows = http.post(f"/api/v1/runs/{run}/classify-many", content=buf.getvalue()).json()["predictions"]
            assert sorted(r["source"] for r in rows) == sorted(sizes)  # the zip's one top folder is left out
            for key in keys:
                assert len({r[key] for r in rows}) == len(rows), key  # a file each
                for row in rows:
                    w, h = sizes[row["source"]]
                    got = http.get(row[key])
                    assert got.status_code == 200, row[key]
                    with Image.open(io.BytesIO(got.content)) as img:  # a small overlay: drawn k times larger
                        k = img.size[0] // w
                        assert img.size == (k * w, k * h), (key, row["source"], img.size)


def test_new_run_form_offers_iou_crop_and_zoom_out_for_detection_only(world: dict, page: Page) -> None:
    server: Server = world["server"]
    # the first New run page of a process builds the standard networks' table (seconds per network)
    page.goto(f"{server.url}/runs/new?dataset={world['boxes']}", timeout=180_000)
    page.click("#grp-augment summary")
    crop, zoom = page.locator('input[name="augment.iou_crop"]'), page.locator('input[name="augment.zoom_out"]')
    expect(crop).to_be_visible()
    expect(zoom).to_be_visible()
    crop.fill("0.5")
    zoom.fill("3")
    expect(page.locator("#grp-augment")).to_contain_text("Detection: probability of an IoU crop")
    shot(page, "new-run-box-augment")
    page.select_option("#run-dataset", world["masks"])  # segmentation: no boxes to crop around
    expect(crop).to_be_hidden()
    expect(zoom).to_be_hidden()
    assert crop.input_value() == "0" and zoom.input_value() == "1"  # hidden, they are off: the form sends them so
    expect(page.locator('input[name="augment.scale"]')).to_be_visible()


def test_segment_one_lays_the_mask_over_the_image_with_areas_and_a_download(world: dict, page: Page) -> None:
    server: Server = world["server"]
    pixels, _ = scene(np.random.default_rng(5), 48)  # another size than the dataset's 32x32
    image = world["root"] / "new.png"
    Image.fromarray(pixels).save(image)
    page.goto(f"{server.url}/runs/{world['segmenter']}")
    page.set_input_files("#s1-file", str(image))
    page.click("#s1-go")
    expect(page.locator("#s1-result")).to_be_visible(timeout=60_000)
    page.wait_for_function("document.getElementById('s1-mask').naturalWidth === 48")
    rows = page.locator("#s1-areas tbody tr")
    expect(rows).to_have_count(len(SEG_CLASSES))
    cells = [rows.nth(i).locator("td").all_inner_texts() for i in range(rows.count())]
    assert sum(int(c[1].replace(",", "")) for c in cells) == 48 * 48
    assert sum(float(c[2].rstrip("%")) for c in cells) == pytest.approx(100, abs=0.3)
    page.locator("#s1-opacity").fill("0.75")
    assert float(page.locator("#s1-mask").evaluate("(i) => getComputedStyle(i).opacity")) == pytest.approx(0.75)
    href = page.locator("#s1-download").get_attribute("href")
    with server.client() as http:
        got = http.get(str(href))
    with Image.open(io.BytesIO(got.content)) as mask:
        assert mask.mode == "P" and mask.size == (48, 48)
        counts = np.bincount(np.asarray(mask).ravel(), minlength=len(SEG_CLASSES))
    assert [int(c[1].replace(",", "")) for c in cells] == counts[: len(SEG_CLASSES)].tolist()
    shot(page, "segment-one")


@pytest.mark.slow  # a job in a worker process: about 20 s each on this 2-core machine
@pytest.mark.parametrize("task", ["detection", "segmentation"])
def test_evaluate_view_shows_the_figures_tables_and_pictures(world: dict, page: Page, task: str) -> None:
    """The run page's Evaluate on the validation split, a job in a real worker: the task's figures, a row per class
    and every picture the evaluation wrote (detection: PR curves, confusion, worst images, false positives and
    missed objects; segmentation: the pixel confusion heat map and the lowest-IoU images) loaded."""
    server: Server = world["server"]
    run = world["detector"] if task == "detection" else world["segmenter"]
    page.goto(f"{server.url}/runs/{run}")
    page.click("#eval-val")
    expect(page.locator("#eval-job")).to_have_attribute("data-status", "done", timeout=120_000)
    expect(page.locator("#cm-accuracy")).to_contain_text(re.compile(r"^\d+ images · m(AP|IoU) "))
    expect(page.locator("#per-class tbody tr")).to_have_count(3 if task == "detection" else len(SEG_CLASSES))
    pictures = page.locator("#cm-result img")
    expect(pictures).to_have_count(5 if task == "detection" else 2)
    page.wait_for_function(
        "[...document.querySelectorAll('#cm-result img')].every((i) => i.complete && i.naturalWidth > 0)"
    )
    page.locator("#cm-result").scroll_into_view_if_needed()
    shot(page, f"{task}-evaluate")


def test_the_routes_refuse_a_wrong_task_a_bad_index_and_a_bad_image_naming_them(world: dict) -> None:
    server: Server = world["server"]
    with server.client() as http:
        wrong = http.get(f"/api/v1/datasets/{world['masks']}/boxes")
        assert wrong.status_code == 422 and "segmentation dataset, not detection" in wrong.json()["error"]["message"]
        assert http.get(f"/api/v1/datasets/{world['boxes']}/masks/train/0.png").status_code == 422
        gone = http.get(f"/api/v1/datasets/{world['masks']}/masks/val/99.png")
        assert gone.status_code == 404 and "split 'val' has 3 images" in gone.json()["error"]["message"]
        split = http.get(f"/api/v1/datasets/{world['boxes']}/boxes", params={"split": "nope"})
        assert split.status_code == 422 and "'nope'" in split.json()["error"]["message"]
        image = (world["coco"].parent / "images" / world["scenes"][0][0].file).read_bytes()
        other = http.post(f"/api/v1/runs/{world['segmenter']}/detect", content=image)
        assert (
            other.status_code == 422 and "segmentation model, not a detection model" in other.json()["error"]["message"]
        )
        broken = http.post(f"/api/v1/runs/{world['segmenter']}/segment", content=b"not an image")
        assert broken.status_code == 422 and "cannot be used" in broken.json()["error"]["message"]
        assert (
            http.post(f"/api/v1/runs/{world['detector']}/detect", params={"floor": 2}, content=image).status_code == 422
        )


def test_hostile_names_and_values_are_refused_or_harmless(world: dict) -> None:
    server: Server = world["server"]
    image = (world["coco"].parent / "images" / world["scenes"][0][0].file).read_bytes()
    with server.client() as http:
        names = ("a.%ff", "a.%ED%B3%BF", "..%2F..%2Fx.png", "x.png%00", "a." + "p" * 300, "%E2%80%AE.gnp")  # encoded
        for name in names:
            for route in ("detect", "segment"):
                run = world["detector"] if route == "detect" else world["segmenter"]
                got = http.post(f"/api/v1/runs/{run}/{route}?name={name}", content=image)
                assert got.status_code in (200, 422), (route, name, got.status_code, got.text[:200])
        for params in ({"offset": 10**18}, {"limit": 0}, {"label": -1}, {"split": "x" * 100}):
            got = http.get(f"/api/v1/datasets/{world['boxes']}/boxes", params=params)
            assert got.status_code in (200, 422), (params, got.status_code)
        for index in ("-1", "99999999999999999999", "1e3"):
            got = http.get(f"/api/v1/datasets/{world['masks']}/masks/train/{index}.png")
            assert got.status_code in (404, 422), (index, got.status_code)
        assert (
            http.get(f"/api/v1/datasets/{world['masks']}/masks/train/0.png", params={"clear": 255}).status_code == 422
        )
