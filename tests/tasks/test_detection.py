"""Detection training and use: the console script end to end, mAP against a case worked by hand, augmentation
that moves the boxes, boxes mapped back to the original image."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from deepyard.config import load_settings
from deepyard.errors import InvalidValueError
from deepyard.infer.export import load_exported, validation_sample
from deepyard.infer.model import load_run_model
from deepyard.tasks.boxaugment import augment_boxes as _augment
from deepyard.tasks.boxmetrics import iou, matching_boxes, score_difference
from deepyard.tasks.detection import DetectionMeter
from deepyard.train.config import AugmentConfig
from tests.cli.test_datasets_cli import run
from tests.tasks.boxdata import make_scenes, write


def test_map_of_a_case_worked_by_hand() -> None:
    """One image, a Disc and a Square. Predictions: the Disc exactly (0.9), a false Disc (0.8), the Square missed.
    Disc AP = 1 (its true positive ranks first), Square AP = 0: mAP@.5 = 0.5; the Disc box is exact, so mAP over
    IoU .5:.95 is 0.5 too."""
    meter = DetectionMeter(class_metrics=True)
    truth = torch.full((1, 3, 6), -1.0)
    truth[0, 0] = torch.tensor([10, 10, 30, 30, 0, 0])
    truth[0, 1] = torch.tensor([50, 50, 70, 70, 1, 0])
    pred = torch.full((1, 4, 6), -1.0)
    pred[0, 0] = torch.tensor([10, 10, 30, 30, 0.9, 0])
    pred[0, 1] = torch.tensor([80, 5, 95, 20, 0.8, 0])
    meter.update(pred, truth, torch.tensor(float("nan")))
    got = meter.compute(meter.sums())
    assert "val_loss" not in got  # no loss given: none reported
    assert got["val_map50"] == pytest.approx(50.0) and got["val_map"] == pytest.approx(50.0)
    per_class = meter.results()["map_per_class"].tolist()
    assert per_class == pytest.approx([1.0, 0.0])


@pytest.mark.parametrize("aug", [AugmentConfig(flip="lr", scale=0.1), AugmentConfig(flip="lrud")])  # the 2nd:
def test_augmentation_moves_the_boxes_with_the_pixels(aug: AugmentConfig) -> None:  # flips, the whole batch at once
    torch.manual_seed(0)
    x = torch.zeros(6, 3, 40, 60)
    x[:, :, 5:15, 4:20] = 255.0  # one white object, top left
    t = torch.full((6, 2, 6), -1.0)
    t[:, 0] = torch.tensor([4.0, 5, 20, 15, 0, 0])
    out_x, out_t = _augment(x, t, aug)
    for img, rows in zip(out_x, out_t, strict=True):
        box = rows[rows[:, 4] >= 0][0]
        x1, y1, x2, y2 = (round(float(v)) for v in box[:4])
        inside = img[0, y1 + 1 : y2 - 1, x1 + 1 : x2 - 1]
        assert inside.numel() and inside.mean() > 200  # the object is under its box
        assert img[0].sum() - img[0, y1:y2, x1:x2].sum() < 255 * 2 * (x2 - x1 + y2 - y1)  # and hardly outside it
    assert {float(r[0, 0]) > 30 for r in out_t} == {True, False}  # some flipped, some not
    assert (out_t[:, 1, 4] == -1).all()  # the padding stays padding
    with pytest.raises(InvalidValueError, match=r"augment\.rotation does not apply to detection"):
        _augment(x, t, AugmentConfig(rotation=10))


COLOURS = torch.tensor([[255.0, 0, 0], [0, 255, 0], [0, 0, 255]])  # the rectangles' colours, one class each
GREY, FILL = 128.0, (30.0, 60.0, 90.0)  # the background; the zoom-out canvas (the "mean colour" given)


def rectangles_scene(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n 48x72 images on grey, each with three rectangles (red, green, blue: classes 0, 1, 2) at random places
    that never touch; the last image holds none (a negative)."""
    g = torch.Generator().manual_seed(n)
    x = torch.full((n, 3, 48, 72), GREY)
    t = torch.full((n, 4, 6), -1.0)
    for i in range(n - 1):
        for c in range(3):
            left, top, w, h = (int(torch.randint(lo, hi, (1,), generator=g)) for lo, hi in ((0, 6), (0, 30), (8, 17),
                                                                                               (6, 17)))  # fmt: skip
            left += 24 * c
            x[i, :, top : top + h, left : left + w] = COLOURS[c][:, None, None]
            t[i, c] = torch.tensor([left, top, left + w, top + h, c, 0])
    return x, t


