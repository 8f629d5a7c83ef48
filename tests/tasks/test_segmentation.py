"""Segmentation through the seam: every mask kind read against one truth, a hostile-mask corpus reported file by
file, the meter against torchmetrics, losses, joint augmentation, networks, and the console script end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchmetrics.functional.classification import multiclass_jaccard_index

from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec, open_split
from deepyard.networks import build_network
from deepyard.tasks.segmentation import SEGMENTATION
from deepyard.train.config import AugmentConfig
from deepyard.train.data import Preprocessor
from tests.cli.test_datasets_cli import run
from tests.tasks.segdata import CLASSES, save_mask, scene, write_classes, write_coco, write_scenes


def _build(settings: Settings, root: Path, size: int = 64, **source: object) -> object:
    spec = make_spec(name=root.name, task="segmentation", width=size, height=size, val_pct=0,
                     source={"kind": "masks", "train": root, **source})  # fmt: skip
    return create_dataset(settings, spec)


@pytest.mark.parametrize("kind", ["palette", "index", "colour", "coco", "coco-rle"])
def test_every_mask_kind_reads_the_same_truth(settings: Settings, tmp_path: Path, kind: str) -> None:
    root: Path = tmp_path / kind
    if kind.startswith("coco"):  # the same scenes (same seed), as COCO polygons or RLE strings in one JSON file
        truth = write_coco(root, 6, seed=3, rle=kind == "coco-rle")
        assert np.array_equal(truth, write_scenes(tmp_path / "one-truth", 6, "index", seed=3))
        root = root / "instances.json"
    else:
        truth = write_scenes(root, 6, kind, seed=3)
    extra = {"classes": root / "classes.txt"} if kind == "colour" else {}
    built = _build(settings, root, **extra)
    stored = open_split(settings, built, "train").targets  # type: ignore[arg-type]
    assert np.array_equal(np.asarray(stored), truth)
    assert built.target_stats["mask_kinds"] == {kind.split("-")[0]: 6}  # type: ignore[attr-defined]
    assert built.target_stats["pixels"] == np.bincount(truth.ravel(), minlength=4).tolist()  # type: ignore[attr-defined]
    if kind.startswith("coco"):
        assert built.classes == list(CLASSES)  # type: ignore[attr-defined]
    smaller = _build(settings, root, size=40, **extra)  # resized: nearest, never interpolated
    resized = np.asarray(open_split(settings, smaller, "train").targets)  # type: ignore[arg-type]
    expected = np.stack([np.asarray(Image.fromarray(m).resize((40, 40), Image.Resampling.NEAREST)) for m in truth])
    assert np.array_equal(resized, expected)


def test_hostile_masks_are_reported_file_by_file_and_the_build_goes_on(settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / "bad"
    truth = write_scenes(root, 10, "colour", seed=1)
    masks = root / "masks"
    (masks / "0000.png").unlink()  # an image without its mask
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(masks / "orphan.png")  # a mask without its image
    save_mask(masks / "0001.png", truth[1][:32], "colour")  # another size than its image
    odd = np.array(Image.open(masks / "0002.png"))
    odd[:3, :5] = (1, 2, 3)  # 15 pixels of a colour the map does not have
    Image.fromarray(odd).save(masks / "0002.png")
    rgb = np.array(Image.open(masks / "0003.png"))
    (masks / "0003.png").unlink()
    Image.fromarray(rgb).save(masks / "0003.jpg", quality=95)  # lossy: warned, its edge colours are unknown
    (masks / "0004.png").write_bytes(b"not a png at all")  # undecodable
    (masks / "0005.png").unlink()
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(masks / "0005.jpg")  # flat, so exact: kept, but warned
    truth[5] = 0
    built = _build(settings, root, classes=root / "classes.txt")
    report = json.loads((settings.datasets_dir / built.id / "report.json").read_text())  # type: ignore[attr-defined]
    reasons = {Path(s["path"]).name: s["reason"] for s in report["skipped"]}
    assert reasons["0000.png"].startswith("no mask for this image")
    assert reasons["orphan.png"].startswith("mask with no image")
    assert reasons["0001.png"] == "mask is 64x32 but its image is 64x64 (resize_masks resizes it, nearest neighbour)"
    assert "1 colour(s) not in the colour map, 15 pixels: (1, 2, 3) 15 px" in reasons["0002.png"]
    assert "not in the colour map" in reasons["0003.jpg"]
    assert reasons["0004.png"].startswith("mask cannot be decoded")
    assert [w["path"].endswith("0005.jpg") for w in report["warnings"]] == [True]
    assert "JPEG mask" in report["warnings"][0]["reason"]
    assert built.splits["train"].count == 5  # type: ignore[attr-defined]
    stored = np.asarray(open_split(settings, built, "train").targets)  # type: ignore[arg-type]
    assert np.array_equal(stored, truth[5:])
    resized = _build(settings, root, classes=root / "classes.txt", resize_masks=True)
    assert resized.splits["train"].count == 6  # type: ignore[attr-defined]


def test_index_beyond_the_classes_and_rgb_without_a_map_are_skipped(settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / "idx"
    truth = write_scenes(root, 4, "index", seed=2)
    bad = truth[0].copy()
    bad[0, :3] = 7
    bad[1, :2] = 255  # ignore is fine anywhere
    save_mask(root / "masks" / "0000.png", bad, "index")
    Image.fromarray(np.stack([truth[1] * 40, truth[1] * 10, truth[1]], -1)).save(root / "masks" / "0001.png")
    built = _build(settings, root, classes=write_classes(tmp_path / "names.txt", colours=False))
    report = json.loads((settings.datasets_dir / built.id / "report.json").read_text())  # type: ignore[attr-defined]
    reasons = {Path(s["path"]).name: s["reason"] for s in report["skipped"]}
    assert reasons["0000.png"] == "class index 7 beyond the 4 classes (0..3; 255 = ignore)"
    assert reasons["0001.png"].startswith("RGB colour mask but no colour map")
    assert built.classes == list(CLASSES) and built.splits["train"].count == 2  # type: ignore[attr-defined]


def test_meter_matches_torchmetrics_and_absent_classes_are_na() -> None:
    g = torch.Generator().manual_seed(0)
    true = torch.randint(0, 4, (6, 16, 16), generator=g)
    true[0, :4] = 255
    logits = torch.randn(6, 4, 16, 16, generator=g) + 3 * torch.nn.functional.one_hot(true.clamp(max=3), 4).permute(
        0, 3, 1, 2
    )
    meter = SEGMENTATION.meter(list(CLASSES), {})
    meter.update(logits[:3], true[:3], torch.tensor(0.5))
    meter.update(logits[3:], true[3:], torch.tensor(0.5))
    got = meter.compute(meter.sums())
    expected = multiclass_jaccard_index(logits.argmax(1), true, 4, average="macro", ignore_index=255)
    assert got["val_miou"] == pytest.approx(100 * float(expected), abs=1e-4)
    valid = true != 255
    assert got["val_pixel_acc"] == pytest.approx(100 * float((logits.argmax(1) == true)[valid].float().mean()))
    from deepyard.tasks.segmetrics import figures

    matrix = np.array([[5, 1, 0], [2, 4, 0], [0, 0, 0]], np.float64)  # class 2 in neither truth nor prediction
    found = figures(matrix)
    assert found["iou"][2] is None and found["miou"] == pytest.approx(100 * (5 / 8 + 4 / 7) / 2)


def test_losses_ignore_255_and_weight_classes() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 8, 8, generator=g, requires_grad=True)
    y = torch.randint(0, 3, (2, 8, 8), generator=g)
    y[:, :2] = 255
    stats = {"class_weights": [0.5, 1.0, 2.0]}
    for loss in SEGMENTATION.losses:
        terms = SEGMENTATION.criterion(loss, ["a", "b", "c"], stats, None)(x, y)
        assert all(torch.isfinite(v) and v.item() > 0 for v in terms.values())
        sum(terms.values()).backward()  # type: ignore[union-attr]
        assert x.grad is not None and float(x.grad[:, :, :2].abs().sum()) == 0.0  # ignored pixels: no gradient
        x.grad = None
    x = x.detach()
    plain = SEGMENTATION.criterion("cross_entropy", ["a", "b", "c"], stats, None)(x, y)["cross_entropy"]
    weighted = SEGMENTATION.criterion("weighted_cross_entropy", ["a", "b", "c"], stats, None)(x, y)
    w = torch.tensor([0.5, 1.0, 2.0])
    expected = torch.nn.functional.cross_entropy(x, y, weight=w, ignore_index=255)
    assert float(weighted["weighted_cross_entropy"]) == pytest.approx(float(expected)) != pytest.approx(float(plain))
    with pytest.raises(Exception, match="does not apply to segmentation"):
        SEGMENTATION.criterion("bce", ["a"], {}, None)


def test_augmentation_moves_image_and_mask_together() -> None:
    rng = np.random.default_rng(0)
    scenes = [scene(rng, 32) for _ in range(8)]
    masks = torch.from_numpy(np.stack([m for _, m in scenes]))
    pixels = (masks * 60).unsqueeze(1).repeat(1, 3, 1, 1).to(torch.uint8)  # the image says its own class
    aug = AugmentConfig(flip="lrud", rot90="rotall")
    pre = Preprocessor(None, None, aug, torch.Generator().manual_seed(0), channels_last=False)
    x, y = SEGMENTATION.transform(pre, pixels, masks, train=True)
    assert not torch.equal(y, masks.long())  # something moved
    assert torch.equal((x[:, 0] * 255).round().long(), y * 60)  # and the image moved with it
    pre = Preprocessor(None, None, AugmentConfig(rotation=30, scale=0.1), torch.Generator().manual_seed(0), False)
    _, y = SEGMENTATION.transform(pre, pixels, masks, train=True)
    assert set(torch.unique(y).tolist()) <= {0, 1, 2, 3, 255}  # nearest: no invented class, corners are ignore
    x, y = SEGMENTATION.transform(pre, pixels, masks, train=False)
    assert torch.equal(y, masks.long())


@pytest.mark.parametrize("name", ["unet", "lraspp_mobilenet_v3_large"])
def test_segmentation_networks_give_per_pixel_logits(name: str) -> None:
    model = build_network(name, (1, 40, 48), 5)
    x = torch.randn(2, 1, 40, 48)
    out = model(x)
    assert out.shape == (2, 5, 40, 48)
    out.mean().backward()


GATE = ["--epochs", "6", "--batch-size", "16", "--set", "loss=ce_dice", "--set", "augment.flip=lr"]  # default recipe


@pytest.mark.slow
def test_quality_gate_unet_reaches_miou_60_and_predicts_and_exports(tmp_path: Path) -> None:
    """The default network (unet) on 640 generated 40x40 scenes, 6 epochs, 160 more for validation: mIoU >= 60%."""
    home = tmp_path / "home"
    write_scenes(tmp_path / "train", 640, "palette", seed=0, size=40)
    write_scenes(tmp_path / "val", 160, "palette", seed=1, size=40)
    made = run(home, "dataset", "create", str(tmp_path / "train"), "--val", str(tmp_path / "val"), "--task",
               "segmentation", "--size", "40x40", "--name", "shapes", "--json")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["manifest"]["target_stats"]["mask_kinds"] == {"palette": 800}
    trained = run(home, "train", "--dataset", "shapes", *GATE, "--json")
    assert trained.returncode == 0, trained.stderr
    out = json.loads(trained.stdout)
    assert set(out["last_val"]) == {"val_loss", "val_miou", "val_pixel_acc", "val_dice"}
    assert out["last_val"]["val_miou"] >= 60, out["last_val"]
    print(f"segmentation gate: {out['last_val']}, {out['seconds']} s of training")
    doc = json.loads(run(home, "evaluate", out["run"], "--snapshot", "last", "--json").stdout)
    assert doc["miou"] == pytest.approx(out["last_val"]["val_miou"], abs=0.5)  # the trainer's meter, the same figure
    assert len(doc["per_class"]) == 4 and len(doc["lowest_iou"]) == 9
    folder = Path(doc["files"]["json"]).parent
    for picture in ("confusion.png", "lowest_iou.png"):
        with Image.open(folder / picture) as img:
            assert img.width > 100 and len(np.unique(np.asarray(img.convert("RGB")).reshape(-1, 3), axis=0)) > 4
    image, mask = scene(np.random.default_rng(7), 80)  # twice the dataset's size: masks come back at 80x80
    Image.fromarray(image).save(tmp_path / "new.png")
    predicted = json.loads(run(home, "predict", out["run"], str(tmp_path / "new.png"), "--json").stdout)
    (row,) = predicted["predictions"]
    with Image.open(row["mask"]) as img:
        classes = np.asarray(img)
    assert img.mode == "P" and classes.shape == (80, 80) and (classes == mask).mean() > 0.8
    exported = json.loads(run(home, "export", out["run"], "--json").stdout)
    assert exported["ok"] and {r["agreement_of"] for r in exported["reports"]} == {"per-pixel classes"}


@pytest.mark.parametrize("mode", ["squash", "fill", "crop", "half_crop"])
def test_predicted_masks_map_back_to_the_original_size(mode: str) -> None:
    from deepyard.datasets.images import Geometry
    from deepyard.datasets.masks import resize_mask
    from deepyard.datasets.spec import Fill, ResizeMode
    from deepyard.infer.preprocess import Preprocessing
    from deepyard.infer.segment import to_original

    truth = np.zeros((30, 60), np.uint8)
    truth[:, 30:] = 2
    truth[10:20, 5:15] = 1
    geo = Geometry(24, 24, 3, ResizeMode(mode), Fill.constant, 0, 10**8, 255)
    seen = resize_mask(truth, geo)  # what the network was shown, as a perfect network would answer
    logits = torch.nn.functional.one_hot(torch.from_numpy(seen).long().clamp(max=2), 3).permute(2, 0, 1).float()
    back = to_original(logits, (60, 30), Preprocessing(24, 24, 3, resize_mode=mode))
    assert back.shape == (30, 60)
    valid = back != 255
    seen_part = {"crop": 0.5, "half_crop": 2 / 3}.get(mode, 1.0)  # the sides a crop cut off are ignore
    assert valid.mean() == pytest.approx(seen_part, abs=0.02)
    assert (back[valid] == truth[valid]).mean() > 0.95


def test_run_page_partials_show_areas_and_per_class_iou_with_na() -> None:
    from deepyard.tasks.base import EvalContext
    from deepyard.web.templating import task_partial

    logits = torch.zeros(1, 4, 4, 4)
    logits[0, 1, :2] = 5  # half circle, half background
    (row,) = SEGMENTATION.predict(logits, list(CLASSES), {}, 1)
    html = task_partial(SEGMENTATION, "predict.html", p=row, names=list(CLASSES))
    assert "circle" in html and "50.0%" in html and "triangle" not in html
    true = np.zeros((2, 4, 4), np.uint8)
    true[:, :2] = 1
    ctx = EvalContext(list(CLASSES), {}, ["a.png", "b.png"], lambda idx: np.zeros((len(idx), 4, 4, 3), np.uint8), 2)
    report = SEGMENTATION.evaluate(logits.repeat(2, 1, 1, 1).numpy(), true, ctx)
    assert report.doc["miou"] == pytest.approx(100.0) and report.doc["per_class"][3]["iou"] is None
    html = task_partial(SEGMENTATION, "evaluate.html", r={**report.doc, "count": 2}, base="/f/", suffix="")
    assert "mIoU 100.00%" in html and html.count("n/a") == 4 and "/f/lowest_iou.png" in html