def coloured(img: torch.Tensor, c: int) -> torch.Tensor:
    """(H, W) mask of the pixels clearly of colour c (resizing blends the edges; those are not counted)."""
    return (img - COLOURS[c][:, None, None]).abs().amax(0) < 40


def test_iou_crop_and_zoom_out_keep_every_box_on_its_rectangle() -> None:
    """Each kept box still covers its rectangle's pixels (all of them that are left, one pixel of resizing
    tolerated) and hardly anything else; every image keeps the batch's size; crops and zoom-outs both happen;
    the negative image stays a negative; the zoom-out canvas is the fill colour."""
    torch.manual_seed(0)
    x, t = rectangles_scene(12)
    aug = AugmentConfig(iou_crop=1.0, zoom_out=3.0, flip="lr")
    cropped = zoomed = filled = 0
    for _ in range(4):
        out_x, out_t = _augment(x, t, aug, list(FILL))
        assert out_x.shape == x.shape and out_t.shape == t.shape  # the batch still stacks
        assert not (out_t[-1, :, 4] >= 0).any()  # the negative: no box appears
        for img, rows in zip(out_x, out_t, strict=True):
            kept = rows[rows[:, 4] >= 0]
            filled += int(((img - torch.tensor(FILL)[:, None, None]).abs().amax(0) < 3).any())
            for box in kept:
                c = int(box[4])
                ys, xs = torch.nonzero(coloured(img, c), as_tuple=True)
                assert len(ys), "a kept box whose rectangle is gone"
                x1, y1, x2, y2 = (float(v) for v in box[:4])
                assert xs.min() >= x1 - 1 and xs.max() + 1 <= x2 + 1 and ys.min() >= y1 - 1 and ys.max() + 1 <= y2 + 1
                assert len(ys) >= 0.4 * (x2 - x1) * (y2 - y1)  # the box is the rectangle's, not much more
                side = (x2 - x1) * (y2 - y1)
                zoomed += int(side < 0.6 * 8 * 6)  # smaller than any rectangle was: zoomed out
                cropped += int(side > 1.4 * 16 * 16)  # larger than any was: cropped and resized back
            assert len(kept) == len({int(b[4]) for b in kept})  # no box made up, none doubled
    assert cropped and zoomed and filled


def test_iou_crop_without_zoom_keeps_the_pixels_of_an_image_without_boxes() -> None:
    torch.manual_seed(1)
    x, t = rectangles_scene(4)
    out_x, out_t = _augment(x, t, AugmentConfig(iou_crop=1.0), None)
    assert torch.equal(out_x[-1], x[-1]) and not (out_t[-1, :, 4] >= 0).any()  # a negative is never IoU-cropped
    assert not torch.equal(out_x[:-1], x[:-1])  # the others are
    assert ((out_t[:-1, :, 4] >= 0).sum(1) >= 1).all()  # and each crop keeps at least one box


@pytest.mark.parametrize("aug", [AugmentConfig(zoom_out=3.0), AugmentConfig(zoom_out=3.0, flip="lr")])
def test_zoom_out_alone_or_with_flips_shrinks_the_boxes_onto_the_fill(aug: AugmentConfig) -> None:
    torch.manual_seed(2)
    x, t = rectangles_scene(24)
    out_x, out_t = _augment(x, t, aug, list(FILL))
    assert out_x.shape == x.shape
    zoomed = 0
    for img, rows, before in zip(out_x, out_t, t, strict=True):
        if not (before[:, 4] >= 0).any():
            continue
        kept, was = rows[rows[:, 4] >= 0], before[before[:, 4] >= 0]
        assert len(kept) == len(was)  # zoom-out loses no box
        area = ((kept[:, 2] - kept[:, 0]) * (kept[:, 3] - kept[:, 1])).sum()
        if area < 0.9 * ((was[:, 2] - was[:, 0]) * (was[:, 3] - was[:, 1])).sum():
            zoomed += 1
            assert ((img - torch.tensor(FILL)[:, None, None]).abs().amax(0) < 3).any()  # the canvas shows
        for box in kept:
            ys, xs = torch.nonzero(coloured(img, int(box[4])), as_tuple=True)
            assert len(ys) and xs.min() >= box[0] - 1 and xs.max() + 1 <= box[2] + 1
    assert zoomed >= 5  # about half of the 23 images with boxes (p 0.5), by a factor of 1 to 3


def test_console_script_builds_trains_evaluates_and_predicts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    source = write("coco", tmp_path / "coco", make_scenes(12, seed=2, sizes=(40, 64)))
    made = run(home, "dataset", "create", str(source), "--task", "detection", "--size", "48x48", "--name", "shapes")
    assert made.returncode == 0, made.stderr
    trained = run(home, "train", "--dataset", "shapes", "--network", "fasterrcnn_small", "--epochs", "1",
                  "--batch-size", "6", "--json")  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    doc = json.loads(trained.stdout)
    assert set(doc["last_val"]) == {"val_loss", "val_map", "val_map50"}
    points = [json.loads(line) for line in (home / "runs" / doc["run"] / "metrics.jsonl").read_text().splitlines()]
    assert {"train_classifier", "train_box_reg", "train_objectness", "train_rpn_box_reg"} <= set(points[0])
    evaluated = run(home, "evaluate", doc["run"], "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    ev = json.loads(evaluated.stdout)
    assert ev["task"] == "detection" and {"map", "map_50", "map_75", "per_class", "worst"} <= set(ev)
    assert ev["map"] == pytest.approx(doc["last_val"]["val_map"], abs=1e-3)  # the same meter as validation
    assert set(ev["thresholds"]) == {"Disc", "Square", "bar"}  # calibrated per class on validation
    assert set(ev["pr_curves"]) == set(ev["thresholds"]) and len(ev["confusion"]["matrix"]) == 4
    for picture in ("pr", "confusion", "worst", "false_positives", "missed"):
        assert Path(ev["files"][picture]).is_file()
    image = next((tmp_path / "coco" / "images").glob("*.png"))
    predicted = run(home, "predict", doc["run"], str(image), "--threshold", "0.0", "--out", str(tmp_path / "p"),
                    "--json")  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr
    row = json.loads(predicted.stdout)["predictions"][0]
    with Image.open(image) as img:
        assert row["size"] == [img.width, img.height]
    assert row["boxes"], "an untrained detector still proposes boxes at threshold 0"
    for b in row["boxes"]:  # in the original image's pixels
        x1, y1, x2, y2 = b["box"]
        assert 0 <= x1 <= x2 <= row["size"][0] and 0 <= y1 <= y2 <= row["size"][1] and 0 <= b["score"] <= 1
    with Image.open(row["overlay"]) as overlay:
        k = overlay.size[0] // row["size"][0]  # a small image's overlay is drawn a whole number of times larger
        assert overlay.size == (k * row["size"][0], k * row["size"][1]) and max(overlay.size) >= 256
    exported = run(home, "export", doc["run"], "--samples", "3", "--json")  # archive, onnx, torchscript
    assert exported.returncode == 0, exported.stderr
    reports = {r["format"]: r for r in json.loads(exported.stdout)["reports"]}
    assert set(reports) == {"archive", "onnx", "torchscript"}
    for report in reports.values():
        assert report["ok"] and report["agreement_of"].startswith("boxes matched") and report["agreement"] == 1.0
        assert report["max_abs_diff"] < 1e-3  # the largest score difference of matched boxes
    assert reports["onnx"]["exporter"].startswith("torchscript")  # the TorchScript-based ONNX exporter
    check_exports_at_threshold_zero(home, doc["run"], reports)


def check_exports_at_threshold_zero(home: Path, run_id: str, reports: dict[str, dict[str, Any]]) -> None:
    """Every box an untrained detector proposes (threshold 0, so the check is not vacuous), from each export, against
    PyTorch's on the same validation images, run one image at a time: matched (IoU >= 0.9, same class)."""
    settings = load_settings(home=home)
    clf = load_run_model(settings, run_id)
    sample = validation_sample(settings, clf.info["dataset"]["id"], 4)
    x = sample.transpose(0, 3, 1, 2).astype(np.float32)
    expected = clf.outputs(torch.from_numpy(sample).permute(0, 3, 1, 2)).numpy()
    assert (expected[:, :, 5] >= 0).sum() > 20
    for fmt in ("onnx", "torchscript"):
        exported = load_exported(fmt, Path(reports[fmt]["path"]), batch=1)(x)
        assert matching_boxes(expected, exported, 0.0) == 1.0, fmt
        assert score_difference(expected, exported) < 1e-3


GATE_SCENES = {"sizes": (56, 88), "most": 4, "negatives": 0.1, "clutter": 6, "object_size": (8, 26), "distractors": 1}


@pytest.mark.slow
def test_quality_gate_default_detector_reaches_map50_of_50_and_predicts_and_exports(tmp_path: Path) -> None:
    """The task's default network (fcos_small at 64x64) and recipe (8 epochs, batch 16, AdamW 0.003, one-cycle,
    flips) on 800 generated scenes: 3 classes, 0-4 objects of 8-26 px on cluttered gradients (outlined rings and
    lines), filled distractors of no class (triangles, crosses, rings), 10% negatives, 56-88 px images letterboxed
    to 64x64; 200 more for validation: mAP@.5 >= 50%."""
    home = tmp_path / "home"
    train = write("coco", tmp_path / "train", make_scenes(800, seed=0, **GATE_SCENES))  # type: ignore[arg-type]
    val = write("coco", tmp_path / "val", make_scenes(200, seed=1, **GATE_SCENES))  # type: ignore[arg-type]
    made = run(home, "dataset", "create", str(train), "--val", str(val), "--task", "detection", "--size", "64x64",
               "--name", "shapes")  # fmt: skip
    assert made.returncode == 0, made.stderr
    trained = run(home, "train", "--dataset", "shapes", "--set", "val_interval=8", "--json")  # no flags: the task's
    assert trained.returncode == 0, trained.stderr
    out = json.loads(trained.stdout)
    info = json.loads((home / "runs" / out["run"] / "run.json").read_text())
    assert info["network"]["ref"] == "fcos_small" and out["epochs"] == 8
    print(f"detection gate: {out['last_val']}, {out['seconds']} s of training")
    assert out["last_val"]["val_map50"] >= 50, out["last_val"]
    ev = json.loads(run(home, "evaluate", out["run"], "--json").stdout)
    assert ev["map_50"] == pytest.approx(out["last_val"]["val_map50"], abs=1.0)  # validation ran under bf16 autocast
    assert all(0.05 <= t < 1 for t in ev["thresholds"].values())  # calibrated per class
    assert all(c["f1"] > 50 for c in ev["per_class"]), ev["per_class"]
    scene = make_scenes(1, seed=9, **{**GATE_SCENES, "sizes": (150, 170), "object_size": (20, 50),  # type: ignore[arg-type]
                                      "negatives": 0.0, "most": 3})[0]  # fmt: skip
    scene[1].save(tmp_path / "new.png")  # twice the size and more: boxes come back in its pixels
    (row,) = json.loads(run(home, "predict", out["run"], str(tmp_path / "new.png"), "--json").stdout)["predictions"]
    truth = scene[0].boxes
    overlaps = iou(np.array([b[1:] for b in truth], float).reshape(-1, 4),
                   np.array([b["box"] for b in row["boxes"]], float).reshape(-1, 4))  # fmt: skip
    same = np.array([[t[0] == b["class"] for b in row["boxes"]] for t in truth], bool).reshape(overlaps.shape)
    hits = int(((overlaps >= 0.5) & same).any(axis=1).sum())
    assert hits >= len(truth) - 1, (row["boxes"], truth)
    exported = run(home, "export", out["run"], "--json")
    assert exported.returncode == 0, exported.stderr
    reports = {r["format"]: r for r in json.loads(exported.stdout)["reports"]}
    assert all(r["ok"] and r["agreement"] == 1.0 for r in reports.values()), reports
